// CONTRACT §5 on the emulator: each payment event of a cart is on the topic exactly once, in the
// cart's order (pulled through a subscription with message ordering), matching its outbox row,
// and nothing more comes, even after the scheduled job runs again.

import { outboxRows, publishedOutboxRows } from '@edge-checkout/test-support/outbox';
import { aboutCarts, type TopicReader } from '@edge-checkout/test-support/topics';
import { expect } from 'vitest';
import { tally } from './report.ts';

/** Cart id → the event types it must have published, in order ([] for none). */
export type ExpectedEvents = ReadonlyMap<string, readonly string[]>;

export async function expectPublishedExactlyOnce(opts: {
  reader: TopicReader;
  databaseUrl: string;
  expected: ExpectedEvents;
  runScheduledJob: () => Promise<void>;
  /** How long to keep pulling to see that nothing more arrives. */
  quietMs: number;
}): Promise<string> {
  const { reader, expected } = opts;
  for (const [cartId, types] of expected) {
    // The Worker publishes after its answer (waitUntil): the rows may still be on their way.
    const rows =
      types.length === 0
        ? await outboxRows(opts.databaseUrl, cartId)
        : await publishedOutboxRows(opts.databaseUrl, cartId, types.length);
    expect(
      rows.map((r) => [r.event_type, r.published_at !== null]),
      `outbox of cart ${cartId}`,
    ).toEqual(types.map((t) => [t, true]));
    const messages = await reader.atLeast(types.length, aboutCarts(cartId));
    expect(
      messages.map((m) => ({
        type: m.attributes.eventType,
        eventId: m.attributes.eventId,
        messageId: m.messageId,
        orderingKey: m.orderingKey,
      })),
      `messages about cart ${cartId}`,
    ).toEqual(rows.map((r) => ({ type: r.event_type, eventId: r.id, messageId: r.message_id, orderingKey: cartId })));
  }
  // Nothing more: the scheduled job finds nothing left to publish, and no repeat arrives.
  await opts.runScheduledJob();
  const more = await reader.arrivingWithin(aboutCarts(...expected.keys()), opts.quietMs);
  expect(
    more.map((m) => `${m.attributes.eventType} ${m.attributes.cartId} ${m.messageId}`),
    'messages after the last expected one',
  ).toEqual([]);

  const types = [...expected.values()].flat();
  if (types.length === 0) return 'nothing';
  const ordered = [...expected.values()].some((t) => t.length > 1) ? ', in order' : '';
  return `${tally(types)}; each once${ordered}`;
}
