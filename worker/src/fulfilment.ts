import { pathsFor, type CartStatus } from './cart-state.ts';
import { database, type Sql } from './db.ts';
import type { Env } from './env.ts';
import { publishSoon } from './outbox.ts';
import type { CartEffect } from './stripe-events.ts';

export type EffectOutcome = 'applied' | 'ignored' | 'stale_session' | 'unknown_cart' | 'duplicate';

export interface EffectResult {
  outcome: EffectOutcome;
  cartId: string | null;
  from: CartStatus | null;
  to: CartStatus | null;
  amountMismatch: boolean;
  /** Outbox rows written for the transitions, oldest first, to publish right away. */
  outboxIds: string[];
}

// Payment events in the contract's Pub/Sub stream; moves back to open or checkout_pending are not.
const PUBLISHED_STATUSES: CartStatus[] = ['paid', 'awaiting_payment', 'payment_failed', 'refunded'];

// $1 event id, $2 type, $3 session, $4 payment intent, $5/$6 paths per status without/with a
// recorded refund, $7 source, $8 full refund, $9 customer, $10/$11 amount and currency charged,
// $12 occurred at, $13 published statuses.
const APPLY_EFFECT = `
WITH target AS (
  SELECT k.session_id, k.cart_id, k.payment_intent_id FROM checkouts k
  WHERE k.session_id = $3 OR ($3::text IS NULL AND k.payment_intent_id = $4)
), cart AS (
  SELECT c.id, c.status, c.checkout_session_id FROM carts c JOIN target t ON t.cart_id = c.id
  FOR UPDATE OF c
), current_cart AS (
  SELECT cart.* FROM cart JOIN target t ON cart.checkout_session_id = t.session_id
), refund AS (
  SELECT EXISTS (
    SELECT 1 FROM payment_events e
    WHERE e.full_refund AND e.payment_intent_id = COALESCE($4, (SELECT payment_intent_id FROM target))
  ) AS recorded
), decision AS (
  SELECT cc.id AS cart_id, (CASE WHEN refund.recorded THEN $6::jsonb ELSE $5::jsonb END) -> cc.status::text AS path
  FROM current_cart cc, refund
), recorded AS (
  INSERT INTO payment_events (id, type, source, cart_id, session_id, payment_intent_id, full_refund, outcome, from_status, to_status)
  SELECT $1, $2, $7, t.cart_id, COALESCE($3, t.session_id), COALESCE($4, t.payment_intent_id), $8,
         CASE WHEN NOT EXISTS (SELECT 1 FROM cart) THEN 'unknown_cart'
              WHEN NOT EXISTS (SELECT 1 FROM current_cart) THEN 'stale_session'
              WHEN (SELECT path FROM decision) IS NULL THEN 'ignored'
              ELSE 'applied' END,
         (SELECT status FROM cart),
         ((SELECT path FROM decision) ->> -1)::cart_status
  FROM (SELECT 1) AS one LEFT JOIN target t ON true
  ON CONFLICT (id) DO NOTHING
  RETURNING outcome
), moved AS (
  UPDATE carts c SET
    status = (d.path ->> -1)::cart_status,
    version = c.version + 1,
    updated_at = now(),
    -- Back to open means the session is over: a new checkout starts a new one.
    checkout_session_id = CASE WHEN d.path ->> -1 = 'open' THEN NULL ELSE c.checkout_session_id END
  FROM decision d, recorded r
  WHERE c.id = d.cart_id AND r.outcome = 'applied'
  RETURNING c.id, c.user_id
), settled AS (
  UPDATE checkouts k SET
    payment_intent_id = COALESCE(k.payment_intent_id, $4),
    customer = COALESCE($9::jsonb, k.customer),
    amount_mismatch = k.amount_mismatch
      OR ($10::bigint IS NOT NULL AND $10::bigint <> k.amount_total)
      OR ($11::text IS NOT NULL AND $11::text <> k.currency)
  FROM target t, recorded r
  WHERE k.session_id = t.session_id AND r.outcome = 'applied'
  RETURNING k.session_id, k.currency, k.amount_total, k.items, k.customer, k.payment_intent_id, k.amount_mismatch
), published AS (
  INSERT INTO outbox (id, cart_id, event_type, stripe_event_id, payload)
  SELECT x.id, m.id, 'cart.' || step.status, $1,
         jsonb_build_object(
           'id', x.id,
           'type', 'cart.' || step.status,
           'occurredAt', $12::timestamptz,
           'cart', jsonb_build_object('id', m.id, 'userId', m.user_id, 'status', step.status,
                                      'currency', k.currency, 'totalAmount', k.amount_total, 'items', k.items),
           'customer', k.customer,
           'stripe', jsonb_build_object('eventId', $1, 'sessionId', k.session_id, 'paymentIntentId', k.payment_intent_id),
           'amountMismatch', k.amount_mismatch)
  FROM moved m, settled k, decision d,
       jsonb_array_elements_text(d.path) WITH ORDINALITY AS step(status, n),
       -- One id per step, used both as the row's key and inside its payload; referencing the
       -- step makes Postgres evaluate it per row.
       LATERAL (SELECT gen_random_uuid() AS id WHERE step.n IS NOT NULL) x
  WHERE step.status = ANY($13::text[])
  ORDER BY step.n
  RETURNING id, seq
)
SELECT (SELECT outcome FROM recorded) AS outcome,
       (SELECT cart_id FROM target) AS cart_id,
       (SELECT status FROM cart) AS from_status,
       (SELECT path ->> -1 FROM decision) AS to_status,
       COALESCE((SELECT amount_mismatch FROM settled), false) AS amount_mismatch,
       COALESCE((SELECT json_agg(id ORDER BY seq) FROM published), '[]'::json) AS outbox_ids`;

function effectParams(effect: CartEffect): unknown[] {
  return [
    effect.id,
    effect.type,
    effect.sessionId,
    effect.paymentIntentId,
    JSON.stringify(pathsFor(effect.event, false)),
    JSON.stringify(pathsFor(effect.event, true)),
    effect.source,
    effect.fullRefund,
    effect.customer ? JSON.stringify(effect.customer) : null,
    effect.charged?.amountTotal ?? null,
    effect.charged?.currency ?? null,
    effect.occurredAt.toISOString(),
    PUBLISHED_STATUSES,
  ];
}

/**
 * Applies one event to its cart in one transaction sent as one batch (one round trip): record
 * the event (its id makes a replay a no-op), move the cart along the path the pure state machine
 * gives for the cart's locked current status, store what Stripe charged and who paid, and write
 * one outbox row per published transition. The cart is found through our own checkout row (by
 * session, or by payment intent for refunds), never trusted from event metadata alone.
 *
 * The batch first takes a transaction lock on the payment (or session): a refund and the
 * completion of the same payment arriving at the same moment then run one after the other, and
 * the second one's statement, taking its snapshot after the lock, sees what the first wrote.
 */
export async function applyEffect(sql: Sql, effect: CartEffect): Promise<EffectResult> {
  const [, rows] = await sql.transaction(
    [
      sql.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [effect.paymentIntentId ?? effect.sessionId ?? effect.id]),
      sql.query(APPLY_EFFECT, effectParams(effect)),
    ],
    { isolationLevel: 'ReadCommitted' },
  );
  const row = rows![0] as {
    outcome: Exclude<EffectOutcome, 'duplicate'> | null;
    cart_id: string | null;
    from_status: CartStatus | null;
    to_status: CartStatus | null;
    amount_mismatch: boolean;
    outbox_ids: string[];
  };
  const outcome = row.outcome ?? 'duplicate';
  const result: EffectResult = {
    outcome,
    cartId: row.cart_id,
    from: row.from_status,
    to: outcome === 'applied' ? row.to_status : null,
    amountMismatch: row.amount_mismatch,
    outboxIds: row.outbox_ids,
  };
  if (result.amountMismatch && outcome === 'applied') {
    console.warn(JSON.stringify({ level: 'warn', msg: 'amount_mismatch', eventId: effect.id, sessionId: effect.sessionId, cartId: result.cartId, charged: effect.charged }));
  }
  return result;
}

/** Applies effects for one request and publishes what they wrote once the request is answered. */
export interface Fulfilment {
  sql: Sql;
  apply(effect: CartEffect): Promise<EffectResult>;
}

/**
 * Every path that moves a cart (webhook, success page, checkout, cancel, cron) goes through
 * this, so each publishes its payment events right after the commit. Without `ctx` (the cron,
 * which relays the outbox itself afterwards) rows are left for the relay.
 */
export function fulfilment(env: Env, ctx: { waitUntil(promise: Promise<unknown>): void } | null): Fulfilment {
  const sql = database(env);
  return {
    sql,
    async apply(effect) {
      const result = await applyEffect(sql, effect);
      if (ctx) publishSoon(env, ctx, result.outboxIds);
      return result;
    },
  };
}
