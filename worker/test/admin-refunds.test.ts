import type Stripe from 'stripe';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { call, db, holdLocks, linesOf, problem, testEnv } from './helpers.ts';
import { paidCart, standin, standinEvents } from './standin.ts';
import { checkedOutCart, deliver, eventsFor, outboxOf, standinStripe, stripeEvent } from './stripe-helpers.ts';

const admin = { Authorization: `Bearer ${testEnv.ADMIN_API_KEY}` };

// Stripe keeps an idempotency key for 24 hours, and the stand-in serves every run of this file
// (watch mode, --retry): each key a test names is made this run's own, so an earlier run's refund
// under it is never replayed or refused here. A key too long stays too long.
const RUN = crypto.randomUUID().slice(0, 8);

function refund(cartId: string, body?: object, key?: string) {
  return call(`/v1/admin/carts/${cartId}/refunds`, {
    method: 'POST',
    headers: { ...admin, ...(key && { 'Idempotency-Key': `${key}-${RUN}` }) },
    ...(body && { json: body }),
  });
}

async function cart(state: { cartId: string; user: { token: string } }) {
  return (await (await call(`/v1/carts/${state.cartId}`, { token: state.user.token })).json()) as {
    status: string;
    refundedAmount: number;
  };
}

/** What the charge has had refunded at Stripe, however many refunds that took. */
async function refundedAtStripe(sessionId: string): Promise<{ amountRefunded: number; refunds: number }> {
  const refunds = (await standinEvents(sessionId)).filter((e) => e.type === 'charge.refunded');
  const last = refunds.at(-1)?.data.object as Stripe.Charge | undefined;
  return { amountRefunded: last?.amount_refunded ?? 0, refunds: refunds.length };
}

afterEach(async () => {
  vi.restoreAllMocks();
  await standin.clearFaults();
  // A test that failed while holding a request at Stripe must not leave it to act during the next.
  await standin.releaseHeld();
});

describe('POST /v1/admin/carts/{cartId}/refunds', () => {
  it('refunds part of a paid cart, then the rest; the webhooks that follow change nothing', async () => {
    const state = await paidCart();
    const partial = await refund(state.cartId, { amount: 1000, reason: 'requested_by_customer' }, 'r-1');
    expect(partial.status).toBe(201);
    expect(await partial.json()).toEqual({
      id: expect.stringMatching(/^re_/),
      cartId: state.cartId,
      amount: 1000,
      currency: 'usd',
      status: 'succeeded',
      reason: 'requested_by_customer',
      createdAt: expect.any(String),
    });
    expect(await cart(state)).toMatchObject({ status: 'paid', refundedAmount: 1000 });

    const rest = await refund(state.cartId, undefined, 'r-2');
    expect(rest.status).toBe(201);
    expect(((await rest.json()) as { amount: number }).amount).toBe(state.total - 1000);
    expect(await cart(state)).toMatchObject({ status: 'refunded', refundedAmount: state.total });

    // Stripe's charge.refunded events for both refunds arrive afterwards.
    for (const event of (await standinEvents(state.sessionId)).filter((e) => e.type === 'charge.refunded')) {
      expect((await deliver(event)).status).toBe(200);
    }
    expect((await outboxOf(state.cartId)).map((o) => [o.event_type, o.event.refundedAmount])).toEqual([
      ['cart.paid', 0],
      ['cart.partially_refunded', 1000],
      ['cart.refunded', state.total],
    ]);
  });

  it('reads the charge back when Stripe answers the refund with its id only (not expanded), and applies it', async () => {
    const state = await paidCart();
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const res = await realFetch(input, init);
      const url = input instanceof Request ? input.url : String(input);
      if (!url.endsWith('/v1/refunds') || !res.ok) return res;
      const body = (await res.json()) as { charge: { id: string } | string };
      const charge = typeof body.charge === 'string' ? body.charge : body.charge.id;
      return new Response(JSON.stringify({ ...body, charge }), { status: res.status, headers: res.headers });
    });
    const res = await refund(state.cartId, undefined, 'r-unexpanded');
    expect(res.status).toBe(201);
    expect(await cart(state)).toMatchObject({ status: 'refunded', refundedAmount: state.total });
  });

  it('refunds once when the request is retried after a timeout, while the first is still at Stripe and after', async () => {
    const state = await paidCart();
    // Held at Stripe, its key in flight, until the test releases it: no delay to outlast.
    await standin.addFault({ method: 'POST', path: '/v1/refunds', delayMs: 2 ** 31 - 1 });
    // The operator's client gives up on the first request while Stripe is still making the refund …
    const first = refund(state.cartId, { amount: 700 }, 'timeout-1');
    await expect.poll(async () => (await standin.faults()).length).toBe(0);
    // … and sends it again with the same key. Stripe answers it (and stripe-node's retries of it)
    // 409 idempotency_key_in_use; only that answer gives this 503.
    const during = await refund(state.cartId, { amount: 700 }, 'timeout-1');
    expect(during.status).toBe(503);
    expect(during.headers.get('Retry-After')).toBe('1');
    expect(await problem(during)).toMatchObject({
      code: 'service_unavailable',
      detail: 'A refund with this Idempotency-Key is still being made; retry with it',
    });
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 0, refunds: 0 });

    expect(await standin.releaseHeld()).toBe(1);
    const answers = [await first];
    // After it, the same key gets Stripe's saved refund back.
    answers.push(await refund(state.cartId, { amount: 700 }, 'timeout-1'));
    answers.push(await refund(state.cartId, { amount: 700 }, 'timeout-1'));
    expect(answers.map((r) => r.status)).toEqual([201, 201, 201]);
    const ids = await Promise.all(answers.map(async (r) => ((await r.json()) as { id: string }).id));
    expect(new Set(ids).size).toBe(1);

    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 700, refunds: 1 });
    expect(await cart(state)).toMatchObject({ status: 'paid', refundedAmount: 700 });
    expect((await outboxOf(state.cartId)).map((o) => o.event_type)).toEqual(['cart.paid', 'cart.partially_refunded']);
  });

  it('refunds once when the operator retries while the first request, its refund made at Stripe, has not answered', async () => {
    const state = await paidCart();
    const session = await standinStripe().checkout.sessions.retrieve(state.sessionId);
    // The first request gets its refund from Stripe, then waits to record it behind the payment's
    // lock, held here: to the operator it has timed out.
    const lock = await holdLocks([`SELECT pg_advisory_xact_lock(hashtextextended('${session.payment_intent}', 0))`]);
    const first = refund(state.cartId, { amount: 600 }, 'stuck-1');
    await lock.waitForWaiters(1, '%pg_advisory_xact_lock%');
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 600, refunds: 1 });
    // The retry gets Stripe's saved answer for the key, and waits behind the same lock.
    const retried = refund(state.cartId, { amount: 600 }, 'stuck-1');
    await lock.waitForWaiters(2, '%pg_advisory_xact_lock%');
    await lock.release();

    const answers = await Promise.all([first, retried]);
    expect(answers.map((r) => r.status)).toEqual([201, 201]);
    const ids = await Promise.all(answers.map(async (r) => ((await r.json()) as { id: string }).id));
    expect(ids[1]).toBe(ids[0]);
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 600, refunds: 1 });
    expect(await cart(state)).toMatchObject({ status: 'paid', refundedAmount: 600 });
    expect((await outboxOf(state.cartId)).map((o) => [o.event_type, o.event.refundedAmount])).toEqual([
      ['cart.paid', 0],
      ['cart.partially_refunded', 600],
    ]);
  });

  // Stripe's answers as the stand-in gives them, and without `Stripe-Should-Retry`, which Stripe's
  // documentation never promises on a 500.
  const RETRY_ADVICE = [
    ['with', () => {}],
    [
      'without',
      () => {
        const realFetch = globalThis.fetch;
        vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
          const res = await realFetch(input, init);
          const headers = new Headers(res.headers);
          headers.delete('Stripe-Should-Retry');
          return new Response(res.body, { status: res.status, headers });
        });
      },
    ],
  ] as const;

  it.each(RETRY_ADVICE)(
    'answers a failure Stripe saved under the key as final once Stripe says so, and refunds for a request with a new key (%s Stripe-Should-Retry)',
    async (advice, stripeAdvice) => {
      const state = await paidCart();
      stripeAdvice();
      await standin.addFault({ method: 'POST', path: '/v1/refunds', status: 500 });
      // Stripe saved its 500 under the key. Told so (Stripe-Should-Retry: false), the answer is
      // final at once; not told, a retry with the key is safe, and its replay says so.
      const failed = await refund(state.cartId, { amount: 500 }, `saved-${advice}-1`);
      expect(failed.status).toBe(advice === 'with' ? 409 : 503);
      expect((await problem(failed)).code).toBe(advice === 'with' ? 'idempotency_key_failed' : 'service_unavailable');
      // The replay: nothing was refunded, and nothing is now.
      const replayed = await refund(state.cartId, { amount: 500 }, `saved-${advice}-1`);
      expect(replayed.status).toBe(409);
      expect(await problem(replayed)).toMatchObject({
        code: 'idempotency_key_failed',
        detail: expect.stringContaining('new Idempotency-Key'),
      });
      expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 0, refunds: 0 });

      expect((await refund(state.cartId, { amount: 500 }, `saved-${advice}-2`)).status).toBe(201);
      expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 500, refunds: 1 });
    },
  );

  it.each(RETRY_ADVICE)(
    'answers 502 refund_outcome_unknown, not "try again", to a refund Stripe failed without an Idempotency-Key (%s Stripe-Should-Retry)',
    async (_, stripeAdvice) => {
      const state = await paidCart();
      stripeAdvice();
      await standin.addFault({ method: 'POST', path: '/v1/refunds', status: 500 });
      // Stripe calls a 500's outcome unknown: a blind retry of a refund it made would refund twice.
      const failed = await refund(state.cartId, { amount: 500 });
      expect(failed.status).toBe(502);
      expect(failed.headers.get('Retry-After')).toBeNull();
      expect(await problem(failed)).toMatchObject({
        code: 'refund_outcome_unknown',
        detail: expect.stringContaining('Check the cart'),
      });
      // Checked: nothing was refunded, so the operator refunds again.
      expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 0, refunds: 0 });
      expect((await refund(state.cartId, { amount: 500 })).status).toBe(201);
      expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 500, refunds: 1 });
    },
  );

  /**
   * Stripe's answers to POST /v1/refunds, as `answer` gives the `call`-th of them; `atStripe`
   * sends it on to the stand-in, which carries the refund out.
   */
  function refundsAnswered(answer: (call: number, atStripe: () => Promise<void>) => Promise<Response>) {
    const realFetch = globalThis.fetch;
    let calls = 0;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (!url.endsWith('/v1/refunds')) return realFetch(input, init);
      return answer(++calls, async () => {
        await (await realFetch(input, init)).arrayBuffer();
      });
    });
  }

  it.each<[string, Parameters<typeof refundsAnswered>[0]]>([
    [
      'a gateway answers for Stripe after the refund was made (no key): no retry is invited',
      async (_, atStripe) => {
        await atStripe();
        return new Response('<html>504 Gateway Time-out</html>', {
          status: 504,
          headers: { 'Content-Type': 'text/html' },
        });
      },
    ],
    [
      'Stripe made the refund but its answer was lost (no key), not the 429 of a retry',
      async (call, atStripe) => {
        // The refund is made, and its answer lost; a retry would be rate-limited.
        if (call > 1) {
          return Response.json(
            { error: { type: 'invalid_request_error', code: 'rate_limit', message: 'Too many requests' } },
            { status: 429 },
          );
        }
        await atStripe();
        throw new TypeError('Network connection lost.');
      },
    ],
  ])('answers 502 refund_outcome_unknown when %s', async (_, answer) => {
    const state = await paidCart();
    refundsAnswered(answer);
    const res = await refund(state.cartId, { amount: 500 });
    expect(res.status).toBe(502);
    expect((await problem(res)).code).toBe('refund_outcome_unknown');
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 500, refunds: 1 });
  });

  it('answers 503 to a 5xx Stripe did not keep for the key (Stripe-Should-Retry: true), and the retry with the key refunds once', async () => {
    const state = await paidCart();
    refundsAnswered(async () =>
      Response.json(
        { error: { type: 'api_error', message: 'An unknown error occurred' } },
        { status: 503, headers: { 'Stripe-Should-Retry': 'true' } },
      ),
    );
    const failed = await refund(state.cartId, { amount: 500 }, 'not-kept-1');
    expect(failed.status).toBe(503);
    expect((await problem(failed)).code).toBe('service_unavailable');
    vi.restoreAllMocks();
    expect((await refund(state.cartId, { amount: 500 }, 'not-kept-1')).status).toBe(201);
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 500, refunds: 1 });
  });

  it('answers 503 with Retry-After while Stripe rate-limits the refund, and refunds once it lets it through', async () => {
    const state = await paidCart();
    await standin.addFault({ method: 'POST', path: '/v1/refunds', status: 429, times: 5 });
    const limited = await refund(state.cartId, { amount: 500 }, 'limited-1');
    expect(limited.status).toBe(503);
    expect(limited.headers.get('Retry-After')).toBe('1');
    await standin.clearFaults();
    // Stripe's rate limiter answers before its idempotency layer: the same key then refunds.
    expect((await refund(state.cartId, { amount: 500 }, 'limited-1')).status).toBe(201);
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 500, refunds: 1 });
  });

  it('passes on the wait Stripe asks for with a 429 (Retry-After), and refunds nothing', async () => {
    const state = await paidCart();
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const res = await realFetch(input, init);
      if (res.status !== 429) return res;
      const headers = new Headers(res.headers);
      headers.set('Retry-After', '7');
      return new Response(res.body, { status: res.status, headers });
    });
    await standin.addFault({ method: 'POST', path: '/v1/refunds', status: 429, times: 5 });
    const limited = await refund(state.cartId, { amount: 500 }, 'limited-7');
    expect(limited.status).toBe(503);
    expect(limited.headers.get('Retry-After')).toBe('7');
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 0, refunds: 0 });
  });

  it('refunds what is left for an empty body, with or without a JSON content type', async () => {
    const state = await paidCart();
    const empty = await call(`/v1/admin/carts/${state.cartId}/refunds`, {
      method: 'POST',
      headers: { ...admin, 'Content-Type': 'application/json' },
      body: '',
    });
    expect(empty.status).toBe(201);
    expect(await cart(state)).toMatchObject({ status: 'refunded' });
  });

  it('makes a refund of its own for each request without an Idempotency-Key, as Stripe does without one', async () => {
    const state = await paidCart();
    expect((await refund(state.cartId, { amount: 300 })).status).toBe(201);
    expect((await refund(state.cartId, { amount: 300 })).status).toBe(201);
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 600, refunds: 2 });
    expect(await cart(state)).toMatchObject({ status: 'paid', refundedAmount: 600 });
  });

  it('refuses the key again with other parameters (400), as Stripe does, and refunds nothing more', async () => {
    const state = await paidCart();
    expect((await refund(state.cartId, { amount: 300 }, 'same-key')).status).toBe(201);
    const other = await refund(state.cartId, { amount: 400 }, 'same-key');
    expect(other.status).toBe(400);
    expect((await problem(other)).detail).toMatch(/Idempotency-Key/);
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 300, refunds: 1 });
  });

  it('refuses the key again for another cart (400), as Stripe refuses it with other parameters, and refunds nothing there', async () => {
    const [first, second] = [await paidCart(), await paidCart()];
    expect((await refund(first.cartId, { amount: 300 }, 'one-key-two-carts')).status).toBe(201);
    const other = await refund(second.cartId, { amount: 300 }, 'one-key-two-carts');
    expect(other.status).toBe(400);
    expect((await problem(other)).detail).toMatch(/Idempotency-Key/);
    expect(await refundedAtStripe(second.sessionId)).toEqual({ amountRefunded: 0, refunds: 0 });
    expect(await cart(second)).toMatchObject({ status: 'paid', refundedAmount: 0 });
  });

  it('answers 422 refund_refused with Stripe’s reason for more than is left, and changes nothing', async () => {
    const state = await paidCart();
    const res = await refund(state.cartId, { amount: state.total + 1 }, 'too-much');
    expect(res.status).toBe(422);
    const body = await problem(res);
    expect(body.code).toBe('refund_refused');
    expect(body.detail).toMatch(/greater than unrefunded amount/);
    expect(await cart(state)).toMatchObject({ status: 'paid', refundedAmount: 0 });
  });

  it('refuses with 400 an amount Stripe refuses in the cart’s currency (a KWD amount not ending in 0), and refunds nothing', async () => {
    const state = await paidCart({ currency: 'kwd' });
    const res = await refund(state.cartId, { amount: 1_005 }, 'kwd-1');
    expect(res.status).toBe(400);
    expect(await problem(res)).toMatchObject({
      code: 'validation_failed',
      detail: expect.stringMatching(/multiple of 10/),
    });
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 0, refunds: 0 });
    expect(await cart(state)).toMatchObject({ status: 'paid', refundedAmount: 0 });
    expect((await refund(state.cartId, { amount: 1_000 }, 'kwd-2')).status).toBe(201);
  });

  // Stripe takes twelve digits in IDR, eight in any other currency
  // (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
  it('refunds an IDR payment in amounts over eight digits, up to what is left of it', async () => {
    const state = await paidCart({ currency: 'idr', amounts: [150_000_000, 400_000_000] });
    expect(state.total).toBe(950_000_000);
    const part = await refund(state.cartId, { amount: 300_000_000 }, 'idr-1');
    expect(part.status).toBe(201);
    expect(await part.json()).toMatchObject({ amount: 300_000_000, currency: 'idr' });
    const rest = await refund(state.cartId, { amount: 650_000_000 }, 'idr-2');
    expect(rest.status).toBe(201);
    expect(await cart(state)).toMatchObject({ status: 'refunded', refundedAmount: 950_000_000 });
  });

  it("refuses with 400 a refund over Stripe's maximum in the cart's currency, and refunds nothing", async () => {
    const state = await paidCart();
    const res = await refund(state.cartId, { amount: 100_000_000 }, 'usd-max');
    expect(res.status).toBe(400);
    expect(await problem(res)).toMatchObject({
      code: 'validation_failed',
      detail: "amount: at most 99999999, Stripe's maximum amount in usd",
    });
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 0, refunds: 0 });
  });

  it('answers 422 refund_refused for a charged-back payment, as Stripe refuses it, and changes nothing', async () => {
    const state = await paidCart();
    const session = await standinStripe().checkout.sessions.retrieve(state.sessionId, { expand: ['payment_intent'] });
    await standin.dispute(String((session.payment_intent as Stripe.PaymentIntent).latest_charge));
    const res = await refund(state.cartId, { amount: 500 });
    expect(res.status).toBe(422);
    expect(await problem(res)).toMatchObject({ code: 'refund_refused', detail: expect.stringMatching(/charged back/) });
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 0, refunds: 0 });
    expect(await cart(state)).toMatchObject({ status: 'paid', refundedAmount: 0 });
  });

  it('answers 409 not_refundable for a cart that is not paid, and 404 for no such cart', async () => {
    const state = await checkedOutCart();
    const res = await refund(state.cartId, undefined, 'k');
    expect(res.status).toBe(409);
    expect((await problem(res)).code).toBe('not_refundable');
    expect((await refund(crypto.randomUUID(), undefined, 'k')).status).toBe(404);
  });

  it('answers 409 not_refundable, saying nothing was charged, for a paid cart without a payment (100 % discount)', async () => {
    const state = await paidCart();
    await db().query('UPDATE checkouts SET payment_intent_id = NULL WHERE session_id = $1', [state.sessionId]);
    const res = await refund(state.cartId);
    expect(res.status).toBe(409);
    expect(await problem(res)).toMatchObject({
      code: 'not_refundable',
      detail: 'Nothing was charged for this cart: there is no payment to refund',
    });
  });

  it('answers 201 for a refund Stripe made though the database failed to record it, so no retry refunds twice', async () => {
    const state = await paidCart();
    const realFetch = globalThis.fetch;
    let dropped = 0;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      // The fulfilment batch (it starts with the payment's advisory lock): the database drops once.
      if (!dropped && !url.includes('/v1/') && String(init?.body ?? '').includes('pg_advisory_xact_lock')) {
        dropped++;
        throw new TypeError('Network connection lost.');
      }
      return realFetch(input, init);
    });
    let res: Response | undefined;
    const lines = await linesOf(async () => {
      res = await refund(state.cartId, { amount: 1000 });
    });
    expect(dropped).toBe(1);
    expect(res?.status).toBe(201);
    expect(await res?.json()).toMatchObject({ amount: 1000, status: 'succeeded' });
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 1000, refunds: 1 });
    expect(lines.filter((line) => line.msg === 'refund_not_recorded')).toHaveLength(1);
    // Stripe's charge.refunded webhook records it.
    for (const event of (await standinEvents(state.sessionId)).filter((e) => e.type === 'charge.refunded')) {
      expect((await deliver(event)).status).toBe(200);
    }
    expect(await cart(state)).toMatchObject({ status: 'paid', refundedAmount: 1000 });
  });

  it.each([
    ['an amount of 0', { amount: 0 }, undefined],
    ['a fractional amount', { amount: 1.5 }, undefined],
    ['an unknown reason', { reason: 'changed_mind' }, undefined],
    ['an unknown field', { amount: 100, currency: 'usd' }, undefined],
    ['an Idempotency-Key over 200 characters', { amount: 100 }, 'k'.repeat(201)],
  ])('answers 400 validation_failed for %s and refunds nothing', async (_, body, key) => {
    const state = await paidCart();
    const res = await refund(state.cartId, body, key);
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe('validation_failed');
    expect(await refundedAtStripe(state.sessionId)).toEqual({ amountRefunded: 0, refunds: 0 });
  });

  it('answers 401 without the admin key', async () => {
    const state = await paidCart();
    const res = await call(`/v1/admin/carts/${state.cartId}/refunds`, { method: 'POST', json: {} });
    expect(res.status).toBe(401);
  });
});

describe('a refund that fails after it was made (refund.failed)', () => {
  it('is recorded against its cart and logged once for an operator, the cart as it was; a replay says nothing more', async () => {
    const state = await paidCart();
    const made = await refund(state.cartId, { amount: 1000 }, 'fails-later');
    expect(made.status).toBe(201);
    const { id } = (await made.json()) as { id: string };
    // The card was closed meanwhile: Stripe gives the money back to the account's balance.
    const stripeRefund = await standinStripe().refunds.retrieve(id);
    const failed = stripeEvent('refund.failed', {
      ...stripeRefund,
      status: 'failed',
      failure_reason: 'expired_or_canceled_card',
    });
    const lines = await linesOf(async () => {
      for (const delivery of [failed, failed]) expect((await deliver(delivery)).status).toBe(200);
    });
    expect(lines.filter((line) => line.level === 'error')).toEqual([
      expect.objectContaining({
        msg: 'refund_failed',
        cartId: state.cartId,
        refund: { id, amount: 1000, currency: 'usd', reason: 'expired_or_canceled_card' },
      }),
    ]);
    const [row] = await db().query('SELECT cart_id, type FROM payment_events WHERE id = $1', [failed.id]);
    expect(row).toEqual({ cart_id: state.cartId, type: 'refund.failed' });
    expect(await cart(state)).toMatchObject({ status: 'paid', refundedAmount: 1000 });
    expect((await outboxOf(state.cartId)).map((o) => o.event_type)).toEqual(['cart.paid', 'cart.partially_refunded']);
  });

  it('before its payment is known here: logged all the same, with the payment intent to find it by', async () => {
    const checkout = await checkedOutCart();
    const paymentIntentId = `pi_${checkout.sessionId.slice(-12)}`;
    const failed = stripeEvent('refund.failed', {
      id: `re_${crypto.randomUUID().replaceAll('-', '')}`,
      object: 'refund',
      amount: 500,
      currency: 'usd',
      status: 'failed',
      payment_intent: paymentIntentId,
      failure_reason: 'unknown',
    });
    const lines = await linesOf(async () => {
      expect((await deliver(failed)).status).toBe(200);
      expect((await deliver(eventsFor(checkout).completedPaid())).status).toBe(200);
    });
    expect(lines.filter((line) => line.level === 'error')).toEqual([
      expect.objectContaining({ msg: 'refund_failed', cartId: null, paymentIntentId }),
    ]);
  });

  it('as a thin event whose v2 event names no snapshot event: read from the refund as it is now', async () => {
    const state = await paidCart();
    const made = await refund(state.cartId, { amount: 1000 }, 'fails-thin');
    const { id } = (await made.json()) as { id: string };
    const thinId = `evt_thin_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`;
    // `snapshot_event` is optional in Stripe's v2 event (https://docs.stripe.com/api/v2/core/events/object).
    const v2 = {
      id: thinId,
      object: 'v2.core.event',
      type: 'v1.refund.failed',
      context: null,
      livemode: false,
      created: new Date().toISOString(),
      related_object: { id, type: 'refund', url: `/v1/refunds/${id}` },
    };
    const realFetch = globalThis.fetch;
    const stripeGives = vi
      .spyOn(globalThis, 'fetch')
      .mockImplementation(async (input, init) =>
        new Request(input, init).url.includes(`/v2/core/events/${thinId}`) ? Response.json(v2) : realFetch(input, init),
      );
    let lines: Record<string, unknown>[] = [];
    try {
      lines = await linesOf(async () => expect((await deliver(JSON.stringify(v2))).status).toBe(200));
    } finally {
      stripeGives.mockRestore();
    }
    expect(lines.filter((line) => line.level !== 'info')).toEqual([
      expect.objectContaining({ msg: 'refund_failed', cartId: state.cartId, refund: expect.objectContaining({ id }) }),
    ]);
  });
});

describe('GET /v1/admin/carts', () => {
  it('lists every shopper’s carts in a status, most recently changed first', async () => {
    const older = await paidCart();
    const newer = await paidCart();
    const pending = await checkedOutCart();
    // Changed after anything other tests, running alongside, pay, and after the carts an earlier
    // run of this test dated ahead against the same database: these lead the list.
    for (const [state, days] of [
      [older, 1],
      [newer, 2],
      [pending, 3],
    ] as const) {
      await db().query(
        `UPDATE carts SET updated_at = greatest(now(), (SELECT max(updated_at) FROM carts)) + make_interval(days => $2)
         WHERE id = $1`,
        [state.cartId, days],
      );
    }
    const res = await call('/v1/admin/carts?status=paid&limit=2', { headers: admin });
    expect(res.status).toBe(200);
    const { carts } = (await res.json()) as { carts: { id: string; userId: string; status: string }[] };
    expect(carts.every((c) => c.status === 'paid')).toBe(true);
    expect(carts.map((c) => [c.id, c.userId])).toEqual([
      [newer.cartId, newer.user.id],
      [older.cartId, older.user.id],
    ]);

    // Without a status, every status: the checkout_pending cart, changed last, comes first.
    const all = (await (await call('/v1/admin/carts?limit=1', { headers: admin })).json()) as {
      carts: { id: string; status: string }[];
    };
    expect(all.carts).toEqual([expect.objectContaining({ id: pending.cartId, status: 'checkout_pending' })]);
  });

  it.each(['status=gone', 'limit=0', 'limit=101'])('answers 400 for %s', async (query) => {
    const res = await call(`/v1/admin/carts?${query}`, { headers: admin });
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe('validation_failed');
  });
});
