import { createPubSubPublisher, PubSubPublishError, type PubSubPublisher } from '../../bridge/src/pubsub.ts';
import { database, type Sql } from './db.ts';
import { config, type Env } from './env.ts';

/**
 * The outbox relay: payment events are written in the transaction of their transition and
 * published from here, right after the commit (in waitUntil, so the answer to Stripe never
 * waits) and by the scheduled handler for whatever is still pending. Delivery is at least once.
 */

const CLAIM_SECONDS = 60;
const BACKOFF_BASE_SECONDS = 30;
const BACKOFF_MAX_SECONDS = 3600;

interface OutboxRow {
  id: string;
  cart_id: string;
  event_type: string;
  stripe_event_id: string;
  payload: unknown;
}

export interface RelayReport {
  claimed: number;
  published: number;
  retrying: number;
  failed: number;
}

// Publishers are cached per isolate so a service-account JWT is signed once an hour, not per
// request; they hold no connection.
const publishers = new Map<string, PubSubPublisher>();

/** The payment-events publisher, or null when Pub/Sub is not configured (events then wait). */
export function paymentEventsPublisher(env: Env): PubSubPublisher | null {
  const cfg = config(env);
  const projectId = cfg.optional('GCP_PROJECT_ID');
  const topic = cfg.optional('PUBSUB_TOPIC');
  const emulatorHost = cfg.optional('PUBSUB_EMULATOR_HOST');
  const serviceAccountKey = cfg.optional('GCP_SERVICE_ACCOUNT_KEY');
  if (!projectId || !topic || !(emulatorHost || serviceAccountKey)) return null;
  const cacheKey = JSON.stringify([projectId, topic, emulatorHost, serviceAccountKey]);
  let publisher = publishers.get(cacheKey);
  if (!publisher) {
    publisher = createPubSubPublisher({ projectId, topic, emulatorHost, serviceAccountKey: emulatorHost ? undefined : serviceAccountKey });
    publishers.set(cacheKey, publisher);
  }
  return publisher;
}

/** Publishes just-written outbox rows after the response, without delaying it. */
export function publishSoon(env: Env, ctx: { waitUntil(promise: Promise<unknown>): void }, ids: string[]): void {
  if (ids.length === 0 || !paymentEventsPublisher(env)) return;
  ctx.waitUntil(
    relayOutbox(env, database(env), { ids }).catch((err: unknown) => {
      // The rows stay pending; the scheduled relay picks them up.
      console.error(JSON.stringify({ level: 'error', msg: 'outbox_publish_failed', error: String(err) }));
    }),
  );
}

/**
 * Publishes due rows, oldest first, batch after batch until none is left (at most `rounds`) or
 * Pub/Sub fails. With `ids`, only those rows' carts: going on after the first batch matters
 * there, because a cart's later event that arrived while this relay held an earlier one was left
 * for whoever publishes the earlier one, and that is us.
 */
export async function relayOutbox(
  env: Env,
  sql: Sql,
  opts: { ids?: string[]; limit?: number; rounds?: number } = {},
): Promise<RelayReport> {
  const publisher = paymentEventsPublisher(env);
  const report: RelayReport = { claimed: 0, published: 0, retrying: 0, failed: 0 };
  if (!publisher) return report;
  for (let round = 0; round < (opts.rounds ?? 10); round++) {
    const batch = await relayBatch(publisher, sql, opts.ids ?? null, opts.limit ?? 100);
    for (const key of Object.keys(batch) as (keyof RelayReport)[]) report[key] += batch[key];
    if (batch.claimed === 0 || batch.retrying + batch.failed > 0) break;
  }
  return report;
}

/**
 * Claims due rows, publishes them in order and records the result. Claiming uses SKIP LOCKED
 * and a lease, so two relays never publish the same row at once; a row whose earlier sibling
 * for the same cart cannot go in the same batch is left for later, to keep each cart's events in
 * order under its ordering key.
 */
async function relayBatch(publisher: PubSubPublisher, sql: Sql, ids: string[] | null, limit: number): Promise<RelayReport> {
  const report: RelayReport = { claimed: 0, published: 0, retrying: 0, failed: 0 };
  const rows = (await sql.query(
    `WITH candidates AS (
       SELECT p.id, p.cart_id, p.seq FROM outbox p
       WHERE p.published_at IS NULL AND p.failed_at IS NULL AND p.next_attempt_at <= now()
         AND (p.claimed_until IS NULL OR p.claimed_until < now())
         AND ($1::uuid[] IS NULL OR p.cart_id IN (SELECT cart_id FROM outbox WHERE id = ANY($1::uuid[])))
       ORDER BY p.seq
       LIMIT $2
       FOR UPDATE SKIP LOCKED
     )
     UPDATE outbox o SET claimed_until = now() + make_interval(secs => $3), attempts = o.attempts + 1
     FROM candidates c
     WHERE o.id = c.id
       -- Every earlier unpublished event of the cart must go out in this same batch: one that is
       -- backing off, claimed or locked by another relay holds the later ones back.
       AND NOT EXISTS (
         SELECT 1 FROM outbox e
         WHERE e.cart_id = c.cart_id AND e.seq < c.seq AND e.published_at IS NULL AND e.failed_at IS NULL
           AND e.id NOT IN (SELECT id FROM candidates))
     RETURNING o.id, o.seq, o.cart_id, o.event_type, o.stripe_event_id, o.payload`,
    [ids, limit, CLAIM_SECONDS],
  )) as (OutboxRow & { seq: string })[];
  if (rows.length === 0) return report;
  rows.sort((a, b) => Number(a.seq) - Number(b.seq));
  report.claimed = rows.length;

  const messages = rows.map((row) => ({
    data: JSON.stringify(row.payload),
    orderingKey: row.cart_id,
    attributes: { eventType: row.event_type, eventId: row.id, cartId: row.cart_id, stripeEventId: row.stripe_event_id },
  }));
  let messageIds: string[];
  let failure: PubSubPublishError | null = null;
  try {
    messageIds = await publisher.publish(messages);
  } catch (err) {
    failure = err instanceof PubSubPublishError ? err : new PubSubPublishError(String(err), { retryable: true, cause: err });
    messageIds = failure.publishedMessageIds;
  }

  const published = rows.slice(0, messageIds.length);
  const rest = rows.slice(messageIds.length);
  const permanent = failure ? !failure.retryable : false;
  await sql.query(
    `WITH done AS (
       UPDATE outbox SET published_at = now(), message_id = m.message_id, claimed_until = NULL, last_error = NULL
       FROM unnest($1::uuid[], $2::text[]) AS m(id, message_id) WHERE outbox.id = m.id
       RETURNING 1
     )
     UPDATE outbox SET claimed_until = NULL, last_error = $4,
       failed_at = CASE WHEN $5 THEN now() END,
       next_attempt_at = now() + make_interval(secs => LEAST($6 * power(2, attempts - 1), $7))
     WHERE id = ANY($3::uuid[])`,
    [published.map((r) => r.id), messageIds, rest.map((r) => r.id), failure?.message ?? null, permanent, BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS],
  );
  report.published = published.length;
  if (permanent) report.failed = rest.length;
  else report.retrying = rest.length;
  if (failure) {
    console.error(JSON.stringify({ level: 'error', msg: 'pubsub_publish_failed', retryable: failure.retryable, status: failure.status, rows: rest.length, error: failure.message }));
  }
  return report;
}

export interface OutboxEntry {
  id: string;
  cartId: string;
  eventType: string;
  stripeEventId: string;
  createdAt: string;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  publishedAt: string | null;
  failedAt: string | null;
}

const entryColumns = `id, cart_id AS "cartId", event_type AS "eventType", stripe_event_id AS "stripeEventId",
  created_at AS "createdAt", attempts, next_attempt_at AS "nextAttemptAt", last_error AS "lastError",
  published_at AS "publishedAt", failed_at AS "failedAt"`;

function toEntry(row: Record<string, unknown>): OutboxEntry {
  const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : null);
  return {
    ...(row as unknown as OutboxEntry),
    createdAt: iso(row.createdAt)!,
    nextAttemptAt: iso(row.nextAttemptAt)!,
    publishedAt: iso(row.publishedAt),
    failedAt: iso(row.failedAt),
  };
}

/** For operators: rows still waiting (oldest first) or refused for good (newest first). */
export async function listOutbox(sql: Sql, state: 'pending' | 'failed', limit: number): Promise<OutboxEntry[]> {
  const rows =
    state === 'failed'
      ? await sql.query(`SELECT ${entryColumns} FROM outbox WHERE failed_at IS NOT NULL ORDER BY failed_at DESC LIMIT $1`, [limit])
      : await sql.query(`SELECT ${entryColumns} FROM outbox WHERE published_at IS NULL AND failed_at IS NULL ORDER BY seq LIMIT $1`, [limit]);
  return rows.map(toEntry);
}

/** Puts a failed (or waiting) row back in line for the next relay, after the cause was fixed. */
export async function retryOutboxEntry(sql: Sql, id: string): Promise<OutboxEntry | null> {
  const [row] = await sql.query(
    `UPDATE outbox SET failed_at = NULL, next_attempt_at = now(), claimed_until = NULL
     WHERE id = $1 AND published_at IS NULL RETURNING ${entryColumns}`,
    [id],
  );
  return row ? toEntry(row) : null;
}
