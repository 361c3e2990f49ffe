import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { call, callWithEnv, createProduct, db, newUser, problem } from './helpers.ts';
import { cartStatus, checkedOutCart, deliver, eventsFor, stripeEnv, type CheckoutBody } from './stripe-helpers.ts';

const base = new URL(stripeEnv.STRIPE_API_BASE);
const stripe = new Stripe(stripeEnv.STRIPE_SECRET_KEY, {
  host: base.hostname, port: base.port, protocol: 'http', httpClient: Stripe.createFetchHttpClient(),
});

async function cartWith(token: string, items: { unitAmount: number; quantity: number; currency?: string }[]) {
  const cart = (await (await call('/v1/carts', { method: 'POST', token })).json()) as { id: string };
  const products = [];
  for (const item of items) {
    const product = await createProduct({ unitAmount: item.unitAmount, currency: item.currency });
    products.push(product);
    await call(`/v1/carts/${cart.id}/items/${product.id}`, { method: 'PUT', token, json: { quantity: item.quantity } });
  }
  return { cartId: cart.id, products };
}

const checkout = (token: string, cartId: string) => call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token });

describe('POST /v1/carts/{cartId}/checkout', () => {
  it('creates a payment-mode session priced from the database and moves the cart to checkout_pending', async () => {
    const user = await newUser();
    const { cartId, products } = await cartWith(user.token, [{ unitAmount: 2000, quantity: 2 }, { unitAmount: 999, quantity: 1 }]);
    const before = Date.now();
    const res = await checkout(user.token, cartId);
    expect(res.status).toBe(201);
    const body = (await res.json()) as CheckoutBody;
    expect(body.cartId).toBe(cartId);
    expect(body.sessionId).toMatch(/^cs_/);

    const session = await stripe.checkout.sessions.retrieve(body.sessionId);
    expect(session).toMatchObject({
      mode: 'payment', amount_total: 4999, currency: 'usd', client_reference_id: cartId, url: body.url,
      metadata: { cart_id: cartId },
      success_url: 'http://127.0.0.1:8787/checkout/success?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: `http://127.0.0.1:8787/checkout/cancel?cart_id=${cartId}`,
    });
    // CHECKOUT_TTL_MINUTES defaults to 30: Stripe's minimum, with a small margin.
    expect(session.expires_at * 1000).toBeGreaterThanOrEqual(before + 30 * 60_000);
    expect(session.expires_at * 1000).toBeLessThan(before + 33 * 60_000);
    expect(new Date(body.expiresAt).getTime()).toBe(session.expires_at * 1000);
    const lines = await stripe.checkout.sessions.listLineItems(body.sessionId);
    expect(lines.data.map((l) => [l.description, l.quantity, l.amount_total])).toEqual([
      [products[0]!.name, 2, 4000],
      [products[1]!.name, 1, 999],
    ]);

    const cart = (await (await call(`/v1/carts/${cartId}`, { token: user.token })).json()) as { status: string; checkout: CheckoutBody; totalAmount: number };
    expect(cart.status).toBe('checkout_pending');
    expect(cart.checkout).toEqual(body);
    expect(cart.totalAmount).toBe(4999);
  });

  it('gives one session for a double tap: concurrent and repeated calls', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1500, quantity: 1 }]);
    const answers = await Promise.all(Array.from({ length: 5 }, () => checkout(user.token, cartId)));
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as CheckoutBody[];
    expect(new Set(bodies.map((b) => b.sessionId)).size).toBe(1);
    expect(answers.filter((r) => r.status === 201)).toHaveLength(1);
    expect(answers.filter((r) => r.status === 200)).toHaveLength(4);

    const again = await checkout(user.token, cartId);
    expect(again.status).toBe(200);
    expect(((await again.json()) as CheckoutBody).sessionId).toBe(bodies[0]!.sessionId);
    const [row] = await db().query('SELECT count(*)::int AS n FROM checkouts WHERE cart_id = $1', [cartId]);
    expect(row).toEqual({ n: 1 });
  });

  it('keeps the cart frozen during checkout, and editable again after cancelling', async () => {
    const { user, cartId, products } = await checkedOutCart();
    const edit = await call(`/v1/carts/${cartId}/items/${products[0]!.id}`, { method: 'PUT', token: user.token, json: { quantity: 7 } });
    expect(edit.status).toBe(409);
    expect((await problem(edit)).code).toBe('cart_not_editable');

    const cancelled = await call(`/v1/carts/${cartId}/checkout`, { method: 'DELETE', token: user.token });
    expect(cancelled.status).toBe(200);
    expect(await cancelled.json()).toMatchObject({ id: cartId, status: 'open', checkout: null });
    const { sessionId } = (await db().query('SELECT session_id AS "sessionId" FROM checkouts WHERE cart_id = $1', [cartId]))[0] as { sessionId: string };
    expect((await stripe.checkout.sessions.retrieve(sessionId)).status).toBe('expired');

    const edited = await call(`/v1/carts/${cartId}/items/${products[0]!.id}`, { method: 'PUT', token: user.token, json: { quantity: 7 } });
    expect(edited.status).toBe(200);
    // A new checkout of the changed cart is a new session for the new contents.
    const next = await checkout(user.token, cartId);
    expect(next.status).toBe(201);
    const nextBody = (await next.json()) as CheckoutBody;
    expect(nextBody.sessionId).not.toBe(sessionId);
    expect((await stripe.checkout.sessions.retrieve(nextBody.sessionId)).amount_total).toBe(7 * products[0]!.unitAmount + 2 * products[1]!.unitAmount);
  });

  it('never leaves a session charging for other contents than the cart holds when an edit races checkout', async () => {
    for (let round = 0; round < 4; round++) {
      const user = await newUser();
      const { cartId, products } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
      const [started, edited] = await Promise.all([
        checkout(user.token, cartId),
        call(`/v1/carts/${cartId}/items/${products[0]!.id}`, { method: 'PUT', token: user.token, json: { quantity: 3 } }),
      ]);
      expect([200, 201]).toContain(started.status);
      expect([200, 409]).toContain(edited.status);
      const { sessionId } = (await started.json()) as CheckoutBody;
      const [row] = await db().query('SELECT quantity FROM cart_items WHERE cart_id = $1', [cartId]);
      const session = await stripe.checkout.sessions.retrieve(sessionId);
      expect(await cartStatus(cartId)).toBe('checkout_pending');
      expect(session.amount_total).toBe(1000 * (row as { quantity: number }).quantity);
    }
  });

  it('answers 422 cart_empty for an empty cart', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, []);
    const res = await checkout(user.token, cartId);
    expect(res.status).toBe(422);
    expect((await problem(res)).code).toBe('cart_empty');
    expect(await cartStatus(cartId)).toBe('open');
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
    const cancel = await call(`/v1/carts/${checkoutState.cartId}/checkout`, { method: 'DELETE', token: checkoutState.user.token });
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

  it('answers 503 and leaves the cart usable when Stripe cannot be reached', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
    const res = await callWithEnv({ ...stripeEnv, STRIPE_API_BASE: 'http://127.0.0.1:9' }, `/v1/carts/${cartId}/checkout`, {
      method: 'POST', headers: { Authorization: `Bearer ${user.token}` },
    });
    expect(res.status).toBe(503);
    expect((await problem(res)).code).toBe('service_unavailable');
    expect(await cartStatus(cartId)).toBe('open');
    expect((await checkout(user.token, cartId)).status).toBe(201);
  });

  it('answers 500 misconfigured when Stripe is not configured', async () => {
    const user = await newUser();
    const { cartId } = await cartWith(user.token, [{ unitAmount: 1000, quantity: 1 }]);
    const res = await callWithEnv({ ...stripeEnv, STRIPE_SECRET_KEY: undefined } as never, `/v1/carts/${cartId}/checkout`, {
      method: 'POST', headers: { Authorization: `Bearer ${user.token}` },
    });
    expect(res.status).toBe(500);
    expect(await problem(res)).toMatchObject({ code: 'misconfigured', detail: 'STRIPE_SECRET_KEY is not set' });
  });
});
