import { inOneWindow } from '@edge-checkout/test-support/rate-limit-window';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { call, createProduct, newUser, problem, recordFetches, testEnv } from './helpers.ts';
import { cartStatus, checkedOutCart, deliver, eventsFor, stripeEnv } from './stripe-helpers.ts';

// The limits of wrangler.toml, as the README states them: a shopper never meets them; a client
// looping on what costs Stripe calls does, and is told when to come back.
const CHECKOUTS_PER_MINUTE = 60;
const STRIPE_PAGES_PER_MINUTE = 60;
const WRITES_PER_MINUTE = 300;

/** The requests the Worker makes to Stripe (the stand-in) from now on, or since `reset`; all let through. */
function watchStripe() {
  const { urls } = recordFetches();
  let from = 0;
  return {
    calls: () => urls.slice(from).filter((url) => url.startsWith(stripeEnv.STRIPE_API_BASE)),
    reset: () => {
      from = urls.length;
    },
  };
}

async function expectRateLimited(res: Response) {
  expect(res.status).toBe(429);
  expect(res.headers.get('Retry-After')).toBe('60');
  expect((await problem(res)).code).toBe('rate_limited');
}

// A test counting up to a limit may first wait up to half a minute for a window of its own, and
// on a machine so slow that the minute cut its count, up to a minute more to count again.
vi.setConfig({ testTimeout: 200_000 });

/** `count` within one window; the mocks restored after each try, as a second try spies on fetch afresh. */
function countInOneWindow(count: () => Promise<void>): Promise<void> {
  return inOneWindow(async () => {
    try {
      await count();
    } finally {
      vi.restoreAllMocks();
    }
  });
}

afterEach(() => vi.restoreAllMocks());

describe('checkout and cancel, per user', () => {
  it('lets a shopper check out and cancel a few times a minute', async () => {
    const state = await checkedOutCart();
    const path = `/v1/carts/${state.cartId}/checkout`;
    for (let round = 0; round < 3; round++) {
      expect((await call(path, { method: 'DELETE', token: state.user.token })).status).toBe(200);
      expect((await call(path, { method: 'POST', token: state.user.token })).status).toBe(201);
    }
  });

  it(`refuses checkout number ${CHECKOUTS_PER_MINUTE + 1} within a minute with 429 and Retry-After, without calling Stripe`, async () => {
    await countInOneWindow(async () => {
      const state = await checkedOutCart(); // its first checkout
      const path = `/v1/carts/${state.cartId}/checkout`;
      const other = await checkedOutCart();
      for (let i = 1; i < CHECKOUTS_PER_MINUTE; i++) {
        const res = await call(path, { method: i % 2 ? 'DELETE' : 'POST', token: state.user.token, env: testEnv });
        expect(res.status).toBeLessThan(300);
      }
      expect(await cartStatus(state.cartId)).toBe('open'); // the last of them cancelled
      const stripeCalls = watchStripe();
      await expectRateLimited(await call(path, { method: 'POST', token: state.user.token }));
      await expectRateLimited(await call(path, { method: 'DELETE', token: state.user.token }));
      expect(stripeCalls.calls()).toEqual([]);
      expect(await cartStatus(state.cartId)).toBe('open');

      // Another shopper is not affected.
      const res = await call(`/v1/carts/${other.cartId}/checkout`, { method: 'DELETE', token: other.user.token });
      expect(res.status).toBe(200);
    });
  });
});

describe('writes, per user', () => {
  it(`allows ${WRITES_PER_MINUTE} changes a minute, then 429 and nothing changes`, async () => {
    await countInOneWindow(async () => {
      const user = await newUser();
      const product = await createProduct();
      const cart = (await (await call('/v1/carts', { method: 'POST', token: user.token })).json()) as { id: string };
      const item = `/v1/carts/${cart.id}/items/${product.id}`;
      // Refused requests count too: the ceiling is on what a client sends. Through the app (the
      // same binding counts): through the entry point each request of a file costs more than the
      // last (see `call`), and the count must fit in the minute on a slow machine.
      for (let i = 2; i < WRITES_PER_MINUTE; i++) {
        const refused = await call(item, { method: 'PUT', token: user.token, json: { quantity: 0.5 }, env: testEnv });
        expect(refused.status).toBe(400);
      }
      expect((await call(item, { method: 'PUT', token: user.token, json: { quantity: 2 } })).status).toBe(200);
      await expectRateLimited(await call(item, { method: 'PUT', token: user.token, json: { quantity: 3 } }));
      await expectRateLimited(await call('/v1/carts', { method: 'POST', token: user.token }));
      const read = await call(`/v1/carts/${cart.id}`, { token: user.token });
      expect(read.status).toBe(200);
      expect(((await read.json()) as { items: { quantity: number }[] }).items.map((i) => i.quantity)).toEqual([2]);
    });
  });
});

describe('GET /checkout/success, per Checkout Session', () => {
  const page = (sessionId: string, address: string) =>
    call(`/checkout/success?session_id=${sessionId}`, { headers: { 'CF-Connecting-IP': address } });

  it(`reads a pending session back from Stripe ${STRIPE_PAGES_PER_MINUTE} times a minute, then shows the cart as known without calling it`, async () => {
    await countInOneWindow(async () => {
      const state = await checkedOutCart();
      const address = `198.51.100.${Math.floor(Math.random() * 250)}`;
      const stripeCalls = watchStripe();
      for (let i = 0; i < STRIPE_PAGES_PER_MINUTE; i++) expect((await page(state.sessionId, address)).status).toBe(200);
      expect(stripeCalls.calls().length).toBeGreaterThanOrEqual(STRIPE_PAGES_PER_MINUTE);
      stripeCalls.reset();

      // Once limited, Stripe hears nothing, from any address (the budget is the session's), and
      // the shopper still sees the order as we know it, with the way back to the app.
      for (const from of [address, '2001:db8::1']) {
        const limited = await page(state.sessionId, from);
        expect(limited.status).toBe(200);
        const html = await limited.text();
        expect(html).toContain('Check again');
        expect(html).toContain('Back to the shop');
      }
      expect(stripeCalls.calls()).toEqual([]);

      // A page that needs no Stripe call still answers.
      const paid = await checkedOutCart();
      expect((await deliver(eventsFor(paid).completedPaid())).status).toBe(200);
      expect((await page(paid.sessionId, address)).status).toBe(200);
    });
  });

  it("gives shoppers behind one address (a mobile carrier's NAT) a budget each", async () => {
    await countInOneWindow(async () => {
      const [first, second] = await Promise.all([checkedOutCart(), checkedOutCart()]);
      const carrier = `203.0.113.${Math.floor(Math.random() * 250)}`;
      for (let i = 0; i < STRIPE_PAGES_PER_MINUTE; i++) expect((await page(first.sessionId, carrier)).status).toBe(200);
      const stripeCalls = watchStripe();
      expect((await page(first.sessionId, carrier)).status).toBe(200);
      expect(stripeCalls.calls()).toEqual([]);
      expect((await page(second.sessionId, carrier)).status).toBe(200);
      expect(stripeCalls.calls().length).toBeGreaterThan(0);
    });
  });

  it('leaves the cancel page its way back once the session is over the limit: the cart as known, without asking Stripe', async () => {
    await countInOneWindow(async () => {
      const state = await checkedOutCart();
      const address = `192.0.2.${Math.floor(Math.random() * 250)}`;
      for (let i = 0; i < STRIPE_PAGES_PER_MINUTE; i++) expect((await page(state.sessionId, address)).status).toBe(200);
      const stripeCalls = watchStripe();
      const cancel = await call(`/checkout/cancel?cart_id=${state.cartId}`, {
        headers: { 'CF-Connecting-IP': address },
      });
      expect(cancel.status).toBe(200);
      expect(await cancel.text()).toContain('Back to the shop');
      expect(stripeCalls.calls()).toEqual([]);
    });
  });

  it('answers a session id that is not Stripe-shaped, or not ours, without calling Stripe', async () => {
    const stripeCalls = watchStripe();
    for (const id of ['{CHECKOUT_SESSION_ID}', '', 'cs_test_a1%00', 'cs test', `cs_test_${'a'.repeat(300)}`]) {
      expect((await call(`/checkout/success?session_id=${id}`)).status).toBe(400);
    }
    // Shaped like an id (Stripe's are opaque), but not one of our sessions.
    for (const id of [`cs_test_a1${'Z'.repeat(56)}`, 'cs_other_abc', `cs_test_${crypto.randomUUID()}`]) {
      expect((await call(`/checkout/success?session_id=${id}`)).status).toBe(404);
    }
    expect(stripeCalls.calls()).toEqual([]);
  });
});
