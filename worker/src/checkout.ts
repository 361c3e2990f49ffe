import {
  CART_LIMITS,
  type CartStatus,
  EDITABLE_STATUSES,
  isEditable,
  isPaymentPending,
  transition,
} from './cart-state.ts';
import {
  cartItem,
  cartOf,
  checkoutOut,
  type LiveLine,
  limitExceeded,
  liveLines,
  noLongerSold,
  notEditable,
  outOfStock,
  selectCart,
  selectCartOfSession,
} from './carts.ts';
import { databaseFailure, type Rows, type Sql, type Statement } from './db.ts';
import type { Config, ShippingRate } from './env.ts';
import { ApiError, notFound } from './errors.ts';
import type { EffectResult, Fulfilment } from './fulfilment.ts';
import { log } from './log.ts';
import { available } from './products.ts';
import type { CartOut, CheckoutOut } from './schemas.ts';
import type { Services } from './services.ts';
import {
  type Stripe,
  type StripeApi,
  stripeFailure,
  stripeKeyInUse,
  stripeKeyReused,
  stripeNotFound,
  stripeSavedFailure,
} from './stripe.ts';
import { type CartEffect, cancelEffect, effectOfSession, idOf, missingSessionEffect } from './stripe-events.ts';
import { CHECKOUT_LIFETIME_MINUTES } from './stripe-limits.ts';

interface CheckoutState {
  status: CartStatus;
  /** The shopper's active cart (a superseded payment_failed cart is not). */
  active: boolean;
  version: number;
  /**
   * This checkout attempt: its idempotency key's suffix, its fixed expires_at (null until
   * claimed), and whether a session made now under it would live long enough.
   */
  attempt: { number: number; expiresAt: Date | null; usable: boolean };
  session: { id: string; url: string; expiresAt: Date } | null;
  items: LiveLine[];
}

const STRIPE_MIN_LIFETIME_S = CHECKOUT_LIFETIME_MINUTES.min * 60;
const STRIPE_MAX_LIFETIME_S = CHECKOUT_LIFETIME_MINUTES.max * 60;
// An attempt's expires_at is fixed when the attempt starts, so every retry under its key sends
// the same parameters; the margin leaves room for those retries and for clock skew. An attempt
// is taken up again (a double tap, a retry after Stripe did not answer) only within the margin
// (less what Stripe's minimum lifetime needs at the shortest TTL), so every session lives at
// least CHECKOUT_TTL_MINUTES, as far as Stripe's 24 hours allow.
const LIFETIME_MARGIN_S = 60;
const CLOCK_SKEW_S = 30;
// An attempt whose session would live less than this is not used: a new one is claimed.
const ATTEMPT_USABLE_S = STRIPE_MIN_LIFETIME_S + CLOCK_SKEW_S;

const checkoutStateSelect = `
  SELECT c.status, c.active, c.version,
         -- Usable by the database's clock, which set it: the Worker's own may run apart from it.
         json_build_object('number', c.checkout_attempt, 'expiresAt', c.checkout_attempt_expires_at,
                           'usable', COALESCE(c.checkout_attempt_expires_at >= now() + make_interval(secs => ${ATTEMPT_USABLE_S}), false))
           AS attempt,
         CASE WHEN k.session_id IS NULL THEN NULL
              ELSE json_build_object('id', k.session_id, 'url', k.url, 'expiresAt', k.expires_at) END AS session,
         ${liveLines(true)} AS items
  FROM carts c LEFT JOIN checkouts k ON k.session_id = c.checkout_session_id
  WHERE c.id = $1 AND c.user_id = $2`;

type CheckoutStateRow = Omit<CheckoutState, 'session' | 'attempt'> & {
  session: { id: string; url: string; expiresAt: string } | null;
  attempt: { number: number; expiresAt: string | null; usable: boolean };
};

function checkoutState(rows: Record<string, unknown>[]): CheckoutState {
  const row = rows[0] as CheckoutStateRow | undefined;
  if (!row) throw notFound('Cart');
  return {
    ...row,
    attempt: {
      ...row.attempt,
      expiresAt: row.attempt.expiresAt === null ? null : new Date(row.attempt.expiresAt),
    },
    session: row.session && { ...row.session, expiresAt: new Date(row.session.expiresAt) },
  };
}

async function readCheckoutState(sql: Sql, userId: string, cartId: string): Promise<CheckoutState> {
  return checkoutState(await sql.query(checkoutStateSelect, [cartId, userId]));
}

/**
 * Reads the cart for checkout, in one round trip with claiming a checkout attempt when the cart
 * is editable, holds items (an empty cart's refusal changes nothing) and has no attempt that is
 * still usable: a new attempt number (so a new Stripe idempotency key) and its expires_at. Concurrent calls (a double tap) share one attempt: the
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
  const reusedAbove = Math.max(lifetime - LIFETIME_MARGIN_S, ATTEMPT_USABLE_S);
  const [, rows] = await sql.transaction([
    sql.query(
      `UPDATE carts SET checkout_attempt = checkout_attempt + 1,
                        checkout_attempt_expires_at = now() + make_interval(secs => $3)
       WHERE id = $1 AND user_id = $2 AND active AND status = ANY($5::cart_status[])
         AND EXISTS (SELECT 1 FROM cart_items i WHERE i.cart_id = carts.id)
         AND (checkout_attempt_expires_at IS NULL OR checkout_attempt_expires_at < now() + make_interval(secs => $4))`,
      [cartId, userId, lifetime, reusedAbove, EDITABLE_STATUSES],
    ),
    sql.query(checkoutStateSelect, [cartId, userId]),
  ]);
  return checkoutState(rows as Record<string, unknown>[]);
}

/**
 * The next checkout of the cart uses a new key: Stripe may have saved this attempt's failure,
 * or its session is being expired. Answers the cart's session as it is once no checkout can
 * move the cart under this attempt any more (the row lock waits for one doing so).
 */
async function abandonAttempt(sql: Sql, cartId: string, attempt: number): Promise<string | null> {
  const [row] = (await sql.query(
    `UPDATE carts SET checkout_attempt = checkout_attempt + CASE WHEN checkout_attempt = $2 THEN 1 ELSE 0 END,
                      checkout_attempt_expires_at = CASE WHEN checkout_attempt = $2 THEN NULL ELSE checkout_attempt_expires_at END
     WHERE id = $1
     RETURNING checkout_session_id`,
    [cartId, attempt],
  )) as { checkout_session_id: string | null }[];
  return row?.checkout_session_id ?? null;
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
  // Stripe and the fulfilment are built only when used: handing back the live session needs neither.
  const { sql, config: cfg } = services;
  for (let round = 0; ; round++) {
    const state = await claimCheckoutAttempt(sql, userId, cartId, cfg.required('CHECKOUT_TTL_MINUTES'));
    if (state.status === 'checkout_pending' && state.session) {
      if (state.session.expiresAt.getTime() <= Date.now() && round === 0) {
        // Past its expiry the session may still have been paid just in time: ask Stripe, apply
        // what it says, and only then decide.
        await reconcileSession(services.fulfilment, services.stripe, state.session.id);
        continue;
      }
      return { checkout: checkoutOut(cartId, state.session), created: false };
    }
    if (!state.active || !transition(state.status, 'checkout')) throw notEditable(state.status);
    if (state.items.length === 0) throw new ApiError('cart_empty', 'The cart has no items');
    let prepared: PricedCart & {
      rates: ShippingRate[];
      params: Stripe.Checkout.SessionCreateParams;
      stripe: StripeApi;
    };
    try {
      const priced = priceItems(state.items);
      // The claim's look at the items read its own statement's snapshot: an item committed between
      // it and the read above leaves items here and no attempt claimed for them. Claim again.
      if (!state.attempt.usable) {
        if (round < 2) continue;
        throw changedMeanwhile();
      }
      const rates = offeredRates(cfg, priced.currency);
      const params = sessionParams(cfg, cartId, state, priced.currency, rates);
      prepared = { ...priced, rates, params, stripe: services.stripe };
    } catch (err) {
      // Refused before Stripe was asked (the cart, or the shop's configuration): once the cause is
      // fixed, the next checkout gets a whole CHECKOUT_TTL_MINUTES, not what is left of this attempt.
      if (state.attempt.expiresAt) await abandonAttempt(sql, cartId, state.attempt.number);
      throw err;
    }
    const { currency, lines, amountTotal, rates, params, stripe } = prepared;
    const attempt = state.attempt.number;
    let session: Stripe.Checkout.Session;
    try {
      session = await stripe.createCheckoutSession(params, `checkout-${cartId}-v${state.version}-a${attempt}`);
    } catch (err) {
      if (stripeSavedFailure(err)) await abandonAttempt(sql, cartId, attempt);
      // Another request with this key is still running at Stripe (a double tap): its result
      // is about to be the cart's live session.
      if (stripeKeyInUse(err) && round < 2) continue;
      // The key was first sent with other parameters (a product changed after a failure Stripe
      // did not save): the attempt is abandoned above, so the next round has a key of its own.
      // The key is ours, not the client's: out of rounds, it is a change to try again after.
      if (stripeKeyReused(err)) {
        if (round < 2) continue;
        throw changedMeanwhile(err);
      }
      throw stripeFailure(err);
    }

    const live = { id: session.id, url: session.url!, expiresAt: new Date(session.expires_at * 1000) };
    const moved = await moveToCheckout(sql, {
      cartId,
      version: state.version,
      attempt,
      from: state.status,
      session: live,
      currency,
      amountTotal,
      lines,
      // Stripe answers the shipping options in the order they were sent, each with the id it gave the rate.
      shippingOptions: rates.map((rate, i) => ({
        id: idOf(session.shipping_options[i]?.shipping_rate),
        name: rate.name,
        amount: rate.amount,
        minDays: rate.minDays ?? null,
        maxDays: rate.maxDays ?? null,
      })),
    });
    if (moved.moved) return { checkout: checkoutOut(cartId, live), created: true };

    // Someone else moved the cart first. With the same version that was a double tap and
    // Stripe gave both of us this session. Its checkout saved, the session was the cart's until
    // the cart moved on (cancelled, expired, paid): the double tap still gets the same session,
    // and leaves the cart as it is; but a cart being paid through another session since hands
    // that one back (the next round). Otherwise our session is for contents or prices that no
    // longer exist, or for units others took meanwhile, and must not stay payable. Its attempt
    // is given up first: its key would hand the session back to a double tap, which could then
    // move the cart to it once units came free (the move checks the attempt).
    if (moved.cartSession === live.id) return { checkout: checkoutOut(cartId, live), created: false };
    if (moved.known) {
      if (moved.cartPaymentPending) continue;
      return { checkout: checkoutOut(cartId, live), created: false };
    }
    if ((await abandonAttempt(sql, cartId, attempt)) === live.id)
      return { checkout: checkoutOut(cartId, live), created: false };
    await expireOrphan(stripe, live.id);
    if (moved.short.length) throw outOfStock(moved.short);
    if (round >= 2) throw changedMeanwhile();
  }
}

/**
 * Expires a session made for contents, prices or units that are gone. Stripe refuses to expire
 * one that is no longer open (https://docs.stripe.com/api/checkout/sessions/expire): a double tap
 * that got the same session may have expired it first, which is no news. One still payable, or
 * one that could not be read, is for an operator to expire.
 */
async function expireOrphan(stripe: StripeApi, sessionId: string): Promise<void> {
  try {
    await stripe.expireCheckoutSession(sessionId);
  } catch (err) {
    const status = await stripe.retrieveCheckoutSession(sessionId).then(
      (session) => session.status,
      () => null,
    );
    if (status !== 'expired') log.error('orphan_session_not_expired', { sessionId, status, error: err });
  }
}

/** Out of rounds while the cart, or what Stripe knows of it, kept changing: the next try goes on. */
function changedMeanwhile(cause?: unknown): ApiError {
  return new ApiError(
    'service_unavailable',
    'The cart changed during checkout; try again',
    cause === undefined ? undefined : { cause },
  );
}

interface PricedCart {
  currency: string;
  lines: ReturnType<typeof cartItem>[];
  amountTotal: number;
}

/** The cart's lines at our current prices, or the refusal that keeps them from checkout. */
function priceItems(items: LiveLine[]): PricedCart {
  const gone = items.find((i) => !i.active);
  if (gone) throw noLongerSold(gone, 'remove it from the cart to check out');
  const currency = items[0]!.productCurrency;
  if (items.some((i) => i.productCurrency !== currency || i.currency !== i.productCurrency)) {
    throw new ApiError('currency_mismatch', 'The cart holds products priced in different currencies');
  }
  const lines = items.map(cartItem);
  const amountTotal = lines.reduce((n, l) => n + l.lineTotal, 0);
  // Prices may have risen since the items were added.
  if (lines.length > CART_LIMITS.lines || amountTotal > CART_LIMITS.totalAmount(currency))
    throw limitExceeded(currency);
  // Checked again when the cart moves: others may be buying the same units right now.
  const short = items.filter((i) => i.available !== null && i.quantity > i.available);
  if (short.length) throw outOfStock(short.map((i) => ({ id: i.productId, available: i.available! })));
  return { currency, lines, amountTotal };
}

/**
 * Checkout takes https images only. The scheme is compared as parsed (`HTTPS://` is https too,
 * RFC 3986 §3.1) and the address sent as the URL standard writes it.
 */
function httpsImages(imageUrl: string): { images: string[] } | undefined {
  const url = URL.canParse(imageUrl) ? new URL(imageUrl) : undefined;
  return url?.protocol === 'https:' ? { images: [url.href] } : undefined;
}

/**
 * The Checkout Session for the cart, priced from our products: shipping address collection and
 * rates, Stripe Tax and promotion codes as configured. Everything here is fixed for the attempt
 * (cart version, products, configuration), as Stripe requires of the parameters sent under one
 * idempotency key.
 */
function sessionParams(
  cfg: Config,
  cartId: string,
  state: CheckoutState,
  currency: string,
  rates: ShippingRate[],
): Stripe.Checkout.SessionCreateParams {
  const base = cfg.required('PUBLIC_BASE_URL');
  // Stripe Tax adds tax to our prices (exclusive) rather than taking it out of them
  // (https://docs.stripe.com/payments/checkout/taxes); without it tax codes only label the product.
  const tax = cfg.optional('STRIPE_AUTOMATIC_TAX') ?? false;
  const taxBehavior = tax ? { tax_behavior: 'exclusive' as const } : {};
  const countries = cfg.optional('SHIPPING_COUNTRIES');
  return {
    mode: 'payment',
    line_items: state.items.map((i) => ({
      quantity: i.quantity,
      price_data: {
        currency,
        unit_amount: i.unitAmount,
        ...taxBehavior,
        product_data: {
          name: i.name,
          ...(i.description && { description: i.description }),
          ...(i.imageUrl && httpsImages(i.imageUrl)),
          ...(i.taxCode && { tax_code: i.taxCode }),
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
    ...(tax && { automatic_tax: { enabled: true } }),
    ...(cfg.optional('ALLOW_PROMOTION_CODES') && { allow_promotion_codes: true }),
    // https://docs.stripe.com/payments/during-payment/charge-shipping: rates made with the
    // session (shipping_rate_data), the first one preselected.
    ...(countries && {
      shipping_address_collection: {
        allowed_countries: countries as Stripe.Checkout.SessionCreateParams.ShippingAddressCollection.AllowedCountry[],
      },
      ...(rates.length > 0 && {
        shipping_options: rates.map((rate) => ({
          shipping_rate_data: {
            type: 'fixed_amount' as const,
            display_name: rate.name,
            fixed_amount: { amount: rate.amount, currency: rate.currency },
            ...taxBehavior,
            ...((rate.minDays || rate.maxDays) && {
              delivery_estimate: {
                ...(rate.minDays && { minimum: { unit: 'business_day' as const, value: rate.minDays } }),
                ...(rate.maxDays && { maximum: { unit: 'business_day' as const, value: rate.maxDays } }),
              },
            }),
          },
        })),
      }),
    }),
  };
}

/** The configured shipping rates in the cart's currency, offered only where an address is collected. */
function offeredRates(cfg: Config, currency: string): ShippingRate[] {
  if (!cfg.optional('SHIPPING_COUNTRIES')) return [];
  return (cfg.optional('SHIPPING_RATES') ?? []).filter((rate) => rate.currency === currency);
}

/**
 * Moves the cart to checkout_pending with the session and its snapshot, and reserves the
 * cart's quantities of every counted product, all or nothing, in one transaction (one round
 * trip). The cart's row is locked first, then the products in id order: the order every item
 * edit, webhook and product upsert takes them in, so none of them can deadlock with a checkout.
 * The statement that follows then sees the cart's and the products' latest state, and no other
 * checkout can take the same units meanwhile. Products not counted are locked too: an upsert
 * that starts counting one then either sees this checkout, to hold its units, or is seen by it.
 * Nothing moves when the cart or one of its products changed since it was read (the next round
 * then sees why), when the session's attempt was given up, or when a product is short; `short`
 * then names those, with what is left, if the cart is still as the session was made for.
 */
async function moveToCheckout(
  sql: Sql,
  m: {
    cartId: string;
    version: number;
    /** The attempt whose idempotency key made the session. */
    attempt: number;
    from: CartStatus;
    session: { id: string; url: string; expiresAt: Date };
    currency: string;
    amountTotal: number;
    lines: ReturnType<typeof cartItem>[];
    shippingOptions: {
      id: string | null;
      name: string;
      amount: number;
      minDays: number | null;
      maxDays: number | null;
    }[];
  },
): Promise<{
  moved: boolean;
  known: boolean;
  short: { id: string; available: number }[];
  cartSession: string | null;
  cartPaymentPending: boolean;
}> {
  const wanted = JSON.stringify(
    m.lines.map((l) => ({ productId: l.productId, quantity: l.quantity, unitAmount: l.unitAmount })),
  );
  const [, , [row], [cart]] = (await sql.transaction(
    [
      sql.query('SELECT FROM carts WHERE id = $1 FOR UPDATE', [m.cartId]),
      sql.query(
        `SELECT 1 FROM products WHERE id = ANY(ARRAY(SELECT "productId" FROM jsonb_to_recordset($1::jsonb) AS w("productId" text)))
           ORDER BY id FOR UPDATE`,
        [wanted],
      ),
      sql.query(
        // `wanted`: each line's product as it is now, looked up by key (OFFSET 0): joined as a set,
        // the lines (which Postgres guesses at 100 rows) made it scan the whole catalogue. `changed`:
        // deactivated or repriced while Stripe made the session, which then sells what is no longer offered.
        `WITH wanted AS (
           SELECT w.quantity, w."unitAmount" AS sold_at, p.id, p.active, p.unit_amount, p.currency, p.stock, p.reserved
           FROM jsonb_to_recordset($10::jsonb) AS w("productId" text, quantity int, "unitAmount" bigint)
           LEFT JOIN LATERAL (SELECT * FROM products WHERE id = w."productId" OFFSET 0) p ON true
         ), changed AS (
           SELECT 1 FROM wanted w
           WHERE w.id IS NULL OR NOT w.active OR w.unit_amount <> w.sold_at OR w.currency <> $6
         ), short AS (
           SELECT w.id, ${available('w')} AS available FROM wanted w WHERE ${available('w')} < w.quantity
         ), as_made AS (
           -- The cart as the session was made for: only then is a shortage its answer; a cart
           -- changed meanwhile (a line lowered) is priced and counted again by the next round.
           SELECT 1 FROM carts c
           WHERE c.id = $1 AND c.version = $2 AND c.status = ANY($9::cart_status[]) AND c.active
             AND c.checkout_attempt = $12 AND NOT EXISTS (SELECT 1 FROM changed)
         ), saved AS (
           INSERT INTO checkouts (session_id, cart_id, url, expires_at, currency, amount_total, items, shipping_options)
           SELECT $3, $1, $4, $5, $6, $7, $8::jsonb, $11::jsonb FROM as_made
           WHERE NOT EXISTS (SELECT 1 FROM short)
           ON CONFLICT (session_id) DO NOTHING
           RETURNING cart_id
         ), moved AS (
           -- Checked again here: an edit committed since the cart was read must win over a
           -- session made for the old contents, and a session of an abandoned attempt (being
           -- expired by the request that gave it up) must not become the cart's. The attempt is
           -- spent: the cart's next checkout (after a cancel, an expiry or a failed payment)
           -- claims one of its own, with a whole CHECKOUT_TTL_MINUTES, not what is left of this one's.
           UPDATE carts SET status = 'checkout_pending', version = version + 1, checkout_session_id = $3, updated_at = now(),
                            checkout_attempt_expires_at = NULL
           FROM saved WHERE carts.id = saved.cart_id AND carts.version = $2 AND carts.status = ANY($9::cart_status[]) AND carts.active
             AND carts.checkout_attempt = $12
           RETURNING carts.id
         ), held AS (
           INSERT INTO stock_holds (session_id, product_id, quantity)
           SELECT $3, w.id, w.quantity FROM moved, wanted w WHERE w.stock IS NOT NULL
           RETURNING product_id, quantity
         ), reserved AS (
           UPDATE products p SET reserved = p.reserved + h.quantity FROM held h WHERE p.id = h.product_id
         )
         SELECT EXISTS (SELECT 1 FROM moved) AS moved,
                EXISTS (SELECT 1 FROM checkouts WHERE session_id = $3 AND cart_id = $1) AS known,
                CASE WHEN EXISTS (SELECT 1 FROM as_made)
                     THEN COALESCE((SELECT json_agg(json_build_object('id', id, 'available', available) ORDER BY id) FROM short), '[]')
                     ELSE '[]' END AS short`,
        [
          m.cartId,
          m.version,
          m.session.id,
          m.session.url,
          m.session.expiresAt.toISOString(),
          m.currency,
          m.amountTotal,
          JSON.stringify(m.lines),
          [m.from],
          wanted,
          JSON.stringify(m.shippingOptions),
          m.attempt,
        ],
      ),
      // A statement of its own, so it sees what a concurrent checkout committed while the one
      // above waited for it: the session the cart has now, whoever moved it.
      sql.query('SELECT checkout_session_id, status FROM carts WHERE id = $1', [m.cartId]),
    ],
    { isolationLevel: 'ReadCommitted' },
  )) as [
    unknown,
    unknown,
    { moved: boolean; known: boolean; short: { id: string; available: number }[] }[],
    { checkout_session_id: string | null; status: CartStatus }[],
  ];
  return {
    ...row!,
    cartSession: cart?.checkout_session_id ?? null,
    cartPaymentPending: cart ? isPaymentPending(cart.status) : false,
  };
}

/**
 * Reads a session back from Stripe and applies what it says, as its webhook would have. A
 * session Stripe does not know (404: "doesn't exist", https://docs.stripe.com/api/errors) is
 * recorded like an expiry and logged; `session` is then null. That releases a checkout_pending
 * cart, which could otherwise never be checked out or cancelled again; an awaiting_payment one
 * is kept (the table has no such move): its transfer is money on its way, and the 404 may come
 * from a key of another account or sandbox, where it still clears.
 */
export async function reconcileSession(
  f: Fulfilment,
  stripe: StripeApi,
  sessionId: string,
  read?: Statement,
): Promise<{ session: Stripe.Checkout.Session | null; result: EffectResult | null; read: Rows | null }> {
  let session: Stripe.Checkout.Session;
  try {
    session = await stripe.retrieveCheckoutSession(sessionId);
  } catch (err) {
    if (!stripeNotFound(err)) throw stripeFailure(err);
    const missing = await applied(f, missingSessionEffect(sessionId), read);
    logSessionMissing(sessionId, missing.result.cartId);
    return { session: null, ...missing };
  }
  const effect = effectOfSession(session);
  return { session, ...(effect ? await applied(f, effect, read) : { result: null, read: null }) };
}

/**
 * Stripe answered 404 for our session. Stripe does not delete live sessions, so in production this
 * is worth an operator's look; with its cart, which the admin API finds (the session alone needs SQL).
 */
function logSessionMissing(sessionId: string, cartId: string | null): void {
  log.warn('stripe_session_missing', { sessionId, cartId });
}

async function applied(f: Fulfilment, effect: CartEffect, read: Statement | undefined) {
  return read ? f.applyAndRead(effect, read) : { result: await f.apply(effect), read: null };
}

/**
 * The cart of a session Stripe sent the shopper back from (the success page), confirmed with
 * Stripe while its payment may still come (confirmedWithStripe); `replaced` when the cart has
 * since gone on to another session, which is not asked about.
 */
export async function cartOfReturningSession(
  services: Services,
  sessionId: string,
  beforeAskingStripe: () => Promise<void>,
): Promise<{ cart: CartOut; replaced: boolean }> {
  const cart = cartOf(await selectCartOfSession(services.sql, sessionId));
  if (!cart) throw notFound('Checkout');
  // A tab kept from an earlier checkout of the cart (a failed bank transfer, then a new
  // checkout): the cart's status is its newer session's, and this one can no longer move it.
  if (cart.checkout && cart.checkout.sessionId !== sessionId) return { cart, replaced: true };
  return { cart: await confirmedWithStripe(services, cart, sessionId, beforeAskingStripe), replaced: false };
}

/**
 * `cart`, as read for a landing page, confirmed with Stripe while the payment of its session
 * may still come: the same fulfilment as the webhook, so a late or lost webhook cannot leave a
 * paid cart pending. Only sessions we made reach Stripe, and `beforeAskingStripe` (the page's
 * rate limit) runs first. Stripe being slow, our Stripe key being wrong, or the session's reads
 * being spent does not hide the order: the cart is shown as we know it, with its way back to
 * the app, and the webhook or the scheduled job completes it.
 */
export async function confirmedWithStripe(
  services: Services,
  cart: CartOut,
  sessionId: string,
  beforeAskingStripe: () => Promise<void>,
): Promise<CartOut> {
  if (!isPaymentPending(cart.status)) return cart;
  try {
    await beforeAskingStripe();
  } catch (err) {
    if (err instanceof ApiError && err.code === 'rate_limited') return cart;
    throw err;
  }
  const { sql, fulfilment: f } = services;
  try {
    // The cart as the fulfilment leaves it, read in its transaction; unread when nothing was applied.
    const { read } = await reconcileSession(f, services.stripe, sessionId, selectCartOfSession(sql, sessionId));
    return (read && cartOf(read)) || cart;
  } catch (err) {
    const passing =
      err instanceof ApiError ? ['service_unavailable', 'misconfigured'].includes(err.code) : databaseFailure(err);
    if (!passing) throw err;
    log.warn('landing_page_reconcile_failed', { sessionId, error: err instanceof Error ? err.message : String(err) });
    return cart;
  }
}

/**
 * Cancels the live Checkout Session: Stripe expires it first, so it can no longer be paid,
 * then the cart goes back to open. A session that completed meanwhile is applied instead.
 * `sessionId`, when given, is the session the client means: a cancel from an old page (its
 * session cancelled, and the cart checked out again since on another device) must not expire
 * the session being paid there.
 */
export async function cancelCheckout(
  services: Services,
  userId: string,
  cartId: string,
  sessionId?: string,
): Promise<CartOut> {
  const { sql, stripe, fulfilment: f } = services;
  const state = await readCheckoutState(sql, userId, cartId);
  if (!state.session || !transition(state.status, 'cancel_checkout')) {
    throw new ApiError('cart_not_editable', `The cart is ${state.status}; there is no checkout to cancel`);
  }
  if (sessionId && sessionId !== state.session.id) {
    throw new ApiError(
      'cart_not_editable',
      `Checkout Session ${sessionId} is no longer the cart's: another checkout is live, and nothing was cancelled`,
    );
  }
  try {
    await stripe.expireCheckoutSession(state.session.id);
  } catch (err) {
    // A session Stripe does not know (404) is cancelled like an expired one. Stripe refuses to
    // expire a session that is no longer open: find out what it is now.
    const missing = stripeNotFound(err);
    if (missing) logSessionMissing(state.session.id, cartId);
    const { session, read } = missing
      ? { session: null, read: null }
      : await reconcileSession(f, stripe, state.session.id, selectCart(sql, userId, cartId));
    if (session?.status === 'complete') {
      throw new ApiError('cart_not_editable', 'The checkout has already been completed and cannot be cancelled');
    }
    if (session && session.status !== 'expired') throw stripeFailure(err);
    // Expired at Stripe: reading it back gave the cart back, read in the same batch.
    const cart = read && cartOf(read);
    if (cart && isEditable(cart.status)) return cart;
  }
  const { read } = await f.applyAndRead(cancelEffect(state.session.id), selectCart(sql, userId, cartId));
  const cart = cartOf(read);
  if (!cart) throw notFound('Cart');
  if (isEditable(cart.status)) return cart;
  throw new ApiError('cart_not_editable', `The cart is ${cart.status}`);
}
