// Sends dead-lettered payment events back to the payment-events topic (`npm run redrive`).
//
// The relay's push subscription dead-letters a message after 5 failed deliveries, a few minutes
// of backoff: an outage of the relay or of the notification topic longer than that sends every
// payment event of the window to the dead-letter topic, and Pub/Sub has no redrive of its own.
// The Worker cannot publish them again (its outbox rows are published), so this does.
//
// At least once: a message is acknowledged on the dead-letter subscription only after Pub/Sub
// took its copy, so a run that dies midway loses nothing; it may publish one again, which
// consumers drop by eventId (docs/contract.md §6).
import {
  DEFAULT_TIMEOUT_MS,
  type PubSubMessage,
  PubSubPublishError,
  type PubSubPublisher,
} from '@edge-checkout/pubsub';
import type { PaymentEvent } from '@edge-checkout/pubsub/payment-event';
import type { PubSubSubscriber, PulledMessage } from '@edge-checkout/pubsub/subscriber';

/**
 * Pub/Sub adds attributes starting so to a message it forwards to a dead-letter topic:
 * CloudPubSubDeadLetterSourceDeliveryCount, CloudPubSubDeadLetterSourceSubscription,
 * CloudPubSubDeadLetterSourceSubscriptionProject and CloudPubSubDeadLetterSourceTopicPublishTime
 * (https://cloud.google.com/pubsub/docs/dead-letter-topics). They describe that one forwarding,
 * not the event: a copy that carried them would report a stale count if dead-lettered again.
 */
const DEAD_LETTER_ATTRIBUTE_PREFIX = 'CloudPubSubDeadLetter';
const SOURCE_PUBLISH_TIME = 'CloudPubSubDeadLetterSourceTopicPublishTime';

/**
 * How long a pull's messages stay leased: the most Pub/Sub allows (modifyAckDeadline, 600 s),
 * as the subscription's own deadline may be Google's default of 10 s. An acknowledgement after
 * the lease is best effort: the message comes back and is published again.
 */
const LEASE_SECONDS = 600;
/**
 * Messages per pull. The publisher sends one request per cart, one at a time, each ending within
 * its timeout: that many carts publish well inside the lease, half of it left for the
 * acknowledgement.
 */
const PULL_BATCH = Math.floor((LEASE_SECONDS * 1000) / DEFAULT_TIMEOUT_MS / 2);
/** Pulls in a row that must come back empty before the subscription counts as drained (see pull()). */
const EMPTY_PULLS = 2;
const EMPTY_PULL_PAUSE_MS = 1_000;

export type RedriveOptions = {
  subscriber: Pick<PubSubSubscriber, 'pull' | 'acknowledge' | 'modifyAckDeadline'>;
  publisher: Pick<PubSubPublisher, 'publish'>;
  /** List what would be republished; publish and acknowledge nothing. */
  dryRun?: boolean;
  /** At most this many messages republished. */
  limit?: number;
  /**
   * Message ids to acknowledge without publishing (with dryRun: only listed): a message the relay
   * refused as malformed would only be dead-lettered again, and one Pub/Sub refuses would stop
   * every run.
   */
  drop?: ReadonlySet<string>;
  /** One line per message. */
  print?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
};

export type RedriveReport = {
  /** Republished and acknowledged (with dryRun: listed), per `eventType` attribute. */
  byType: Record<string, number>;
  total: number;
  /** Message ids acknowledged without publishing, as `drop` asked (with dryRun: listed). */
  dropped: string[];
  /** Set when a publish failed: its messages (ids in publish order) stay on the subscription. */
  failure?: { error: unknown; unpublished: string[] };
};

/** The copy to publish: the same data and attributes, less Pub/Sub's dead-letter ones, with the cart as ordering key. */
function republishable(message: PulledMessage): PubSubMessage {
  const attributes = Object.fromEntries(
    Object.entries(message.attributes).filter(([name]) => !name.startsWith(DEAD_LETTER_ATTRIBUTE_PREFIX)),
  );
  // The payment event's ordering key is its cart id (docs/contract.md §5), also in the cartId
  // attribute: the key itself where the forwarded message kept it, else that attribute.
  const orderingKey = message.orderingKey ?? attributes.cartId;
  return { data: message.data, attributes, ...(orderingKey ? { orderingKey } : {}) };
}

export async function redrive(opts: RedriveOptions): Promise<RedriveReport> {
  const { subscriber, publisher, dryRun = false, limit = Number.POSITIVE_INFINITY } = opts;
  const print = opts.print ?? (() => {});
  const sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  const drop = opts.drop ?? new Set<string>();
  const report: RedriveReport = { byType: {}, total: 0, dropped: [] };
  // With dryRun nothing is acknowledged: the listed messages stay leased until the end, and one
  // whose lease ran out meanwhile (pulled again) is not listed twice.
  const seen = new Set<string>();
  const leased: string[] = [];

  try {
    let empty = 0;
    while (report.total < limit) {
      const received = await subscriber.pull(Math.min(PULL_BATCH, limit - report.total));
      const ackIds = received.map((message) => message.ackId);
      await subscriber.modifyAckDeadline(ackIds, LEASE_SECONDS);
      if (dryRun) leased.push(...ackIds);
      // Without dryRun a message pulled again (its acknowledgement lost) is published again: a duplicate, not a loss.
      const pulled = dryRun ? received.filter((message) => !seen.has(message.messageId)) : received;
      if (pulled.length === 0) {
        // Google answers a pull that returns at once with nothing now and then while messages
        // remain: only another empty one, a moment later, says the subscription is drained.
        if (++empty >= EMPTY_PULLS) break;
        await sleep(EMPTY_PULL_PAUSE_MS);
        continue;
      }
      empty = 0;
      for (const message of pulled) seen.add(message.messageId);
      const dropping = pulled.filter((message) => drop.has(message.messageId));
      if (!dryRun) await subscriber.acknowledge(dropping.map((message) => message.ackId));
      for (const message of dropping) {
        report.dropped.push(message.messageId);
        print(`${dryRun ? 'would drop' : 'dropped'} ${described(message)}`);
      }
      const batch = inPublishOrder(pulled.filter((message) => !drop.has(message.messageId)));

      if (dryRun) {
        for (const message of batch) count(report, message, print, 'would republish');
        continue;
      }

      let publishedCount = batch.length;
      let failure: unknown;
      try {
        await publisher.publish(batch.map(republishable));
      } catch (error) {
        failure = error;
        // The requests before the failing one went out (one per cart: the publisher splits by key).
        publishedCount = error instanceof PubSubPublishError ? error.publishedMessageIds.length : 0;
      }
      const published = batch.slice(0, publishedCount);
      await subscriber.acknowledge(published.map((message) => message.ackId));
      for (const message of published) count(report, message, print, 'republished');
      if (failure !== undefined) {
        const unpublished = batch.slice(publishedCount);
        // Not acknowledged: they stay on the subscription, available again at once for the next run.
        await subscriber
          .modifyAckDeadline(
            unpublished.map((message) => message.ackId),
            0,
          )
          .catch(() => {});
        report.failure = { error: failure, unpublished: unpublished.map((message) => message.messageId) };
        return report;
      }
    }
  } finally {
    if (leased.length > 0) await subscriber.modifyAckDeadline(leased, 0).catch(() => {});
  }
  return report;
}

/**
 * A pull's messages grouped by ordering key (one publish request per key), each cart's in the
 * order they were first published, as far as this pull shows it: the dead-letter pull
 * subscription delivers in no order, and a cart's messages in another pull go in that pull's
 * turn. Messages of one publish request share a publish time (the Worker's outbox sends a cart's
 * backlog in one request after an outage): between those the event's own occurredAt decides, and
 * pull order where that ties too.
 */
function inPublishOrder(messages: PulledMessage[]): PulledMessage[] {
  const keyOf = (message: PulledMessage) => republishable(message).orderingKey ?? '';
  const firstAt = new Map<string, number>();
  messages.forEach((message, index) => {
    if (!firstAt.has(keyOf(message))) firstAt.set(keyOf(message), index);
  });
  const publishedAt = (message: PulledMessage) => Date.parse(message.attributes[SOURCE_PUBLISH_TIME] ?? '') || 0;
  return [...messages].sort(
    (a, b) =>
      firstAt.get(keyOf(a))! - firstAt.get(keyOf(b))! ||
      publishedAt(a) - publishedAt(b) ||
      occurredAt(a) - occurredAt(b),
  );
}

/** The payment event's occurredAt (PaymentEvent in @edge-checkout/pubsub/payment-event), 0 where the data has none. */
function occurredAt(message: PulledMessage): number {
  try {
    const event = JSON.parse(new TextDecoder().decode(message.data)) as Partial<Pick<PaymentEvent, 'occurredAt'>>;
    return typeof event.occurredAt === 'string' ? Date.parse(event.occurredAt) || 0 : 0;
  } catch {
    return 0;
  }
}

function count(report: RedriveReport, message: PulledMessage, print: (line: string) => void, verb: string): void {
  const type = eventTypeOf(message);
  report.byType[type] = (report.byType[type] ?? 0) + 1;
  report.total++;
  print(`${verb} ${described(message)}`);
}

const eventTypeOf = (message: PulledMessage) => message.attributes.eventType ?? '(no eventType)';

/** `{messageId}: {type} event {eventId} cart {cart}`, and how often Pub/Sub had delivered it. */
function described(message: PulledMessage): string {
  const { orderingKey } = republishable(message);
  const deliveries = message.attributes.CloudPubSubDeadLetterSourceDeliveryCount;
  return (
    `${message.messageId}: ${eventTypeOf(message)} event ${message.attributes.eventId ?? '?'} cart ${orderingKey ?? '(no ordering key)'}` +
    (deliveries ? `, dead-lettered after ${deliveries} deliveries` : '')
  );
}
