// The outbox as the database holds it: the only thing the tests read outside HTTP, to see that
// each transition wrote its event and whether it went out.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

export interface OutboxRow {
  id: string;
  event_type: string;
  created_at: Date;
  published_at: Date | null;
  message_id: string | null;
}

export async function outboxRows(databaseUrl: string, cartId: string): Promise<OutboxRow[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<OutboxRow>(
      'SELECT id, event_type, created_at, published_at, message_id FROM outbox WHERE cart_id = $1 ORDER BY seq',
      [cartId],
    );
    return rows;
  } finally {
    await client.end();
  }
}

/** The Worker publishes after answering (waitUntil): wait for the rows to be marked published. */
export async function publishedOutboxRows(
  databaseUrl: string,
  cartId: string,
  count: number,
  timeoutMs = 10_000,
): Promise<OutboxRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await outboxRows(databaseUrl, cartId);
    if (rows.length >= count && rows.every((row) => row.published_at !== null)) return rows;
    if (Date.now() > deadline)
      throw new Error(`expected ${count} published outbox row(s) for cart ${cartId}, found ${JSON.stringify(rows)}`);
    await sleep(50);
  }
}
