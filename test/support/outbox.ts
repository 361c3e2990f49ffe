// The outbox as the database holds it: the only thing the tests read outside HTTP, to see that
// each transition wrote its event and whether it went out.
import { expect, vi } from 'vitest';
import { queryOnce } from './query-once.ts';

export interface OutboxRow {
  id: string;
  event_type: string;
  created_at: Date;
  published_at: Date | null;
  message_id: string | null;
}

export function outboxRows(databaseUrl: string, cartId: string): Promise<OutboxRow[]> {
  return queryOnce<OutboxRow>(
    databaseUrl,
    'SELECT id, event_type, created_at, published_at, message_id FROM outbox WHERE cart_id = $1 ORDER BY seq',
    [cartId],
  );
}

/** The Worker publishes after answering (waitUntil): waits for the rows to be marked published. */
export function publishedOutboxRows(
  databaseUrl: string,
  cartId: string,
  count: number,
  timeoutMs = 10_000,
): Promise<OutboxRow[]> {
  return vi.waitFor(
    async () => {
      const rows = await outboxRows(databaseUrl, cartId);
      expect(rows.length, `outbox rows of cart ${cartId}`).toBeGreaterThanOrEqual(count);
      expect(
        rows.filter((row) => row.published_at === null),
        `unpublished outbox rows of cart ${cartId}`,
      ).toEqual([]);
      return rows;
    },
    { timeout: timeoutMs, interval: 50 },
  );
}
