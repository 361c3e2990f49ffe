// Small REST client for a Pub/Sub emulator: topics, subscriptions, and pull and ack through the
// subscriber of @edge-checkout/pubsub. For tests and `npm run dev`; it sends no credentials, so
// it is not for Google's API.

import { deadLetterPullSubscriptionOf, deadLetterTopicOf } from '@edge-checkout/pubsub/names';
import { createPubSubSubscriber, type PulledMessage } from '@edge-checkout/pubsub/subscriber';

export type SubscriptionOptions = {
  /** Short topic name. */
  topic: string;
  /** Push endpoint; absent for a pull subscription. */
  pushEndpoint?: string;
  enableMessageOrdering?: boolean;
  ackDeadlineSeconds?: number;
};

export type ReceivedMessage = {
  ackId: string;
  messageId: string;
  /** Decoded bytes as UTF-8 text. */
  data: string;
  /** The bytes as Pub/Sub delivered them, base64. */
  base64Data: string;
  attributes: Record<string, string>;
  orderingKey?: string;
  publishTime: string;
  deliveryAttempt?: number;
};

export type PubSubAdmin = {
  readonly projectId: string;
  /** Creates the topic; an existing one is fine. */
  createTopic(topic: string): Promise<void>;
  /** Creates the subscription; an existing one is left as it is. */
  createSubscription(subscription: string, options: SubscriptionOptions): Promise<void>;
  deleteSubscription(subscription: string): Promise<void>;
  /** One pull; returns at once with what is there (possibly nothing). */
  pull(subscription: string, maxMessages?: number): Promise<ReceivedMessage[]>;
  ack(subscription: string, ackIds: string[]): Promise<void>;
};

class PubSubAdminError extends Error {
  override readonly name = 'PubSubAdminError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export function createPubSubAdmin(opts: { host: string; projectId: string; fetch?: typeof fetch }): PubSubAdmin {
  const doFetch: typeof fetch = opts.fetch ?? ((input, init) => fetch(input, init));
  const project = `projects/${opts.projectId}`;
  const topicName = (topic: string) => `${project}/topics/${topic}`;
  const subscriptionName = (subscription: string) => `${project}/subscriptions/${subscription}`;
  const subscriber = (subscription: string) =>
    createPubSubSubscriber({ projectId: opts.projectId, subscription, emulatorHost: opts.host, fetch: opts.fetch });

  async function call(method: string, path: string, body?: unknown, okStatuses: number[] = []): Promise<unknown> {
    const response = await doFetch(`http://${opts.host}/v1/${path}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok && !okStatuses.includes(response.status)) {
      throw new PubSubAdminError(`${method} ${path}: ${response.status} ${text}`, response.status);
    }
    return text ? (JSON.parse(text) as unknown) : {};
  }

  return {
    projectId: opts.projectId,

    async createTopic(topic) {
      await call('PUT', topicName(topic), {}, [409]);
    },

    async createSubscription(subscription, options) {
      await call(
        'PUT',
        subscriptionName(subscription),
        {
          topic: topicName(options.topic),
          ackDeadlineSeconds: options.ackDeadlineSeconds ?? 10,
          enableMessageOrdering: options.enableMessageOrdering ?? false,
          ...(options.pushEndpoint ? { pushConfig: { pushEndpoint: options.pushEndpoint } } : {}),
        },
        [409],
      );
    },

    async deleteSubscription(subscription) {
      await call('DELETE', subscriptionName(subscription), undefined, [404]);
    },

    async pull(subscription, maxMessages = 100) {
      return (await subscriber(subscription).pull(maxMessages)).map(asReceived);
    },

    async ack(subscription, ackIds) {
      await subscriber(subscription).acknowledge(ackIds);
    },
  };
}

/** Names of the local Pub/Sub layout that `npm run dev` and the end-to-end tests use. */
export type LocalPubSubLayout = {
  /** Payment events from the Worker (PUBSUB_TOPIC). */
  paymentTopic: string;
  /** Notifications from the relay (NOTIFICATION_TOPIC). */
  notificationTopic: string;
  /** The relay's `/pubsub/push` URL. */
  relayPushEndpoint: string;
};

/**
 * Creates, idempotently: both topics, the dead-letter topic `{paymentTopic}-dead-letter` with
 * the pull subscription `npm run redrive` reads (`{paymentTopic}-dead-letter-pull`: a topic
 * without subscriptions drops what it gets), the push subscription `{paymentTopic}-relay`
 * (ordered, retried until the relay takes it) pointing at the relay, and a pull subscription
 * `{notificationTopic}-pull` where notifications can be read.
 *
 * The push subscription has no dead-letter policy, unlike Google Cloud's (bridge/README.md): the
 * emulator (0.8.20, gcloud 528) pushes again every second, ignoring any retry policy, and when a
 * message's attempts run out its push threads die (a NullPointerException forwarding it to the
 * dead-letter topic) and it pushes nothing to that subscription again, nor dead-letters. A relay
 * down for 5 s would cost every later notification until the emulator restarts, and with it the
 * messages it held. Without the policy it pushes until the relay is back.
 */
export async function setUpLocalPubSub(
  admin: PubSubAdmin,
  layout: LocalPubSubLayout,
): Promise<{
  deadLetterTopic: string;
  deadLetterSubscription: string;
  relaySubscription: string;
  notificationSubscription: string;
}> {
  const deadLetterTopic = deadLetterTopicOf(layout.paymentTopic);
  const deadLetterSubscription = deadLetterPullSubscriptionOf(layout.paymentTopic);
  const relaySubscription = `${layout.paymentTopic}-relay`;
  const notificationSubscription = `${layout.notificationTopic}-pull`;
  for (const topic of [layout.paymentTopic, layout.notificationTopic, deadLetterTopic]) await admin.createTopic(topic);
  await admin.createSubscription(deadLetterSubscription, { topic: deadLetterTopic });
  await admin.createSubscription(relaySubscription, {
    topic: layout.paymentTopic,
    pushEndpoint: layout.relayPushEndpoint,
    enableMessageOrdering: true,
  });
  await admin.createSubscription(notificationSubscription, {
    topic: layout.notificationTopic,
    enableMessageOrdering: true,
  });
  return { deadLetterTopic, deadLetterSubscription, relaySubscription, notificationSubscription };
}

function asReceived(message: PulledMessage): ReceivedMessage {
  const bytes = Buffer.from(message.data);
  return {
    ...message,
    data: bytes.toString('utf8'),
    base64Data: bytes.toString('base64'),
    // Present though undefined, as tests match them so.
    orderingKey: message.orderingKey,
    deliveryAttempt: message.deliveryAttempt,
  };
}
