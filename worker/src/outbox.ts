import { paymentEventAttributes, type PaymentEvent } from '../../bridge/src/payment-event.ts';
import { createPubSubPublisher, PubSubPublishError, type PubSubMessage, type PubSubPublisher } from '../../bridge/src/pubsub.ts';
import { database, type Sql } from './db.ts';
import { config, type Env } from './env.ts';

/**
 * The outbox relay: payment events are written in the transaction of their transition and
 * published from here, right after the commit (in waitUntil, so the answer to Stripe never
 * waits) and by the scheduled handler for whatever is still pending. Delivery is at least once.
 */

const CLAIM_SECONDS = 60;
const BACKOFF_BASE_SECONDS = 30;
// Access and configuration errors are retried without end: the wait stays short enough that
// events go out soon after the cause (a key, an IAM binding) is fixed.
const BACKOFF_MAX_SECONDS = 600;

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

// What a published event is built from: the outbox row's own facts (what happened, when) and
// the checkout it belongs to (what was bought, by whom), which does not change once paid.
const EVENT_FACTS = `o.id, o.seq, o.cart_id, o.event_type, o.stripe_event_id, o.cart_status, o.occurred_at, o.session_id,
  ca.user_id, k.currency, k.amount_total, k.items, k.customer, k.payment_intent_id, k.amount_mismatch`;

interface EventFacts {
  id: string;
  seq: string;
  cart_id: string;
  event_type: PaymentEvent['type'];
  stripe_event_id: string;
  cart_status: string;
  occurred_at: Date;
  session_id: string;
  user_id: string;
  currency: string;
  amount_total: string;
  items: PaymentEvent['cart']['items'];
  customer: PaymentEvent['customer'];
  payment_intent_id: string | null;
  amount_mismatch: boolean;
}

/** The payment events of the outbox rows that match `condition` (on `outbox o`), in order. */
export async function readOutboxEvents(sql: Sql, condition: string, params: unknown[]): Promise<PaymentEvent[]> {
  const rows = await sql.query(
    `SELECT ${EVENT_FACTS} FROM outbox o JOIN carts ca ON ca.id = o.cart_id JOIN checkouts k ON k.session_id = o.session_id
     WHERE ${condition} ORDER BY o.seq`,
    params,
  );
  return (rows as EventFacts[]).map(paymentEventOf);
}

/** The payment event of one outbox row, as the contract publishes it. */
export function paymentEventOf(row: EventFacts): PaymentEvent {
  return {
    id: row.id,
    type: row.event_type,
    occurredAt: row.occurred_at.toISOString(),
    cart: {
      id: row.cart_id,
      userId: row.user_id,
      status: row.cart_status,
      currency: row.currency,
      totalAmount: Number(row.amount_total),
      items: row.items,
    },
    customer: row.customer,
    stripe: { eventId: row.stripe_event_id, sessionId: row.session_id, paymentIntentId: row.payment_intent_id },
    amountMismatch: row.amount_mismatch,
  };
}

function messageOf(row: EventFacts): PubSubMessage {
  const event = paymentEventOf(row);
  return { data: JSON.stringify(event), orderingKey: row.cart_id, attributes: paymentEventAttributes(event) };
}

/** What became of one claimed row. */
type RowResult =
  | { id: string; published: string }
  | { id: string; error: PubSubPublishError; rejected: boolean }
  // Not tried: an earlier row of its cart failed in this batch, and it must not overtake it.
  | { id: string; held: true };

/**
 * Claims due rows, publishes them in order and records the result. Claiming uses SKIP LOCKED
 * and a lease, so two relays never publish the same row at once. A cart's row goes only after
 * every earlier row of that cart is published or discarded: one that is backing off, claimed
 * elsewhere or refused for good holds the later ones back, as an ordering key does in Google's
 * own client until `resumePublishing` (https://cloud.google.com/pubsub/docs/ordering).
 */
async function relayBatch(publisher: PubSubPublisher, sql: Sql, ids: string[] | null, limit: number): Promise<RelayReport> {
  const rows = (await sql.query(
    `WITH candidates AS (
       SELECT p.id, p.cart_id, p.seq, p.session_id FROM outbox p
       WHERE p.published_at IS NULL AND p.failed_at IS NULL AND p.discarded_at IS NULL AND p.next_attempt_at <= now()
         AND (p.claimed_until IS NULL OR p.claimed_until < now())
         AND ($1::uuid[] IS NULL OR p.cart_id IN (SELECT cart_id FROM outbox WHERE id = ANY($1::uuid[])))
       ORDER BY p.seq
       LIMIT $2
       FOR UPDATE SKIP LOCKED
     )
     UPDATE outbox o SET claimed_until = now() + make_interval(secs => $3), attempts = o.attempts + 1
     FROM candidates c JOIN carts ca ON ca.id = c.cart_id JOIN checkouts k ON k.session_id = c.session_id
     WHERE o.id = c.id
       AND NOT EXISTS (
         SELECT 1 FROM outbox e
         WHERE e.cart_id = c.cart_id AND e.seq < c.seq AND e.published_at IS NULL AND e.discarded_at IS NULL
           AND e.id NOT IN (SELECT id FROM candidates))
     RETURNING ${EVENT_FACTS}`,
    [ids, limit, CLAIM_SECONDS],
  )) as EventFacts[];
  const report: RelayReport = { claimed: rows.length, published: 0, retrying: 0, failed: 0 };
  if (rows.length === 0) return report;
  rows.sort((a, b) => Number(a.seq) - Number(b.seq));

  const results = await publishInOrder(publisher, rows);
  const published = results.filter((r) => 'published' in r);
  const failures = results.filter((r) => 'error' in r);
  await sql.query(
    `WITH done AS (
       UPDATE outbox SET published_at = now(), message_id = m.message_id, claimed_until = NULL, last_error = NULL
       FROM unnest($1::uuid[], $2::text[]) AS m(id, message_id) WHERE outbox.id = m.id
       RETURNING 1
     ), released AS (
       UPDATE outbox SET claimed_until = NULL WHERE id = ANY($3::uuid[])
       RETURNING 1
     )
     UPDATE outbox SET claimed_until = NULL, last_error = f.error,
       failed_at = CASE WHEN f.rejected THEN now() END,
       next_attempt_at = now() + make_interval(secs => LEAST($7 * power(2, attempts - 1), $8))
     FROM unnest($4::uuid[], $5::text[], $6::boolean[]) AS f(id, error, rejected)
     WHERE outbox.id = f.id`,
    [
      published.map((r) => r.id),
      published.map((r) => r.published),
      results.filter((r) => 'held' in r).map((r) => r.id),
      failures.map((r) => r.id),
      failures.map((r) => r.error.message),
      failures.map((r) => r.rejected),
      BACKOFF_BASE_SECONDS,
      BACKOFF_MAX_SECONDS,
    ],
  );
  report.published = published.length;
  report.failed = failures.filter((r) => r.rejected).length;
  report.retrying = failures.length - report.failed;
  for (const { error, rejected } of failures.slice(0, 1)) {
    console.error(JSON.stringify({ level: 'error', msg: 'pubsub_publish_failed', rejected, status: error.status, rows: failures.length, error: error.message }));
  }
  return report;
}

/**
 * Publishes the rows in as few requests as possible. Pub/Sub takes or refuses a request whole,
 * so when it refuses one for a message in it (400), the rest are sent one by one to find that
 * message: only its row fails, and only its cart's later rows wait behind it. Any other error
 * (access, configuration, Pub/Sub failing or unreachable) leaves every unpublished row to retry.
 */
async function publishInOrder(publisher: PubSubPublisher, rows: EventFacts[]): Promise<RowResult[]> {
  const first = await publishAll(publisher, rows);
  const results: RowResult[] = first.messageIds.map((messageId, i) => ({ id: rows[i]!.id, published: messageId }));
  const { error } = first;
  if (!error) return results;
  const rest = rows.slice(first.messageIds.length);
  if (!error.messageRejected || rest.length === 1) {
    for (const row of rest) results.push({ id: row.id, error, rejected: error.messageRejected });
    return results;
  }
  const stopped = new Set<string>();
  for (const [i, row] of rest.entries()) {
    if (stopped.has(row.cart_id)) {
      results.push({ id: row.id, held: true });
      continue;
    }
    const single = await publishAll(publisher, [row]);
    if (!single.error) {
      results.push({ id: row.id, published: single.messageIds[0]! });
    } else if (single.error.messageRejected) {
      results.push({ id: row.id, error: single.error, rejected: true });
      stopped.add(row.cart_id);
    } else {
      for (const later of rest.slice(i)) results.push({ id: later.id, error: single.error, rejected: false });
      break;
    }
  }
  return results;
}

async function publishAll(publisher: PubSubPublisher, rows: EventFacts[]): Promise<{ messageIds: string[]; error: PubSubPublishError | null }> {
  try {
    return { messageIds: await publisher.publish(rows.map(messageOf)), error: null };
  } catch (err) {
    const error = err instanceof PubSubPublishError ? err : new PubSubPublishError(String(err), { retryable: true, cause: err });
    return { messageIds: error.publishedMessageIds, error };
  }
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
  discardedAt: string | null;
}

export const OUTBOX_STATES = ['pending', 'failed', 'discarded'] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];

const entryColumns = `id, cart_id AS "cartId", event_type AS "eventType", stripe_event_id AS "stripeEventId",
  created_at AS "createdAt", attempts, next_attempt_at AS "nextAttemptAt", last_error AS "lastError",
  published_at AS "publishedAt", failed_at AS "failedAt", discarded_at AS "discardedAt"`;

const stateCondition: Record<OutboxState, string> = {
  pending: 'published_at IS NULL AND failed_at IS NULL AND discarded_at IS NULL',
  failed: 'published_at IS NULL AND failed_at IS NOT NULL AND discarded_at IS NULL',
  discarded: 'discarded_at IS NOT NULL',
};

function toEntry(row: Record<string, unknown>): OutboxEntry {
  const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : null);
  return {
    ...(row as unknown as OutboxEntry),
    createdAt: iso(row.createdAt)!,
    nextAttemptAt: iso(row.nextAttemptAt)!,
    publishedAt: iso(row.publishedAt),
    failedAt: iso(row.failedAt),
    discardedAt: iso(row.discardedAt),
  };
}

/** For operators: rows waiting, refused for good, or discarded; oldest first. */
export async function listOutbox(sql: Sql, state: OutboxState, limit: number): Promise<OutboxEntry[]> {
  return (await sql.query(`SELECT ${entryColumns} FROM outbox WHERE ${stateCondition[state]} ORDER BY seq LIMIT $1`, [limit])).map(toEntry);
}

/**
 * Puts failed (or waiting) rows back in line for the next relay, once the cause is fixed: one
 * row, or with `id` null every failed row. They keep their place in their carts' order.
 */
export async function requeueOutbox(sql: Sql, id: string | null): Promise<OutboxEntry[]> {
  const rows = await sql.query(
    `UPDATE outbox SET failed_at = NULL, next_attempt_at = now(), claimed_until = NULL
     WHERE published_at IS NULL AND discarded_at IS NULL AND (id = $1 OR ($1::uuid IS NULL AND failed_at IS NOT NULL))
     RETURNING ${entryColumns}`,
    [id],
  );
  return rows.map(toEntry).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** Gives up on an unpublished row for good: its cart's later rows no longer wait behind it. */
export async function discardOutboxEntry(sql: Sql, id: string): Promise<OutboxEntry | null> {
  const [row] = await sql.query(
    `UPDATE outbox SET discarded_at = now(), claimed_until = NULL
     WHERE id = $1 AND published_at IS NULL AND discarded_at IS NULL RETURNING ${entryColumns}`,
    [id],
  );
  return row ? toEntry(row) : null;
}
