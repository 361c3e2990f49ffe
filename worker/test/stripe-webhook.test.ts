import type Stripe from 'stripe';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { shopperLock } from '../src/carts.ts';
import { call, db, holdLocks, linesOf, problem } from './helpers.ts';
import { paidCart, standin } from './standin.ts';
import {
  ADDRESS,
  cartStatus,
  chargeObject,
  checkedOutCart,
  deliver,
  disputeObject,
  eventRecorded,
  eventsFor,
  outboxOf,
  permutations,
  STRIPE_ADDRESS,
  sessionObject,
  signatureFor,
  standinStripe,
  stripeEnv,
  stripeEvent,
} from './stripe-helpers.ts';

type Scenario = { name: string; events: (keyof ReturnType<typeof eventsFor>)[]; final: string; published: string[] };

// The events one real checkout can produce, with the state every order of arrival must end in
// and the payment events that must have been published (each once).
const scenarios: Scenario[] = [
  { name: 'card payment', events: ['completedPaid'], final: 'paid', published: ['cart.paid'] },
  {
    name: 'card payment, then full refund',
    events: ['completedPaid', 'fullRefund'],
    final: 'refunded',
    published: ['cart.paid', 'cart.refunded'],
  },
  {
    name: 'card payment, then partial refund',
    events: ['completedPaid', 'partialRefund'],
    final: 'paid',
    published: ['cart.paid', 'cart.partially_refunded'],
  },

  {
    name: 'delayed payment that succeeds',
    events: ['completedUnpaid', 'asyncSucceeded'],
    final: 'paid',
    published: ['cart.paid'],
  },
  {
    name: 'delayed payment that succeeds, then full refund',
    events: ['completedUnpaid', 'asyncSucceeded', 'fullRefund'],
    final: 'refunded',
    published: ['cart.paid', 'cart.refunded'],
  },
  {
    name: 'delayed payment that fails',
    events: ['completedUnpaid', 'asyncFailed'],
    final: 'payment_failed',
    published: ['cart.payment_failed'],
  },
  { name: 'session expiry', events: ['expired'], final: 'open', published: [] },
];

describe('POST /v1/webhooks/stripe: every order of arrival, with replays', () => {
  const cases = scenarios.flatMap((s) =>
    permutations(s.events).map((order) => [s.name, order.join(' → '), s, order] as const),
  );

  it.each(cases)('%s: %s', async (_, __, scenario, order) => {
    const checkout = await checkedOutCart();
    const make = eventsFor(checkout);
    const events = order.map((name) => make[name]());
    // Each event arrives, then the whole sequence is replayed as Stripe's retries would.
    for (const event of [...events, ...events]) {
      const res = await deliver(event);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ received: true });
    }
    expect(await cartStatus(checkout.cartId)).toBe(scenario.final);
    const outbox = await outboxOf(checkout.cartId);
    const types = outbox.map((o) => o.event_type);
    expect(new Set(types).size).toBe(types.length);
    expect(types.filter((t) => scenario.published.includes(t)).sort()).toEqual([...scenario.published].sort());
    expect(types.every((t) => [...scenario.published, 'cart.awaiting_payment'].includes(t))).toBe(true);
  });
});

describe('POST /v1/webhooks/stripe: a payment refunded in part, then in full, and disputed; every order, replayed', () => {
  type Name = 'completedPaid' | 'partialRefund' | 'fullRefund' | 'disputeCreated' | 'disputeClosed';
  const names: Name[] = ['completedPaid', 'partialRefund', 'fullRefund', 'disputeCreated', 'disputeClosed'];
  const orders = permutations(names).map((order) => [order.join(' → '), order] as const);

  // 120 orders of 10 deliveries: through the app, not the entry point (see `call`), and with
  // the outbox left unpublished (what it holds is what is checked).
  const env = { ...stripeEnv, PUBSUB_EMULATOR_HOST: undefined, GCP_SERVICE_ACCOUNT_KEY: undefined };
  // Their 600 rows would be due for every later whole-outbox relay (the scheduled job's, in
  // other files): once checked, they are discarded, as an operator would.
  const carts: string[] = [];
  afterAll(() => db().query('UPDATE outbox SET discarded_at = now() WHERE cart_id = ANY($1)', [carts]));

  // Whatever the order, the cart ends refunded with the whole amount refunded and the dispute
  // lost, and the same five events are published once each, each with the fact it reports and
  // the id and time of the Stripe event that reported it: what Stripe reports before the
  // payment lands is published when it lands, in the order it happened, and a fact reported
  // after a further one (the partial refund after the full one, the dispute's opening after its
  // closing) is published all the same.
  it.each(orders)('%s', async (_, order) => {
    const checkout = await checkedOutCart({ env });
    carts.push(checkout.cartId);
    const make = eventsFor(checkout);
    // Created a minute apart, in the order they happened at Stripe.
    const start = Math.floor(Date.now() / 1000) - 3600;
    const made = Object.fromEntries(names.map((name, i) => [name, { ...make[name](), created: start + 60 * i }]));
    const events = order.map((name) => made[name]!);
    for (const event of [...events, ...events]) expect((await deliver(event, { env })).status).toBe(200);

    const dispute = { id: `dp_${checkout.sessionId.slice(-12)}`, reason: 'fraudulent', amount: checkout.total };
    const cart = (await (await call(`/v1/carts/${checkout.cartId}`, { token: checkout.user.token, env })).json()) as {
      status: string;
      refundedAmount: number;
      dispute: unknown;
    };
    expect(cart).toMatchObject({
      status: 'refunded',
      refundedAmount: checkout.total,
      dispute: { ...dispute, status: 'lost', closed: true },
    });
    const outbox = await outboxOf(checkout.cartId);
    const published = outbox.map((o) => ({
      type: o.event_type,
      ...(o.event_type.includes('refund') && { refundedAmount: o.event.refundedAmount }),
      ...(o.event_type.includes('dispute') && { dispute: o.event.dispute }),
    }));
    expect(published.sort((a, b) => a.type.localeCompare(b.type))).toEqual([
      { type: 'cart.dispute_closed', dispute: { ...dispute, status: 'lost', closed: true } },
      { type: 'cart.disputed', dispute: { ...dispute, status: 'needs_response', closed: false } },
      { type: 'cart.paid' },
      { type: 'cart.partially_refunded', refundedAmount: 100 },
      { type: 'cart.refunded', refundedAmount: checkout.total },
    ]);
    // The payment comes first, as nothing is published about a payment that has not landed.
    expect(outbox[0]!.event_type).toBe('cart.paid');
    expect(outbox.at(-1)!.event.cart.status).toBe('refunded');
    const reporter: Record<string, Name> = {
      'cart.paid': 'completedPaid',
      'cart.partially_refunded': 'partialRefund',
      'cart.refunded': 'fullRefund',
      'cart.disputed': 'disputeCreated',
      'cart.dispute_closed': 'disputeClosed',
    };
    for (const o of outbox) {
      const event = made[reporter[o.event_type]!]!;
      expect([o.event_type, o.stripe_event_id, o.event.stripe.eventId, o.event.occurredAt]).toEqual([
        o.event_type,
        event.id,
        event.id,
        new Date(event.created * 1000).toISOString(),
      ]);
    }
    // Two facts go out in the order they happened when the later one was delivered later, or
    // when both were waiting for the payment; a partial refund shows the cart as it was then.
    const before = (a: Name, b: Name) =>
      order.indexOf(a) < order.indexOf(b) ||
      order.indexOf('completedPaid') > Math.max(order.indexOf(a), order.indexOf(b));
    const at = (type: string) => outbox.findIndex((o) => o.event_type === type);
    expect(at('cart.partially_refunded') < at('cart.refunded')).toBe(before('partialRefund', 'fullRefund'));
    expect(at('cart.disputed') < at('cart.dispute_closed')).toBe(before('disputeCreated', 'disputeClosed'));
    expect(outbox[at('cart.partially_refunded')]!.event.cart.status).toBe(
      before('partialRefund', 'fullRefund') ? 'paid' : 'refunded',
    );
  });
});

describe('POST /v1/webhooks/stripe: a transaction Postgres gives up', () => {
  it("answers a webhook that Postgres ended to break a deadlock with 503 and Retry-After; Stripe's retry pays the cart once", async () => {
    const checkout = await checkedOutCart();
    const event = eventsFor(checkout).completedPaid();
    const paymentKey = (event.data.object as { payment_intent: string }).payment_intent;
    // Another session holds the cart, and once the webhook waits for it, asks for the payment's
    // lock the webhook holds: a cycle, which Postgres breaks by failing the webhook's side (it
    // waited first; this side waits a minute before it would look).
    const lock = await holdLocks([
      "SET deadlock_timeout = '60s'",
      `SELECT 1 FROM carts WHERE id = '${checkout.cartId}' FOR UPDATE`,
    ]);
    const delivering = deliver(event);
    await lock.waitForWaiters(1);
    await lock.thenRun([`SELECT pg_advisory_xact_lock(hashtextextended('${paymentKey}', 0))`]);
    const res = await delivering;
    await lock.release();

    expect(res.status).toBe(503);
    expect(res.headers.get('Retry-After')).toBe('1');
    expect((await problem(res)).code).toBe('service_unavailable');
    expect(await eventRecorded(event.id)).toBe(false);
    expect(await cartStatus(checkout.cartId)).toBe('checkout_pending');

    expect((await deliver(event)).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('paid');
    expect((await outboxOf(checkout.cartId)).map((o) => o.event_type)).toEqual(['cart.paid']);
  });
});

describe("POST /v1/webhooks/stripe: all of a checkout's events at once", () => {
  it.each(scenarios.filter((s) => s.events.length > 1).map((s) => [s.name, s] as const))('%s', async (_, scenario) => {
    const checkout = await checkedOutCart();
    const make = eventsFor(checkout);
    const events = scenario.events.map((name) => make[name]());
    // The deliveries pile up behind the cart's row lock (or behind one that holds it), then go
    // at once. One may answer meanwhile: an event that needs no cart yet, such as a refund
    // recorded before its payment, which the payment then applies.
    const lock = await holdLocks([`SELECT 1 FROM carts WHERE id = '${checkout.cartId}' FOR UPDATE`]);
    const deliveries = [...events, ...events].map((event) => deliver(event));
    await Promise.race([lock.waitForWaiters(deliveries.length), ...deliveries]);
    await lock.release();
    const answers = await Promise.all(deliveries);
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(await cartStatus(checkout.cartId)).toBe(scenario.final);
    const types = (await outboxOf(checkout.cartId)).map((o) => o.event_type);
    expect(new Set(types).size).toBe(types.length);
    expect(types.filter((t) => scenario.published.includes(t)).sort()).toEqual([...scenario.published].sort());
  });
});

describe('POST /v1/webhooks/stripe: a refund racing its payment', () => {
  it('ends refunded when the refund lands while the completion is being handled', async () => {
    // The completion is held at the cart's row lock with its snapshot already taken; the
    // refund arrives meanwhile. Without the payment lock the refund commits first, unseen by
    // that snapshot, and the cart ends paid.
    const checkout = await checkedOutCart();
    const events = eventsFor(checkout);
    const lock = await holdLocks([`SELECT 1 FROM carts WHERE id = '${checkout.cartId}' FOR UPDATE`]);
    const completion = deliver(events.completedPaid());
    await lock.waitForWaiters(1, '%WITH target AS%');
    const refund = deliver(events.fullRefund());
    // With the payment lock the refund waits behind the completion; without it, it is done.
    await Promise.race([refund, lock.waitForWaiters(2)]);
    await lock.release();
    expect((await completion).status).toBe(200);
    expect((await refund).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('refunded');
  });
});

describe('POST /v1/webhooks/stripe: a delayed payment that fails after the shopper started another cart', () => {
  const openCart = (token: string) => call('/v1/carts', { method: 'POST', token });

  it('answers 200, moves the cart to payment_failed and publishes it; the newer cart stays the active one', async () => {
    const state = await checkedOutCart();
    const events = eventsFor(state);
    expect((await deliver(events.completedUnpaid())).status).toBe(200);
    const next = await openCart(state.user.token);
    expect(next.status).toBe(201);
    const newer = (await next.json()) as { id: string };

    for (const event of [events.asyncFailed(), events.asyncFailed()]) expect((await deliver(event)).status).toBe(200);
    expect(await cartStatus(state.cartId)).toBe('payment_failed');
    expect((await outboxOf(state.cartId)).map((o) => o.event_type)).toEqual([
      'cart.awaiting_payment',
      'cart.payment_failed',
    ]);

    const again = await openCart(state.user.token);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(newer.id);
    const [{ n }] = (await db().query('SELECT count(*)::int AS n FROM carts WHERE user_id = $1 AND active', [
      state.user.id,
    ])) as [{ n: number }];
    expect(n).toBe(1);

    const edit = await call(`/v1/carts/${state.cartId}/items/${state.products[0]!.id}`, {
      method: 'PUT',
      token: state.user.token,
      json: { quantity: 1 },
    });
    expect(edit.status).toBe(409);
    expect((await problem(edit)).code).toBe('cart_not_editable');
    const checkout = await call(`/v1/carts/${state.cartId}/checkout`, { method: 'POST', token: state.user.token });
    expect(checkout.status).toBe(409);
    expect((await problem(checkout)).code).toBe('cart_not_editable');
    const shown = (await (await call(`/v1/carts/${state.cartId}`, { token: state.user.token })).json()) as {
      status: string;
    };
    expect(shown.status).toBe('payment_failed');
  });

  /** The shopper's next cart, holding one of the first cart's products, checked out: its session's events. */
  async function nextCheckout(state: Awaited<ReturnType<typeof checkedOutCart>>) {
    const opened = await openCart(state.user.token);
    expect(opened.status).toBe(201);
    const { id: cartId } = (await opened.json()) as { id: string };
    const product = state.products[0]!;
    const token = state.user.token;
    expect(
      (await call(`/v1/carts/${cartId}/items/${product.id}`, { method: 'PUT', token, json: { quantity: 1 } })).status,
    ).toBe(200);
    const res = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token });
    expect(res.status).toBe(201);
    const { sessionId } = (await res.json()) as { sessionId: string };
    return { cartId, events: eventsFor({ sessionId, cartId, total: product.unitAmount }) };
  }

  it('keeps the failed cart out of the way when the newer cart was paid meanwhile: POST /v1/carts starts another', async () => {
    const state = await checkedOutCart();
    await deliver(eventsFor(state).completedUnpaid());
    const newer = await nextCheckout(state);
    expect((await deliver(newer.events.completedPaid())).status).toBe(200);

    expect((await deliver(eventsFor(state).asyncFailed())).status).toBe(200);
    expect(await cartStatus(state.cartId)).toBe('payment_failed');
    const next = await openCart(state.user.token);
    expect(next.status).toBe(201);
    expect(((await next.json()) as { id: string }).id).not.toBe(state.cartId);
  });

  it.each([
    ['older', 'newer'],
    ['newer', 'older'],
  ] as const)('keeps the newer cart the active one when both delayed payments fail, the %s first', async (...order) => {
    const state = await checkedOutCart();
    await deliver(eventsFor(state).completedUnpaid());
    const newer = await nextCheckout(state);
    await deliver(newer.events.completedUnpaid());
    const failures = { older: eventsFor(state).asyncFailed(), newer: newer.events.asyncFailed() };
    for (const which of order) expect((await deliver(failures[which])).status).toBe(200);

    const again = await openCart(state.user.token);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(newer.cartId);
    const edit = await call(`/v1/carts/${newer.cartId}/items/${state.products[0]!.id}`, {
      method: 'PUT',
      token: state.user.token,
      json: { quantity: 2 },
    });
    expect(edit.status).toBe(200);
  });

  it('keeps one active cart when the failure and POST /v1/carts arrive at the same moment', async () => {
    const state = await checkedOutCart();
    const events = eventsFor(state);
    await deliver(events.completedUnpaid());
    const lock = await holdLocks([`SELECT ${shopperLock(`'${state.user.id}'`)}`]);
    const pending = Promise.all([deliver(events.asyncFailed()), openCart(state.user.token)]);
    await lock.waitForWaiters(2, '%pg_advisory_xact_lock%');
    await lock.release();
    const [webhook, opened] = await pending;
    expect(webhook.status).toBe(200);
    expect([200, 201]).toContain(opened.status);
    expect(await cartStatus(state.cartId)).toBe('payment_failed');
    const active = await db().query('SELECT id FROM carts WHERE user_id = $1 AND active', [state.user.id]);
    expect(active).toEqual([{ id: ((await opened.json()) as { id: string }).id }]);
  });
});

describe('POST /v1/webhooks/stripe: effects', () => {
  it('moves a paid cart and writes the payment event of the contract to the outbox', async () => {
    const checkout = await checkedOutCart({ amounts: [2000, 1250] });
    const event = eventsFor(checkout).completedPaid();
    expect((await deliver(event)).status).toBe(200);

    const [row] = await outboxOf(checkout.cartId);
    expect(row!.event_type).toBe('cart.paid');
    expect(row!.stripe_event_id).toBe(event.id);
    expect(row!.event).toEqual({
      id: row!.id,
      type: 'cart.paid',
      occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      cart: {
        id: checkout.cartId,
        userId: checkout.user.id,
        status: 'paid',
        currency: 'usd',
        totalAmount: 2000 + 2 * 1250,
        items: [
          {
            productId: checkout.products[0]!.id,
            name: checkout.products[0]!.name,
            unitAmount: 2000,
            quantity: 1,
            lineTotal: 2000,
          },
          {
            productId: checkout.products[1]!.id,
            name: checkout.products[1]!.name,
            unitAmount: 1250,
            quantity: 2,
            lineTotal: 2500,
          },
        ],
      },
      customer: { email: 'shopper@example.com', name: 'Sam Shopper' },
      stripe: {
        eventId: event.id,
        sessionId: checkout.sessionId,
        paymentIntentId: `pi_${checkout.sessionId.slice(-12)}`,
      },
      amountMismatch: false,
      amounts: { subtotal: 4500, discount: 0, shipping: 0, tax: 0, total: 4500 },
      shipping: null,
      refundedAmount: 0,
      oversold: false,
      dispute: null,
    });
  });

  it('takes discount, shipping and tax from Stripe without flagging them, and keeps the address', async () => {
    const checkout = await checkedOutCart();
    const session = sessionObject(checkout, {
      amount_subtotal: checkout.total,
      amount_total: checkout.total - 500 + 700 + 320,
      total_details: { amount_discount: 500, amount_shipping: 700, amount_tax: 320 },
      collected_information: {
        business_name: null,
        individual_name: null,
        shipping_details: { name: 'Sam Shopper', address: STRIPE_ADDRESS },
      },
      shipping_cost: { amount_subtotal: 700, amount_tax: 70, amount_total: 770, shipping_rate: 'shr_dashboard' },
    });
    expect((await deliver(stripeEvent('checkout.session.completed', session))).status).toBe(200);
    const amounts = { subtotal: checkout.total, discount: 500, shipping: 700, tax: 320, total: checkout.total + 520 };
    const shipping = {
      name: 'Sam Shopper',
      address: ADDRESS,
      // A rate the session was not given by us (set in Stripe's Dashboard): named by its id.
      rate: { name: 'shr_dashboard', amount: 700, minDays: null, maxDays: null },
    };
    const [row] = await outboxOf(checkout.cartId);
    expect(row!.event).toMatchObject({ amountMismatch: false, amounts, shipping });
    const cart = await (await call(`/v1/carts/${checkout.cartId}`, { token: checkout.user.token })).json();
    expect(cart).toMatchObject({
      status: 'paid',
      amounts,
      shipping,
      refundedAmount: 0,
      oversold: false,
      amountMismatch: false,
    });
  });

  // Postgres stores neither a NUL nor a lone surrogate; refused, the payment would never land.
  it("takes a payment whose shopper's name and address hold text Postgres cannot store, and stores it cleaned", async () => {
    const checkout = await checkedOutCart();
    const session = sessionObject(checkout, {
      customer_details: { ...sessionObject(checkout).customer_details!, name: 'Sam\u0000 Shopper' },
      collected_information: {
        business_name: null,
        individual_name: null,
        shipping_details: { name: 'Sam \uD800', address: { ...STRIPE_ADDRESS, line2: 'Flat\u0000 2' } },
      },
    });
    expect((await deliver(stripeEvent('checkout.session.completed', session))).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('paid');
    const [row] = await outboxOf(checkout.cartId);
    expect(row!.event.customer).toMatchObject({ name: 'Sam Shopper' });
    expect(row!.event.shipping).toMatchObject({ name: 'Sam \uFFFD', address: { line2: 'Flat 2' } });
  });

  it('takes an event without amount_subtotal as one without amounts, not as a subtotal of nothing', async () => {
    const checkout = await checkedOutCart();
    const { amount_subtotal: _, ...session } = sessionObject(checkout);
    expect((await deliver(stripeEvent('checkout.session.completed', session))).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('paid');
    expect((await outboxOf(checkout.cartId))[0]!.event.amounts).toBeNull();
  });

  it('refuses an event dated after the year 9999 (400), which Postgres cannot store, instead of failing every retry', async () => {
    const checkout = await checkedOutCart();
    const event = { ...eventsFor(checkout).completedPaid(), created: 253_402_300_800 };
    const res = await deliver(event);
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe('validation_failed');
    expect(await cartStatus(checkout.cartId)).toBe('checkout_pending');
  });

  it.each([
    [
      'a refund of half a minor unit',
      (c: Awaited<ReturnType<typeof checkedOutCart>>) => chargeObject(c, { amount_refunded: 0.5, refunded: false }),
    ],
    [
      'a refund without its payment intent',
      (c: Awaited<ReturnType<typeof checkedOutCart>>) => chargeObject(c, { payment_intent: 42 as never }),
    ],
  ])(
    'refuses (400) a signed charge.refunded with %s, whose object is not what Stripe sends, and records nothing',
    async (_, object) => {
      const checkout = await checkedOutCart();
      await deliver(eventsFor(checkout).completedPaid());
      const event = stripeEvent('charge.refunded', object(checkout));
      const res = await deliver(event);
      expect(res.status).toBe(400);
      expect((await problem(res)).code).toBe('validation_failed');
      expect(await eventRecorded(event.id)).toBe(false);
      expect((await outboxOf(checkout.cartId)).map((o) => o.event_type)).toEqual(['cart.paid']);
    },
  );

  it("does not take a payment intent another checkout already holds: the cart is paid, the other's is kept", async () => {
    const [first, second] = [await checkedOutCart(), await checkedOutCart()];
    const paymentIntent = `pi_${first.sessionId.slice(-12)}`;
    for (const state of [first, second]) {
      const session = sessionObject(state, { payment_intent: paymentIntent });
      expect((await deliver(stripeEvent('checkout.session.completed', session))).status).toBe(200);
      expect(await cartStatus(state.cartId)).toBe('paid');
    }
    const held = await db().query('SELECT session_id FROM checkouts WHERE payment_intent_id = $1', [paymentIntent]);
    expect(held).toEqual([{ session_id: first.sessionId }]);
  });

  it('still flags a subtotal that differs from the checkout snapshot when the total adds up', async () => {
    const checkout = await checkedOutCart();
    // A discount that hides a wrong subtotal: the total is what the cart came to.
    const session = sessionObject(checkout, {
      amount_subtotal: checkout.total + 100,
      amount_total: checkout.total,
      total_details: { amount_discount: 100, amount_shipping: 0, amount_tax: 0 },
    });
    expect((await deliver(stripeEvent('checkout.session.completed', session))).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('paid');
    expect((await outboxOf(checkout.cartId))[0]!.event.amountMismatch).toBe(true);
  });

  it('publishes a dispute and its outcome, also for a refunded payment, and ignores a stale dispute event', async () => {
    const checkout = await checkedOutCart();
    const events = eventsFor(checkout);
    for (const event of [events.completedPaid(), events.fullRefund(), events.disputeCreated()]) await deliver(event);
    const won = stripeEvent('charge.dispute.closed', disputeObject(checkout, { status: 'won' }));
    expect((await deliver(won)).status).toBe(200);
    // Stripe may send the creation again under another id, late: the dispute does not reopen.
    expect((await deliver(events.disputeCreated())).status).toBe(200);

    const outbox = await outboxOf(checkout.cartId);
    expect(outbox.map((o) => o.event_type)).toEqual([
      'cart.paid',
      'cart.refunded',
      'cart.disputed',
      'cart.dispute_closed',
    ]);
    expect(outbox[2]!.event.dispute).toEqual({
      id: `dp_${checkout.sessionId.slice(-12)}`,
      status: 'needs_response',
      reason: 'fraudulent',
      amount: checkout.total,
      closed: false,
    });
    expect(outbox[3]!.event.dispute).toMatchObject({ status: 'won', closed: true });
    expect(await cartStatus(checkout.cartId)).toBe('refunded');
  });

  it('has one effect when Stripe delivers the same event several times at once', async () => {
    const checkout = await checkedOutCart();
    const event = eventsFor(checkout).completedPaid();
    const lock = await holdLocks([`SELECT 1 FROM carts WHERE id = '${checkout.cartId}' FOR UPDATE`]);
    const pending = Promise.all(Array.from({ length: 6 }, () => deliver(event)));
    await lock.waitForWaiters(6);
    await lock.release();
    const answers = await pending;
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(await cartStatus(checkout.cartId)).toBe('paid');
    expect((await outboxOf(checkout.cartId)).map((o) => o.event_type)).toEqual(['cart.paid']);
  });

  it('counts a refund or a dispute as a change to a paid cart (updatedAt), not to one still being paid', async () => {
    const checkout = await checkedOutCart();
    const events = eventsFor(checkout);
    const changedAt = async () =>
      ((await db().query('SELECT updated_at FROM carts WHERE id = $1', [checkout.cartId]))[0] as { updated_at: Date })
        .updated_at;
    // Reported before the payment landed: the quiet checkout keeps its time (the scheduled job goes by it).
    const pending = await changedAt();
    expect((await deliver(events.disputeCreated())).status).toBe(200);
    expect(await changedAt()).toEqual(pending);

    expect((await deliver(events.completedPaid())).status).toBe(200);
    let before = await changedAt();
    for (const report of [events.partialRefund(), events.disputeClosed()]) {
      expect((await deliver(report)).status).toBe(200);
      const after = await changedAt();
      expect(after.getTime()).toBeGreaterThan(before.getTime());
      before = after;
    }
    // Delivered again, it changes nothing.
    expect((await deliver(events.partialRefund())).status).toBe(200);
    expect(await changedAt()).toEqual(before);
  });

  it('records an amount that differs from the checkout snapshot, on the cart and in the event, and logs it once', async () => {
    const checkout = await checkedOutCart();
    const event = eventsFor({ ...checkout, total: checkout.total - 1 }).completedPaid();
    const lines = await linesOf(async () => {
      expect((await deliver(event)).status).toBe(200);
      // The payment's later events find the flag already set: nothing new for a person to look at.
      for (const later of [eventsFor(checkout).partialRefund(), eventsFor(checkout).disputeCreated()]) {
        expect((await deliver(later)).status).toBe(200);
      }
    });
    expect(lines.filter((line) => line.msg === 'amount_mismatch')).toEqual([
      expect.objectContaining({ level: 'error', eventId: event.id, cartId: checkout.cartId }),
    ]);
    // On the cart as its shopper and the operator read it (GET /v1/admin/carts shows the same).
    const cart = await (await call(`/v1/carts/${checkout.cartId}`, { token: checkout.user.token })).json();
    expect(cart).toMatchObject({ status: 'paid', amountMismatch: true });
    expect((await outboxOf(checkout.cartId))[0]!.event.amountMismatch).toBe(true);
  });

  it('records a currency that differs from the checkout snapshot', async () => {
    const checkout = await checkedOutCart();
    const event = stripeEvent('checkout.session.completed', sessionObject(checkout, { currency: 'eur' }));
    expect((await deliver(event)).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('paid');
    expect((await outboxOf(checkout.cartId))[0]!.event.amountMismatch).toBe(true);
  });

  it.each([
    ['two partial refunds that add up to the whole amount', [0.5, 1]],
    ['a partial refund, then the rest', [0.1, 1]],
  ])('ends refunded after %s, published once', async (_, shares) => {
    const checkout = await checkedOutCart();
    await deliver(eventsFor(checkout).completedPaid());
    for (const share of shares) {
      const refunded = Math.round(checkout.total * share);
      const event = stripeEvent(
        'charge.refunded',
        chargeObject(checkout, { amount_refunded: refunded, refunded: refunded === checkout.total }),
      );
      expect((await deliver(event)).status).toBe(200);
      expect(await cartStatus(checkout.cartId)).toBe(share === 1 ? 'refunded' : 'paid');
    }
    expect((await outboxOf(checkout.cartId)).map((o) => o.event_type)).toEqual([
      'cart.paid',
      'cart.partially_refunded',
      'cart.refunded',
    ]);
  });

  it('publishes each partial refund once with the amount it took refunds to, also one that arrives late', async () => {
    const checkout = await checkedOutCart();
    await deliver(eventsFor(checkout).completedPaid());
    const refunded = (amount: number) =>
      stripeEvent('charge.refunded', chargeObject(checkout, { amount_refunded: amount, refunded: false }));
    const first = refunded(300);
    const second = refunded(800);
    // The second refund's event overtakes the first's, and is delivered again.
    for (const event of [second, first, second]) expect((await deliver(event)).status).toBe(200);
    const outbox = await outboxOf(checkout.cartId);
    expect(outbox.map((o) => [o.event_type, o.event.refundedAmount])).toEqual([
      ['cart.paid', 0],
      ['cart.partially_refunded', 800],
      ['cart.partially_refunded', 300],
    ]);
    // What is refunded only grows: the late report does not take it back.
    const cart = await (await call(`/v1/carts/${checkout.cartId}`, { token: checkout.user.token })).json();
    expect(cart).toMatchObject({ status: 'paid', refundedAmount: 800 });
    // The same refund reported again under another id (as our admin API's answer and Stripe's
    // webhook both report one refund) is no news.
    const copy = refunded(300);
    expect((await deliver(copy)).status).toBe(200);
    const [row] = await db().query('SELECT outcome FROM payment_events WHERE id = $1', [copy.id]);
    expect(row).toEqual({ outcome: 'ignored' });
    expect(await outboxOf(checkout.cartId)).toHaveLength(3);
  });

  it("records but never applies an event about a session that is not the cart's current one", async () => {
    const checkout = await checkedOutCart();
    await deliver(eventsFor(checkout).expired());
    expect(await cartStatus(checkout.cartId)).toBe('open');
    const late = eventsFor(checkout).completedPaid();
    expect((await deliver(late)).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('open');
    const [row] = await db().query('SELECT outcome FROM payment_events WHERE id = $1', [late.id]);
    expect(row).toEqual({ outcome: 'stale_session' });
  });

  it("takes Stripe's ids as opaque: an event about a session id of another form is recorded, not refused", async () => {
    // Stripe may change the form and prefix of its ids; this session is simply not one of ours.
    const sessionId = `cs_test_${crypto.randomUUID()}`;
    const event = stripeEvent(
      'checkout.session.expired',
      sessionObject(
        { sessionId, cartId: crypto.randomUUID(), total: 1000 },
        { status: 'expired', payment_status: 'unpaid', payment_intent: null },
      ),
    );
    const res = await deliver(event);
    expect(res.status).toBe(200);
    expect(await eventRecorded(event.id)).toBe(true);
  });

  it('warns of a payment for a checkout of ours the database does not know (after a restore), not of foreign or given-up sessions', async () => {
    // Stripe sends every session of the account; one without our cart_id is another integration's.
    const ours = { sessionId: `cs_test_${crypto.randomUUID()}`, cartId: crypto.randomUUID(), total: 1000 };
    const lost = stripeEvent('checkout.session.completed', sessionObject(ours));
    const foreign = stripeEvent(
      'checkout.session.completed',
      sessionObject({ ...ours, sessionId: `cs_test_${crypto.randomUUID()}` }, { metadata: {} }),
    );
    // A session the Worker made and expired at once (a lost stock race) is never stored: its expiry is no news.
    const givenUp = stripeEvent(
      'checkout.session.expired',
      sessionObject(
        { ...ours, sessionId: `cs_test_${crypto.randomUUID()}` },
        { status: 'expired', payment_status: 'unpaid', payment_intent: null },
      ),
    );
    const lines = await linesOf(async () => {
      for (const event of [lost, foreign, givenUp]) expect((await deliver(event)).status).toBe(200);
    });
    expect(lines.filter((line) => line.level !== 'info')).toEqual([
      expect.objectContaining({
        level: 'error',
        msg: 'stripe_checkout_unknown',
        eventId: lost.id,
        cartId: ours.cartId,
        sessionId: ours.sessionId,
      }),
    ]);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'info',
        msg: 'stripe_event_not_applied',
        eventId: foreign.id,
        outcome: 'unknown_cart',
      }),
    );
  });

  it('acknowledges other event types without writing anything', async () => {
    const event = stripeEvent('customer.created', { id: 'cus_123', object: 'customer' });
    const res = await deliver(event);
    expect(res.status).toBe(200);
    expect(await eventRecorded(event.id)).toBe(false);
  });

  it('acknowledges another type whatever else the event holds, as nothing of it is read', async () => {
    const res = await deliver(JSON.stringify({ id: 'evt_other_1', type: 'customer.updated', data: {} }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: true });
    expect(await eventRecorded('evt_other_1')).toBe(false);
  });

  it.each([
    ['the new secret, listed first', (current: string) => `${current},whsec_old_secret_000000`],
    ['the old secret, listed last', (current: string) => `whsec_new_secret_000000, ${current}`],
  ])('accepts an event signed with %s while two secrets are configured', async (_, secrets) => {
    const checkout = await checkedOutCart();
    const env = { ...stripeEnv, STRIPE_WEBHOOK_SECRET: secrets(stripeEnv.STRIPE_WEBHOOK_SECRET) };
    expect((await deliver(eventsFor(checkout).completedPaid(), { env })).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('paid');
  });

  it('refuses an event signed with neither of two configured secrets, and writes nothing', async () => {
    const checkout = await checkedOutCart();
    const event = eventsFor(checkout).completedPaid();
    const env = { ...stripeEnv, STRIPE_WEBHOOK_SECRET: `whsec_new_secret_000000,${stripeEnv.STRIPE_WEBHOOK_SECRET}` };
    const res = await deliver(event, { env, secret: 'whsec_someone_else_0000000000' });
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe('invalid_signature');
    expect(await eventRecorded(event.id)).toBe(false);
  });
});

describe('POST /v1/webhooks/stripe: rejected requests write nothing', () => {
  const tampered = async (event: ReturnType<ReturnType<typeof eventsFor>['completedPaid']>) => {
    const header = await signatureFor(JSON.stringify(event));
    const body = JSON.stringify({ ...event, data: { object: { ...(event.data.object as object), amount_total: 1 } } });
    return deliver(body, { signature: header });
  };

  // A signature in Stripe's form is logged, with why and when it was made: after a secret
  // rotation a wrong secret shows in the logs at once. Other headers are a stranger's.
  const noMatch = 'No signatures found matching the expected signature for payload';
  it.each([
    ['a missing signature', (e: never) => deliver(e, { signature: null }), null],
    ['a malformed signature', (e: never) => deliver(e, { signature: 'garbage' }), null],
    [
      'a stale signature (over 300 s old)',
      (e: never) => deliver(e, { timestamp: Math.floor(Date.now() / 1000) - 301 }),
      'Timestamp outside the tolerance zone',
    ],
    [
      'a signature made with another secret',
      (e: never) => deliver(e, { secret: 'whsec_someone_else_0000000000' }),
      noMatch,
    ],
    ['a tampered body', (e: never) => tampered(e), noMatch],
  ])('answers 400 invalid_signature for %s', async (_, send, why) => {
    const checkout = await checkedOutCart();
    const event = eventsFor(checkout).completedPaid();
    let res!: Response;
    const lines = await linesOf(async () => {
      res = await send(event as never);
    });
    expect(lines).toEqual(
      why === null
        ? []
        : [
            {
              level: 'warn',
              msg: 'stripe_signature_refused',
              detail: why,
              signedAt: expect.stringMatching(/^\d{10}$/),
              requestId: expect.any(String),
            },
          ],
    );
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe('invalid_signature');
    expect(await eventRecorded(event.id)).toBe(false);
    expect(await cartStatus(checkout.cartId)).toBe('checkout_pending');
    expect(await outboxOf(checkout.cartId)).toEqual([]);
  });

  it.each([
    ['a body that is not JSON', 'hello'],
    ['JSON that is not an object', 'null'],
    ['a JSON array', '[{"id":"evt_1","type":"checkout.session.completed"}]'],
  ])('answers 400 validation_failed for %s, signed by Stripe', async (_, body) => {
    const res = await deliver(body);
    expect(res.status).toBe(400);
    expect(await problem(res)).toMatchObject({
      code: 'validation_failed',
      detail: expect.stringMatching(/^The (signed body|event) is not/),
    });
  });

  // An event destination of thin events pointed here (https://docs.stripe.com/event-destinations#thin-events):
  // Stripe would retry a 4xx for days and then disable the destination.
  it.each([
    ['a thin event of a type not handled', 'v1.payment_intent.succeeded', undefined],
    ["an event destination's ping", 'v2.core.event_destination.ping', undefined],
    // Only the connected account's context could read it (Stripe would answer 404 without), so
    // the webhook must not fail on it for days: that account's checkouts are not ours.
    ["a connected account's thin event", 'v1.checkout.session.completed', 'acct_1ConnectedAccount'],
  ])('acknowledges %s, signed by Stripe, and changes nothing', async (_, type, context) => {
    const checkout = await checkedOutCart();
    const id = `evt_thin_${checkout.sessionId.slice(-12)}`;
    const body = JSON.stringify({
      id,
      object: 'v2.core.event',
      type,
      context,
      created: '2026-11-30T10:00:00.000Z',
      related_object: {
        id: checkout.sessionId,
        type: 'checkout.session',
        url: `/v1/checkout/sessions/${checkout.sessionId}`,
      },
    });
    const res = await deliver(body);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: true });
    expect(await eventRecorded(id)).toBe(false);
    expect(await cartStatus(checkout.cartId)).toBe('checkout_pending');
  });
  it('answers 413 for a body over 1 MiB', async () => {
    const res = await deliver(JSON.stringify({ pad: 'x'.repeat(1024 * 1024 + 1) }));
    expect(res.status).toBe(413);
    expect((await problem(res)).code).toBe('payload_too_large');
  });

  it("answers 500 misconfigured for an event of the other mode than the key's, applying nothing, until the secret is mended", async () => {
    const checkout = await checkedOutCart();
    const event = eventsFor(checkout).completedPaid();
    expect(event.livemode).toBe(false);
    // A test-mode endpoint's signing secret beside a live key: the live mode's events never come.
    const testEventLiveKey = await deliver(event, { env: { ...stripeEnv, STRIPE_SECRET_KEY: 'sk_live_51Mode' } });
    expect(testEventLiveKey.status).toBe(500);
    expect(await problem(testEventLiveKey)).toMatchObject({
      code: 'misconfigured',
      detail: expect.stringContaining('STRIPE_WEBHOOK_SECRET holds the signing secret of a test-mode endpoint'),
    });
    // The other way round: a live endpoint's secret on a test deployment.
    const liveEventTestKey = await deliver({ ...event, livemode: true });
    expect(liveEventTestKey.status).toBe(500);
    expect((await problem(liveEventTestKey)).code).toBe('misconfigured');
    expect(await eventRecorded(event.id)).toBe(false);
    expect(await cartStatus(checkout.cartId)).toBe('checkout_pending');

    expect((await deliver(event)).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('paid');
  });

  // A live Connect destination is sent connected accounts' test-mode events too
  // (https://docs.stripe.com/connect/webhooks): no secret could make them go through.
  it("acknowledges a connected account's event of the other mode, snapshot or thin, as it does in its own", async () => {
    const live = { ...stripeEnv, STRIPE_SECRET_KEY: 'sk_live_51Mode' };
    const checkout = await checkedOutCart();
    const snapshot = { ...eventsFor(checkout).completedPaid(), account: 'acct_1ConnectedAccount', livemode: false };
    const thin = JSON.stringify({
      id: `evt_thin_${checkout.sessionId.slice(-12)}`,
      object: 'v2.core.event',
      type: 'v1.checkout.session.completed',
      context: 'acct_1ConnectedAccount',
      livemode: false,
      created: '2026-11-30T10:00:00.000Z',
      related_object: {
        id: checkout.sessionId,
        type: 'checkout.session',
        url: `/v1/checkout/sessions/${checkout.sessionId}`,
      },
    });
    for (const event of [snapshot, thin]) {
      const res = await deliver(event, { env: live });
      expect(res.status).toBe(200);
    }
  });

  it('answers 503 when the database is down, so Stripe retries, and applies the retry', async () => {
    const checkout = await checkedOutCart();
    const event = eventsFor(checkout).completedPaid();
    const down = await deliver(event, { env: { ...stripeEnv, NEON_HTTP_ENDPOINT: 'http://127.0.0.1:9/sql' } });
    expect(down.status).toBe(503);
    expect((await problem(down)).code).toBe('service_unavailable');
    expect(await cartStatus(checkout.cartId)).toBe('checkout_pending');

    expect((await deliver(event)).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('paid');
  });

  it('answers 503 rather than hang when the database does not answer, and the retry is applied once', async () => {
    const checkout = await checkedOutCart();
    const event = eventsFor(checkout).completedPaid();
    // The webhook's transaction waits behind this lock as long as it is held: a database that stopped answering.
    const lock = await holdLocks([`SELECT 1 FROM carts WHERE id = '${checkout.cartId}' FOR UPDATE`]);
    const stuck = await deliver(event);
    expect(stuck.status).toBe(503);
    expect((await problem(stuck)).code).toBe('service_unavailable');
    await lock.release();

    expect((await deliver(event)).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('paid');
    expect((await outboxOf(checkout.cartId)).map((o) => o.event_type)).toEqual(['cart.paid']);
  });
});

// A destination of thin events for API v1 resources is sent only a notice (`v1.checkout.session.completed`),
// and Stripe counts it delivered once acknowledged: the Worker reads the snapshot event it stands for.
describe('POST /v1/webhooks/stripe: thin events', () => {
  /** The thin notification Stripe sends for the session's first event of this type. */
  async function thinOf(sessionId: string, type: string): Promise<{ thin: string; event: Stripe.Event }> {
    const entry = (await standin.events<Stripe.Event>(sessionId)).find((e) => e.event.type === type);
    if (!entry?.thin_event) throw new Error(`no ${type} of ${sessionId}`);
    return { thin: JSON.stringify(entry.thin_event), event: entry.event };
  }

  /** A cart paid, then refunded in full at Stripe (as in the Dashboard), with its refund's thin notification. */
  async function refundedAtStripe() {
    const state = await paidCart();
    const [intent] = (await db().query('SELECT payment_intent_id FROM checkouts WHERE cart_id = $1', [
      state.cartId,
    ])) as {
      payment_intent_id: string;
    }[];
    await standinStripe().refunds.create({ payment_intent: intent!.payment_intent_id });
    return { state, ...(await thinOf(state.sessionId, 'charge.refunded')) };
  }

  it('applies a paid session’s thin event as its snapshot event, under that event’s id, once', async () => {
    const checkout = await checkedOutCart();
    await standin.pay(checkout.sessionId, 'paid');
    const { thin, event } = await thinOf(checkout.sessionId, 'checkout.session.completed');

    const res = await deliver(thin);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: true });
    expect(await cartStatus(checkout.cartId)).toBe('paid');
    expect(await eventRecorded(event.id)).toBe(true);
    // The same event again, thin or as a snapshot (a destination of each), changes nothing.
    expect((await deliver(thin)).status).toBe(200);
    expect((await deliver(event)).status).toBe(200);
    expect((await outboxOf(checkout.cartId)).map((o) => [o.event_type, o.stripe_event_id])).toEqual([
      ['cart.paid', event.id],
    ]);
  });

  it('applies a refund’s thin event', async () => {
    const { state, thin } = await refundedAtStripe();

    expect((await deliver(thin)).status).toBe(200);
    expect(await cartStatus(state.cartId)).toBe('refunded');
    expect((await outboxOf(state.cartId)).map((o) => o.event_type)).toEqual(['cart.paid', 'cart.refunded']);
  });

  it('applies a refund’s thin event whose v2 event names no snapshot event, from the charge as it is now', async () => {
    const { state, thin } = await refundedAtStripe();
    // `snapshot_event` is optional in Stripe's v2 event (https://docs.stripe.com/api/v2/core/events/object).
    const realFetch = globalThis.fetch;
    const withoutSnapshot = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const res = await realFetch(input, init);
      if (!new Request(input, init).url.includes('/v2/core/events/')) return res;
      const { snapshot_event: _, ...v2Event } = (await res.json()) as Record<string, unknown>;
      return Response.json(v2Event, { headers: res.headers });
    });
    try {
      expect((await deliver(thin)).status).toBe(200);
    } finally {
      withoutSnapshot.mockRestore();
    }
    expect(await cartStatus(state.cartId)).toBe('refunded');
    expect(await eventRecorded(JSON.parse(thin).id)).toBe(true);
  });

  it('answers 503 while Stripe fails to give the event, and applies the retry', async () => {
    const checkout = await checkedOutCart();
    await standin.pay(checkout.sessionId, 'paid');
    const { thin } = await thinOf(checkout.sessionId, 'checkout.session.completed');
    const path = `/v2/core/events/${JSON.parse(thin).id}`;
    // More failures than stripe-node's retries within one delivery.
    await standin.addFault({ method: 'GET', path, status: 500, times: 3 });

    const failed = await deliver(thin);
    expect(failed.status).toBe(503);
    expect((await problem(failed)).code).toBe('service_unavailable');
    expect(await cartStatus(checkout.cartId)).toBe('checkout_pending');

    expect((await deliver(thin)).status).toBe(200);
    expect(await cartStatus(checkout.cartId)).toBe('paid');
  });

  it('answers 500 misconfigured for a thin event Stripe does not give the key (another account or mode), and changes nothing', async () => {
    const checkout = await checkedOutCart();
    await standin.pay(checkout.sessionId, 'paid');
    const { thin, event } = await thinOf(checkout.sessionId, 'checkout.session.completed');
    const elsewhere = thin.replace(/"id": ?"evt_test_65\w+"/, '"id": "evt_test_65OfAnotherAccount"');
    expect(elsewhere).not.toBe(thin);

    const res = await deliver(elsewhere);
    expect(res.status).toBe(500);
    expect(await problem(res)).toMatchObject({
      code: 'misconfigured',
      detail: expect.stringContaining("the key must be of the event destination's account and mode"),
    });
    expect(await eventRecorded(event.id)).toBe(false);
    expect(await cartStatus(checkout.cartId)).toBe('checkout_pending');
  });
});
