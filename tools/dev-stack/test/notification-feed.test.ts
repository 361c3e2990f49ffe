import { describe, expect, it } from 'vitest';
import { formatNotification, watchNotifications } from '../src/notification-feed.ts';
import type { ReceivedMessage } from '../src/pubsub-admin.ts';

function message(data: string, attributes: Record<string, string> = { channel: 'email' }): ReceivedMessage {
  return {
    ackId: `ack-${data.length}`,
    messageId: 'm1',
    data,
    base64Data: '',
    attributes,
    publishTime: '2026-01-01T00:00:00Z',
  };
}

const paid = {
  id: 'evt-1',
  type: 'cart.paid',
  userId: 'u1',
  email: 'ada@example.com',
  cartId: 'cart-1',
  totalAmount: 4500,
  currency: 'usd',
  items: [],
};

describe('formatNotification', () => {
  it('shows channel, address, cart, type and the amount in major units', () => {
    expect(formatNotification(message(JSON.stringify(paid)))).toBe(
      '[notify] email to ada@example.com cart cart-1 cart.paid 45.00 usd',
    );
  });

  it('shows what was charged, discount, shipping and tax included, when Stripe reported it', () => {
    const amounts = { subtotal: 4500, discount: 450, shipping: 500, tax: 366, total: 4916 };
    expect(formatNotification(message(JSON.stringify({ ...paid, amounts })))).toBe(
      '[notify] email to ada@example.com cart cart-1 cart.paid 49.16 usd',
    );
  });

  it('uses the currency’s own decimals and says when Checkout had no email', () => {
    const line = formatNotification(
      message(JSON.stringify({ ...paid, email: null, totalAmount: 500, currency: 'jpy', type: 'cart.refunded' })),
    );
    expect(line).toBe('[notify] email to (no address) cart cart-1 cart.refunded 500 jpy');
  });

  it('reads amounts with the decimals Stripe gives the currency, where ISO 4217 gives others', () => {
    const line = formatNotification(message(JSON.stringify({ ...paid, totalAmount: 250_000, currency: 'huf' })));
    expect(line).toBe('[notify] email to ada@example.com cart cart-1 cart.paid 2500.00 huf');
  });

  it('shows what arrived when it is not JSON', () => {
    expect(formatNotification(message('not json'))).toBe('[notify] unreadable email message m1: not json');
  });
});

describe('watchNotifications', () => {
  it('prints and acknowledges each notification, and says once when the subscription cannot be read', async () => {
    const batches: Array<ReceivedMessage[] | Error> = [
      [message(JSON.stringify(paid))],
      new Error('connection refused'),
      new Error('connection refused'),
    ];
    const acked: string[][] = [];
    const lines: string[] = [];
    const feed = watchNotifications({
      admin: {
        pull: async () => {
          const next = batches.shift() ?? [];
          if (next instanceof Error) throw next;
          return next;
        },
        ack: async (_subscription, ackIds) => {
          acked.push(ackIds);
        },
      },
      subscription: 'notifications-pull',
      print: (line) => lines.push(line),
      intervalMs: 1,
    });
    await expect.poll(() => batches.length).toBe(0);
    await feed.stop();
    expect(lines).toEqual([
      '[notify] email to ada@example.com cart cart-1 cart.paid 45.00 usd',
      '[notify] cannot read notifications-pull: connection refused',
    ]);
    expect(acked[0]).toEqual([`ack-${JSON.stringify(paid).length}`]);
  });

  it('pulls again at once only after a full pull; after a partial one it waits for more to gather', async () => {
    const full = Array.from({ length: 100 }, () => message(JSON.stringify(paid)));
    const batches = [full, [message(JSON.stringify(paid))], [message(JSON.stringify(paid))]];
    let pulls = 0;
    const acked: string[][] = [];
    const feed = watchNotifications({
      admin: {
        pull: async (_subscription, maxMessages) => {
          expect(maxMessages).toBe(100);
          pulls++;
          return batches.shift() ?? [];
        },
        ack: async (_subscription, ackIds) => {
          acked.push(ackIds);
        },
      },
      subscription: 'notifications-pull',
      print: () => {},
      // Longer than the test: a pull that waits for it does not come.
      intervalMs: 600_000,
    });
    await expect.poll(() => acked.length).toBe(2);
    // The next pull would follow the second ack within a turn of the event loop if it did not wait.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await feed.stop();
    expect(pulls).toBe(2);
    expect(acked.map((ids) => ids.length)).toEqual([100, 1]);
  });
});
