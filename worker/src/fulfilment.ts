import { ACTIVE_STATUSES, type CartStatus, decisionsFor, LANDED_STATUSES, PUBLISHED_STATUSES } from './cart-state.ts';
import { shopperLock } from './carts.ts';
import type { Rows, Sql, Statement } from './db.ts';
import type { Env } from './env.ts';
import { log } from './log.ts';
import {
  CLAIM_SECONDS,
  EVENT_FACTS,
  type EventFacts,
  publishingConfigured,
  publishSoon,
  unpublished,
} from './outbox.ts';
import type { CartEffect } from './stripe-events.ts';

export type EffectOutcome = 'applied' | 'ignored' | 'stale_session' | 'unknown_cart' | 'duplicate';

export interface EffectResult {
  outcome: EffectOutcome;
  cartId: string | null;
  from: CartStatus | null;
  to: CartStatus | null;
  /** This event found that Stripe charged another amount or currency than the checkout's snapshot. */
  amountMismatch: boolean;
  /** The payment took stock that was no longer there. */
  oversold: boolean;
  /** Outbox rows written for the transitions, oldest first. */
  outboxIds: string[];
  /** Those written leased to this request, to publish right away without claiming them. */
  leased: EventFacts[];
}

// The steps of applying one event. They run in one transaction sent as one batch (one round
// trip); each later step finds what the event decided in its payment_events row, written by
// this very transaction (its xmin is ours: a replayed event's row is older and moves nothing).
const WRITTEN_NOW = `e.id = $1 AND e.xmin = pg_current_xact_id()::xid AND e.outcome = 'applied'`;

/** Constants, never input: cart statuses are the enum's own words. */
const sqlList = (statuses: readonly CartStatus[]) => statuses.map((status) => `'${status}'`).join(', ');
const PUBLISHED_LIST = sqlList(PUBLISHED_STATUSES);
const LANDED_LIST = sqlList(LANDED_STATUSES);

/** A dispute's stage from its JSON: 0 none, 1 open, 2 closed (an appeal closes it again: still 2). */
const DISPUTE_STAGE = (column: string) => `COALESCE((${column} ->> 'closed')::boolean::int + 1, 0)`;

const STEPS = {
  /**
   * First the payment: events of one payment run one after the other, as a refund and its
   * payment's completion arriving together would otherwise each miss the other (refunds only
   * name the payment intent, so that is the key when there is one). Then the shopper, whose
   * POST /v1/carts may be opening their next cart right now. The payment's lock is taken as the
   * outer row is read, before the output row that takes the shopper's; the outer join keeps the
   * row when no checkout is known yet (a refund before its payment).
   * $1 payment key, $2 session, $3 payment intent.
   */
  lock: `
    WITH payment AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtextextended($1, 0)) AS locked)
    SELECT CASE WHEN shopper.user_id IS NOT NULL THEN ${shopperLock('shopper.user_id')} END
    FROM payment LEFT JOIN LATERAL (
      SELECT c.user_id FROM checkouts k JOIN carts c ON c.id = k.cart_id
      WHERE k.session_id = $2 OR ($2::text IS NULL AND k.payment_intent_id = $3)
      LIMIT 1
    ) shopper ON true`,

  /**
   * Records the event once (its id makes a replay a no-op) with what it does: the moves the
   * state machine gives for the cart's locked current status (a full refund reported before the
   * payment landed takes the cart on to refunded when it lands), and the notices that are news:
   * once the cart is (or now becomes) paid or refunded, every notice of the payment reported so
   * far, this event's included, that the checkout has not published yet, each with the fact it
   * reports; a dispute's close is not news once a later close of it (by Stripe's time) is
   * reported. Or why it does nothing. The cart is found through our own checkout row, never from
   * event metadata alone.
   * $1 event id, $2 type, $3 source, $4 session, $5 payment intent, $6 full refund,
   * $7 decisions per earlier full refund and status, $8 amount refunded, $9 dispute, $10 its
   * stage, $11 its notice, $12 landed statuses, $13 when it happened.
   */
  record: `
    WITH target AS (
      SELECT k.session_id, k.cart_id, k.payment_intent_id, k.noticed
      FROM checkouts k
      WHERE k.session_id = $4 OR ($4::text IS NULL AND k.payment_intent_id = $5)
    ), cart AS (
      SELECT c.id, c.status, COALESCE(c.checkout_session_id = t.session_id, false) AS current
      FROM carts c JOIN target t ON t.cart_id = c.id
      FOR UPDATE OF c
    ), facts AS (
      SELECT e.full_refund, e.refunded_amount, e.dispute, e.notice, COALESCE(e.occurred_at, e.received_at) AS at, e.id
      FROM payment_events e
      WHERE e.payment_intent_id = COALESCE($5, (SELECT payment_intent_id FROM target))
        AND (e.full_refund OR e.refunded_amount IS NOT NULL OR e.dispute_stage IS NOT NULL)
    ), decision AS (
      SELECT ARRAY(SELECT p.s::cart_status FROM jsonb_array_elements_text(d.d -> 'path') WITH ORDINALITY AS p(s, n) ORDER BY p.n) AS path,
             d.d ->> 'stock' AS stock, d.status
      FROM (SELECT $7::jsonb -> (CASE WHEN EXISTS (SELECT 1 FROM facts WHERE full_refund) THEN 'full' ELSE 'none' END)
                             -> cart.status::text AS d, cart.status
            FROM cart WHERE cart.current) d
    ), reported AS (
      SELECT notice, refunded_amount, dispute, at, id FROM facts
      UNION ALL SELECT $11, $8::bigint, $9::jsonb, $13::timestamptz, $1
    ), news AS (
      SELECT DISTINCT ON (f.notice) f.notice AS key,
             jsonb_strip_nulls(jsonb_build_object('key', f.notice,
               'refundedAmount', CASE WHEN f.notice LIKE 'partially_refunded:%' THEN f.refunded_amount END,
               'dispute', CASE WHEN f.notice NOT LIKE 'partially_refunded:%' THEN f.dispute END)) AS fact,
             f.refunded_amount, f.dispute ->> 'closed' AS closed
      FROM reported f, target t, decision d
      WHERE f.notice IS NOT NULL AND f.notice <> ALL (t.noticed)
        AND COALESCE(d.path[cardinality(d.path)], d.status) = ANY($12::cart_status[])
        -- An appeal closes a lost dispute again, later: the outcome published last must be the
        -- latest, so a close that a later one overtook (it arrived late) is never published.
        AND NOT EXISTS (SELECT 1 FROM reported g
                        WHERE (f.dispute ->> 'closed')::boolean AND (g.dispute ->> 'closed')::boolean
                          AND g.dispute ->> 'id' = f.dispute ->> 'id' AND (g.at, g.id) > (f.at, f.id))
      ORDER BY f.notice
    ), notices AS (
      -- Refunds first, smallest first, then disputes opened before closed.
      SELECT COALESCE(jsonb_agg(fact ORDER BY refunded_amount IS NULL, refunded_amount, closed, key), '[]') AS list FROM news
    )
    INSERT INTO payment_events (id, type, source, cart_id, session_id, payment_intent_id, full_refund, refunded_amount,
                                dispute, dispute_stage, notice, outcome, from_status, to_status, path, notices, stock_move,
                                occurred_at)
    SELECT $1, $2, $3, t.cart_id, COALESCE($4, t.session_id), COALESCE($5, t.payment_intent_id), $6, $8, $9::jsonb, $10,
           $11,
           CASE WHEN NOT EXISTS (SELECT 1 FROM cart) THEN 'unknown_cart'
                WHEN NOT (SELECT current FROM cart) THEN 'stale_session'
                WHEN COALESCE((SELECT cardinality(path) FROM decision), 0) + jsonb_array_length(n.list) = 0 THEN 'ignored'
                ELSE 'applied' END,
           (SELECT status FROM cart),
           (SELECT path[cardinality(path)] FROM decision),
           (SELECT path FROM decision),
           n.list,
           (SELECT stock FROM decision WHERE cardinality(path) > 0),
           $13
    FROM (SELECT 1) AS one LEFT JOIN target t ON true, notices n
    ON CONFLICT (id) DO NOTHING
    RETURNING outcome, cart_id, from_status, to_status`,

  /**
   * Moves the cart. A cart that becomes active again (a delayed payment failing after the
   * shopper opened another cart) stays out of the shopper's way: it is superseded. Any newer
   * cart counts, not only an active one: one already paid, or awaiting its own delayed payment,
   * was the shopper's next cart all the same (and a failure of the newer payment, landing
   * first, must not leave it shut out by the older cart).
   * $1 event id, $2 active statuses.
   */
  moveCart: `
    UPDATE carts c SET
      status = e.to_status,
      version = c.version + 1,
      updated_at = now(),
      -- Back to open means the session is over: a new checkout starts a new one.
      checkout_session_id = CASE WHEN e.to_status = 'open' THEN NULL ELSE c.checkout_session_id END,
      superseded = c.superseded OR (NOT c.active AND e.to_status = ANY($2::cart_status[]) AND EXISTS (
        SELECT 1 FROM carts other WHERE other.user_id = c.user_id AND other.created_at > c.created_at))
    FROM payment_events e
    WHERE ${WRITTEN_NOW} AND cardinality(e.path) > 0 AND c.id = e.cart_id`,

  /**
   * Locks the products whose stock the checkout holds, in one order (as checkout does), before
   * the next statement reads and changes them: it then sees their latest counts.
   * $1 event id.
   */
  lockStock: `
    SELECT 1 FROM products p
    WHERE p.id IN (SELECT h.product_id FROM payment_events e JOIN stock_holds h ON h.session_id = e.session_id
                   WHERE ${WRITTEN_NOW} AND e.stock_move IS NOT NULL)
    ORDER BY p.id
    FOR UPDATE OF p`,

  /**
   * Ends the checkout's stock hold: given back (expired, cancelled, payment failed) or taken
   * from the stock for good (paid). A payment that lands for units no longer there (the stock
   * was set below what checkouts held) is paid all the same and flagged oversold. The holds
   * are deleted, so a hold ends once. All parts read the counts as they were before this
   * statement, which the previous one locked. $1 event id.
   */
  moveStock: `
    WITH ended AS (
      DELETE FROM stock_holds h USING payment_events e
      WHERE ${WRITTEN_NOW} AND e.stock_move IS NOT NULL AND h.session_id = e.session_id
      RETURNING h.session_id, h.product_id, h.quantity, e.stock_move = 'consume' AS consumed
    ), counted AS (
      UPDATE products p SET
        reserved = p.reserved - x.quantity,
        stock = CASE WHEN x.consumed AND p.stock IS NOT NULL THEN GREATEST(p.stock - x.quantity, 0) ELSE p.stock END
      FROM ended x WHERE p.id = x.product_id
    ), short AS (
      SELECT DISTINCT x.session_id FROM ended x JOIN products p ON p.id = x.product_id
      WHERE x.consumed AND p.stock < x.quantity
    ), flagged AS (
      UPDATE checkouts k SET oversold = true FROM short WHERE k.session_id = short.session_id
      RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM flagged) AS oversold`,

  /**
   * Stores on the checkout what Stripe charged, who paid and where it goes; Stripe's subtotal
   * (what the line items came to, before discount, shipping and tax) that differs from the
   * snapshot taken at checkout, or another currency, is flagged. Then what Stripe reported
   * about the payment, from every event of it so far: refunds only add up, and the dispute is
   * its latest report, open before closed and among closes (an appeal's outcome after the first)
   * the one Stripe created last, whatever order they arrived in; events that retention deleted
   * take nothing back (a dispute the remaining ones show less far on stays as it was).
   * $2 payment intent, $3 customer, $4/$5 subtotal and currency charged, $6 amounts, $7 shipping,
   * $8 the chosen shipping rate's id.
   */
  settleCheckout: `
    WITH settled AS (
      UPDATE checkouts k SET
        -- Unique: a payment intent already on another checkout (never from Stripe, which makes one
        -- per session) is not taken, rather than fail this event on every retry.
        payment_intent_id = COALESCE(k.payment_intent_id,
          (SELECT $2::text WHERE NOT EXISTS (SELECT FROM checkouts o WHERE o.payment_intent_id = $2::text))),
        customer = COALESCE($3::jsonb, k.customer),
        amounts = COALESCE($6::jsonb, k.amounts),
        shipping = CASE WHEN $7::jsonb IS NULL THEN k.shipping ELSE $7::jsonb || jsonb_build_object('rate', COALESCE(
                     (SELECT o - 'id' FROM jsonb_array_elements(k.shipping_options) o WHERE o ->> 'id' = $8), $7::jsonb -> 'rate')) END,
        amount_mismatch = k.amount_mismatch
          OR ($4::bigint IS NOT NULL AND $4::bigint <> k.amount_total)
          OR ($5::text IS NOT NULL AND $5::text <> k.currency),
        refunded_amount = GREATEST(k.refunded_amount, facts.refunded),
        noticed = k.noticed || ARRAY(SELECT n ->> 'key' FROM jsonb_array_elements(e.notices) n),
        dispute = CASE WHEN facts.dispute_stage >= ${DISPUTE_STAGE('k.dispute')} THEN facts.dispute ELSE k.dispute END
      FROM payment_events e, checkouts was, LATERAL (
        SELECT COALESCE(max(f.refunded_amount), 0) AS refunded, COALESCE(max(f.dispute_stage), 0) AS dispute_stage,
               (array_agg(f.dispute ORDER BY f.dispute_stage DESC, COALESCE(f.occurred_at, f.received_at) DESC, f.id DESC) FILTER (WHERE f.dispute_stage IS NOT NULL))[1] AS dispute
        FROM payment_events f
        WHERE f.payment_intent_id = e.payment_intent_id AND (f.refunded_amount IS NOT NULL OR f.dispute_stage IS NOT NULL)
      ) facts
      WHERE ${WRITTEN_NOW} AND k.session_id = e.session_id AND was.session_id = k.session_id
      -- \`was\` is the row as this statement found it: a mismatch is reported by the event that finds it, once.
      RETURNING k.cart_id, k.amount_mismatch AND NOT was.amount_mismatch AS amount_mismatch,
                k.refunded_amount <> was.refunded_amount OR k.dispute IS DISTINCT FROM was.dispute AS reported
    ), touched AS (
      -- A refund or a dispute changes a landed cart as it is shown (refundedAmount, dispute): it is
      -- changed now, for operators' most-recently-changed list. A cart not landed yet keeps its
      -- time, by which the scheduled job finds quiet checkouts.
      UPDATE carts c SET updated_at = now() FROM settled s
      WHERE c.id = s.cart_id AND s.reported AND c.status IN (${LANDED_LIST})
    )
    SELECT amount_mismatch FROM settled`,

  /**
   * One outbox row per published status the cart passed through, in order, then one per
   * notice, answered with what its event is built from. A notice carries the fact it reports (a
   * partial refund its amount refunded, a dispute its state then), the rest the refund and
   * dispute as they are now. A refund or dispute reported before the payment landed goes out
   * now, under the id and time of the Stripe event that reported it (the earliest, if reported
   * twice): that event, not the completion, made it. The full refund comes after the partial
   * ones before it, which show the cart as it was then: what was reported before the payment
   * landed goes out in the order it happened. With $2 (Pub/Sub configured) the rows are written
   * leased to this request, which publishes them right after the commit without a claim; unless
   * an earlier row of the cart is still unpublished: then they wait for whoever publishes that
   * one. $3 lease seconds.
   * The published statuses are written into the text, not passed: under the local proxy's
   * prepared statements Postgres would guess how many rows a parameter array lets through, find
   * its generic plan dearer than a custom one and plan the statement afresh every time (0.6 ms a
   * webhook). Neon's proxy sends every statement unnamed, so there it is planned afresh anyway.
   */
  writeOutbox: `
    WITH written AS (
      INSERT INTO outbox (cart_id, event_type, stripe_event_id, cart_status, session_id, occurred_at, claimed_until, attempts,
                          refunded_amount, dispute, amount_mismatch, oversold)
      SELECT e.cart_id, 'cart.' || step.name, COALESCE(report.id, e.id), step.status, e.session_id,
             COALESCE(report.at, e.occurred_at),
             CASE WHEN lease.now THEN now() + make_interval(secs => $3) END, lease.now::int,
             COALESCE((step.fact ->> 'refundedAmount')::bigint, k.refunded_amount), COALESCE(step.fact -> 'dispute', k.dispute),
             k.amount_mismatch, k.oversold
      FROM payment_events e JOIN checkouts k ON k.session_id = e.session_id
           -- A probe of the cart's own unpublished rows (LIMIT keeps it one): written as NOT EXISTS,
           -- the planner may hash every unpublished row instead, work that grows with a backlog
           -- while Pub/Sub is down (17 ms a webhook at 10,000 rows, on plans custom and generic).
           LEFT JOIN LATERAL (SELECT true AS found FROM outbox w WHERE w.cart_id = e.cart_id AND ${unpublished('w')} LIMIT 1) waiting ON true,
           -- rank: 0 the payment's own moves, 1 partial refunds, 2 the full refund, 3 disputes.
           LATERAL (SELECT p.s::text AS name, p.s AS status, CASE WHEN p.s = 'refunded' THEN 2 ELSE 0 END AS rank, p.n,
                           NULL::jsonb AS fact
                    FROM unnest(e.path) WITH ORDINALITY AS p(s, n)
                    WHERE p.s IN (${PUBLISHED_LIST})
                    UNION ALL
                    SELECT split_part(q.f ->> 'key', ':', 1),
                           CASE WHEN q.f ? 'refundedAmount' AND 'refunded' = ANY(e.path)
                                THEN COALESCE(e.path[array_position(e.path, 'refunded') - 1], e.from_status)
                                ELSE COALESCE(e.to_status, e.from_status) END,
                           CASE WHEN q.f ? 'refundedAmount' THEN 1 ELSE 3 END, cardinality(e.path) + q.n, q.f
                    FROM jsonb_array_elements(e.notices) WITH ORDINALITY AS q(f, n)) step
           LEFT JOIN LATERAL (
             SELECT f.id, COALESCE(f.occurred_at, f.received_at) AS at
             FROM payment_events f
             WHERE step.rank > 0 AND f.payment_intent_id = COALESCE(e.payment_intent_id, k.payment_intent_id)
               AND (f.full_refund OR f.refunded_amount IS NOT NULL OR f.dispute_stage IS NOT NULL)
               AND CASE WHEN step.fact IS NULL THEN f.full_refund ELSE f.notice = step.fact ->> 'key' END
             ORDER BY at, f.id
             LIMIT 1) report ON true,
           LATERAL (SELECT $2 AND waiting.found IS NULL AS now) lease
      WHERE ${WRITTEN_NOW}
      ORDER BY step.rank, step.n
      RETURNING *
    )
    SELECT ${EVENT_FACTS}, o.claimed_until IS NOT NULL AS leased
    FROM written o
      -- By key, row by row (OFFSET 0 keeps each a subquery of its own): the planner, counting
      -- 100 rows for any jsonb_array_elements, would otherwise hash whole tables for a row or two.
      CROSS JOIN LATERAL (SELECT * FROM carts WHERE id = o.cart_id OFFSET 0) ca
      CROSS JOIN LATERAL (SELECT * FROM checkouts WHERE session_id = o.session_id OFFSET 0) k
    ORDER BY o.seq`,
};

/**
 * Applies one event to its cart: lock, record, move, end the stock hold, settle, write the outbox. Every event
 * about a payment (webhook, success page, cancel, scheduled job) comes through here; only checkout's own move
 * to checkout_pending, which has no event and publishes nothing, is written by checkout.ts. `read`, run last
 * in the same transaction, answers what the request shows next without another round trip.
 */
export async function applyEffect(
  sql: Sql,
  effect: CartEffect,
  opts: { lease: boolean; read?: Statement },
): Promise<{ result: EffectResult; read: Rows }> {
  const [, recorded, , , [stock], settled, published, read = []] = (await sql.transaction(
    [
      sql.query(STEPS.lock, [
        effect.paymentIntentId ?? effect.sessionId ?? effect.id,
        effect.sessionId,
        effect.paymentIntentId,
      ]),
      sql.query(STEPS.record, [
        effect.id,
        effect.type,
        effect.source,
        effect.sessionId,
        effect.paymentIntentId,
        effect.fullRefund,
        JSON.stringify(decisionsFor(effect.event)),
        effect.refundedAmount,
        effect.dispute ? JSON.stringify(effect.dispute) : null,
        effect.dispute ? (effect.dispute.closed ? 2 : 1) : null,
        effect.notice,
        LANDED_STATUSES,
        effect.occurredAt.toISOString(),
      ]),
      sql.query(STEPS.moveCart, [effect.id, ACTIVE_STATUSES]),
      sql.query(STEPS.lockStock, [effect.id]),
      sql.query(STEPS.moveStock, [effect.id]),
      sql.query(STEPS.settleCheckout, [
        effect.id,
        effect.paymentIntentId,
        effect.customer ? JSON.stringify(effect.customer) : null,
        effect.charged?.amounts?.subtotal ?? null,
        effect.charged?.currency ?? null,
        effect.charged?.amounts ? JSON.stringify(effect.charged.amounts) : null,
        effect.shipping ? JSON.stringify(effect.shipping.details) : null,
        effect.shipping?.rateId ?? null,
      ]),
      sql.query(STEPS.writeOutbox, [effect.id, opts.lease, CLAIM_SECONDS]),
      ...(opts.read ? [opts.read] : []),
    ],
    { isolationLevel: 'ReadCommitted' },
  )) as [
    unknown,
    RecordedRow[],
    unknown,
    unknown,
    [{ oversold: boolean }],
    { amount_mismatch: boolean }[],
    (EventFacts & { leased: boolean })[],
    Rows?,
  ];

  const row = recorded[0];
  const outcome: EffectOutcome = row?.outcome ?? 'duplicate';
  const result: EffectResult = {
    outcome,
    cartId: row?.cart_id ?? null,
    from: row?.from_status ?? null,
    to: outcome === 'applied' ? (row?.to_status ?? null) : null,
    amountMismatch: settled[0]?.amount_mismatch ?? false,
    oversold: stock?.oversold ?? false,
    outboxIds: published.map((p) => p.id),
    leased: published.filter((p) => p.leased),
  };
  // For a person to look at: the money was taken, the cart is paid, something does not add up.
  // Errors, as the runbook watches errors (docs/operations.md §2, §6).
  const where = { eventId: effect.id, sessionId: effect.sessionId, cartId: result.cartId, charged: effect.charged };
  if (result.amountMismatch) log.error('amount_mismatch', where);
  if (result.oversold) log.error('oversold', where);
  // The cart still counts it (refundedAmount, and a `refunded` status is final): the shopper is
  // owed it all the same, paid otherwise than to the card (docs/operations.md §5). Once, as it is
  // recorded; with the payment intent too, as the cart may not be known yet (its payment not in).
  if (effect.failedRefund && result.outcome !== 'duplicate') {
    const { id: eventId, paymentIntentId, failedRefund: refund } = effect;
    log.error('refund_failed', { eventId, cartId: result.cartId, paymentIntentId, refund });
  }
  return { result, read };
}

interface RecordedRow {
  outcome: Exclude<EffectOutcome, 'duplicate'>;
  cart_id: string | null;
  from_status: CartStatus | null;
  to_status: CartStatus | null;
}

/** Applies effects for one request and publishes what they wrote once the request is answered. */
export interface Fulfilment {
  apply(effect: CartEffect): Promise<EffectResult>;
  /** The same, with `read` run last in its transaction: what the request shows next, in the same round trip. */
  applyAndRead(effect: CartEffect, read: Statement): Promise<{ result: EffectResult; read: Rows }>;
}

/**
 * Every event about a payment goes through this, so each publishes its payment events right
 * after the commit. Without `ctx` (the scheduled job, which relays the outbox itself
 * afterwards) rows are left for the relay.
 */
export function fulfilment(env: Env, sql: Sql, ctx: { waitUntil(promise: Promise<unknown>): void } | null): Fulfilment {
  const lease = ctx !== null && publishingConfigured(env);
  const applyAndRead = async (effect: CartEffect, read?: Statement) => {
    const applied = await applyEffect(sql, effect, { lease, read });
    const { leased, outboxIds } = applied.result;
    if (ctx)
      publishSoon(
        env,
        ctx,
        sql,
        leased,
        outboxIds.filter((id) => !leased.some((l) => l.id === id)),
      );
    return applied;
  };
  return {
    apply: async (effect) => (await applyAndRead(effect)).result,
    applyAndRead,
  };
}
