import { afterEach, describe, expect, it, vi } from 'vitest';
import { runScheduled } from '../src/scheduled.ts';
import { callWithEnv, createProduct, db, holdLocks, newUser, openCart, recordFetches } from './helpers.ts';
import { standin, standinEvents } from './standin.ts';
import { checkedOutCart, deliver, eventsFor, standinStripe, stripeEnv } from './stripe-helpers.ts';

// Without Pub/Sub, so only the request's own work is counted (publishing happens after the
// answer, in waitUntil: the rows a request wrote go out with one result write, no claim).
const env = { ...stripeEnv, PUBSUB_EMULATOR_HOST: undefined, GCP_SERVICE_ACCOUNT_KEY: undefined };

/** Runs `request` and counts the HTTP calls it made to the database and to Stripe. */
async function roundTrips(
  request: (calls: { urls: string[] }) => Promise<Response>,
): Promise<{ status: number; db: number; stripe: number }> {
  const calls = recordFetches();
  try {
    const res = await request(calls);
    await res.arrayBuffer();
    return {
      status: res.status,
      db: calls.urls.filter((u) => u.startsWith(env.NEON_HTTP_ENDPOINT)).length,
      // Stripe's API, not the stand-in's controls a test may call meanwhile.
      stripe: calls.urls.filter((u) => u.startsWith(`${env.STRIPE_API_BASE}/v1/`)).length,
    };
  } finally {
    calls.stop();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('database round trips per request', () => {
  it('a webhook event: one transaction in one round trip, replays included', async () => {
    const state = await checkedOutCart();
    const event = eventsFor(state).completedPaid();
    const once = () => deliver(event, { env });
    expect(await roundTrips(once)).toEqual({ status: 200, db: 1, stripe: 0 });
    expect(await roundTrips(once)).toEqual({ status: 200, db: 1, stripe: 0 });
  });

  it('cart reads and edits: one round trip each', async () => {
    const user = await newUser();
    const product = await createProduct();
    const auth = { Authorization: `Bearer ${user.token}` };
    const open = await roundTrips(() => callWithEnv(env, '/v1/carts', { method: 'POST', headers: auth }));
    expect(open).toMatchObject({ status: 201, db: 1 });
    const cartRes = await callWithEnv(env, '/v1/carts', { method: 'POST', headers: auth });
    const { id } = (await cartRes.json()) as { id: string };

    const put = () =>
      callWithEnv(env, `/v1/carts/${id}/items/${product.id}`, {
        method: 'PUT',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ quantity: 2 }),
      });
    expect(await roundTrips(put)).toMatchObject({ status: 200, db: 1 });
    expect(await roundTrips(() => callWithEnv(env, `/v1/carts/${id}`, { headers: auth }))).toMatchObject({
      status: 200,
      db: 1,
    });
    expect(await roundTrips(() => callWithEnv(env, '/v1/carts', { headers: auth }))).toMatchObject({
      status: 200,
      db: 1,
    });
  });

  it('the product list: one round trip up to 500 products, one more for each 500 after', async () => {
    // products.test.ts lists a catalogue of a thousand for a moment: counted on a steady catalogue.
    const active = async () => Number((await db().query('SELECT count(*)::int AS n FROM products WHERE active'))[0]!.n);
    for (;;) {
      const before = await active();
      const trips = await roundTrips(() => callWithEnv(env, '/v1/products'));
      if ((await active()) !== before) continue;
      expect(trips).toMatchObject({ status: 200, db: Math.floor(before / 500) + 1 });
      return;
    }
  });

  it('checkout: a read and a conditional write around one Stripe call; the live session again: one read', async () => {
    const user = await newUser();
    const product = await createProduct();
    const auth = { Authorization: `Bearer ${user.token}` };
    const id = await openCart(user.token, [{ id: product.id, quantity: 1 }], env);
    const checkout = () => callWithEnv(env, `/v1/carts/${id}/checkout`, { method: 'POST', headers: auth });
    expect(await roundTrips(checkout)).toEqual({ status: 201, db: 2, stripe: 1 });
    expect(await roundTrips(checkout)).toEqual({ status: 200, db: 1, stripe: 0 });
  });

  it('a double tap on checkout: each tap a read and a write, the second learning the session from its write', async () => {
    const user = await newUser();
    const product = await createProduct();
    const auth = { Authorization: `Bearer ${user.token}` };
    const id = await openCart(user.token, [{ id: product.id, quantity: 1 }], env);
    // Both taps wait at the cart's row lock to claim the attempt. The first to claim is then held
    // at Stripe until the second, sharing its attempt, has read the cart and calls Stripe under
    // the same key (answered 409 while the first is in flight, which stripe-node retries, or the
    // first's session): the second learns the session from its write, not from a later read.
    const lock = await holdLocks([`SELECT 1 FROM carts WHERE id = '${id}' FOR UPDATE`]);
    await standin.addFault({ method: 'POST', path: '/v1/checkout/sessions', delayMs: 2 ** 31 - 1 });
    const taps = roundTrips(async (calls) => {
      const tap = () => callWithEnv(env, `/v1/carts/${id}/checkout`, { method: 'POST', headers: auth });
      const both = Promise.all([tap(), tap()]);
      await lock.waitForWaiters(2, '%checkout_attempt = checkout_attempt + 1%');
      await lock.release();
      const sessionCalls = () => calls.urls.filter((u) => u.includes('/v1/checkout/sessions')).length;
      await expect.poll(sessionCalls).toBeGreaterThanOrEqual(2);
      expect(await standin.releaseHeld()).toBe(1);
      const [a, b] = await both;
      await a.arrayBuffer();
      return new Response(null, { status: a.status + b.status });
    });
    const counted = await taps;
    expect({ status: counted.status, db: counted.db }).toEqual({ status: 201 + 200, db: 4 });
    expect(counted.stripe).toBeGreaterThanOrEqual(2);
  });

  it('cancelling a checkout Stripe has expired already (its webhook lost): the read, and one batch that releases the cart and reads it', async () => {
    const state = await checkedOutCart();
    await standinStripe().checkout.sessions.expire(state.sessionId);
    const cancel = () =>
      callWithEnv(env, `/v1/carts/${state.cartId}/checkout`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${state.user.token}` },
      });
    expect(await roundTrips(cancel)).toEqual({ status: 200, db: 2, stripe: 2 });
  });

  it('the scheduled job with nothing to do: the checkouts due, the marks of the undelivered events and retention (the outbox’s rows due a fourth, with Pub/Sub); one look at Stripe’s list', async () => {
    // Nothing due: every session read back just now. Sessions other files left, read back by their
    // scheduled runs more than 10 minutes ago (scheduled.test.ts stamps them all), are due again,
    // and more than one run reads (25).
    await db().query('UPDATE checkouts SET reconciled_at = now()');
    await runScheduled(env);
    let report: Awaited<ReturnType<typeof runScheduled>> | undefined;
    const counted = await roundTrips(async () => {
      report = await runScheduled(env);
      return new Response(null, { status: 204 });
    });
    expect(report).toMatchObject({ reconciled: 0, lostEvents: { applied: 0, errors: 0 } });
    expect(counted).toEqual({ status: 204, db: 3, stripe: 1 });
  });

  it('cancelling a checkout: a read, and the fulfilment with the cart it leaves in one batch after the Stripe call', async () => {
    const state = await checkedOutCart();
    const cancel = () =>
      callWithEnv(env, `/v1/carts/${state.cartId}/checkout`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${state.user.token}` },
      });
    expect(await roundTrips(cancel)).toEqual({ status: 200, db: 2, stripe: 1 });
  });

  it('the success page: a read, then the fulfilment with the cart it leaves in one batch; once paid, one read', async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'paid');
    const page = () => callWithEnv(env, `/checkout/success?session_id=${state.sessionId}`);
    expect(await roundTrips(page)).toEqual({ status: 200, db: 2, stripe: 1 });
    expect(await roundTrips(page)).toEqual({ status: 200, db: 1, stripe: 0 });
    expect(await roundTrips(() => callWithEnv(env, `/checkout/cancel?cart_id=${state.cartId}`))).toEqual({
      status: 200,
      db: 1,
      stripe: 0,
    });
  });

  it('the cancel page of a cart paid in another tab: its read, then the fulfilment with the cart it leaves in one batch', async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'paid');
    expect(await roundTrips(() => callWithEnv(env, `/checkout/cancel?cart_id=${state.cartId}`))).toEqual({
      status: 200,
      db: 2,
      stripe: 1,
    });
  });

  it("an operator's refund: a read, and the fulfilment's one batch after the Stripe call", async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'paid');
    const [completed] = await standinEvents(state.sessionId);
    await deliver(completed!, { env });
    const refund = () =>
      callWithEnv(env, `/v1/admin/carts/${state.cartId}/refunds`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${env.ADMIN_API_KEY}`,
          'Content-Type': 'application/json',
          // Its own key: the stand-in keeps keys for every run of the file against it.
          'Idempotency-Key': `rt-${crypto.randomUUID()}`,
        },
        body: JSON.stringify({ amount: 100 }),
      });
    expect(await roundTrips(refund)).toEqual({ status: 201, db: 2, stripe: 1 });
  });
});
