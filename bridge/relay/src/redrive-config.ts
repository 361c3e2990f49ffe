// What `npm run redrive` acts on: its flags, and the environment as the relay reads it.
import { parseArgs } from 'node:util';
import {
  deadLetterPullSubscriptionOf,
  PAYMENT_EVENTS_TOPIC,
  SUBSCRIPTION_NAME,
  TOPIC_NAME,
} from '@edge-checkout/pubsub/names';
import { loadPubSubEnv, type RelayConfig } from './config.ts';

export const REDRIVE_USAGE = `usage: npm run redrive -- [--dry-run] [--limit N] [--drop MESSAGE_ID]... [--subscription NAME] [--topic NAME]
  Republishes what Pub/Sub dead-lettered to the payment-events topic, then acknowledges it.
  --subscription  pull subscription on the topic's dead-letter topic (default ${deadLetterPullSubscriptionOf('<topic>')})
  --topic         topic to republish to (default ${PAYMENT_EVENTS_TOPIC})
  --limit N       at most N messages republished
  --drop ID       acknowledge the message with this id without publishing it (repeatable)
  --dry-run       list them; publish and acknowledge nothing
  environment: GCP_PROJECT_ID (required); PUBSUB_EMULATOR_HOST for an emulator, else Application Default Credentials`;

/** A flag npm run redrive cannot take: the message names it. */
export class RedriveArgumentError extends Error {
  override readonly name = 'RedriveArgumentError';
}

export type RedriveConfig = Pick<RelayConfig, 'projectId' | 'emulatorHost'> & {
  subscription: string;
  topic: string;
  limit: number | undefined;
  /** Message ids to acknowledge without publishing. */
  drop: string[];
  dryRun: boolean;
};

/** Throws RedriveArgumentError naming the flag at fault, RelayConfigError naming the variable; null for --help. */
export function loadRedriveConfig(args: string[], env: Record<string, string | undefined>): RedriveConfig | null {
  let values: ReturnType<typeof parse>['values'];
  try {
    ({ values } = parse(args));
  } catch (error) {
    throw new RedriveArgumentError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) return null;

  const { projectId, emulatorHost } = loadPubSubEnv(env);

  const topic = values.topic ?? PAYMENT_EVENTS_TOPIC;
  if (!TOPIC_NAME.test(topic)) throw new RedriveArgumentError('--topic is not a Pub/Sub topic id');
  const subscription = values.subscription ?? deadLetterPullSubscriptionOf(topic);
  if (!SUBSCRIPTION_NAME.test(subscription)) {
    throw new RedriveArgumentError('--subscription is not a Pub/Sub subscription id');
  }
  let limit: number | undefined;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!/^\d+$/.test(values.limit) || limit < 1)
      throw new RedriveArgumentError('--limit must be a whole number above 0');
  }
  const drop = values.drop ?? [];
  if (drop.some((id) => id.trim() === '')) throw new RedriveArgumentError('--drop needs a message id');
  return { projectId, subscription, topic, limit, drop, dryRun: values['dry-run'] ?? false, emulatorHost };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      subscription: { type: 'string' },
      topic: { type: 'string' },
      limit: { type: 'string' },
      drop: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
