// The operators' view of the outbox (the admin routes): rows waiting, refused for good or
// discarded, and the two ways out of a refusal: requeue and discard; and publishing again what
// Pub/Sub took but lost.
import type { Sql } from './db.ts';
import { ApiError } from './errors.ts';
import { CLAIM_SECONDS, notHeld, pending, unpublished } from './outbox.ts';
import type { OutboxEntryOut } from './schemas.ts';

export const OUTBOX_STATES = ['pending', 'failed', 'discarded'] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];

const entryColumns = `id, cart_id AS "cartId", event_type AS "eventType", stripe_event_id AS "stripeEventId",
  created_at AS "createdAt", attempts, next_attempt_at AS "nextAttemptAt", last_error AS "lastError",
  published_at AS "publishedAt", failed_at AS "failedAt", discarded_at AS "discardedAt"`;

const stateCondition: Record<OutboxState, string> = {
  pending: pending('outbox'),
  failed: `${unpublished('outbox')} AND outbox.failed_at IS NOT NULL`,
  discarded: 'outbox.discarded_at IS NOT NULL',
};

function toEntry(row: Record<string, unknown>): OutboxEntryOut {
  const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : null);
  return {
    ...(row as unknown as OutboxEntryOut),
    createdAt: iso(row.createdAt)!,
    nextAttemptAt: iso(row.nextAttemptAt)!,
    publishedAt: iso(row.publishedAt),
    failedAt: iso(row.failedAt),
    discardedAt: iso(row.discardedAt),
  };
}

/** For operators: rows waiting, refused for good, or discarded; oldest first. */
export async function listOutbox(sql: Sql, state: OutboxState, limit: number): Promise<OutboxEntryOut[]> {
  return (
    await sql.query(`SELECT ${entryColumns} FROM outbox WHERE ${stateCondition[state]} ORDER BY seq LIMIT $1`, [limit])
  ).map(toEntry);
}

// The operator paths: a row no publisher holds right now (freed or given up while held, it would
// go out twice or be recorded both ways).
const UNPUBLISHED = unpublished('outbox');
const NOT_HELD = notHeld('outbox');

/**
 * Puts failed (or waiting) rows back in line for the next relay, once the cause is fixed: one
 * row, or with `id` null every failed row. They keep their place in their carts' order. A row
 * being published right now (leased) is left as it is, and answered as it is: freed, it would
 * go out twice, once from its holder and once from the next relay.
 */
export async function requeueOutbox(sql: Sql, id: string | null): Promise<OutboxEntryOut[]> {
  const rows = await sql.query(
    `WITH requeued AS (
       UPDATE outbox SET failed_at = NULL, next_attempt_at = now(), claimed_until = NULL
       WHERE ${UNPUBLISHED} AND ${NOT_HELD} AND (id = $1 OR ($1::uuid IS NULL AND failed_at IS NOT NULL))
       RETURNING ${entryColumns}
     )
     SELECT * FROM requeued
     UNION ALL
     SELECT ${entryColumns} FROM outbox
     WHERE id = $1 AND ${UNPUBLISHED} AND NOT EXISTS (SELECT FROM requeued)`,
    [id],
  );
  return rows.map(toEntry).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/**
 * Puts rows Pub/Sub took back in line, for when what it took was lost after: a topic deleted and
 * made again, whose new self dropped what came before its subscriptions; a subscription that
 * expired; a consumer that lost messages. They go out again with their eventIds (consumers drop
 * what they already had) with the cron's relay. With each cart's rows in the range go its later
 * published ones, so that none of its events overtakes an earlier one. Discarded rows stay so.
 * Counted in Postgres: the ids of a long range would pass Neon's 10 MiB answer limit.
 */
export async function republishOutbox(
  sql: Sql,
  range: { publishedSince: string; publishedBefore?: string | undefined; cartId?: string | undefined },
): Promise<number> {
  const [row] = await sql.query(
    `WITH first AS (
       SELECT cart_id, min(seq) AS seq FROM outbox
       WHERE published_at >= $1 AND ($2::timestamptz IS NULL OR published_at < $2)
         AND ($3::uuid IS NULL OR cart_id = $3) AND discarded_at IS NULL
       GROUP BY cart_id
     ), requeued AS (
       UPDATE outbox o SET published_at = NULL, message_id = NULL, attempts = 0, last_error = NULL,
         failed_at = NULL, next_attempt_at = now(), claimed_until = NULL
       FROM first f
       WHERE o.cart_id = f.cart_id AND o.seq >= f.seq AND o.published_at IS NOT NULL AND o.discarded_at IS NULL
       RETURNING 1
     )
     SELECT count(*)::int AS n FROM requeued`,
    [range.publishedSince, range.publishedBefore ?? null, range.cartId ?? null],
  );
  return row!.n as number;
}

/**
 * Gives up on an unpublished row for good: its cart's later rows no longer wait behind it. A row
 * being published is not: it may be on Pub/Sub already, and would be recorded both ways.
 */
export async function discardOutboxEntry(sql: Sql, id: string): Promise<OutboxEntryOut | null> {
  const [row] = await sql.query(
    `WITH discarded AS (
       UPDATE outbox SET discarded_at = now()
       WHERE id = $1 AND ${UNPUBLISHED} AND ${NOT_HELD}
       RETURNING ${entryColumns}, false AS busy
     )
     SELECT * FROM discarded
     UNION ALL
     SELECT ${entryColumns}, true FROM outbox
     WHERE id = $1 AND ${UNPUBLISHED} AND NOT EXISTS (SELECT FROM discarded)`,
    [id],
  );
  if (!row) return null;
  const { busy, ...entry } = row;
  if (busy) {
    throw new ApiError(
      'event_being_published',
      'The event is being published right now; if that fails, discard it then',
      {
        retryAfter: CLAIM_SECONDS,
      },
    );
  }
  return toEntry(entry);
}
