import type Stripe from 'stripe';
import { describe, expect, it, vi } from 'vitest';
import {
  call,
  createProduct,
  db,
  holdLocks,
  linesOf,
  newUser,
  openCart,
  problem,
  recordFetches,
  testEnv,
} from './helpers.ts';
import { standin } from './standin.ts';
import {
  cartStatus,
  deliver,
  eventsFor,
  outboxOf,
  sessionObject,
  standinStripe,
  stripeEvent,
} from './stripe-helpers.ts';

const stripe = standinStripe();

/** A product with `stock` units on hand. */
async function stocked(stock: number | null, unitAmount = 1000) {
  const product = await createProduct({ unitAmount });
  await db().query('UPDATE products SET stock = $2 WHERE id = $1', [product.id, stock]);
  return product;
}

async function counts(productId: string) {
  const [row] = await db().query('SELECT stock, reserved FROM products WHERE id = $1', [productId]);
  return row as { stock: number | null; reserved: number };
}

async function available(productId: string): Promise<number | null | undefined> {
  const { products } = (await (await call('/v1/products')).json()) as {
    products: { id: string; available: number | null }[];
  };
  return products.find((p) => p.id === productId)?.available;
}

/** The operator's count of a product (its price 1000 usd), through the admin API. */
function recount(product: { id: string; name: string }, stock: number) {
  return call(`/v1/admin/products/${product.id}`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${testEnv.ADMIN_API_KEY}` },
    json: { name: product.name, unitAmount: 1000, currency: 'usd', stock },
  });
}

/** A shopper whose open cart holds `quantity` of each product. */
async function cartOf(items: { id: string; quantity: number }[]) {
  const user = await newUser();
  return { user, cartId: await openCart(user.token, items) };
}

async function checkout(shopper: { user: { token: string }; cartId: string }) {
  return call(`/v1/carts/${shopper.cartId}/checkout`, { method: 'POST', token: shopper.user.token });
}

/** Checks out and answers what the webhook tests need: the session, the cart and its total. */
async function checkedOut(items: { id: string; quantity: number; unitAmount: number }[]) {
  const shopper = await cartOf(items);
  const res = await checkout(shopper);
  expect(res.status).toBe(201);
  const { sessionId } = (await res.json()) as { sessionId: string };
  const total = items.reduce((sum, i) => sum + i.unitAmount * i.quantity, 0);
  return { ...shopper, sessionId, total };
}

describe('stock held during checkout', () => {
  it('holds the quantities while the shopper pays, and gives them back when the session expires', async () => {
    const product = await stocked(3);
    const unlimited = await stocked(null);
    const state = await checkedOut([
      { id: product.id, quantity: 2, unitAmount: 1000 },
      { id: unlimited.id, quantity: 5, unitAmount: 1000 },
    ]);
    expect(await counts(product.id)).toEqual({ stock: 3, reserved: 2 });
    expect(await available(product.id)).toBe(1);
    expect(await available(unlimited.id)).toBeNull();

    expect((await deliver(eventsFor(state).expired())).status).toBe(200);
    expect(await cartStatus(state.cartId)).toBe('open');
    expect(await counts(product.id)).toEqual({ stock: 3, reserved: 0 });
    expect(await available(product.id)).toBe(3);
  });

  it('gives them back when the shopper cancels, and when the delayed payment fails', async () => {
    const product = await stocked(4);
    const cancelled = await checkedOut([{ id: product.id, quantity: 1, unitAmount: 1000 }]);
    const failed = await checkedOut([{ id: product.id, quantity: 2, unitAmount: 1000 }]);
    expect(await counts(product.id)).toEqual({ stock: 4, reserved: 3 });

    const res = await call(`/v1/carts/${cancelled.cartId}/checkout`, { method: 'DELETE', token: cancelled.user.token });
    expect(res.status).toBe(200);
    expect(await counts(product.id)).toEqual({ stock: 4, reserved: 2 });

    // A bank transfer holds the stock until its outcome is known.
    await deliver(eventsFor(failed).completedUnpaid());
    expect(await counts(product.id)).toEqual({ stock: 4, reserved: 2 });
    await deliver(eventsFor(failed).asyncFailed());
    expect(await cartStatus(failed.cartId)).toBe('payment_failed');
    expect(await counts(product.id)).toEqual({ stock: 4, reserved: 0 });
  });

  it('takes the units for good when the payment lands, once however often it is reported', async () => {
    const product = await stocked(5);
    const card = await checkedOut([{ id: product.id, quantity: 2, unitAmount: 1000 }]);
    const transfer = await checkedOut([{ id: product.id, quantity: 1, unitAmount: 1000 }]);
    const paid = eventsFor(card).completedPaid();
    for (const event of [paid, paid]) await deliver(event);
    expect(await counts(product.id)).toEqual({ stock: 3, reserved: 1 });

    await deliver(eventsFor(transfer).completedUnpaid());
    await deliver(eventsFor(transfer).asyncSucceeded());
    // A refund does not put goods back on the shelf: that is a person's call when they come back.
    await deliver(eventsFor(card).fullRefund());
    expect(await counts(product.id)).toEqual({ stock: 2, reserved: 0 });
    expect(
      await db().query('SELECT 1 FROM stock_holds WHERE session_id = ANY($1)', [[card.sessionId, transfer.sessionId]]),
    ).toEqual([]);
  });

  it('answers 409 out_of_stock naming what is short, at checkout and when the cart asks for more', async () => {
    const scarce = await stocked(2);
    const plenty = await stocked(10);
    const shopper = await cartOf([
      { id: scarce.id, quantity: 2 },
      { id: plenty.id, quantity: 1 },
    ]);
    // Someone else takes one of the two meanwhile.
    await checkedOut([{ id: scarce.id, quantity: 1, unitAmount: 1000 }]);

    const res = await checkout(shopper);
    expect(res.status).toBe(409);
    const body = (await problem(res)) as Awaited<ReturnType<typeof problem>> & { products: unknown };
    expect(body.code).toBe('out_of_stock');
    expect(body.products).toEqual([{ id: scarce.id, available: 1 }]);
    expect(body.detail).toContain(scarce.id);
    expect(await cartStatus(shopper.cartId)).toBe('open');
    expect(await counts(scarce.id)).toEqual({ stock: 2, reserved: 1 });

    const more = await call(`/v1/carts/${shopper.cartId}/items/${plenty.id}`, {
      method: 'PUT',
      token: shopper.user.token,
      json: { quantity: 11 },
    });
    expect(more.status).toBe(409);
    expect(await more.json()).toMatchObject({ code: 'out_of_stock', products: [{ id: plenty.id, available: 10 }] });
    // Asking for less is always allowed, even while it is still more than is left.
    const fewer = await call(`/v1/carts/${shopper.cartId}/items/${scarce.id}`, {
      method: 'PUT',
      token: shopper.user.token,
      json: { quantity: 1 },
    });
    expect(fewer.status).toBe(200);
    expect((await checkout(shopper)).status).toBe(201);
    expect(await available(scarce.id)).toBe(0);
  });

  it('records a payment for stock that is gone as paid, flagged oversold on the cart and in the event', async () => {
    const product = await stocked(2);
    const state = await checkedOut([{ id: product.id, quantity: 2, unitAmount: 1000 }]);
    // Two units turn out to be damaged: the operator counts one left.
    expect(await (await recount(product, 1)).json()).toMatchObject({ stock: 1, reserved: 2, available: 0 });

    const event = stripeEvent('checkout.session.completed', sessionObject(state));
    const lines = await linesOf(async () => expect((await deliver(event)).status).toBe(200));
    expect(lines.filter((line) => line.level !== 'info').map((line) => [line.level, line.msg])).toEqual([
      ['error', 'oversold'],
    ]);
    expect(await cartStatus(state.cartId)).toBe('paid');
    expect(await counts(product.id)).toEqual({ stock: 0, reserved: 0 });
    const cart = await (await call(`/v1/carts/${state.cartId}`, { token: state.user.token })).json();
    expect(cart).toMatchObject({ status: 'paid', oversold: true });
    expect((await outboxOf(state.cartId))[0]!.event).toMatchObject({ type: 'cart.paid', oversold: true });
  });

  it('logs a payment both oversold and of another amount on two lines, each for an operator to find', async () => {
    const product = await stocked(1);
    const state = await checkedOut([{ id: product.id, quantity: 1, unitAmount: 1000 }]);
    await db().query('UPDATE products SET stock = 0 WHERE id = $1', [product.id]);
    const event = stripeEvent('checkout.session.completed', sessionObject(state, { amount_subtotal: 900 }));
    const lines = await linesOf(async () => expect((await deliver(event)).status).toBe(200));
    expect(lines.filter((line) => line.level === 'error').map((line) => [line.msg, line.cartId])).toEqual([
      ['amount_mismatch', state.cartId],
      ['oversold', state.cartId],
    ]);
  });
});

describe('stock under concurrency', () => {
  it('gives 20 shoppers racing for the last 5 units exactly 5 sessions', async () => {
    const product = await stocked(5);
    const shoppers = await Promise.all(Array.from({ length: 20 }, () => cartOf([{ id: product.id, quantity: 1 }])));
    // Every checkout reads "5 available" and has its session made at Stripe, then piles up
    // behind the product's row lock, held here, at the statement that would reserve.
    const lock = await holdLocks([`SELECT 1 FROM products WHERE id = '${product.id}' FOR UPDATE`]);
    const answers = Promise.all(shoppers.map((s) => checkout(s)));
    await lock.waitForWaiters(20, '%jsonb_to_recordset%');
    await lock.release();
    const settled = await answers;

    expect(settled.filter((r) => r.status === 201)).toHaveLength(5);
    const refused = settled.filter((r) => r.status !== 201);
    expect(refused.map((r) => r.status)).toEqual(Array(15).fill(409));
    for (const res of refused) {
      expect(await res.json()).toMatchObject({ code: 'out_of_stock', products: [{ id: product.id, available: 0 }] });
    }
    expect(await counts(product.id)).toEqual({ stock: 5, reserved: 5 });
    const statuses = await db().query(
      'SELECT status, count(*)::int AS n FROM carts WHERE id = ANY($1) GROUP BY status',
      [shoppers.map((s) => s.cartId)],
    );
    expect(statuses.sort((a, b) => String(a.status).localeCompare(String(b.status)))).toEqual([
      { status: 'checkout_pending', n: 5 },
      { status: 'open', n: 15 },
    ]);
    // The sessions made for the 15 that lost can no longer be paid.
    const losers = new Set(shoppers.map((s) => s.cartId));
    for (const res of settled.filter((r) => r.status === 201)) {
      losers.delete(((await res.json()) as { cartId: string }).cartId);
    }
    const expired = await stripe.events.list({ type: 'checkout.session.expired', limit: 100 });
    const expiredCarts = expired.data.map((e) => (e.data.object as Stripe.Checkout.Session).client_reference_id);
    expect(expiredCarts.filter((id) => id && losers.has(id))).toHaveLength(15);
  });

  it('holds the units of checkouts under way when the stock starts being counted', async () => {
    const product = await stocked(null);
    const early = await checkedOut([{ id: product.id, quantity: 2, unitAmount: 1000 }]);
    const counting = await recount(product, 3);
    expect(await counting.json()).toMatchObject({ stock: 3, reserved: 2, available: 1 });

    const late = await cartOf([]);
    const asked = await call(`/v1/carts/${late.cartId}/items/${product.id}`, {
      method: 'PUT',
      token: late.user.token,
      json: { quantity: 2 },
    });
    expect(asked.status).toBe(409);
    expect(await problem(asked)).toMatchObject({ code: 'out_of_stock', products: [{ id: product.id, available: 1 }] });
    await deliver(eventsFor(early).completedPaid());
    expect(await counts(product.id)).toEqual({ stock: 1, reserved: 0 });
    const cart = await (await call(`/v1/carts/${early.cartId}`, { token: early.user.token })).json();
    expect(cart).toMatchObject({ status: 'paid', oversold: false });
  });

  it.each(['the checkout', 'the count'] as const)(
    'counts a checkout that starts while the stock starts being counted, %s queued first',
    async (first) => {
      const product = await stocked(null);
      const shopper = await cartOf([{ id: product.id, quantity: 2 }]);
      // The checkout (its session made) and the operator's first count both wait for the
      // product's row; the one queued first gets it first.
      const lock = await holdLocks([`SELECT 1 FROM products WHERE id = '${product.id}' FOR UPDATE`]);
      let checkingOut: Promise<Response> | undefined;
      if (first === 'the checkout') {
        checkingOut = checkout(shopper);
        await lock.waitForWaiters(1, '%jsonb_to_recordset%');
      }
      const counting = recount(product, 3);
      await lock.waitForWaiters(1, '%FROM products WHERE id = $1 FOR UPDATE%');
      checkingOut ??= checkout(shopper);
      await lock.waitForWaiters(2);
      await lock.release();
      expect((await checkingOut).status).toBe(201);
      expect((await counting).status).toBe(200);
      expect(await counts(product.id)).toEqual({ stock: 3, reserved: 2 });
      expect(await available(product.id)).toBe(1);
    },
  );

  it('ends the hold a first count gave a checkout whose payment landed while the count was written', async () => {
    const product = await stocked(null);
    const shopper = await cartOf([{ id: product.id, quantity: 2 }]);
    // The count's batch is held twice, behind advisory locks this test holds: before it locks the
    // product (the checkout is made meanwhile) and once it has written its holds (the payment
    // lands meanwhile).
    const beforeProduct = await holdLocks(['SELECT pg_advisory_xact_lock(7108)']);
    const afterHolds = await holdLocks(['SELECT pg_advisory_xact_lock(7109)']);
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const body = typeof init?.body === 'string' ? init.body : '';
      if (!body.includes('INSERT INTO products')) return realFetch(input, init);
      const batch = JSON.parse(body) as { queries: { query: string }[] };
      const wait = (key: number) => ({ query: `SELECT pg_advisory_xact_lock(${key})`, params: [] });
      const locking = batch.queries.findIndex((q) =>
        q.query.startsWith('SELECT FROM products WHERE id = $1 FOR UPDATE'),
      );
      const holding = batch.queries.findIndex((q) => q.query.includes('INSERT INTO stock_holds'));
      batch.queries.splice(holding + 1, 0, wait(7109));
      batch.queries.splice(locking, 0, wait(7108));
      const answer = (await (await realFetch(input, { ...init, body: JSON.stringify(batch) })).json()) as {
        results: unknown[];
      };
      answer.results.splice(holding + 2, 1);
      answer.results.splice(locking, 1);
      return Response.json(answer);
    });
    try {
      const counting = recount(product, 10);
      await beforeProduct.waitForWaiters(1, '%pg_advisory_xact_lock(7108)%');
      const res = await checkout(shopper);
      expect(res.status).toBe(201);
      const { sessionId } = (await res.json()) as { sessionId: string };
      await beforeProduct.release();
      await afterHolds.waitForWaiters(1, '%pg_advisory_xact_lock(7109)%');
      let landed = false;
      const paying = deliver(eventsFor({ sessionId, cartId: shopper.cartId, total: 2000 }).completedPaid()).then(
        (r) => {
          landed = true;
          return r;
        },
      );
      // The payment goes through at once, or comes to wait for a row the count holds.
      const waiting = async () =>
        (
          (await db().query(
            `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event <> 'advisory'`,
          )) as unknown[]
        ).length > 0;
      await expect.poll(async () => landed || (await waiting())).toBe(true);
      await afterHolds.release();
      expect((await counting).status).toBe(200);
      expect((await paying).status).toBe(200);
    } finally {
      vi.restoreAllMocks();
    }
    expect(await counts(product.id)).toEqual({ stock: 8, reserved: 0 });
    expect(await db().query('SELECT 1 FROM stock_holds WHERE product_id = $1', [product.id])).toEqual([]);
  });

  it('never leaves a double-tapped cart on the session its first tap gave up for want of stock', async () => {
    const product = await stocked(1);
    const shopper = await cartOf([{ id: product.id, quantity: 1 }]);
    const rival = await cartOf([{ id: product.id, quantity: 1 }]);
    const held = (path: string) => standin.addFault({ method: 'POST', path, delayMs: 2 ** 31 - 1, times: 1 });
    const taken = async () => expect.poll(async () => (await standin.faults()).length).toBe(0);
    try {
      // The first tap is held at Stripe making its session while the rival checks out the unit;
      // then, the unit found taken, it is held again expiring that session. Meanwhile the rival
      // cancels and the second tap (same cart, same version) checks out.
      await held('/v1/checkout/sessions');
      const first = checkout(shopper);
      await taken();
      expect((await checkout(rival)).status).toBe(201);
      await held('/v1/checkout/sessions/*');
      expect(await standin.releaseHeld()).toBe(1);
      await taken();
      const cancelled = await call(`/v1/carts/${rival.cartId}/checkout`, { method: 'DELETE', token: rival.user.token });
      expect(cancelled.status).toBe(200);
      const second = await checkout(shopper);
      expect(await standin.releaseHeld()).toBe(1);
      expect((await first).status).toBe(409);

      expect(second.status).toBe(201);
      const { sessionId } = (await second.json()) as { sessionId: string };
      const cart = (await (await call(`/v1/carts/${shopper.cartId}`, { token: shopper.user.token })).json()) as {
        status: string;
        checkout: { sessionId: string };
      };
      expect(cart).toMatchObject({ status: 'checkout_pending', checkout: { sessionId } });
      expect((await stripe.checkout.sessions.retrieve(sessionId)).status).toBe('open');
      expect(await counts(product.id)).toEqual({ stock: 1, reserved: 1 });
    } finally {
      await standin.clearFaults();
      await standin.releaseHeld();
    }
  });

  it('never moves the cart to a session of an attempt given up, handed to a double tap that waited at Stripe', async () => {
    const product = await stocked(1);
    const shopper = await cartOf([{ id: product.id, quantity: 1 }]);
    const rival = await cartOf([{ id: product.id, quantity: 1 }]);
    const held = (status?: 409) =>
      standin.addFault({ method: 'POST', path: '/v1/checkout/sessions', delayMs: 2 ** 31 - 1, times: 1, status });
    const taken = async () => expect.poll(async () => (await standin.faults()).length).toBe(0);
    try {
      // The first tap is held making its session; the second, under the same key, is held at
      // Stripe (409, tried again by stripe-node) while the rival takes the unit, the first tap
      // gives its attempt up for want of it, and the rival cancels. The second tap's last try is
      // then handed the first tap's session, expired.
      await held();
      const first = checkout(shopper);
      await taken();
      await held(409);
      const second = checkout(shopper);
      await taken();
      expect((await checkout(rival)).status).toBe(201);
      await held(409);
      expect(await standin.releaseHeld()).toBe(2);
      expect((await first).status).toBe(409);
      await taken();
      const cancelled = await call(`/v1/carts/${rival.cartId}/checkout`, { method: 'DELETE', token: rival.user.token });
      expect(cancelled.status).toBe(200);
      expect(await standin.releaseHeld()).toBe(1);

      const res = await second;
      expect(res.status).toBe(201);
      const { sessionId } = (await res.json()) as { sessionId: string };
      expect((await stripe.checkout.sessions.retrieve(sessionId)).status).toBe('open');
      expect(await cartStatus(shopper.cartId)).toBe('checkout_pending');
      expect(await counts(product.id)).toEqual({ stock: 1, reserved: 1 });
    } finally {
      await standin.clearFaults();
      await standin.releaseHeld();
    }
  });

  it("answers an edit racing its cart's checkout with 409, not a deadlock's 500", async () => {
    const product = await stocked(10);
    const shopper = await cartOf([{ id: product.id, quantity: 1 }]);
    // The checkout, its session made, waits to reserve behind the product's lock held here; the
    // shopper's edit of the same line (another tab) comes in meanwhile. Both then go on at once.
    const lock = await holdLocks([`SELECT 1 FROM products WHERE id = '${product.id}' FOR UPDATE`]);
    const checkingOut = checkout(shopper);
    await lock.waitForWaiters(1, '%jsonb_to_recordset%');
    const editing = call(`/v1/carts/${shopper.cartId}/items/${product.id}`, {
      method: 'PUT',
      token: shopper.user.token,
      json: { quantity: 2 },
    });
    await lock.waitForWaiters(2);
    await lock.release();
    const [checkedOut, edited] = await Promise.all([checkingOut, editing]);

    expect(checkedOut.status).toBe(201);
    expect(edited.status).toBe(409);
    expect((await problem(edited)).code).toBe('cart_not_editable');
    expect(await cartStatus(shopper.cartId)).toBe('checkout_pending');
    expect(await counts(product.id)).toEqual({ stock: 10, reserved: 1 });
  });

  it('flags a payment oversold when its stock is recounted to none while the payment lands', async () => {
    const product = await stocked(2);
    const state = await checkedOut([{ id: product.id, quantity: 2, unitAmount: 1000 }]);
    // The operator's recount to none is written but not yet committed when the payment's webhook
    // comes: the webhook waits for the product's row, then the recount commits.
    const recount = await holdLocks([`UPDATE products SET stock = 0 WHERE id = '${product.id}'`]);
    const paying = deliver(eventsFor(state).completedPaid());
    await recount.waitForWaiters(1, '%products p%');
    await recount.release({ commit: true });
    expect((await paying).status).toBe(200);

    // Paid all the same, and flagged for an operator: the two units were no longer there.
    const cart = await (await call(`/v1/carts/${state.cartId}`, { token: state.user.token })).json();
    expect(cart).toMatchObject({ status: 'paid', oversold: true });
    expect((await outboxOf(state.cartId))[0]!.event).toMatchObject({ type: 'cart.paid', oversold: true });
    expect(await counts(product.id)).toEqual({ stock: 0, reserved: 0 });
  });

  it('checks out a cart lowered while its session was being made, not refusing it for the quantity it no longer asks', async () => {
    const product = await stocked(2);
    const shopper = await cartOf([{ id: product.id, quantity: 2 }]);
    const rival = await cartOf([{ id: product.id, quantity: 1 }]);
    try {
      // Held at Stripe making a session for 2, while the shopper lowers the line to 1 in another
      // tab and a rival takes 1 of the 2: the cart now asks for the 1 that is left.
      await standin.addFault({ method: 'POST', path: '/v1/checkout/sessions', delayMs: 2 ** 31 - 1, times: 1 });
      const first = checkout(shopper);
      await expect.poll(async () => (await standin.faults()).length).toBe(0);
      const lowered = await call(`/v1/carts/${shopper.cartId}/items/${product.id}`, {
        method: 'PUT',
        token: shopper.user.token,
        json: { quantity: 1 },
      });
      expect(lowered.status).toBe(200);
      expect((await checkout(rival)).status).toBe(201);
      expect(await standin.releaseHeld()).toBe(1);
      const res = await first;
      expect(res.status).toBe(201);
      const { sessionId } = (await res.json()) as { sessionId: string };
      expect((await stripe.checkout.sessions.retrieve(sessionId)).amount_total).toBe(1000);
      expect(await counts(product.id)).toEqual({ stock: 2, reserved: 2 });
    } finally {
      await standin.clearFaults();
      await standin.releaseHeld();
    }
  });

  it('logs a session made for units taken meanwhile only if it is left payable, not one already expired', async () => {
    const product = await stocked(1);
    const expiring = (fault: { status?: 500; delayMs?: number; times: number }) =>
      standin.addFault({ method: 'POST', path: '/v1/checkout/sessions/*', ...fault });
    /**
     * A checkout whose session is made (held at Stripe) while a rival takes the unit: refused,
     * its session expired, under `expire` (the faults set for it, and what happens while the
     * Worker's expire is held, if it is). Answers the session and the log lines.
     */
    const lostRace = async (expire: {
      fault: Parameters<typeof expiring>[0];
      whileHeld?: (sessionId: string) => Promise<void>;
    }) => {
      const shopper = await cartOf([{ id: product.id, quantity: 1 }]);
      const rival = await cartOf([{ id: product.id, quantity: 1 }]);
      const fetches = recordFetches();
      const taken = () => expect.poll(async () => (await standin.faults()).length).toBe(0);
      let sessionId = '';
      try {
        const lines = await linesOf(async () => {
          await standin.addFault({ method: 'POST', path: '/v1/checkout/sessions', delayMs: 2 ** 31 - 1, times: 1 });
          const answer = checkout(shopper);
          await taken();
          expect((await checkout(rival)).status).toBe(201);
          await expiring(expire.fault);
          expect(await standin.releaseHeld()).toBe(1);
          if (expire.whileHeld) {
            await taken();
            sessionId = /\/sessions\/(cs_[^/]+)\/expire$/.exec(
              fetches.urls.find((url) => url.endsWith('/expire'))!,
            )![1]!;
            await expire.whileHeld(sessionId);
            expect(await standin.releaseHeld()).toBe(1);
          }
          const res = await answer;
          expect(res.status).toBe(409);
          expect((await problem(res)).code).toBe('out_of_stock');
        });
        sessionId ||= /\/sessions\/(cs_[^/]+)\/expire$/.exec(fetches.urls.find((url) => url.endsWith('/expire'))!)![1]!;
        await standin.clearFaults();
        await call(`/v1/carts/${rival.cartId}/checkout`, { method: 'DELETE', token: rival.user.token });
        return { sessionId, orphans: lines.filter((line) => line.msg === 'orphan_session_not_expired') };
      } finally {
        fetches.stop();
        await standin.clearFaults();
        await standin.releaseHeld();
      }
    };

    // Expired first by a double tap that got the same session: Stripe refuses to expire it again.
    const first = await lostRace({
      fault: { delayMs: 2 ** 31 - 1, times: 1 },
      whileHeld: async (sessionId) => void (await stripe.checkout.sessions.expire(sessionId)),
    });
    expect((await stripe.checkout.sessions.retrieve(first.sessionId)).status).toBe('expired');
    expect(first.orphans).toEqual([]);

    // Stripe failing the expire, every try: the session is left payable, for an operator.
    const second = await lostRace({ fault: { status: 500, times: 3 } });
    expect((await stripe.checkout.sessions.retrieve(second.sessionId)).status).toBe('open');
    expect(second.orphans).toMatchObject([{ level: 'error', sessionId: second.sessionId, status: 'open' }]);
  });

  it('gives a shopper who lost the race a new, payable session once there is stock again', async () => {
    const product = await stocked(1);
    const shoppers = await Promise.all([1, 2].map(() => cartOf([{ id: product.id, quantity: 1 }])));
    const lock = await holdLocks([`SELECT 1 FROM products WHERE id = '${product.id}' FOR UPDATE`]);
    const answers = Promise.all(shoppers.map((s) => checkout(s)));
    await lock.waitForWaiters(2, '%jsonb_to_recordset%');
    await lock.release();
    const settled = await answers;
    expect(settled.map((r) => r.status).sort()).toEqual([201, 409]);
    const loser = shoppers[settled.findIndex((r) => r.status === 409)]!;

    // Restocked: the same cart, unchanged, checks out again at once. Its first session was
    // expired; the key it was made under must not hand it back.
    await db().query('UPDATE products SET stock = 2 WHERE id = $1', [product.id]);
    const again = await checkout(loser);
    expect(again.status).toBe(201);
    const { sessionId } = (await again.json()) as { sessionId: string };
    expect((await stripe.checkout.sessions.retrieve(sessionId)).status).toBe('open');
  });
});
