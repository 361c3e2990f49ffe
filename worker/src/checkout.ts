import { CART_LIMITS, type CartStatus, EDITABLE_STATUSES, isEditable, transition } from './cart-state.ts';
import { cartItem, getCart, LIVE_LINES, type LiveLine, limitExceeded, notEditable } from './carts.ts';
import type { Sql } from './db.ts';
import { ApiError, notFound } from './errors.ts';
import type { EffectResult, Fulfilment } from './fulfilment.ts';
import type { CartOut, CheckoutOut } from './schemas.ts';
import type { Services } from './services.ts';
import { type Stripe, stripeFailure, stripeKeyInUse, stripeNotFound, stripeSavedFailure } from './stripe.ts';
import { cancelEffect, effectOfSession, missingSessionEffect } from './stripe-events.ts';

interface CheckoutState {
  status: CartStatus;
  /** The shopper's active cart (a superseded payment_failed cart is not). */
  active: boolean;
  version: number;
  /** This checkout attempt: its idempotency key's suffix and its fixed expires_at (null until claimed). */
  attempt: { number: number; expiresAt: Date | null };
  session: { id: string; url: string; expiresAt: Date } | null;
  items: LiveLine[];
}

const checkoutStateSelect = `
  SELECT c.status, c.active, c.version,
         json_build_object('number', c.checkout_attempt, 'expiresAt', c.checkout_attempt_expires_at) AS attempt,
         CASE WHEN k.session_id IS NULL THEN NULL
              ELSE json_build_object('id', k.session_id, 'url', k.url, 'expiresAt', k.expires_at) END AS session,
         ${LIVE_LINES} AS items
  FROM carts c LEFT JOIN checkouts k ON k.session_id = c.checkout_session_id
  WHERE c.id = $1 AND c.user_id = $2`;

type CheckoutStateRow = Omit<CheckoutState, 'session' | 'attempt'> & {
  session: { id: string; url: string; expiresAt: string } | null;
  attempt: { number: number; expiresAt: string | null };
};

function checkoutState(rows: Record<string, unknown>[]): CheckoutState {
  const row = rows[0] as CheckoutStateRow | undefined;
  if (!row) throw notFound('Cart');
  return {
    ...row,
    attempt: {
      number: row.attempt.number,
      expiresAt: row.attempt.expiresAt === null ? null : new Date(row.attempt.expiresAt),
    },
    session: row.session && { ...row.session, expiresAt: new Date(row.session.expiresAt) },
  };
}

async function readCheckoutState(sql: Sql, userId: string, cartId: string): Promise<CheckoutState> {
  return checkoutState(await sql.query(checkoutStateSelect, [cartId, userId]));
}

// Stripe accepts expires_at from 30 minutes to 24 hours after the session is created
// (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-expires_at).
const STRIPE_MIN_LIFETIME_S = 30 * 60;
const STRIPE_MAX_LIFETIME_S = 24 * 3600;
// An attempt's expires_at is fixed when the attempt starts, so every retry under its key sends
// the same parameters; the margin leaves room for those retries and for clock skew.
const LIFETIME_MARGIN_S = 120;
const CLOCK_SKEW_S = 30;

/**
 * Reads the cart for checkout, in one round trip with claiming a checkout attempt when the cart
 * can be checked out and has none that is still usable: a new attempt number (so a new Stripe
 * idempotency key) and its expires_at. Concurrent calls (a double tap) share one attempt: the
 * second finds the first's still fresh and claims nothing.
 */
async function claimCheckoutAttempt(
  sql: Sql,
  userId: string,
  cartId: string,
  ttlMinutes: number,
): Promise<CheckoutState> {
  const lifetime = Math.min(
    Math.max(ttlMinutes * 60, STRIPE_MIN_LIFETIME_S) + LIFETIME_MARGIN_S,
    STRIPE_MAX_LIFETIME_S - CLOCK_SKEW_S,
  );
  const [, rows] = await sql.transaction([
    sql.query(
      `UPDATE carts SET checkout_attempt = checkout_attempt + 1,
                        checkout_attempt_expires_at = now() + make_interval(secs => $3)
       WHERE id = $1 AND user_id = $2 AND active AND status = ANY($5::cart_status[])
         AND (checkout_attempt_expires_at IS NULL OR checkout_attempt_expires_at < now() + make_interval(secs => $4))`,
      [cartId, userId, lifetime, STRIPE_MIN_LIFETIME_S + CLOCK_SKEW_S, EDITABLE_STATUSES],
    ),
    sql.query(checkoutStateSelect, [cartId, userId]),
  ]);
  return checkoutState(rows as Record<string, unknown>[]);
}

/** The next checkout of the cart uses a new key: Stripe may have saved this attempt's failure. */
async function abandonAttempt(sql: Sql, cartId: string, attempt: number): Promise<void> {
  await sql.query(
    `UPDATE carts SET checkout_attempt = checkout_attempt + 1, checkout_attempt_expires_at = NULL
     WHERE id = $1 AND checkout_attempt = $2`,
    [cartId, attempt],
  );
}

function checkoutOut(cartId: string, session: { id: string; url: string; expiresAt: Date }): CheckoutOut {
  return { cartId, sessionId: session.id, url: session.url, expiresAt: session.expiresAt.toISOString() };
}

/**
 * Starts Checkout for a cart, or hands back its live session. Prices come from our products
 * table. The Stripe idempotency key names the cart, its version and the attempt, and the
 * parameters sent under it never change (Stripe refuses a key reused with other parameters:
 * https://docs.stripe.com/api/idempotent_requests), so double taps and retries get the same
 * session. The write that moves the cart is conditional on the version: an edit that slipped in
 * between loses nothing, and the session made for the old contents is expired.
 */
export async function startCheckout(
  services: Services,
  userId: string,
  cartId: string,
): Promise<{ checkout: CheckoutOut; created: boolean }> {
  const { sql, config: cfg, stripe, fulfilment: f } = services;
  for (let round = 0; ; round++) {
    const state = await claimCheckoutAttempt(sql, userId, cartId, cfg.required('CHECKOUT_TTL_MINUTES'));
    if (state.status === 'checkout_pending' && state.session) {
      if (state.session.expiresAt.getTime() <= Date.now() && round === 0) {
        // Past its expiry the session may still have been paid just in time: ask Stripe, apply
        // what it says, and only then decide.
        await reconcileSession(f, stripe, state.session.id);
        continue;
      }
      return { checkout: checkoutOut(cartId, state.session), created: false };
    }
    if (!state.active || !transition(state.status, 'checkout')) throw notEditable(state.status);
    if (state.items.length === 0) throw new ApiError('cart_empty', 'The cart has no items');
    const gone = state.items.find((i) => !i.active);
    if (gone) throw notFound(`Product ${gone.productId}`);
    const currency = state.items[0]!.productCurrency;
    if (state.items.some((i) => i.productCurrency !== currency || i.currency !== i.productCurrency)) {
      throw new ApiError('currency_mismatch', 'The cart holds products priced in different currencies');
    }
    const lines = state.items.map(cartItem);
    const amountTotal = lines.reduce((n, l) => n + l.lineTotal, 0);
    // Prices may have risen since the items were added.
    if (lines.length > CART_LIMITS.lines || amountTotal > CART_LIMITS.totalAmount) throw limitExceeded();

    const base = cfg.required('PUBLIC_BASE_URL');
    const attempt = state.attempt.number;
    let session: Stripe.Checkout.Session;
    try {
      session = await stripe.checkout.sessions.create(
        {
          mode: 'payment',
          line_items: state.items.map((i) => ({
            quantity: i.quantity,
            price_data: {
              currency,
              unit_amount: i.unitAmount,
              product_data: {
                name: i.name,
                ...(i.description && { description: i.description }),
                ...(i.imageUrl?.startsWith('https://') && { images: [i.imageUrl] }),
                metadata: { product_id: i.productId },
              },
            },
          })),
          client_reference_id: cartId,
          metadata: { cart_id: cartId, cart_version: String(state.version) },
          payment_intent_data: { metadata: { cart_id: cartId } },
          success_url: `${base}/checkout/success?session_id={CHECKOUT_SESSION_ID}`,
          cancel_url: `${base}/checkout/cancel?cart_id=${cartId}`,
          expires_at: Math.floor(state.attempt.expiresAt!.getTime() / 1000),
        },
        { idempotencyKey: `checkout-${cartId}-v${state.version}-a${attempt}` },
      );
    } catch (err) {
      if (stripeSavedFailure(err)) await abandonAttempt(sql, cartId, attempt);
      // Another request with this key is still running at Stripe (a double tap): its result
      // is about to be the cart's live session.
      if (stripeKeyInUse(err) && round < 2) continue;
      throw stripeFailure(err);
    }

    const live = { id: session.id, url: session.url!, expiresAt: new Date(session.expires_at * 1000) };
    const [row] = await sql.query(
      `WITH saved AS (
         INSERT INTO checkouts (session_id, cart_id, url, expires_at, currency, amount_total, items)
         SELECT $3, c.id, $4, $5, $6, $7, $8::jsonb FROM carts c
         WHERE c.id = $1 AND c.version = $2 AND c.status = ANY($9::cart_status[]) AND c.active
         ON CONFLICT (session_id) DO NOTHING
         RETURNING cart_id
       ), moved AS (
         -- Checked again here: an edit committed while this statement waited for the row lock
         -- must win over a session made for the old contents.
         UPDATE carts SET status = 'checkout_pending', version = version + 1, checkout_session_id = $3, updated_at = now()
         FROM saved WHERE carts.id = saved.cart_id AND carts.version = $2 AND carts.status = ANY($9::cart_status[]) AND carts.active
         RETURNING carts.id
       )
       SELECT EXISTS (SELECT 1 FROM moved) AS moved`,
      [
        cartId,
        state.version,
        live.id,
        live.url,
        live.expiresAt.toISOString(),
        currency,
        amountTotal,
        JSON.stringify(lines),
        [state.status],
      ],
    );
    if ((row as { moved: boolean }).moved) return { checkout: checkoutOut(cartId, live), created: true };

    // Someone else moved the cart first. With the same version that was a double tap and
    // Stripe gave both of us this session; otherwise our session is for contents that no longer
    // exist and must not stay payable.
    const now = await readCheckoutState(sql, userId, cartId);
    if (now.session?.id === live.id) return { checkout: checkoutOut(cartId, live), created: false };
    await stripe.checkout.sessions.expire(live.id).catch((err: unknown) => {
      console.error(
        JSON.stringify({ level: 'error', msg: 'orphan_session_not_expired', sessionId: live.id, error: String(err) }),
      );
    });
    if (round >= 2) throw new ApiError('service_unavailable', 'The cart changed during checkout; try again');
  }
}

/**
 * Reads a session back from Stripe and applies what it says, as its webhook would have. A
 * session Stripe does not know (404: test data deleted, another account's key) is recorded and
 * releases its cart, which could otherwise never be checked out or cancelled again; `session`
 * is then null.
 */
export async function reconcileSession(
  f: Fulfilment,
  stripe: Stripe,
  sessionId: string,
): Promise<{ session: Stripe.Checkout.Session | null; result: EffectResult | null }> {
  let session: Stripe.Checkout.Session;
  try {
    session = await stripe.checkout.sessions.retrieve(sessionId, { expand: ['payment_intent'] });
  } catch (err) {
    if (stripeNotFound(err)) return { session: null, result: await f.apply(missingSessionEffect(sessionId)) };
    throw stripeFailure(err);
  }
  const effect = effectOfSession(session);
  return { session, result: effect ? await f.apply(effect) : null };
}

/**
 * Cancels the live Checkout Session: Stripe expires it first, so it can no longer be paid,
 * then the cart goes back to open. A session that completed meanwhile is applied instead.
 */
export async function cancelCheckout(services: Services, userId: string, cartId: string): Promise<CartOut> {
  const { sql, stripe, fulfilment: f } = services;
  const state = await readCheckoutState(sql, userId, cartId);
  if (!state.session || !transition(state.status, 'cancel_checkout')) {
    throw new ApiError('cart_not_editable', `The cart is ${state.status}; there is no checkout to cancel`);
  }
  try {
    await stripe.checkout.sessions.expire(state.session.id);
  } catch (err) {
    // Stripe refuses to expire a session that is no longer open: find out what it is now.
    const { session } = await reconcileSession(f, stripe, state.session.id);
    if (session?.status === 'complete') {
      throw new ApiError('cart_not_editable', 'The checkout has already been completed and cannot be cancelled');
    }
    if (session && session.status !== 'expired') throw stripeFailure(err);
  }
  await f.apply(cancelEffect(state.session.id));
  const cart = await getCart(sql, userId, cartId);
  if (isEditable(cart.status)) return cart;
  throw new ApiError('cart_not_editable', `The cart is ${cart.status}`);
}
