import { StandinControls } from '@edge-checkout/test-support/standin';
import StripeSdk from 'stripe';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import type { CartOut as Cart } from '../src/schemas.ts';
import { stripeFailure } from '../src/stripe.ts';
import { call, callWithEnv, createProduct, db, holdLocks, newUser, openCart, problem } from './helpers.ts';
import { standin } from './standin.ts';
import {
  type CheckoutBody,
  cartStatus,
  checkedOutCart,
  deliver,
  eventsFor,
  expiredSessionsOf,
  STRIPE_ADDRESS,
  sessionObject,
  standinStripe,
  stripeEnv,
  stripeEvent,
} from './stripe-helpers.ts';

const stripe = standinStripe();

async function cartWith(token: string, items: { unitAmount: number; quantity: number; currency?: string }[]) {
  const products = [];
  for (const item of items)
    products.push(await createProduct({ unitAmount: item.unitAmount, currency: item.currency }));
  const cartId = await openCart(
    token,
    products.map((p, i) => ({ id: p.id, quantity: items[i]!.quantity })),
  );
  return { cartId, products };
}

/** Sessions that live a day (CHECKOUT_TTL_MINUTES at its most). */
const dayLongEnv = { ...stripeEnv, CHECKOUT_TTL_MINUTES: 1440 } as unknown as typeof stripeEnv;

/** The cart's checkout attempt as it is 23 hours and 20 minutes after it began. */
const ageAttempt = (cartId: string) =>
  db().query(
    `UPDATE carts SET checkout_attempt_expires_at = checkout_attempt_expires_at - interval '23 hours 20 minutes' WHERE id = $1`,
    [cartId],
  );

/** A new session with the whole lifetime of CHECKOUT_TTL_MINUTES = 1440, not what is left of an older attempt. */
async function expectWholeDay(res: Response): Promise<void> {
  expect(res.status).toBe(201);
  const { expiresAt } = (await res.json()) as CheckoutBody;
  expect(new Date(expiresAt).getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
}

const checkout = (token: string, cartId: string) => call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token });

describe('POST /v1/carts/{cartId}/checkout', () => {
  // A test that failed while holding a checkout at Stripe must not leave it to act during the next.
  afterEach(async () => {
    await standin.clearFaults();
    await standin.releaseHeld();
  });

  it('creates a payment-mode session priced from the database and moves the cart to checkout_pending', async () => {
    const user = await newUser();
    const { cartId, products } = await cartWith(user.token, [
      { unitAmount: 2000, quantity: 2 },
      { unitAmount: 999, quantity: 1 },
    ]);
    const before = Date.now();
    // Asked in upper case, as a UUID may be written (RFC 9562 §4): still one cart with one id, in
    // the answer, at Stripe and in its idempotency key.
    const res = await checkout(user.token, cartId.toUpperCase());
    expect(res.status).toBe(201);
    const body = (await res.json()) as CheckoutBody;
    expect(body.cartId).toBe(cartId);
    expect(body.sessionId).toMatch(/^cs_/);

    const session = await stripe.checkout.sessions.retrieve(body.sessionId);
    expect(session).toMatchObject({
      mode: 'payment',
      amount_total: 4999,
      currency: 'usd',
      client_reference_id: cartId,
      url: body.url,
      metadata: { cart_id: cartId },
      success_url: 'http://127.0.0.1:8787/checkout/success?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: `http://127.0.0.1:8787/checkout/cancel?cart_id=${cartId}`,
    });
    // CHECKOUT_TTL_MINUTES defaults to 30: Stripe's minimum, with a small margin.
    expect(session.expires_at * 1000).toBeGreaterThanOrEqual(before + 30 * 60_000);
    expect(session.expires_at * 1000).toBeLessThanOrEqual(Date.now() + 31 * 60_000);
    expect(new Date(body.expiresAt).getTime()).toBe(session.expires_at * 1000);
    const lines = await stripe.checkout.sessions.listLineItems(body.sessionId);
    expect(lines.data.map((l) => [l.description, l.quantity, l.amount_total])).toEqual([
      [products[0]!.name, 2, 4000],
      [products[1]!.name, 1, 999],
    ]);

    const cart = (await (await call(`/v1/carts/${cartId}`, { token: user.token })).json()) as {
      status: string;
      checkout: CheckoutBody;
      totalAmount: number;
    };
    expect(cart.status).toBe('checkout_pending');
    expect(cart.checkout).toEqual(body);
    expect(cart.totalAmount).toBe(4999);
  });

  it("checks out with the Worker's clock a minute ahead of the database's", async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1500, quantity: 1 }]);
    // The attempt's expiry is set by the database's clock; judged by the Worker's own, a fresh
    // attempt looked spent, and every try answered 503.
    const now = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => now() + 60_000);
    let res: Response;
    try {
      res = await checkout(user.token, cartId);
    } finally {
      vi.restoreAllMocks();
    }
    expect(res.status).toBe(201);
    expect(await cartStatus(cartId)).toBe('checkout_pending');
  });

  it('gives one session for a double tap: concurrent and repeated calls', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1500, quantity: 1 }]);
    // All five taps wait at the cart's row lock to claim an attempt, then go on together.
    const lock = await holdLocks([`SELECT 1 FROM carts WHERE id = '${cartId}' FOR UPDATE`]);
    const pending = Promise.all(Array.from({ length: 5 }, () => checkout(user.token, cartId)));
    await lock.waitForWaiters(5, '%checkout_attempt = checkout_attempt + 1%');
    await lock.release();
    const answers = await pending;
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as CheckoutBody[];
    expect(new Set(bodies.map((b) => b.sessionId)).size).toBe(1);
    expect(answers.filter((r) => r.status === 201)).toHaveLength(1);
    expect(answers.filter((r) => r.status === 200)).toHaveLength(4);

    const again = await checkout(user.token, cartId);
    expect(again.status).toBe(200);
    expect(((await again.json()) as CheckoutBody).sessionId).toBe(bodies[0]!.sessionId);
    const [row] = await db().query('SELECT count(*)::int AS n FROM checkouts WHERE cart_id = $1', [cartId]);
    expect(row).toEqual({ n: 1 });
    // One session made at Stripe, not one per tap with the spares expired again.
    expect(await expiredSessionsOf(cartId)).toEqual([]);
  });

  it('keeps the cart frozen during checkout, and editable again after cancelling', async () => {
    const { user, cartId, products } = await checkedOutCart();
    const edit = await call(`/v1/carts/${cartId}/items/${products[0]!.id}`, {
      method: 'PUT',
      token: user.token,
      json: { quantity: 7 },
    });
    expect(edit.status).toBe(409);
    expect((await problem(edit)).code).toBe('cart_not_editable');

    const cancelled = await call(`/v1/carts/${cartId}/checkout`, { method: 'DELETE', token: user.token });
    expect(cancelled.status).toBe(200);
    expect(await cancelled.json()).toMatchObject({ id: cartId, status: 'open', checkout: null });
    const { sessionId } = (
      await db().query('SELECT session_id AS "sessionId" FROM checkouts WHERE cart_id = $1', [cartId])
    )[0] as { sessionId: string };
    expect((await stripe.checkout.sessions.retrieve(sessionId)).status).toBe('expired');

    const edited = await call(`/v1/carts/${cartId}/items/${products[0]!.id}`, {
      method: 'PUT',
      token: user.token,
      json: { quantity: 7 },
    });
    expect(edited.status).toBe(200);
    // A new checkout of the changed cart is a new session for the new contents.
    const next = await checkout(user.token, cartId);
    expect(next.status).toBe(201);
    const nextBody = (await next.json()) as CheckoutBody;
    expect(nextBody.sessionId).not.toBe(sessionId);
    expect((await stripe.checkout.sessions.retrieve(nextBody.sessionId)).amount_total).toBe(
      7 * products[0]!.unitAmount + 2 * products[1]!.unitAmount,
    );
  });

  it('gives a checkout after a cancelled one its own full lifetime (CHECKOUT_TTL_MINUTES), not what was left of the first', async () => {
    const env = dayLongEnv;
    const { user, cartId } = await checkedOutCart({ env });
    expect((await call(`/v1/carts/${cartId}/checkout`, { method: 'DELETE', token: user.token, env })).status).toBe(200);
    // 23 hours and 20 minutes later, as far as the cart's attempt is concerned.
    await ageAttempt(cartId);
    const next = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token, env });
    await expectWholeDay(next);
  });

  it('gives a checkout refused until the shop fixed a product its own full lifetime, not what was left of the refused one', async () => {
    const env = dayLongEnv;
    const user = await newUser();
    const { cartId, products } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
    await db().query('UPDATE products SET active = false WHERE id = $1', [products[0]!.id]);
    expect((await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token, env })).status).toBe(404);
    // The shop puts the product back 23 hours and 20 minutes later, as far as an attempt is concerned.
    await ageAttempt(cartId);
    await db().query('UPDATE products SET active = true WHERE id = $1', [products[0]!.id]);
    const next = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token, env });
    await expectWholeDay(next);
  });

  it("gives a checkout refused for the shop's configuration its own full lifetime once the configuration is fixed", async () => {
    const env = { ...dayLongEnv, SHIPPING_COUNTRIES: 'US' };
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
    const broken = { ...env, SHIPPING_RATES: JSON.stringify([{ name: 'Std\u001b', amount: 500, currency: 'usd' }]) };
    const refused = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token, env: broken });
    expect(refused.status).toBe(500);
    expect((await problem(refused)).code).toBe('misconfigured');
    // The operator fixes the rate 23 hours and 20 minutes later, as far as an attempt is concerned.
    await ageAttempt(cartId);
    const fixed = { ...env, SHIPPING_RATES: JSON.stringify([{ name: 'Std', amount: 500, currency: 'usd' }]) };
    const next = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token, env: fixed });
    await expectWholeDay(next);
  });

  it('gives a checkout after an edit its own full lifetime, though an attempt was left unfinished (Stripe did not answer)', async () => {
    const env = dayLongEnv;
    const user = await newUser();
    const { cartId, products } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
    // A checkout whose outcome was unknown keeps its attempt for a retry under the same key
    // (here claimed 23 hours and 20 minutes ago); the shopper then changes the cart.
    await db().query(
      `UPDATE carts SET checkout_attempt = checkout_attempt + 1,
                        checkout_attempt_expires_at = now() + interval '40 minutes' WHERE id = $1`,
      [cartId],
    );
    const edited = await call(`/v1/carts/${cartId}/items/${products[0]!.id}`, {
      method: 'PUT',
      token: user.token,
      json: { quantity: 2 },
    });
    expect(edited.status).toBe(200);
    const next = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token, env });
    await expectWholeDay(next);
  });

  it("shows a product's image in Checkout whatever the case of its https scheme", async () => {
    const user = await newUser();
    const product = await createProduct();
    const updated = await call(`/v1/admin/products/${product.id}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${stripeEnv.ADMIN_API_KEY}` },
      json: { name: product.name, unitAmount: 1000, currency: 'usd', imageUrl: 'HTTPS://Shop.example/Mug.png' },
    });
    expect(updated.status).toBe(200);
    const cartId = await openCart(user.token, [{ id: product.id, quantity: 1 }]);
    const sent: URLSearchParams[] = [];
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.endsWith('/v1/checkout/sessions') && typeof init?.body === 'string')
        sent.push(new URLSearchParams(init.body));
      return realFetch(input, init);
    });
    const res = await checkout(user.token, cartId);
    vi.restoreAllMocks();
    expect(res.status).toBe(201);
    expect(sent.map((form) => form.get('line_items[0][price_data][product_data][images][0]'))).toEqual([
      'https://shop.example/Mug.png',
    ]);
  });

  it('expires the session made for the old contents when an edit lands while Stripe creates it, and charges for the new ones', async () => {
    const user = await newUser();
    const { cartId, products } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
    // Checkout has read the cart and is held at Stripe, making its session, while the edit commits.
    await standin.addFault({ method: 'POST', path: '/v1/checkout/sessions', delayMs: 2 ** 31 - 1 });
    const started = checkout(user.token, cartId);
    await expect.poll(async () => (await standin.faults()).length).toBe(0);
    const edited = await call(`/v1/carts/${cartId}/items/${products[0]!.id}`, {
      method: 'PUT',
      token: user.token,
      json: { quantity: 3 },
    });
    expect(edited.status).toBe(200);
    expect(await standin.releaseHeld()).toBe(1);

    const res = await started;
    expect(res.status).toBe(201);
    const { sessionId } = (await res.json()) as CheckoutBody;
    expect((await stripe.checkout.sessions.retrieve(sessionId)).amount_total).toBe(3000);
    expect(await cartStatus(cartId)).toBe('checkout_pending');
    expect((await expiredSessionsOf(cartId)).map((s) => s.amount_total)).toEqual([1000]);
  });

  it.each([
    ['deactivated', { active: false }, 404, null],
    ['repriced', { unitAmount: 2500 }, 201, 2500],
  ] as const)(
    'does not sell a product %s while Stripe creates the session: the session made before is expired',
    async (_, change, status, charged) => {
      const user = await newUser();
      const { cartId, products } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
      // Checkout has read the cart and its prices, and is held at Stripe while the admin commits.
      await standin.addFault({ method: 'POST', path: '/v1/checkout/sessions', delayMs: 2 ** 31 - 1 });
      const started = checkout(user.token, cartId);
      await expect.poll(async () => (await standin.faults()).length).toBe(0);
      const updated = await call(`/v1/admin/products/${products[0]!.id}`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${stripeEnv.ADMIN_API_KEY}` },
        json: { name: products[0]!.name, unitAmount: 1000, currency: 'usd', active: true, ...change },
      });
      expect(updated.status).toBe(200);
      expect(await standin.releaseHeld()).toBe(1);

      const res = await started;
      expect(res.status).toBe(status);
      if (charged === null) {
        // Named as the shopper knows it, and by id for the app to point at the line.
        expect(await problem(res)).toMatchObject({
          code: 'not_found',
          detail: expect.stringContaining(`${products[0]!.name} (${products[0]!.id}) is no longer sold`),
          productId: products[0]!.id,
        });
        expect(await cartStatus(cartId)).toBe('open');
      } else {
        const { sessionId } = (await res.json()) as CheckoutBody;
        expect((await stripe.checkout.sessions.retrieve(sessionId)).amount_total).toBe(charged);
        expect(await cartStatus(cartId)).toBe('checkout_pending');
      }
      expect((await expiredSessionsOf(cartId)).map((s) => s.amount_total)).toEqual([1000]);
    },
  );

  it('asks Stripe about a session past its expiry before anything else: one paid in the last second stays paid', async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'paid');
    await db().query(`UPDATE checkouts SET expires_at = now() - interval '1 second' WHERE session_id = $1`, [
      state.sessionId,
    ]);
    const res = await checkout(state.user.token, state.cartId);
    expect(res.status).toBe(409);
    expect((await problem(res)).code).toBe('cart_not_editable');
    expect(await cartStatus(state.cartId)).toBe('paid');
    const [{ n }] = (await db().query('SELECT count(*)::int AS n FROM checkouts WHERE cart_id = $1', [
      state.cartId,
    ])) as [{ n: number }];
    expect(n).toBe(1);
  });

  it('answers 404 naming a product that was deactivated after it was added, and starts nothing', async () => {
    const user = await newUser();
    const { cartId, products } = await cartWith(user.token, [
      { unitAmount: 1000, quantity: 1 },
      { unitAmount: 500, quantity: 1 },
    ]);
    await db().query('UPDATE products SET active = false WHERE id = $1', [products[1]!.id]);
    const res = await checkout(user.token, cartId);
    expect(res.status).toBe(404);
    expect((await problem(res)).detail).toContain(products[1]!.id);
    expect(await cartStatus(cartId)).toBe('open');
  });

  it("refuses with 409 cart_limit_exceeded, before calling Stripe, a cart whose prices rose over Stripe's maximum", async () => {
    const user = await newUser();
    const { cartId, products } = await cartWith(user.token, [
      { unitAmount: 60_000_000, quantity: 1 },
      { unitAmount: 30_000_000, quantity: 1 },
    ]);
    await db().query('UPDATE products SET unit_amount = 50_000_000 WHERE id = $1', [products[1]!.id]);
    const res = await checkout(user.token, cartId);
    expect(res.status).toBe(409);
    expect((await problem(res)).code).toBe('cart_limit_exceeded');
    expect(await cartStatus(cartId)).toBe('open');
    expect(await db().query('SELECT 1 FROM checkouts WHERE cart_id = $1', [cartId])).toEqual([]);
  });

  // Stripe takes twelve digits in IDR, eight in any other currency
  // (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
  it('checks out an IDR cart over eight digits, which Stripe takes up to twelve', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 150_000_000, quantity: 3, currency: 'idr' }]);
    const res = await checkout(user.token, cartId);
    expect(res.status).toBe(201);
    const session = await stripe.checkout.sessions.retrieve(((await res.json()) as CheckoutBody).sessionId);
    expect(session).toMatchObject({ amount_total: 450_000_000, currency: 'idr' });
    expect(await cartStatus(cartId)).toBe('checkout_pending');
  });

  it("refuses with 409 cart_limit_exceeded an IDR cart whose prices rose over Stripe's twelve digits", async () => {
    const user = await newUser();
    const { cartId, products } = await cartWith(user.token, [
      { unitAmount: 400_000_000_000, quantity: 2, currency: 'idr' },
    ]);
    await db().query('UPDATE products SET unit_amount = 500_000_000_000 WHERE id = $1', [products[0]!.id]);
    const res = await checkout(user.token, cartId);
    expect(res.status).toBe(409);
    expect(await problem(res)).toMatchObject({
      code: 'cart_limit_exceeded',
      detail: expect.stringContaining('999999999999 in minor units of idr'),
    });
    expect(await cartStatus(cartId)).toBe('open');
  });

  it("answers 422 checkout_refused with Stripe's reason when Stripe refuses the session, and the fixed cart checks out", async () => {
    const user = await newUser();
    const { cartId, products } = await cartWith(user.token, [{ unitAmount: 10, quantity: 1 }]);
    const res = await checkout(user.token, cartId);
    expect(res.status).toBe(422);
    expect(await problem(res)).toMatchObject({
      code: 'checkout_refused',
      detail: expect.stringMatching(/at least \$0\.50/),
    });
    expect(await cartStatus(cartId)).toBe('open');
    await call(`/v1/carts/${cartId}/items/${products[0]!.id}`, {
      method: 'PUT',
      token: user.token,
      json: { quantity: 60 },
    });
    expect((await checkout(user.token, cartId)).status).toBe(201);
  });

  it('answers 422 cart_empty for an empty cart, and changes nothing', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, []);
    const row = () => db().query('SELECT * FROM carts WHERE id = $1', [cartId]);
    const before = await row();
    const res = await checkout(user.token, cartId);
    expect(res.status).toBe(422);
    expect((await problem(res)).code).toBe('cart_empty');
    // Not even the checkout attempt, whose expiry the session made later would inherit.
    expect(await row()).toEqual(before);
  });

  it('checks out a cart whose first item lands while the attempt is being claimed (the claim saw it empty)', async () => {
    const user = await newUser();
    const product = await createProduct();
    const { cartId } = await cartWith(user.token, []);
    // The claim batch is held between its two statements, behind a lock this test holds; the
    // first item is added meanwhile, so the claim found the cart empty and the read finds the item.
    const lock = await holdLocks(['SELECT pg_advisory_xact_lock(7107)']);
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const body = typeof init?.body === 'string' ? init.body : '';
      if (!body.includes('checkout_attempt = checkout_attempt + 1')) return realFetch(input, init);
      const batch = JSON.parse(body) as { queries: unknown[] };
      batch.queries.splice(1, 0, { query: 'SELECT pg_advisory_xact_lock(7107)', params: [] });
      const answer = (await (await realFetch(input, { ...init, body: JSON.stringify(batch) })).json()) as {
        results: unknown[];
      };
      answer.results.splice(1, 1);
      return Response.json(answer);
    });
    const started = checkout(user.token, cartId);
    await lock.waitForWaiters(1, '%pg_advisory_xact_lock(7107)%');
    const put = await call(`/v1/carts/${cartId}/items/${product.id}`, {
      method: 'PUT',
      token: user.token,
      json: { quantity: 1 },
    });
    expect(put.status).toBe(200);
    await lock.release();
    const res = await started;
    vi.restoreAllMocks();
    expect(res.status).toBe(201);
    expect(await cartStatus(cartId)).toBe('checkout_pending');
  });

  it('hands back the live session without calling Stripe, so without needing its key', async () => {
    const state = await checkedOutCart();
    const env = { ...stripeEnv, STRIPE_SECRET_KEY: undefined };
    const res = await call(`/v1/carts/${state.cartId}/checkout`, { method: 'POST', token: state.user.token, env });
    expect(res.status).toBe(200);
    expect(((await res.json()) as CheckoutBody).sessionId).toBe(state.sessionId);
  });

  it("answers 404 for another user's cart and starts nothing", async () => {
    const owner = await newUser();
    const other = await newUser();
    const { cartId } = await cartWith(owner.token, [{ unitAmount: 1000, quantity: 1 }]);
    expect((await checkout(other.token, cartId)).status).toBe(404);
    expect((await call(`/v1/carts/${cartId}/checkout`, { method: 'DELETE', token: other.token })).status).toBe(404);
    expect(await cartStatus(cartId)).toBe('open');
  });

  it('answers 401 without a token', async () => {
    expect((await call(`/v1/carts/${crypto.randomUUID()}/checkout`, { method: 'POST' })).status).toBe(401);
  });

  it('answers 409 for a paid cart, and a new POST /v1/carts starts a new cart', async () => {
    const checkoutState = await checkedOutCart();
    await deliver(eventsFor(checkoutState).completedPaid());
    const res = await checkout(checkoutState.user.token, checkoutState.cartId);
    expect(res.status).toBe(409);
    const cancel = await call(`/v1/carts/${checkoutState.cartId}/checkout`, {
      method: 'DELETE',
      token: checkoutState.user.token,
    });
    expect(cancel.status).toBe(409);
    const next = await call('/v1/carts', { method: 'POST', token: checkoutState.user.token });
    expect(next.status).toBe(201);
  });

  it('lets a payment_failed cart check out again with a new session', async () => {
    const state = await checkedOutCart();
    const events = eventsFor(state);
    await deliver(events.completedUnpaid());
    await deliver(events.asyncFailed());
    expect(await cartStatus(state.cartId)).toBe('payment_failed');
    const res = await checkout(state.user.token, state.cartId);
    expect(res.status).toBe(201);
    expect(((await res.json()) as CheckoutBody).sessionId).not.toBe(state.sessionId);
  });

  it("shows a payment_failed cart as editable: today's lines, nothing of the failed session", async () => {
    const state = await checkedOutCart();
    const events = eventsFor(state);
    const charged = { subtotal: state.total, discount: 0, shipping: 500, tax: 250, total: state.total + 750 };
    const completed = sessionObject(state, {
      payment_status: 'unpaid',
      amount_total: charged.total,
      total_details: { amount_discount: 0, amount_shipping: 500, amount_tax: 250 },
      collected_information: { shipping_details: { name: 'Sam Shopper', address: STRIPE_ADDRESS } },
    } as Partial<StripeSdk.Checkout.Session>);
    await deliver(stripeEvent('checkout.session.completed', completed));
    const awaiting = (await (await call(`/v1/carts/${state.cartId}`, { token: state.user.token })).json()) as Cart;
    expect(awaiting.amounts).toEqual(charged);
    await deliver(events.asyncFailed());

    const first = state.products[0]!;
    const edit = await call(`/v1/carts/${state.cartId}/items/${first.id}`, {
      method: 'PUT',
      token: state.user.token,
      json: { quantity: 5 },
    });
    expect(edit.status).toBe(200);
    const shown = (await (await call(`/v1/carts/${state.cartId}`, { token: state.user.token })).json()) as Cart;
    expect(shown.status).toBe('payment_failed');
    const today = first.unitAmount * 5 + state.products[1]!.unitAmount * 2;
    expect(shown.totalAmount).toBe(today);
    // The failed session's total, shipping and page describe lines the cart no longer has.
    expect(shown).toMatchObject({ amounts: null, shipping: null, checkout: null });
  });

  it('answers 503 and leaves the cart usable when Stripe cannot be reached', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
    const res = await callWithEnv(
      { ...stripeEnv, STRIPE_API_BASE: 'http://127.0.0.1:9' },
      `/v1/carts/${cartId}/checkout`,
      {
        method: 'POST',
        headers: { Authorization: `Bearer ${user.token}` },
      },
    );
    expect(res.status).toBe(503);
    expect((await problem(res)).code).toBe('service_unavailable');
    expect(await cartStatus(cartId)).toBe('open');
    expect((await checkout(user.token, cartId)).status).toBe(201);
  });

  it('answers 500 misconfigured when Stripe is not configured', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
    const res = await callWithEnv(
      { ...stripeEnv, STRIPE_SECRET_KEY: undefined } as never,
      `/v1/carts/${cartId}/checkout`,
      {
        method: 'POST',
        headers: { Authorization: `Bearer ${user.token}` },
      },
    );
    expect(res.status).toBe(500);
    expect(await problem(res)).toMatchObject({ code: 'misconfigured', detail: 'STRIPE_SECRET_KEY is not set' });
  });
});

describe('checkout when Stripe fails (Stripe saves the first result of an idempotency key and replays it)', () => {
  // A stand-in of its own: faults on creating sessions would hit every other test's checkouts.
  const faulty = { ...stripeEnv, STRIPE_API_BASE: inject('faultyStripeApiBase') };
  const faultyStandin = new StandinControls(faulty.STRIPE_API_BASE);
  const faultyStripe = standinStripe(faulty.STRIPE_API_BASE);
  const checkoutThere = (token: string, cartId: string) =>
    callWithEnv(faulty, `/v1/carts/${cartId}/checkout`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
    });
  afterEach(() => faultyStandin.clearFaults());
  /**
   * As if an earlier try had reached Stripe, its answer lost, before a product changed: the key
   * of the cart's next attempt is already taken for other parameters.
   */
  async function takeNextKey(cartId: string): Promise<void> {
    const [cart] = await db().query('SELECT version, checkout_attempt FROM carts WHERE id = $1', [cartId]);
    await faultyStripe.checkout.sessions.create(
      {
        mode: 'payment',
        line_items: [
          { quantity: 1, price_data: { currency: 'usd', unit_amount: 900, product_data: { name: 'Before' } } },
        ],
        success_url: 'https://shop.example/success',
      },
      { idempotencyKey: `checkout-${cartId}-v${cart!.version}-a${Number(cart!.checkout_attempt) + 1}` },
    );
  }

  it('answers 503 when Stripe fails, and the next tap gets a session instead of the saved failure', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 2500, quantity: 2 }]);
    await faultyStandin.addFault({ method: 'POST', path: '/v1/checkout/sessions', status: 500 });
    const failed = await checkoutThere(user.token, cartId);
    expect(failed.status).toBe(503);
    expect((await problem(failed)).code).toBe('service_unavailable');
    expect(await cartStatus(cartId)).toBe('open');

    const next = await checkoutThere(user.token, cartId);
    expect(next.status).toBe(201);
    const { sessionId } = (await next.json()) as CheckoutBody;
    expect((await faultyStripe.checkout.sessions.retrieve(sessionId)).amount_total).toBe(5000);
    expect(await cartStatus(cartId)).toBe('checkout_pending');
  });

  it('checks out under a new key when Stripe already knows this one with other parameters (400 idempotency_error)', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
    await takeNextKey(cartId);

    const res = await checkoutThere(user.token, cartId);
    expect(res.status).toBe(201);
    const { sessionId } = (await res.json()) as CheckoutBody;
    expect((await faultyStripe.checkout.sessions.retrieve(sessionId)).amount_total).toBe(1000);
  });

  it('answers 503, not the key of our own making, when Stripe still finds it used for other parameters at the last round', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
    await takeNextKey(cartId);
    // Another request holds the key through two rounds (stripe-node tries each three times), and
    // the third round finds it used for other parameters.
    await faultyStandin.addFault({ method: 'POST', path: '/v1/checkout/sessions', status: 409, times: 6 });
    const res = await checkoutThere(user.token, cartId);
    expect(res.status).toBe(503);
    expect(await problem(res)).toMatchObject({ code: 'service_unavailable' });
    expect(await cartStatus(cartId)).toBe('open');
    expect((await checkoutThere(user.token, cartId)).status).toBe(201);
  });

  it('gives a try after Stripe saved nothing its whole lifetime once the attempt is over a minute old', async () => {
    const env = { ...faulty, CHECKOUT_TTL_MINUTES: 120 } as unknown as typeof faulty;
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
    const tap = () =>
      callWithEnv(env, `/v1/carts/${cartId}/checkout`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${user.token}` },
      });
    // Stripe's rate limiter answers before its idempotency layer: nothing is saved under the key.
    await faultyStandin.addFault({ method: 'POST', path: '/v1/checkout/sessions', status: 429, times: 3 });
    expect((await tap()).status).toBe(503);
    // An hour later, as far as the attempt is concerned.
    await db().query(
      `UPDATE carts SET checkout_attempt_expires_at = checkout_attempt_expires_at - interval '1 hour' WHERE id = $1`,
      [cartId],
    );
    await faultyStandin.clearFaults();
    const next = await tap();
    expect(next.status).toBe(201);
    const { expiresAt } = (await next.json()) as CheckoutBody;
    expect(new Date(expiresAt).getTime()).toBeGreaterThanOrEqual(Date.now() + 119 * 60_000);
  });

  it.each([
    ['cancelled it', false],
    ['cancelled it and checked out again', true],
  ] as const)('gives a double tap that comes back after the shopper %s the session the cart has', async (_, again) => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1500, quantity: 1 }]);
    const hold = (fault: { status?: 409 }) =>
      faultyStandin.addFault({ method: 'POST', path: '/v1/checkout/sessions', delayMs: 2 ** 31 - 1, ...fault });
    const taken = () => expect.poll(() => faultyStandin.faults()).toEqual([]);
    try {
      // The first tap is held making the session; the second, under the same key, is held twice
      // while the first runs (409, which stripe-node tries again), so that its last try comes
      // after the first tap's session was cancelled.
      await hold({});
      const first = checkoutThere(user.token, cartId);
      await taken();
      await hold({ status: 409 });
      const second = checkoutThere(user.token, cartId);
      await taken();
      await hold({ status: 409 });
      expect(await faultyStandin.releaseHeld()).toBe(2);
      const made = await first;
      expect(made.status).toBe(201);
      const { sessionId } = (await made.json()) as CheckoutBody;
      await taken();
      const cancelled = await callWithEnv(faulty, `/v1/carts/${cartId}/checkout`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${user.token}` },
      });
      expect(cancelled.status).toBe(200);
      // Cancelled, the first session is what the taps were about; checked out again, the new one is live.
      let live = sessionId;
      if (again) {
        const next = await checkoutThere(user.token, cartId);
        expect(next.status).toBe(201);
        live = ((await next.json()) as CheckoutBody).sessionId;
      }
      expect(await faultyStandin.releaseHeld()).toBe(1);

      const late = await second;
      expect(late.status).toBe(200);
      expect(((await late.json()) as CheckoutBody).sessionId).toBe(live);
      expect(await cartStatus(cartId)).toBe(again ? 'checkout_pending' : 'open');
      expect((await db().query('SELECT session_id FROM checkouts WHERE cart_id = $1', [cartId])).length).toBe(
        again ? 2 : 1,
      );
    } finally {
      await faultyStandin.releaseHeld();
    }
  });

  it('gives both taps one session when the second reaches Stripe while the first is still running there', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1500, quantity: 1 }]);
    await faultyStandin.addFault({ method: 'POST', path: '/v1/checkout/sessions', delayMs: 1500 });
    const first = checkoutThere(user.token, cartId);
    // The first request is being held at Stripe once it has used up the fault.
    await expect.poll(() => faultyStandin.faults()).toEqual([]);
    const second = await checkoutThere(user.token, cartId);
    const answers = [await first, second];
    expect(answers.map((r) => r.status).sort()).toEqual([200, 201]);
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as CheckoutBody[];
    expect(bodies[0]!.sessionId).toBe(bodies[1]!.sessionId);
    expect(await db().query('SELECT session_id FROM checkouts WHERE cart_id = $1', [cartId])).toEqual([
      { session_id: bodies[0]!.sessionId },
    ]);
  });
});

describe('a session Stripe no longer knows (404)', () => {
  it('is recorded and releases its cart: checkout past its expiry starts a new session', async () => {
    const state = await checkedOutCart();
    await standin.forget(state.sessionId);
    await db().query(`UPDATE checkouts SET expires_at = now() - interval '1 second' WHERE session_id = $1`, [
      state.sessionId,
    ]);
    const res = await checkout(state.user.token, state.cartId);
    expect(res.status).toBe(201);
    expect(((await res.json()) as CheckoutBody).sessionId).not.toBe(state.sessionId);
    const [event] = await db().query('SELECT outcome, from_status, to_status FROM payment_events WHERE id = $1', [
      `reconcile:${state.sessionId}:missing`,
    ]);
    expect(event).toEqual({ outcome: 'applied', from_status: 'checkout_pending', to_status: 'open' });
  });

  it('lets the checkout be cancelled', async () => {
    const state = await checkedOutCart();
    await standin.forget(state.sessionId);
    const res = await call(`/v1/carts/${state.cartId}/checkout`, { method: 'DELETE', token: state.user.token });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'open', checkout: null });
  });
});

describe('DELETE /v1/carts/{cartId}/checkout', () => {
  it('answers 409 and applies the payment when the session was completed meanwhile', async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'paid');
    const res = await call(`/v1/carts/${state.cartId}/checkout`, { method: 'DELETE', token: state.user.token });
    expect(res.status).toBe(409);
    expect((await problem(res)).code).toBe('cart_not_editable');
    expect(await cartStatus(state.cartId)).toBe('paid');
  });

  it('cancels only the session named, when one is: a cancel from an old page leaves a newer checkout payable', async () => {
    const state = await checkedOutCart();
    const cancel = (sessionId: string) =>
      call(`/v1/carts/${state.cartId}/checkout?sessionId=${sessionId}`, { method: 'DELETE', token: state.user.token });
    // Cancelled on one device; then, on another, the cart is checked out again.
    expect((await cancel(state.sessionId)).status).toBe(200);
    const again = await checkout(state.user.token, state.cartId);
    expect(again.status).toBe(201);
    const { sessionId: live } = (await again.json()) as CheckoutBody;

    // The first device, back from its cancel page, cancels the session it left for.
    const stale = await cancel(state.sessionId);
    expect(stale.status).toBe(409);
    expect(await problem(stale)).toMatchObject({
      code: 'cart_not_editable',
      detail: expect.stringContaining(state.sessionId),
    });
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');
    expect((await stripe.checkout.sessions.retrieve(live)).status).toBe('open');

    const malformed = await cancel('not-a-session');
    expect(malformed.status).toBe(400);
    expect((await problem(malformed)).code).toBe('validation_failed');
    expect((await stripe.checkout.sessions.retrieve(live)).status).toBe('open');
    // Named, the live one is cancelled.
    expect((await cancel(live)).status).toBe(200);
    expect((await stripe.checkout.sessions.retrieve(live)).status).toBe('expired');
  });

  it('cancels when Stripe answers 404 to expiring the session: a session it does not know can never be paid', async () => {
    const state = await checkedOutCart();
    await standin.addFault({ method: 'POST', path: `/v1/checkout/sessions/${state.sessionId}/expire`, status: 404 });
    const res = await call(`/v1/carts/${state.cartId}/checkout`, { method: 'DELETE', token: state.user.token });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'open', checkout: null });
    expect(await standin.faults()).toEqual([]);
  });
});

describe("what Stripe's errors mean for our client (stripeFailure)", () => {
  const { errors } = StripeSdk;
  const error = (Kind: typeof errors.StripeError, statusCode: number, type: string) =>
    new Kind({ message: `Stripe says ${statusCode}`, type, statusCode } as never);

  it.each([
    [
      '400 invalid_request_error',
      422,
      'refund_refused',
      error(errors.StripeInvalidRequestError, 400, 'invalid_request_error'),
    ],
    ['402 card_error (request failed)', 422, 'refund_refused', error(errors.StripeCardError, 402, 'card_error')],
    ['400 idempotency_error', 400, 'validation_failed', error(errors.StripeIdempotencyError, 400, 'idempotency_error')],
    ['429 rate limited', 503, 'service_unavailable', error(errors.StripeRateLimitError, 429, 'rate_limit_error')],
    ['500 api_error', 503, 'service_unavailable', error(errors.StripeAPIError, 500, 'api_error')],
    ['no answer', 503, 'service_unavailable', new errors.StripeConnectionError({ message: 'down' } as never)],
  ])('answers %s with %i %s', (_, status, code, err) => {
    const answer = stripeFailure(err, 'refund');
    expect({ status: answer.status, code: answer.code }).toEqual({ status, code });
    // Stripe's rate limit says to come back shortly; nothing else gives a time.
    expect(answer.retryAfter).toBe(err instanceof errors.StripeRateLimitError ? 1 : undefined);
  });
});
