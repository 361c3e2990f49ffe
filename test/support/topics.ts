// Reads what reaches a topic through a pull subscription of the test's own, made before
// anything is paid so that nothing published later is missed. Each test picks its messages
// by cart id: several tests share the topic.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PubSubAdmin, ReceivedMessage } from '@edge-checkout/dev-stack/pubsub-admin';

export class TopicReader {
  private readonly received: ReceivedMessage[] = [];

  private constructor(
    private readonly admin: PubSubAdmin,
    readonly topic: string,
    private readonly subscription: string,
  ) {}

  static async subscribe(admin: PubSubAdmin, topic: string): Promise<TopicReader> {
    const subscription = `e2e-${topic}-${randomUUID().slice(0, 8)}`;
    // Ordered like the relay's subscription, so arrival order per cart is publish order.
    await admin.createSubscription(subscription, { topic, enableMessageOrdering: true });
    return new TopicReader(admin, topic, subscription);
  }

  /** Waits until `count` messages about the cart arrived; returns them in arrival order. */
  async forCart(cartId: string, count: number, timeoutMs = 10_000): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.pullOnce();
      const mine = this.received.filter((m) => m.attributes.cartId === cartId || m.orderingKey === cartId);
      if (mine.length >= count) return mine;
      if (Date.now() > deadline) {
        throw new Error(
          `${count} message(s) about cart ${cartId} expected on ${this.topic} within ${timeoutMs} ms; got ${mine.length}: ${mine.map((m) => m.data).join('\n')}`,
        );
      }
      await sleep(25);
    }
  }

  /** What arrived about the cart so far, after one more pull (to look for extra messages). */
  async allForCart(cartId: string): Promise<ReceivedMessage[]> {
    await this.pullOnce();
    return this.received.filter((m) => m.attributes.cartId === cartId || m.orderingKey === cartId);
  }

  /**
   * Keeps pulling for `ms`, to see that nothing more comes; returns what arrived meanwhile
   * about these carts.
   */
  async arrivingWithin(ms: number, cartIds: readonly string[]): Promise<ReceivedMessage[]> {
    const before = this.received.length;
    const deadline = Date.now() + ms;
    do {
      await this.pullOnce();
      await sleep(100);
    } while (Date.now() < deadline);
    return this.received.slice(before).filter((m) => cartIds.includes(m.attributes.cartId ?? m.orderingKey ?? ''));
  }

  async close(): Promise<void> {
    await this.admin.deleteSubscription(this.subscription);
  }

  private async pullOnce(): Promise<void> {
    const batch = await this.admin.pull(this.subscription);
    await this.admin.ack(
      this.subscription,
      batch.map((m) => m.ackId),
    );
    this.received.push(...batch);
  }
}
