// Reads what reaches a topic through a pull subscription: every test that looks at Pub/Sub, in
// Node and inside workerd (so no Node built-ins here). Each message pulled is acknowledged and
// kept; a test picks its own (several tests share a topic) and waits for how many it expects.
import type { PubSubAdmin, ReceivedMessage } from '@edge-checkout/dev-stack/pubsub-admin';

export type MessageMatch = (message: ReceivedMessage) => boolean;

const anyMessage: MessageMatch = () => true;

/** Messages about these carts: payment events name the cart in an attribute, notifications in the ordering key. */
export function aboutCarts(...cartIds: string[]): MessageMatch {
  return (message) => cartIds.includes(message.attributes.cartId ?? message.orderingKey ?? '');
}

/**
 * How long "nothing more" is watched for after the expected messages. A repeat would come from
 * the same publish call, or from a retry a few hundred milliseconds later.
 */
const QUIET_MS = 500;
/** Pause after an empty pull; the emulator answers at once (returnImmediately). */
const POLL_MS = 25;

export class TopicReader {
  /** Everything pulled so far, in arrival order. */
  readonly received: ReceivedMessage[] = [];

  /** Reads an existing subscription, from the messages not yet acknowledged on it. */
  constructor(
    private readonly admin: Pick<PubSubAdmin, 'pull' | 'ack' | 'deleteSubscription'>,
    readonly subscription: string,
  ) {}

  /**
   * Reads the topic through a subscription of its own, which sees everything published after
   * this returns: make it before anything is published. Ordered like the relay's subscription,
   * so arrival order per cart is publish order.
   */
  static async subscribe(admin: PubSubAdmin, topic: string): Promise<TopicReader> {
    const subscription = `test-${topic}-${crypto.randomUUID().slice(0, 8)}`;
    await admin.createSubscription(subscription, { topic, enableMessageOrdering: true });
    return new TopicReader(admin, subscription);
  }

  /**
   * Pulls until at least `count` messages that match have arrived; returns every one that
   * matched so far. Throws, listing them, when they have not after `timeoutMs`.
   */
  async atLeast(count: number, match: MessageMatch = anyMessage, timeoutMs = 15_000): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const matching = this.received.filter(match);
      if (matching.length >= count) return matching;
      if (Date.now() > deadline) {
        throw new Error(
          `${count} message(s) expected on ${this.subscription} within ${timeoutMs} ms; got ${matching.length}: ${matching.map((m) => m.data).join('\n')}`,
        );
      }
      await this.pull();
    }
  }

  /**
   * The `count` messages that match and nothing more: waits for them, then keeps pulling for
   * `quietMs`. Returns every one that matched, so a repeat or one too many shows in what the
   * caller asserts; `exactly(0)` is "nothing was published", checked for `quietMs`.
   */
  async exactly(count: number, match: MessageMatch = anyMessage, quietMs = QUIET_MS): Promise<ReceivedMessage[]> {
    await this.atLeast(count, match);
    await this.arrivingWithin(match, quietMs);
    return this.received.filter(match);
  }

  /** Keeps pulling for `ms`; returns what arrived meanwhile that matches (to see that nothing more comes). */
  async arrivingWithin(match: MessageMatch = anyMessage, ms = QUIET_MS): Promise<ReceivedMessage[]> {
    const before = this.received.length;
    const deadline = Date.now() + ms;
    do {
      await this.pull();
    } while (Date.now() < deadline);
    return this.received.slice(before).filter(match);
  }

  /** Deletes the subscription (of `subscribe`). */
  async close(): Promise<void> {
    await this.admin.deleteSubscription(this.subscription);
  }

  /** One pull, acknowledged; after an empty one a short pause, so that waiting does not spin. */
  private async pull(): Promise<void> {
    const batch = await this.admin.pull(this.subscription, 1000);
    await this.admin.ack(
      this.subscription,
      batch.map((m) => m.ackId),
    );
    this.received.push(...batch);
    if (batch.length === 0) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
