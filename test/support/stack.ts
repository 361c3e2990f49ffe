// One local stack per test file, started as `npm run dev` starts it (tools/dev-stack/src/local-stack.ts), with
// everything throwaway: free ports, data in a temp folder, a non-persistent Postgres, none of
// the developer's .dev.vars or environment.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_NOTIFICATION_TOPIC } from '@edge-checkout/dev-stack/local-pubsub';
import type { WrapHost } from '@edge-checkout/dev-stack/local-service';
import { type LocalStack, startLocalStack } from '@edge-checkout/dev-stack/local-stack';
import { createPubSubAdmin, type PubSubAdmin } from '@edge-checkout/dev-stack/pubsub-admin';
import { afterAll, beforeAll } from 'vitest';

/** The app's deep link, as the mobile app would register it. */
export const E2E_APP_RETURN_URL = 'edgecheckout://orders';

export interface E2eStack {
  readonly workerUrl: string;
  /** What the Worker was given: its secrets, the stand-in's URL, the emulator. */
  readonly vars: Readonly<Record<string, string>>;
  /** The stand-in's origin: API, hosted pages and test controls. */
  readonly stripeUrl: string;
  /** null where the machine has no Pub/Sub emulator (the stack then runs without it). */
  readonly pubsub: { admin: PubSubAdmin; paymentTopic: string; notificationTopic: string } | null;
  /** Every line the stack printed, for failure messages. */
  readonly output: readonly string[];
  /** The stack's state folder (Postgres data in `postgres/`), removed after the tests. */
  readonly dataDir: string;
}

export interface LocalStackTestOptions {
  /** Something between the Worker and the emulator (a fault proxy); `pubsub.admin` still talks to the emulator itself. */
  wrapPubSubEmulatorHost?: WrapHost;
  /**
   * What the developer would have configured. Default: APP_RETURN_URL is the app's deep link;
   * `{}` keeps `npm run dev`'s defaults (the landing pages lead back to the storefront).
   */
  configured?: Record<string, string>;
}

export function useLocalStack(options: LocalStackTestOptions = {}): E2eStack {
  let dataDir: string | undefined;
  let stack: LocalStack | undefined;
  let starting: Promise<LocalStack> | undefined;
  const abortStart = new AbortController();
  let emulatorHost: string | undefined;
  const output: string[] = [];
  const wrap = options.wrapPubSubEmulatorHost;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'edge-checkout-e2e-'));
    try {
      starting = startLocalStack({
        signal: abortStart.signal,
        port: 0,
        dataDir,
        persistentDatabase: false,
        // What a deployment of the app sets: the landing pages then offer a way back to the app.
        configured: options.configured ?? { APP_RETURN_URL: E2E_APP_RETURN_URL },
        ports: { postgres: 0, stripeStandin: 0, pubsubEmulator: 0, relay: 0 },
        // Bank transfers settle when a test says so (the stand-in's control), not on a timer
        // that would race the test's look at the awaiting_payment state.
        stripeAsyncDelayMs: Infinity,
        print: (line) => output.push(line),
        wranglerOutput: 'print',
        wrapPubSubEmulatorHost:
          wrap &&
          ((host) => {
            emulatorHost = host;
            return wrap(host);
          }),
      });
      stack = await starting;
    } catch (err) {
      throw new Error(
        `the local stack did not start: ${(err as Error).message}\n--- its output ---\n${output.slice(-60).join('\n')}`,
      );
    }
    // Longer than the start's own wait for the Worker (2 minutes), so that its error, with
    // wrangler's output, is what a slow start reports.
  }, 180_000);

  afterAll(async () => {
    // A start the hook's timeout cut short goes on in the background: it stops what it started
    // once aborted, before its folder (with the registry of its processes) goes.
    abortStart.abort();
    await starting?.catch(() => undefined);
    await stack?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  const started = () => {
    if (!stack) throw new Error('the local stack is not running');
    return stack;
  };
  let pubsub: E2eStack['pubsub'] | undefined;
  return {
    get workerUrl() {
      return started().workerUrl;
    },
    get vars() {
      return started().workerVars;
    },
    get stripeUrl() {
      return started().workerVars.STRIPE_API_BASE!;
    },
    get pubsub() {
      const vars = started().workerVars;
      if (!vars.PUBSUB_EMULATOR_HOST) return null;
      pubsub ??= {
        admin: createPubSubAdmin({ host: emulatorHost ?? vars.PUBSUB_EMULATOR_HOST, projectId: vars.GCP_PROJECT_ID! }),
        paymentTopic: vars.PUBSUB_TOPIC!,
        notificationTopic: DEFAULT_NOTIFICATION_TOPIC,
      };
      return pubsub;
    },
    output,
    get dataDir() {
      if (!dataDir) throw new Error('the local stack has not started');
      return dataDir;
    },
  };
}
