import {
  createPubSubPublisher,
  PUBLISH_BATCH,
  PubSubConfigError,
  type PubSubMessage,
  PubSubPublishError,
  type PubSubPublisher,
} from '@edge-checkout/pubsub';
import { type PaymentEvent, paymentEventAttributes } from '@edge-checkout/pubsub/payment-event';
import type { PublishedEventType } from './cart-state.ts';
import { cappedBackoff, type Sql } from './db.ts';
import { config, type Env } from './env.ts';
import { ApiError } from './errors.ts';
import { log } from './log.ts';
import { storableForm } from './storable-text.ts';

/**
 * The outbox relay: payment events are written in the transaction of their transition and
 * published from here, right after the commit (in waitUntil, so the answer to Stripe never
 * waits) and by the scheduled handler for whatever is still pending. Delivery is at least once.
 */

/** How long a relay (or the request that wrote a row) holds a row it is publishing. */
export const CLAIM_SECONDS = 60;
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
// request; they hold no connection. Each has the queue that batches what concurrent requests of
// the isolate publish.
const publishers = new Map<string, { publisher: PubSubPublisher; queue: PublishQueue }>();
const publisherOfEnv = new WeakMap<Env, { publisher: PubSubPublisher; queue: PublishQueue } | null>();

function publisherFor(env: Env): { publisher: PubSubPublisher; queue: PublishQueue } | null {
  let found = publisherOfEnv.get(env);
  if (found !== undefined) return found;
  try {
    found = configuredPublisher(env);
  } catch (err) {
    // Publishing never fails the answer to Stripe (the contract, §4): with Pub/Sub settings that
    // are wrong, events wait in the outbox, as without any, until the settings are mended.
    if (!(err instanceof ApiError && err.code === 'misconfigured') && !(err instanceof PubSubConfigError)) throw err;
    log.error('pubsub_misconfigured', { error: err.message });
    found = null;
  }
  publisherOfEnv.set(env, found);
  return found;
}

function configuredPublisher(env: Env): { publisher: PubSubPublisher; queue: PublishQueue } | null {
  const cfg = config(env);
  const projectId = cfg.optional('GCP_PROJECT_ID');
  const topic = cfg.optional('PUBSUB_TOPIC');
  const emulatorHost = cfg.optional('PUBSUB_EMULATOR_HOST');
  const serviceAccountKey = cfg.optional('GCP_SERVICE_ACCOUNT_KEY');
  if (!projectId || !topic || !(emulatorHost || serviceAccountKey)) {
    const unset = Object.entries({
      GCP_PROJECT_ID: projectId,
      PUBSUB_TOPIC: topic,
      'PUBSUB_EMULATOR_HOST or GCP_SERVICE_ACCOUNT_KEY': emulatorHost || serviceAccountKey,
    }).flatMap(([name, value]) => (value ? [] : [name]));
    // None set: publishing is off. Some: it was meant to be on, so it is said why it is not.
    if (unset.length < 3) throw new PubSubConfigError(`Pub/Sub is configured in part: ${unset.join(', ')} not set`);
    return null;
  }
  const apiEndpoint = emulatorHost ? undefined : cfg.optional('PUBSUB_API_ENDPOINT');
  const cacheKey = JSON.stringify([projectId, topic, emulatorHost, serviceAccountKey, apiEndpoint]);
  let found = publishers.get(cacheKey);
  if (!found) {
    const publisher = createPubSubPublisher({
      projectId,
      topic,
      emulatorHost,
      apiEndpoint,
      serviceAccountKey: emulatorHost ? undefined : serviceAccountKey,
    });
    found = { publisher, queue: new PublishQueue(publisher) };
    publishers.set(cacheKey, found);
  }
  return found;
}

/** True when Pub/Sub is configured; otherwise events wait in the outbox. */
export function publishingConfigured(env: Env): boolean {
  return publisherFor(env) !== null;
}

/**
 * Publishes rows this request wrote already leased to itself (no claim needed) after the
 * response, without delaying it, together with what concurrent requests of the isolate publish.
 * Rows it wrote behind an earlier unpublished row of their cart (`behind`) are claimed with the
 * cart's due rows: that earlier row may be waiting only for a relay to come by.
 */
export function publishSoon(
  env: Env,
  ctx: { waitUntil(promise: Promise<unknown>): void },
  sql: Sql,
  leased: EventFacts[],
  behind: string[],
): void {
  const target = publisherFor(env);
  if (!target || leased.length + behind.length === 0) return;
  const publishing = leased.length ? target.queue.publish(sql, leased) : Promise.resolve([]);
  ctx.waitUntil(
    publishing
      .then(async (followUp) => {
        const ids = [...followUp, ...behind];
        if (ids.length) await relayOutbox(env, sql, { ids });
      })
      .catch((err: unknown) => {
        // Leased rows stay leased until the lease runs out; the scheduled relay picks them up then.
        log.error('outbox_publish_failed', { error: err });
      }),
  );
}

// One publishing request keeps the isolate's queue going for this long, half the 30 s that
// Workers give waitUntil work after the response, then hands it over and publishes what is
// queued in last rounds. Rows it holds when Workers cancel it wait for their lease and the relay.
const LEAD_MS = 15_000;
// A last round begins only this soon after the lead began, so that it ends well inside those 30 s:
// a round takes tens of milliseconds, a round of 100 carts about half a second (six calls at a
// time). What is left then waits for its lease and the relay, which the log says.
const LAST_ROUNDS_MS = LEAD_MS + 5_000;
// Workers cancel waitUntil work 30 s after the response
// (https://developers.cloudflare.com/workers/runtime-apis/context/#waituntil), finally blocks and
// all: a leader still leading this long after it began was cancelled, and will never hand over.
const LEADER_GONE_MS = LEAD_MS + 30_000;

/**
 * Batches what concurrent requests of one isolate publish. The first request with rows while
 * nobody is publishing leads: it publishes its rows, then everything other requests queued
 * meanwhile, one Pub/Sub call and one result write per round, until the queue is empty. The
 * others only queue their rows and are done: Workers let a request do I/O only for itself and
 * cancel a request that waits on another's promise, so nothing is awaited across requests;
 * the leader reads a plain array. A call carries what was queued within 10 ms of the first row
 * (up to 100 rows): at low load a row goes 10 ms after its commit, under load many rows share a
 * call. If the leader's isolate goes away, its rows stay leased in the outbox and
 * the scheduled relay publishes them once the lease is over.
 */
class PublishQueue {
  private queued: EventFacts[] = [];
  /** The lead under way, by when it began. */
  private lead: { since: number } | null = null;

  constructor(private readonly publisher: PubSubPublisher) {}

  /** Resolves, for the leader, to the rows left waiting behind the ones it published; for the others at once, to none. */
  async publish(sql: Sql, rows: EventFacts[]): Promise<string[]> {
    if (this.lead && Date.now() < this.lead.since + LEADER_GONE_MS) {
      this.queued.push(...rows);
      return [];
    }
    // Nobody leads, or a cancelled leader: what it left queued stays leased, for the scheduled relay.
    this.queued = [...rows];
    const lead = { since: Date.now() };
    this.lead = lead;
    // What this lead publishes from: the isolate's queue while it leads, then what that queue held
    // at the hand-over, which is this lead's alone.
    const queue = this.queued;
    let handedOver = false;
    const followUp: string[] = [];
    try {
      while (queue.length > 0) {
        if (!handedOver) {
          // A call goes once maxMessages rows are waiting or maxDelayMs after the first, as Google's
          // client does by default. Pub/Sub's cost is mostly per call: its emulator spends about 1 ms
          // of CPU on a call of one message and 0.15 ms a message in calls of 20.
          if (queue.length < PUBLISH_BATCH.maxMessages) {
            await new Promise((resolve) => setTimeout(resolve, PUBLISH_BATCH.maxDelayMs));
          }
          // Taken over meanwhile (presumed cancelled, see LEADER_GONE_MS): the isolate's queue is
          // the new leader's, and a cart's rows must not be split between two leaders.
          if (this.lead !== lead) break;
          // Past its time the lead hands over: a request from now on leads anew, in a waitUntil of
          // its own, with a queue of its own. Under a steady load the queue is never empty, and a
          // lead that stopped with rows queued left them to their lease and the relay, a minute or
          // more late (most likely what left a bench run's row unpublished at 79 webhooks a second).
          if (Date.now() >= lead.since + LEAD_MS) {
            handedOver = true;
            this.queued = [];
            this.lead = null;
          }
        } else if (Date.now() >= lead.since + LAST_ROUNDS_MS) {
          log.warn('outbox_rows_left_to_relay', { rows: queue.length });
          break;
        }
        const round = await publishAndRecord(this.publisher, sql, queue.splice(0, PUBLISH_BATCH.maxMessages));
        followUp.push(...round.followUp);
        // A request's rows can straddle two rounds: a cart whose row did not go out in this one
        // keeps its later rows back (left to their lease, then to the relay, which holds them
        // behind it), as an ordering key does in Google's client after a failed publish. In place:
        // the array is the isolate's queue, or was (a leader taken over meanwhile leaves the new
        // leader's alone).
        if (round.stopped.size > 0) removeCarts(queue, round.stopped);
      }
    } finally {
      // Rows still queued (a round failed, or the last rounds ran out of time) are left to their
      // lease: the scheduled relay publishes them once it runs out. Kept here, a later leader
      // would publish them again, after the relay or long after their cart's later events. A lead
      // handed over or taken over meanwhile is the new leader's to end.
      if (this.lead === lead) {
        this.queued.length = 0;
        this.lead = null;
      }
    }
    return followUp;
  }
}

/** Takes the rows of these carts out of `rows`, keeping the order of the rest. */
function removeCarts(rows: EventFacts[], carts: Set<string>): void {
  let kept = 0;
  for (const row of rows) if (!carts.has(row.cart_id)) rows[kept++] = row;
  rows.length = kept;
}

/**
 * Publishes due rows, oldest first, batch after batch until none is left (at most `rounds`) or
 * Pub/Sub fails. With `ids`, only those rows' carts: a cart's later event that arrived while an
 * earlier one was being published waits for whoever published that one, and that is us.
 */
export async function relayOutbox(
  env: Env,
  sql: Sql,
  opts: { ids?: string[]; limit?: number; rounds?: number } = {},
): Promise<RelayReport> {
  const publisher = publisherFor(env)?.publisher;
  const report: RelayReport = { claimed: 0, published: 0, retrying: 0, failed: 0 };
  if (!publisher) return report;
  let ids = opts.ids ?? null;
  for (let round = 0; round < (opts.rounds ?? 10); round++) {
    const rows = await claimDue(sql, ids, opts.limit ?? 100);
    if (rows.length === 0) break;
    const batch = await publishAndRecord(publisher, sql, rows);
    for (const key of Object.keys(report) as (keyof RelayReport)[]) report[key] += batch.report[key];
    if (batch.report.retrying + batch.report.failed > 0) break;
    // For a cart-scoped relay, only what was left behind these rows is still ours to publish.
    if (ids) {
      if (batch.followUp.length === 0) break;
      ids = batch.followUp;
    }
  }
  return report;
}

// What a published event is built from: the outbox row's own facts (what happened, when, the
// refund, the dispute and the amount and stock flags as they were then) and the checkout it
// belongs to (what was bought, by whom, for how much, shipped where), which does not change once
// completed.
// Selected from `outbox o`, `carts ca` and `checkouts k`.
export const EVENT_FACTS = `o.id, o.seq, o.cart_id, o.event_type, o.stripe_event_id, o.cart_status, o.occurred_at, o.session_id,
  o.refunded_amount, o.dispute, ca.user_id, k.currency, k.amount_total, k.items, k.customer, k.payment_intent_id,
  COALESCE(o.amount_mismatch, k.amount_mismatch) AS amount_mismatch, k.amounts, k.shipping,
  COALESCE(o.oversold, k.oversold) AS oversold`;

export interface EventFacts {
  id: string;
  seq: string;
  cart_id: string;
  event_type: PublishedEventType;
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
  refunded_amount: string;
  dispute: PaymentEvent['dispute'];
  amounts: PaymentEvent['amounts'];
  shipping: PaymentEvent['shipping'];
  oversold: boolean;
}

// Both ways, when compiling: every type the outbox writes is one the bridge's event knows (the
// assignment below checks that), and every type the bridge knows is one the outbox writes.
true satisfies PaymentEvent['type'] extends PublishedEventType ? true : never;

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
    amounts: row.amounts,
    shipping: row.shipping,
    refundedAmount: Number(row.refunded_amount),
    oversold: row.oversold,
    dispute: row.dispute,
  };
}

function messageOf(row: EventFacts): PubSubMessage {
  const event = paymentEventOf(row);
  return { data: JSON.stringify(event), orderingKey: row.cart_id, attributes: paymentEventAttributes(event) };
}

/**
 * An outbox row (by its alias) not out yet nor given up on: `outbox_unpublished`'s predicate,
 * so a cart's later rows wait behind it.
 */
export function unpublished(row: string): string {
  return `${row}.published_at IS NULL AND ${row}.discarded_at IS NULL`;
}

/** An unpublished row not refused for good either: one a relay will publish. */
export function pending(row: string): string {
  return `${unpublished(row)} AND ${row}.failed_at IS NULL`;
}

/** An outbox row (by its alias) no publisher holds: never claimed or leased, or its lease ran out. */
export function notHeld(row: string): string {
  return `(${row}.claimed_until IS NULL OR ${row}.claimed_until < now())`;
}

/**
 * Claims due rows. Claiming uses SKIP LOCKED and a lease, so two relays never publish the same
 * row at once. A cart's row goes only after every earlier row of that cart is published or
 * discarded: one that is backing off, claimed elsewhere or refused for good holds the later
 * ones back, as an ordering key does in Google's own client until `resumePublishing`
 * (https://cloud.google.com/pubsub/docs/ordering). Rows held back that way are left out before
 * the oldest are picked: they are the oldest, and a limit's worth of them behind refused rows
 * would otherwise fill every claim and stop the relay for all the other carts.
 */
async function claimDue(sql: Sql, ids: string[] | null, limit: number): Promise<EventFacts[]> {
  // Two texts, so that each has a plan of its own: scoped to a few carts, the rows are looked
  // up by cart (outbox_unpublished); as one text with `$1 IS NULL OR …`, Postgres walked every
  // due row in seq order to find the carts' (200,000 rows and 1.4 s after an outage, by EXPLAIN).
  // Unscoped, $1 (null) is still named, so that both texts take the same parameters.
  const scope = ids
    ? 'p.cart_id = ANY(ARRAY(SELECT cart_id FROM outbox WHERE id = ANY($1::uuid[])))'
    : '$1::uuid[] IS NULL';
  return (await sql.query(
    `WITH candidates AS (
       SELECT p.id, p.cart_id, p.seq, p.session_id FROM outbox p
       WHERE ${pending('p')} AND p.next_attempt_at <= now()
         AND ${notHeld('p')}
         AND ${scope}
         -- OFFSET 0 keeps this a probe of outbox_unpublished per candidate: pulled up into an anti
         -- join, with statistics from before a backlog built up (autovacuum re-analyzes after 10 %
         -- of the table changed), Postgres scanned every held row once per candidate.
         AND NOT EXISTS (
           SELECT 1 FROM outbox h
           WHERE h.cart_id = p.cart_id AND h.seq < p.seq AND ${unpublished('h')}
             AND (h.failed_at IS NOT NULL OR h.next_attempt_at > now() OR NOT ${notHeld('h')})
           OFFSET 0)
       ORDER BY p.seq
       LIMIT $2
       FOR UPDATE SKIP LOCKED
     )
     UPDATE outbox o SET claimed_until = now() + make_interval(secs => $3), attempts = o.attempts + 1
     FROM candidates c JOIN carts ca ON ca.id = c.cart_id JOIN checkouts k ON k.session_id = c.session_id
     WHERE o.id = c.id
       AND NOT EXISTS (
         SELECT 1 FROM outbox e
         WHERE e.cart_id = c.cart_id AND e.seq < c.seq AND ${unpublished('e')}
           AND e.id NOT IN (SELECT id FROM candidates))
     RETURNING ${EVENT_FACTS}`,
    [ids, limit, CLAIM_SECONDS],
  )) as EventFacts[];
}

/** What became of one claimed row. */
type RowResult =
  | { id: string; published: string }
  | { id: string; error: PubSubPublishError; rejected: boolean }
  // Not tried: an earlier row of its cart failed in this batch, and it must not overtake it.
  | { id: string; held: true };

/**
 * Publishes rows this relay holds (claimed, or leased when written) in order and records the
 * result in one write. Also answers which rows of the same carts were left waiting behind these
 * (written while these were unpublished): the caller publishes them next.
 */
async function publishAndRecord(
  publisher: PubSubPublisher,
  sql: Sql,
  rows: EventFacts[],
): Promise<{ report: RelayReport; followUp: string[]; stopped: Set<string> }> {
  rows.sort((a, b) => Number(a.seq) - Number(b.seq));
  const results = await publishInOrder(publisher, rows);
  const published = results.filter((r) => 'published' in r);
  const failures = results.filter((r) => 'error' in r);
  // The carts are locked first (one round trip all the same): a webhook of one of them that
  // commits a later row meanwhile either commits before this write's snapshot, and is in the
  // follow-up, or waits, and then finds these rows published and publishes its own.
  const [, [outcome]] = (await sql.transaction(
    [
      sql.query('SELECT 1 FROM carts WHERE id = ANY($1::uuid[]) ORDER BY id FOR SHARE', [
        [...new Set(rows.map((r) => r.cart_id))],
      ]),
      sql.query(
        `WITH done AS (
       UPDATE outbox SET published_at = now(), message_id = m.message_id, claimed_until = NULL, last_error = NULL
       FROM unnest($1::uuid[], $2::text[]) AS m(id, message_id) WHERE outbox.id = m.id
       RETURNING outbox.cart_id
     ), released AS (
       -- Only with rows to release or retry (most rounds have none) does either update look at
       -- the table: with statistics from before a backlog built up, Postgres walked every
       -- unpublished row for an empty list, rather than look the ids up.
       UPDATE outbox SET claimed_until = NULL
       WHERE cardinality($3::uuid[]) > 0 AND id = ANY($3::uuid[]) AND ${unpublished('outbox')}
       RETURNING 1
     ), retried AS (
       -- A publisher whose lease ran out (frozen, say) learns late that its call failed: a row
       -- another relay has published since stays recorded as published.
       UPDATE outbox SET claimed_until = NULL, last_error = f.error,
         failed_at = CASE WHEN f.rejected THEN now() END,
         next_attempt_at = now() + make_interval(secs => ${cappedBackoff('$7', 'attempts', '$8')})
       FROM unnest($4::uuid[], $5::text[], $6::boolean[]) AS f(id, error, rejected)
       WHERE cardinality($4::uuid[]) > 0 AND outbox.id = f.id AND ${unpublished('outbox')}
       RETURNING 1
     )
     -- A probe of each published cart's unpublished rows, then the test for pending ones: as a
     -- semi-join, or with that test inside the probe (outbox_due answers it, cart or not),
     -- Postgres could read every row waiting, of every cart. OFFSET 0 keeps the test outside.
     SELECT COALESCE(array_agg(w.id ORDER BY w.seq), '{}') AS follow_up
     FROM (SELECT DISTINCT cart_id FROM done) d
       CROSS JOIN LATERAL (SELECT * FROM outbox w WHERE w.cart_id = d.cart_id AND ${unpublished('w')} OFFSET 0) w
     WHERE ${pending('w')} AND w.id <> ALL($9::uuid[])`,
        [
          published.map((r) => r.id),
          published.map((r) => r.published),
          results.filter((r) => 'held' in r).map((r) => r.id),
          failures.map((r) => r.id),
          // Google's words, cut to length, may end in half a character, which Neon refuses.
          failures.map((r) => storableForm(r.error.message)),
          failures.map((r) => r.rejected),
          BACKOFF_BASE_SECONDS,
          BACKOFF_MAX_SECONDS,
          rows.map((r) => r.id),
        ],
      ),
    ],
    { isolationLevel: 'ReadCommitted' },
  )) as [unknown, [{ follow_up: string[] }]];
  const report: RelayReport = { claimed: rows.length, published: published.length, retrying: 0, failed: 0 };
  report.failed = failures.filter((r) => r.rejected).length;
  report.retrying = failures.length - report.failed;
  // A line per kind of failure, not per row (an outage fails every cart of a round alike), so a
  // rejection is never hidden behind another cart's outage; rejected rows by id, as each waits
  // for an operator.
  for (const rows of groupBy(failures, (failure) => `${failure.rejected} ${failure.error.status}`)) {
    const { error, rejected } = rows[0]!;
    log.error('pubsub_publish_failed', {
      rejected,
      status: error.status,
      rows: rows.length,
      error: error.message,
      ...(rejected ? { outboxIds: rows.map((r) => r.id) } : {}),
    });
  }
  const sent = new Set(published.map((r) => r.id));
  const stopped = new Set(rows.filter((row) => !sent.has(row.id)).map((row) => row.cart_id));
  return { report, followUp: outcome.follow_up, stopped };
}

/**
 * Publishes each cart's rows in a request of its own, the carts' requests side by side: a publish
 * request holds one ordering key, and ours is the cart (see splitIntoBatches). Workers let an
 * invocation wait for the headers of six responses at a time and queue further fetches until one
 * arrives (https://developers.cloudflare.com/workers/platform/limits/#simultaneous-open-connections,
 * relaxed to the header phase in https://developers.cloudflare.com/changelog/2026-04-09-relaxed-connection-limiting),
 * so a round of many carts goes six at a time; the publisher's 10 s timeout, counted from the
 * fetch call, leaves room for a round of 100 carts at Pub/Sub's usual tens of milliseconds.
 */
async function publishInOrder(publisher: PubSubPublisher, rows: EventFacts[]): Promise<RowResult[]> {
  const byCart = groupBy(rows, (row) => row.cart_id);
  return (await Promise.all(byCart.map((cartRows) => publishCartInOrder(publisher, cartRows)))).flat();
}

/** The items in groups of equal key, groups in the order of their first item, items in order. */
function groupBy<T>(items: T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group) group.push(item);
    else groups.set(key(item), [item]);
  }
  return [...groups.values()];
}

/**
 * Publishes one cart's rows, in order, in as few requests as possible. Pub/Sub takes or refuses
 * a request whole, so when it refuses one for a message in it (400), the rest are sent one by
 * one to find that message: only its row fails, and the cart's later rows wait behind it. Any
 * other error (access, configuration, Pub/Sub failing or unreachable) leaves every unpublished
 * row to retry.
 */
async function publishCartInOrder(publisher: PubSubPublisher, rows: EventFacts[]): Promise<RowResult[]> {
  const first = await publishAll(publisher, rows);
  const results: RowResult[] = first.messageIds.map((messageId, i) => ({ id: rows[i]!.id, published: messageId }));
  const { error } = first;
  if (!error) return results;
  const rest = rows.slice(first.messageIds.length);
  if (!error.messageRejected || rest.length === 1) {
    for (const row of rest) results.push({ id: row.id, error, rejected: error.messageRejected });
    return results;
  }
  for (const [i, row] of rest.entries()) {
    const single = await publishAll(publisher, [row]);
    if (!single.error) {
      results.push({ id: row.id, published: single.messageIds[0]! });
      continue;
    }
    // The refused row fails and the cart's later rows wait behind it; any other error leaves
    // this row and the later ones to retry.
    const rejected = single.error.messageRejected;
    results.push({ id: row.id, error: single.error, rejected });
    for (const later of rest.slice(i + 1)) {
      results.push(rejected ? { id: later.id, held: true } : { id: later.id, error: single.error, rejected: false });
    }
    break;
  }
  return results;
}

async function publishAll(
  publisher: PubSubPublisher,
  rows: EventFacts[],
): Promise<{ messageIds: string[]; error: PubSubPublishError | null }> {
  try {
    return { messageIds: await publisher.publish(rows.map(messageOf)), error: null };
  } catch (err) {
    const error =
      err instanceof PubSubPublishError ? err : new PubSubPublishError(String(err), { retryable: true, cause: err });
    return { messageIds: error.publishedMessageIds, error };
  }
}
