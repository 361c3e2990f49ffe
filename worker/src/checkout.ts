import type { z } from '@hono/zod-openapi';
import { isEditable, transition, type CartStatus } from './cart-state.ts';
import { cartItem, getCart } from './carts.ts';
import type { Sql } from './db.ts';
import { config, type Env } from './env.ts';
import { ApiError, notFound } from './errors.ts';
import type { EffectResult, Fulfilment } from './fulfilment.ts';
import { Stripe, stripeClient, stripeFailure } from './stripe.ts';
import { cancelEffect, effectOfSession } from './stripe-events.ts';
import type { Cart, Checkout } from './schemas.ts';

type CheckoutOut = z.infer<typeof Checkout>;

interface CheckoutState {
  status: CartStatus;
  version: number;
  session: { id: string; url: string; expiresAt: Date } | null;
  items: { productId: string; name: string; description: string; imageUrl: string | null; unitAmount: number; quantity: number; itemCurrency: string; currency: string; active: boolean }[];
}

async function readCheckoutState(sql: Sql, userId: string, cartId: string): Promise<CheckoutState> {
  const rows = await sql.query(
    `SELECT c.status, c.version,
            CASE WHEN k.session_id IS NULL THEN NULL
                 ELSE json_build_object('id', k.session_id, 'url', k.url, 'expiresAt', k.expires_at) END AS session,
            COALESCE((
              SELECT json_agg(json_build_object(
                       'productId', p.id, 'name', p.name, 'description', p.description, 'imageUrl', p.image_url,
                       'unitAmount', p.unit_amount, 'quantity', i.quantity, 'itemCurrency', i.currency,
                       'currency', p.currency, 'active', p.active)
                     ORDER BY i.created_at, i.product_id)
              FROM cart_items i JOIN products p ON p.id = i.product_id WHERE i.cart_id = c.id
            ), '[]'::json) AS items
     FROM carts c LEFT JOIN checkouts k ON k.session_id = c.checkout_session_id
     WHERE c.id = $1 AND c.user_id = $2`,
    [cartId, userId],
  );
  const row = rows[0] as (Omit<CheckoutState, 'session'> & { session: { id: string; url: string; expiresAt: string } | null }) | undefined;
  if (!row) throw notFound('Cart');
  return { ...row, session: row.session && { ...row.session, expiresAt: new Date(row.session.expiresAt) } };
}

function checkoutOut(cartId: string, session: { id: string; url: string; expiresAt: Date }): CheckoutOut {
  return { cartId, sessionId: session.id, url: session.url, expiresAt: session.expiresAt.toISOString() };
}

/**
 * Starts Checkout for a cart, or hands back its live session. Prices come from our products
 * table. The Stripe idempotency key is the cart's version, so double taps and retries get the
 * same session, and the write that moves the cart is conditional on that version: an edit that
 * slipped in between loses nothing, and the session made for the old contents is expired.
 */
export async function startCheckout(env: Env, f: Fulfilment, userId: string, cartId: string): Promise<{ checkout: CheckoutOut; created: boolean }> {
  const { sql } = f;
  const cfg = config(env);
  const stripe = stripeClient(env);
  for (let attempt = 0; ; attempt++) {
    const state = await readCheckoutState(sql, userId, cartId);
    if (state.status === 'checkout_pending' && state.session) {
      if (state.session.expiresAt.getTime() <= Date.now() && attempt === 0) {
        // Past its expiry the session may still have been paid just in time: ask Stripe, apply
        // what it says, and only then decide.
        await reconcileSession(f, stripe, state.session.id);
        continue;
      }
      return { checkout: checkoutOut(cartId, state.session), created: false };
    }
    if (!transition(state.status, 'checkout')) {
      throw new ApiError('cart_not_editable', `The cart is ${state.status}; only open or payment_failed carts can be checked out`);
    }
    if (state.items.length === 0) throw new ApiError('cart_empty', 'The cart has no items');
    const gone = state.items.find((i) => !i.active);
    if (gone) throw notFound(`Product ${gone.productId}`);
    const currency = state.items[0]!.currency;
    if (state.items.some((i) => i.currency !== currency || i.itemCurrency !== i.currency)) {
      throw new ApiError('currency_mismatch', 'The cart holds products priced in different currencies');
    }

    const ttlMinutes = cfg.required('CHECKOUT_TTL_MINUTES');
    const base = cfg.required('PUBLIC_BASE_URL');
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
          expires_at: expiresAt(ttlMinutes),
        },
        { idempotencyKey: `checkout-${cartId}-v${state.version}` },
      );
    } catch (err) {
      throw stripeFailure(err);
    }

    const lines = state.items.map(cartItem);
    const amountTotal = lines.reduce((n, l) => n + l.lineTotal, 0);
    const live = { id: session.id, url: session.url!, expiresAt: new Date(session.expires_at * 1000) };
    const [row] = await sql.query(
      `WITH saved AS (
         INSERT INTO checkouts (session_id, cart_id, url, expires_at, currency, amount_total, items)
         SELECT $3, c.id, $4, $5, $6, $7, $8::jsonb FROM carts c
         WHERE c.id = $1 AND c.version = $2 AND c.status = ANY($9::cart_status[])
         ON CONFLICT (session_id) DO NOTHING
         RETURNING cart_id
       ), moved AS (
         -- Checked again here: an edit committed while this statement waited for the row lock
         -- must win over a session made for the old contents.
         UPDATE carts SET status = 'checkout_pending', version = version + 1, checkout_session_id = $3, updated_at = now()
         FROM saved WHERE carts.id = saved.cart_id AND carts.version = $2 AND carts.status = ANY($9::cart_status[])
         RETURNING carts.id
       )
       SELECT EXISTS (SELECT 1 FROM moved) AS moved`,
      [cartId, state.version, live.id, live.url, live.expiresAt.toISOString(), currency, amountTotal, JSON.stringify(lines), [state.status]],
    );
    if ((row as { moved: boolean }).moved) return { checkout: checkoutOut(cartId, live), created: true };

    // Someone else moved the cart first. With the same version that was a double tap and
    // Stripe gave both of us this session; otherwise our session is for contents that no longer
    // exist and must not stay payable.
    const now = await readCheckoutState(sql, userId, cartId);
    if (now.session?.id === live.id) return { checkout: checkoutOut(cartId, live), created: false };
    await stripe.checkout.sessions.expire(live.id).catch((err: unknown) => {
      console.error(JSON.stringify({ level: 'error', msg: 'orphan_session_not_expired', sessionId: live.id, error: String(err) }));
    });
    if (attempt >= 2) throw new ApiError('service_unavailable', 'The cart changed during checkout; try again');
  }
}

/** Stripe accepts 30 minutes to 24 hours; keep a margin so clock skew cannot push us outside. */
function expiresAt(ttlMinutes: number): number {
  const seconds = Math.min(Math.max(ttlMinutes * 60, 30 * 60 + 60), 24 * 3600 - 60);
  return Math.floor(Date.now() / 1000) + seconds;
}

/** Reads a session back from Stripe and applies what it says, as its webhook would have. */
export async function reconcileSession(f: Fulfilment, stripe: Stripe, sessionId: string): Promise<{ session: Stripe.Checkout.Session; result: EffectResult | null }> {
  let session: Stripe.Checkout.Session;
  try {
    session = await stripe.checkout.sessions.retrieve(sessionId, { expand: ['payment_intent'] });
  } catch (err) {
    if (err instanceof Stripe.errors.StripeInvalidRequestError && err.statusCode === 404) throw notFound('Checkout Session');
    throw stripeFailure(err);
  }
  const effect = effectOfSession(session);
  return { session, result: effect ? await f.apply(effect) : null };
}

/**
 * Cancels the live Checkout Session: Stripe expires it first, so it can no longer be paid,
 * then the cart goes back to open. A session that completed meanwhile is applied instead.
 */
export async function cancelCheckout(env: Env, f: Fulfilment, userId: string, cartId: string): Promise<z.infer<typeof Cart>> {
  const { sql } = f;
  const state = await readCheckoutState(sql, userId, cartId);
  if (!state.session || !transition(state.status, 'cancel_checkout')) {
    throw new ApiError('cart_not_editable', `The cart is ${state.status}; there is no checkout to cancel`);
  }
  const stripe = stripeClient(env);
  try {
    await stripe.checkout.sessions.expire(state.session.id);
  } catch (err) {
    const { session } = await reconcileSession(f, stripe, state.session.id);
    if (session.status === 'complete') {
      throw new ApiError('cart_not_editable', 'The checkout has already been completed and cannot be cancelled');
    }
    if (session.status !== 'expired') throw stripeFailure(err);
  }
  await f.apply(cancelEffect(state.session.id));
  const cart = await getCart(sql, userId, cartId);
  if (isEditable(cart.status)) return cart;
  throw new ApiError('cart_not_editable', `The cart is ${cart.status}`);
}
