import { ACTIVE_STATUSES, type CartStatus, PUBLISHED_STATUSES, pathsFor } from './cart-state.ts';
import type { Sql } from './db.ts';
import type { Env } from './env.ts';
import { CLAIM_SECONDS, EVENT_FACTS, type EventFacts, publishingConfigured, publishSoon } from './outbox.ts';
import type { CartEffect } from './stripe-events.ts';

export type EffectOutcome = 'applied' | 'ignored' | 'stale_session' | 'unknown_cart' | 'duplicate';

export interface EffectResult {
  outcome: EffectOutcome;
  cartId: string | null;
  from: CartStatus | null;
  to: CartStatus | null;
  amountMismatch: boolean;
  /** Outbox rows written for the transitions, oldest first. */
  outboxIds: string[];
  /** Those written leased to this request, to publish right away without claiming them. */
  leased: EventFacts[];
}

// The steps of applying one event. They run in one transaction sent as one batch (one round
// trip); each later step finds what the event decided in its payment_events row, written by
// this very transaction (its xmin is ours: a replayed event's row is older and moves nothing).
const WRITTEN_NOW = `e.id = $1 AND e.xmin = pg_current_xact_id()::xid AND e.outcome = 'applied'`;

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
    SELECT CASE WHEN shopper.user_id IS NOT NULL THEN pg_advisory_xact_lock(hashtextextended('shopper:' || shopper.user_id, 0)) END
    FROM payment LEFT JOIN LATERAL (
      SELECT c.user_id FROM checkouts k JOIN carts c ON c.id = k.cart_id
      WHERE k.session_id = $2 OR ($2::text IS NULL AND k.payment_intent_id = $3)
      LIMIT 1
    ) shopper ON true`,

  /**
   * Records the event once (its id makes a replay a no-op) with what it does: the path the
   * state machine gives for the cart's locked current status, or why it does nothing. The cart
   * is found through our own checkout row, never from event metadata alone.
   * $1 event id, $2 type, $3 source, $4 session, $5 payment intent, $6 full refund,
   * $7/$8 paths per status without/with a full refund recorded earlier.
   */
  record: `
    WITH target AS (
      SELECT k.session_id, k.cart_id, k.payment_intent_id FROM checkouts k
      WHERE k.session_id = $4 OR ($4::text IS NULL AND k.payment_intent_id = $5)
    ), cart AS (
      SELECT c.id, c.status, COALESCE(c.checkout_session_id = t.session_id, false) AS current
      FROM carts c JOIN target t ON t.cart_id = c.id
      FOR UPDATE OF c
    ), refund_recorded AS (
      SELECT EXISTS (
        SELECT 1 FROM payment_events e
        WHERE e.full_refund AND e.payment_intent_id = COALESCE($5, (SELECT payment_intent_id FROM target))
      ) AS yes
    ), decision AS (
      SELECT (SELECT array_agg(s::cart_status ORDER BY n)
              FROM jsonb_array_elements_text((CASE WHEN r.yes THEN $8::jsonb ELSE $7::jsonb END) -> cart.status::text)
                   WITH ORDINALITY AS p(s, n)) AS path
      FROM cart, refund_recorded r WHERE cart.current
    )
    INSERT INTO payment_events (id, type, source, cart_id, session_id, payment_intent_id, full_refund, outcome, from_status, to_status, path)
    SELECT $1, $2, $3, t.cart_id, COALESCE($4, t.session_id), COALESCE($5, t.payment_intent_id), $6,
           CASE WHEN NOT EXISTS (SELECT 1 FROM cart) THEN 'unknown_cart'
                WHEN NOT (SELECT current FROM cart) THEN 'stale_session'
                WHEN (SELECT path FROM decision) IS NULL THEN 'ignored'
                ELSE 'applied' END,
           (SELECT status FROM cart),
           (SELECT path[cardinality(path)] FROM decision),
           (SELECT path FROM decision)
    FROM (SELECT 1) AS one LEFT JOIN target t ON true
    ON CONFLICT (id) DO NOTHING
    RETURNING outcome, cart_id, from_status, to_status`,

  /**
   * Moves the cart. A cart that becomes active again (a delayed payment failing after the
   * shopper opened another cart) stays out of the shopper's way: it is superseded.
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
        SELECT 1 FROM carts other WHERE other.user_id = c.user_id AND other.active AND other.id <> c.id))
    FROM payment_events e
    WHERE ${WRITTEN_NOW} AND c.id = e.cart_id`,

  /**
   * Stores on the checkout what Stripe charged and who paid; a charge that differs from the
   * snapshot taken at checkout is flagged. $2 payment intent, $3 customer, $4/$5 amount and
   * currency charged.
   */
  settleCheckout: `
    UPDATE checkouts k SET
      payment_intent_id = COALESCE(k.payment_intent_id, $2),
      customer = COALESCE($3::jsonb, k.customer),
      amount_mismatch = k.amount_mismatch
        OR ($4::bigint IS NOT NULL AND $4::bigint <> k.amount_total)
        OR ($5::text IS NOT NULL AND $5::text <> k.currency)
    FROM payment_events e
    WHERE ${WRITTEN_NOW} AND k.session_id = e.session_id
    RETURNING k.amount_mismatch`,

  /**
   * One outbox row per published status the cart passed through, in order, answered with what
   * its event is built from. With $4 (Pub/Sub configured) they are written leased to this
   * request, which publishes them right after the commit without a claim; unless an earlier
   * row of the cart is still unpublished: then they wait for whoever publishes that one.
   * $2 occurred at, $3 published statuses, $5 lease seconds.
   */
  writeOutbox: `
    WITH written AS (
      INSERT INTO outbox (cart_id, event_type, stripe_event_id, cart_status, session_id, occurred_at, claimed_until, attempts)
      SELECT e.cart_id, 'cart.' || step.status, e.id, step.status, e.session_id, $2,
             CASE WHEN lease.now THEN now() + make_interval(secs => $5) END, lease.now::int
      FROM payment_events e, unnest(e.path) WITH ORDINALITY AS step(status, n),
           LATERAL (SELECT $4 AND NOT EXISTS (
             SELECT 1 FROM outbox w WHERE w.cart_id = e.cart_id AND w.published_at IS NULL AND w.discarded_at IS NULL) AS now) lease
      WHERE ${WRITTEN_NOW} AND step.status = ANY($3::cart_status[])
      ORDER BY step.n
      RETURNING *
    )
    SELECT ${EVENT_FACTS}, o.claimed_until IS NOT NULL AS leased
    FROM written o JOIN carts ca ON ca.id = o.cart_id JOIN checkouts k ON k.session_id = o.session_id
    ORDER BY o.seq`,
};

/**
 * Applies one event to its cart: lock, record, move, settle, write the outbox. Every path that
 * moves a cart (webhook, success page, checkout, cancel, scheduled job) comes through here.
 */
export async function applyEffect(sql: Sql, effect: CartEffect, opts: { lease: boolean }): Promise<EffectResult> {
  const [, recorded, , settled, published] = (await sql.transaction(
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
        JSON.stringify(pathsFor(effect.event, false)),
        JSON.stringify(pathsFor(effect.event, true)),
      ]),
      sql.query(STEPS.moveCart, [effect.id, ACTIVE_STATUSES]),
      sql.query(STEPS.settleCheckout, [
        effect.id,
        effect.paymentIntentId,
        effect.customer ? JSON.stringify(effect.customer) : null,
        effect.charged?.amountTotal ?? null,
        effect.charged?.currency ?? null,
      ]),
      sql.query(STEPS.writeOutbox, [
        effect.id,
        effect.occurredAt.toISOString(),
        PUBLISHED_STATUSES,
        opts.lease,
        CLAIM_SECONDS,
      ]),
    ],
    { isolationLevel: 'ReadCommitted' },
  )) as [unknown, RecordedRow[], unknown, { amount_mismatch: boolean }[], (EventFacts & { leased: boolean })[]];

  const row = recorded[0];
  const outcome: EffectOutcome = row?.outcome ?? 'duplicate';
  const result: EffectResult = {
    outcome,
    cartId: row?.cart_id ?? null,
    from: row?.from_status ?? null,
    to: outcome === 'applied' ? (row?.to_status ?? null) : null,
    amountMismatch: settled[0]?.amount_mismatch ?? false,
    outboxIds: published.map((p) => p.id),
    leased: published.filter((p) => p.leased),
  };
  if (result.amountMismatch) {
    console.warn(
      JSON.stringify({
        level: 'warn',
        msg: 'amount_mismatch',
        eventId: effect.id,
        sessionId: effect.sessionId,
        cartId: result.cartId,
        charged: effect.charged,
      }),
    );
  }
  return result;
}

interface RecordedRow {
  outcome: Exclude<EffectOutcome, 'duplicate'>;
  cart_id: string | null;
  from_status: CartStatus | null;
  to_status: CartStatus | null;
}

/** Applies effects for one request and publishes what they wrote once the request is answered. */
export interface Fulfilment {
  sql: Sql;
  apply(effect: CartEffect): Promise<EffectResult>;
}

/**
 * Every path that moves a cart goes through this, so each publishes its payment events right
 * after the commit. Without `ctx` (the scheduled job, which relays the outbox itself
 * afterwards) rows are left for the relay.
 */
export function fulfilment(env: Env, sql: Sql, ctx: { waitUntil(promise: Promise<unknown>): void } | null): Fulfilment {
  const lease = ctx !== null && publishingConfigured(env);
  return {
    sql,
    async apply(effect) {
      const result = await applyEffect(sql, effect, { lease });
      if (ctx)
        publishSoon(
          env,
          ctx,
          sql,
          result.leased,
          result.outboxIds.filter((id) => !result.leased.some((l) => l.id === id)),
        );
      return result;
    },
  };
}
