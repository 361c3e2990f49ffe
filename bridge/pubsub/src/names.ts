// Google's names and the emulator's address, as rules without I/O: configuration checks them
// (the Worker's env, the relay's config) without loading the publisher.

/**
 * A project id as Google forms them: lower-case letters, digits and hyphens, starting with a
 * letter, not ending with a hyphen, at most 30 (https://cloud.google.com/resource-manager/docs/creating-managing-projects),
 * optionally domain-scoped (`example.com:shop`). Google creates them with at least 6; shorter
 * ones such as `demo` or `test` are let through for the emulator, which takes any, and Google
 * answers 404 for one it does not know (retried, never failing a row).
 */
export const PROJECT_ID = /^(?:[a-z0-9.-]+:)?[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?$/;
/** A topic id as Google allows it: 3 to 255 characters, starting with a letter, not with "goog". */
export const TOPIC_NAME = /^(?![Gg][Oo][Oo][Gg])[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$/;
/**
 * A subscription id: the same rule as a topic's, which Google gives for every Pub/Sub resource
 * name (https://cloud.google.com/pubsub/docs/pubsub-basics#resource_names).
 */
export const SUBSCRIPTION_NAME = TOPIC_NAME;

/**
 * The topic of payment events where PUBSUB_TOPIC does not say otherwise (bridge/README.md),
 * its dead-letter topic, and the pull subscription on that where dead letters are read.
 */
export const PAYMENT_EVENTS_TOPIC = 'payment-events';
export const deadLetterTopicOf = (topic: string) => `${topic}-dead-letter`;
export const deadLetterPullSubscriptionOf = (topic: string) => `${deadLetterTopicOf(topic)}-pull`;

/**
 * PUBSUB_EMULATOR_HOST as `host:port`. It is written so, but Google's own client also takes an
 * `http://` before it and slashes after (determineBaseUrl_ in googleapis/nodejs-pubsub).
 */
export function emulatorHostPort(value: string): string {
  return value.replace(/^http:\/\//, '').replace(/\/+$/, '');
}

/** The host of an emulator's `host:port` (as emulatorHostPort gives it), or null unless it names a port 1-65535. */
export function emulatorHostOf(hostPort: string): string | null {
  const [, host, port] = /^([\w.-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})$/.exec(hostPort) ?? [];
  return host !== undefined && Number(port) >= 1 && Number(port) <= 65535 ? host : null;
}
