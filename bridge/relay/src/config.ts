// The relay's configuration, from its environment (docs/contract.md §6).
import { emulatorHostOf, emulatorHostPort, PROJECT_ID, TOPIC_NAME } from '@edge-checkout/pubsub/names';

export type RelayConfig = {
  port: number;
  projectId: string;
  notificationTopic: string;
  /**
   * `oidc`: every push must carry a Google-signed OIDC token for `pushAudience`.
   * `none`: no check; allowed only together with an emulator, which sends no token.
   */
  pushAuth: 'oidc' | 'none';
  /** Required with `oidc`. Pub/Sub's default is the push endpoint URL. */
  pushAudience: string | undefined;
  /**
   * With `oidc`, when set: the token must belong to this service account (verified email).
   * Optional, as Google's own checks make it (signature, audience, issuer, expiry); without it
   * the relay warns at start, since any Google account can get a token for any audience.
   */
  pushServiceAccount: string | undefined;
  /** `host:port` of a Pub/Sub emulator; then publishing uses no credentials. */
  emulatorHost: string | undefined;
};

/** Names the variable at fault, never its value. */
export class RelayConfigError extends Error {
  override readonly name = 'RelayConfigError';
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
  }
}

type Env = Record<string, string | undefined>;

/** The variable's value, trimmed; undefined when unset or blank. */
function envValue(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw ? raw : undefined;
}

function required(env: Env, name: string): string {
  const raw = envValue(env, name);
  if (!raw) throw new RelayConfigError(name, 'is required');
  return raw;
}

/**
 * Where the relay's processes reach Pub/Sub (the relay, `npm run redrive`): GCP_PROJECT_ID, and
 * PUBSUB_EMULATOR_HOST for an emulator, checked.
 */
export function loadPubSubEnv(env: Env): Pick<RelayConfig, 'projectId' | 'emulatorHost'> {
  const emulatorHost = envValue(env, 'PUBSUB_EMULATOR_HOST');
  // As Google's client reads it (host:port, http:// allowed): anything else fails every publish.
  if (emulatorHost && emulatorHostOf(emulatorHostPort(emulatorHost)) === null) {
    throw new RelayConfigError('PUBSUB_EMULATOR_HOST', 'must be host:port of the emulator (e.g. 127.0.0.1:8085)');
  }
  const projectId = required(env, 'GCP_PROJECT_ID');
  if (!PROJECT_ID.test(projectId)) throw new RelayConfigError('GCP_PROJECT_ID', 'is not a Google Cloud project id');
  return { projectId, emulatorHost };
}

export function loadRelayConfig(env: Env): RelayConfig {
  const value = (name: string) => envValue(env, name);

  const portText = value('PORT') ?? '8080';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new RelayConfigError('PORT', 'must be a port number (1-65535)');
  }

  const pushAuth = value('PUSH_AUTH') ?? 'oidc';
  if (pushAuth !== 'oidc' && pushAuth !== 'none') {
    throw new RelayConfigError('PUSH_AUTH', 'must be "oidc" or "none"');
  }
  const { projectId, emulatorHost } = loadPubSubEnv(env);
  // Turning verification off in production would let anyone trigger customer emails.
  if (pushAuth === 'none' && !emulatorHost) {
    throw new RelayConfigError('PUSH_AUTH', '"none" is only allowed with PUBSUB_EMULATOR_HOST (the local emulator)');
  }

  const notificationTopic = topicId(required(env, 'NOTIFICATION_TOPIC'), projectId);
  if (!TOPIC_NAME.test(notificationTopic)) {
    throw new RelayConfigError(
      'NOTIFICATION_TOPIC',
      'is not a Pub/Sub topic id (3-255 characters, starting with a letter)',
    );
  }
  return {
    port,
    projectId,
    notificationTopic,
    pushAuth,
    pushAudience: pushAuth === 'oidc' ? required(env, 'PUSH_AUDIENCE') : value('PUSH_AUDIENCE'),
    pushServiceAccount: value('PUSH_SERVICE_ACCOUNT'),
    emulatorHost,
  };
}

/** The topic's id, also when given as its full name `projects/{GCP_PROJECT_ID}/topics/{id}`. */
function topicId(topic: string, projectId: string): string {
  const full = /^projects\/([^/]+)\/topics\/([^/]+)$/.exec(topic);
  if (!full) return topic;
  if (full[1] !== projectId) {
    throw new RelayConfigError('NOTIFICATION_TOPIC', 'names a topic of another project than GCP_PROJECT_ID');
  }
  return full[2]!;
}
