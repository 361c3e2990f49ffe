// Pulling from a Pub/Sub subscription over REST (pull, acknowledge, modifyAckDeadline), with the
// publisher's connection (credentials, emulator, endpoint, deadline): for operator tools that
// drain a subscription, such as the dead-letter redrive. Runtime-neutral like the publisher.
import { PROJECT_ID, SUBSCRIPTION_NAME } from './names.ts';
import {
  googleErrorText,
  methodUrl,
  PubSubCallError,
  PubSubConfigError,
  type PubSubConnectionOptions,
  pubSubCaller,
} from './pubsub.ts';

/** A message as a pull returned it. */
export type PulledMessage = {
  /** What acknowledges it (or hands it back); valid while its lease lasts. */
  ackId: string;
  messageId: string;
  /** The message's bytes, decoded from the base64 of the wire. */
  data: Uint8Array;
  attributes: Record<string, string>;
  /** Absent when the message has none. */
  orderingKey?: string;
  publishTime: string;
  /** Set on subscriptions with a dead-letter policy: this delivery's number, from 1. */
  deliveryAttempt?: number;
};

/** A pull, acknowledge or modifyAckDeadline that did not go through. */
class PubSubSubscriberError extends Error {
  override readonly name = 'PubSubSubscriberError';
  constructor(
    message: string,
    readonly details: { status?: number; cause?: unknown },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
}

export type PubSubSubscriberOptions = PubSubConnectionOptions & {
  projectId: string;
  /** Short subscription name, not the full path. */
  subscription: string;
};

export type PubSubSubscriber = {
  /** Full subscription path, `projects/{project}/subscriptions/{subscription}`. */
  readonly subscriptionPath: string;
  /**
   * One pull of at most `maxMessages` that answers at once, with what is there (possibly nothing).
   * The messages are leased for the subscription's ack deadline.
   */
  pull(maxMessages: number): Promise<PulledMessage[]>;
  /** Removes the messages from the subscription for good. */
  acknowledge(ackIds: string[]): Promise<void>;
  /**
   * Sets the messages' leases to end `seconds` from now: more time to handle them, or 0 to hand
   * them back at once (a "nack"), so that the next pull can return them again.
   */
  modifyAckDeadline(ackIds: string[], seconds: number): Promise<void>;
};

/** `projects/{projectId}/subscriptions/{subscription}`, after checking both names against Google's rules. */
function subscriptionPath(projectId: string, subscription: string): string {
  if (!PROJECT_ID.test(projectId)) throw new PubSubConfigError(`invalid GCP project id "${projectId}"`);
  if (!SUBSCRIPTION_NAME.test(subscription)) {
    throw new PubSubConfigError(
      `invalid Pub/Sub subscription name "${subscription}" (3-255 characters, starting with a letter, not with "goog")`,
    );
  }
  return `projects/${projectId}/subscriptions/${subscription}`;
}

/** A received message as the REST API sends it (ReceivedMessage, data in base64). */
type WireReceivedMessage = {
  ackId: string;
  /** Set on subscriptions with a dead-letter policy. */
  deliveryAttempt?: number;
  message: {
    data?: string;
    attributes?: Record<string, string>;
    messageId: string;
    publishTime: string;
    orderingKey?: string;
  };
};

export function createPubSubSubscriber(opts: PubSubSubscriberOptions): PubSubSubscriber {
  const path = subscriptionPath(opts.projectId, opts.subscription);
  const call = pubSubCaller(opts);

  async function post(method: string, body: unknown): Promise<string> {
    const fail = (message: string, details: PubSubSubscriberError['details']) =>
      new PubSubSubscriberError(`Pub/Sub ${method} on ${path} failed: ${message}`, details);
    try {
      const answer = await call(methodUrl(path, method, opts), body);
      if (!answer.ok) {
        throw fail(`${answer.status} ${googleErrorText(answer.text) ?? answer.statusText}`.trim(), {
          status: answer.status,
        });
      }
      return answer.text;
    } catch (error) {
      if (!(error instanceof PubSubCallError)) throw error;
      throw fail(error.message, { cause: error.cause });
    }
  }

  return {
    subscriptionPath: path,

    async pull(maxMessages) {
      // returnImmediately: an empty subscription answers at once instead of holding the call
      // open (Google's emulator holds it for good). Google discourages it for throughput and
      // says such a pull may return nothing while messages remain
      // (https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions/pull):
      // callers that stop on an empty pull confirm it with another.
      const text = await post('pull', { maxMessages, returnImmediately: true });
      const received = (JSON.parse(text || '{}') as { receivedMessages?: WireReceivedMessage[] }).receivedMessages;
      return (received ?? []).map(({ ackId, deliveryAttempt, message }) => ({
        ackId,
        messageId: message.messageId,
        data: bytesOfBase64(message.data ?? ''),
        attributes: message.attributes ?? {},
        // The REST API sends "" or leaves it out for a message without one.
        ...(message.orderingKey ? { orderingKey: message.orderingKey } : {}),
        publishTime: message.publishTime,
        ...(deliveryAttempt === undefined ? {} : { deliveryAttempt }),
      }));
    },

    async acknowledge(ackIds) {
      // https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions/acknowledge
      if (ackIds.length > 0) await post('acknowledge', { ackIds });
    },

    async modifyAckDeadline(ackIds, seconds) {
      // From 0 (available again at once) to 600, counted from this call; it leaves the
      // subscription's own ackDeadlineSeconds as it is:
      // https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions/modifyAckDeadline
      if (ackIds.length > 0) await post('modifyAckDeadline', { ackIds, ackDeadlineSeconds: seconds });
    },
  };
}

function bytesOfBase64(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
