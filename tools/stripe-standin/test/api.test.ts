import { reusedAfterWorkerdIdle } from '@edge-checkout/test-support/idle-connection';
import Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestStandin } from './testing.ts';
import {
  API_KEY,
  CART_SESSION,
  clientFor,
  control,
  createCartSession,
  startTestStandin,
  stripeError,
} from './testing.ts';

let t: TestStandin;
beforeEach(async () => {
  t = await startTestStandin();
});
afterEach(() => t.standin.close());

/** Sends parameters the client's types refuse, as a caller with a bug (or plain JavaScript) could. */
function createUnchecked(params: Record<string, unknown>): Promise<Stripe.Checkout.Session> {
  return t.stripe.checkout.sessions.create({ ...CART_SESSION, ...params } as Stripe.Checkout.SessionCreateParams);
}

describe('POST /v1/checkout/sessions', () => {
  it('creates an open, unpaid session with the totals of its line items and a hosted page url', async () => {
    const before = Math.floor(Date.now() / 1000);
    const session = await createCartSession(t.stripe);

    expect(session).toMatchObject({
      object: 'checkout.session',
      mode: 'payment',
      status: 'open',
      payment_status: 'unpaid',
      currency: 'usd',
      amount_subtotal: 3499,
      amount_total: 3499,
      client_reference_id: 'cart_123',
      metadata: { cart_id: 'cart_123' },
      payment_intent: null,
      customer_details: null,
      livemode: false,
      success_url: CART_SESSION.success_url,
      cancel_url: CART_SESSION.cancel_url,
      payment_method_types: ['card', 'customer_balance'],
      total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    });
    expect(session.id).toMatch(/^cs_test_a1[0-9A-Za-z]{56}$/);
    expect(session.url).toBe(`${t.standin.url}/c/pay/${session.id}`);
    // Stripe's default lifetime: 24 hours.
    expect(session.expires_at - session.created).toBe(24 * 3600);
    expect(session.created).toBeGreaterThanOrEqual(before);
    // Fields the stand-in does not model keep the fixture's shape rather than disappearing.
    expect(session).toHaveProperty('consent_collection', null);
    expect(session).toHaveProperty('custom_fields', []);
  });

  it('keeps expires_at, customer_email and allowed_payment_method_types', async () => {
    const expiresAt = Math.floor(Date.now() / 1000) + 31 * 60;
    const session = await createCartSession(t.stripe, {
      expires_at: expiresAt,
      customer_email: 'ada@example.com',
      allowed_payment_method_types: ['card'],
    });
    expect(session).toMatchObject({
      expires_at: expiresAt,
      customer_email: 'ada@example.com',
      allowed_payment_method_types: ['card'],
      payment_method_types: ['card'],
    });
  });

  it('replays the first response for a retry with the same Idempotency-Key', async () => {
    const first = await t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'checkout-cart_123-v1' });
    const retry = await t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'checkout-cart_123-v1' });
    expect(retry.id).toBe(first.id);

    // The client's fetch transport hides response headers; a plain request shows the replay marker.
    const raw = await fetch(`${t.standin.url}/v1/checkout/sessions`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${API_KEY}`,
        'Idempotency-Key': 'raw-key',
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: 'mode=payment&success_url=https://shop.example/s&line_items[0][quantity]=1&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=500&line_items[0][price_data][product_data][name]=Mug',
    });
    const replay = await fetch(`${t.standin.url}/v1/checkout/sessions`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${API_KEY}`,
        'Idempotency-Key': 'raw-key',
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      // The same parameters in another order are the same request.
      body: 'line_items[0][price_data][product_data][name]=Mug&line_items[0][price_data][unit_amount]=500&line_items[0][price_data][currency]=usd&line_items[0][quantity]=1&success_url=https://shop.example/s&mode=payment',
    });
    expect(raw.headers.get('idempotent-replayed')).toBeNull();
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.headers.get('request-id')).toBe(raw.headers.get('request-id'));
    expect(await replay.text()).toBe(await raw.text());
  });

  it('answers idempotency_error when a key is reused with other parameters or on another endpoint', async () => {
    await t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'key-1' });
    const changed = await stripeError(
      t.stripe.checkout.sessions.create(
        { ...CART_SESSION, client_reference_id: 'cart_456' },
        { idempotencyKey: 'key-1' },
      ),
    );
    expect(changed).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(changed.statusCode).toBe(400);
    expect(changed.message).toMatch(/same parameters they were first used with/);

    const elsewhere = await stripeError(
      t.stripe.refunds.create({ payment_intent: 'pi_x' }, { idempotencyKey: 'key-1' }),
    );
    expect(elsewhere).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(elsewhere.message).toMatch(/same endpoint/);
  });

  it('scopes idempotency keys to the API key', async () => {
    const mine = await t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'shared' });
    const theirs = await clientFor(t.standin, 'sk_test_other_account').checkout.sessions.create(
      { ...CART_SESSION, client_reference_id: 'other' },
      { idempotencyKey: 'shared' },
    );
    expect(theirs.id).not.toBe(mine.id);
  });

  it('does not save a validation error, so a corrected retry with the same key succeeds', async () => {
    const invalid = await stripeError(
      t.stripe.checkout.sessions.create({ ...CART_SESSION, success_url: 'not a url' }, { idempotencyKey: 'fix-me' }),
    );
    expect(invalid.code).toBe('url_invalid');
    const session = await t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'fix-me' });
    expect(session.status).toBe('open');
  });

  it.each([
    ['no line_items', { line_items: undefined }, 'line_items', 'parameter_missing'],
    ['no success_url', { success_url: undefined }, 'success_url', 'parameter_missing'],
    [
      'no quantity',
      { line_items: [{ price_data: { currency: 'usd', unit_amount: 100, product_data: { name: 'A' } } }] },
      'line_items[0][quantity]',
      'parameter_missing',
    ],
    [
      'no product name',
      {
        line_items: [
          { quantity: 1, price_data: { currency: 'usd', unit_amount: 100, product_data: { description: 'x' } } },
        ],
      },
      'line_items[0][price_data][product_data][name]',
      'parameter_missing',
    ],
    [
      'a negative amount',
      { line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: -1, product_data: { name: 'A' } } }] },
      'line_items[0][price_data][unit_amount]',
      'parameter_invalid_integer',
    ],
    ['a bad email', { customer_email: 'nobody' }, 'customer_email', 'email_invalid'],
    ['a bad cancel_url', { cancel_url: 'shop/cancel' }, 'cancel_url', 'url_invalid'],
    ['an empty client_reference_id', { client_reference_id: '' }, 'client_reference_id', 'parameter_invalid_empty'],
  ] satisfies [string, Record<string, unknown>, string, string][])(
    'rejects %s with 400 naming the parameter',
    async (_case, overrides, param, code) => {
      const error = await stripeError(createUnchecked(overrides));
      expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
      expect(error).toMatchObject({ statusCode: 400, param, code, type: 'StripeInvalidRequestError' });
    },
  );

  it('rejects expires_at outside 30 minutes to 24 hours from now, with Stripe’s messages', async () => {
    const now = Math.floor(Date.now() / 1000);
    const soon = await stripeError(createCartSession(t.stripe, { expires_at: now + 29 * 60 }));
    expect(soon).toMatchObject({ statusCode: 400, param: 'expires_at' });
    expect(soon.message).toBe('The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.');
    const late = await stripeError(createCartSession(t.stripe, { expires_at: now + 24 * 3600 + 60 }));
    expect(late.message).toBe('The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.');
  });

  it('rejects parameters Stripe does not know, suggesting the current name of a renamed one', async () => {
    // payment_method_types left Checkout Session create in API version 2026-09-30.endive.
    const error = await stripeError(createUnchecked({ payment_method_types: ['card'] }));
    expect(error).toMatchObject({ statusCode: 400, code: 'parameter_unknown', param: 'payment_method_types' });
    expect(error.message).toBe(
      'Received unknown parameter: payment_method_types. Did you mean allowed_payment_method_types?',
    );
  });

  it('rejects a Price id, since the stand-in has no Prices, and a total under Stripe’s minimum charge', async () => {
    const price = await stripeError(createCartSession(t.stripe, { line_items: [{ price: 'price_123', quantity: 1 }] }));
    expect(price).toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'line_items[0][price]' });

    const cheap = await stripeError(
      createCartSession(t.stripe, {
        line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 49, product_data: { name: 'Gum' } } }],
      }),
    );
    expect(cheap.message).toBe("The Checkout Session's total amount due must add up to at least $0.50 usd");
  });
});

describe('Stripe’s limits on a Checkout Session', () => {
  const item = (unitAmount: number, quantity = 1): Stripe.Checkout.SessionCreateParams.LineItem => ({
    quantity,
    price_data: { currency: 'usd', unit_amount: unitAmount, product_data: { name: 'Thing' } },
  });

  it('takes up to 100 line items and refuses more', async () => {
    const hundred = await createCartSession(t.stripe, { line_items: Array.from({ length: 100 }, () => item(100)) });
    expect(hundred.amount_total).toBe(10_000);

    const error = await stripeError(
      createCartSession(t.stripe, { line_items: Array.from({ length: 101 }, () => item(100)) }),
    );
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error).toMatchObject({ statusCode: 400, param: 'line_items' });
    expect(error.message).toMatch(/at most 100 line items/);
  });

  it('takes a total of up to 99,999,999 minor units and refuses more with amount_too_large', async () => {
    const largest = await createCartSession(t.stripe, { line_items: [item(33_333_333, 3)] });
    expect(largest.amount_total).toBe(99_999_999);

    const error = await stripeError(createCartSession(t.stripe, { line_items: [item(50_000_000), item(50_000_000)] }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error).toMatchObject({
      statusCode: 400,
      code: 'amount_too_large',
      doc_url: 'https://stripe.com/docs/error-codes/amount-too-large',
      message: "The Checkout Session's total amount due must be no more than $999,999.99.",
    });
  });

  // "up to twelve digits for IDR … and up to eight digits for all other currencies"
  // (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
  it('takes a total of up to 999,999,999,999 minor units in IDR and refuses more with amount_too_large', async () => {
    const rupiah = (unitAmount: number, quantity = 1): Stripe.Checkout.SessionCreateParams.LineItem => ({
      quantity,
      price_data: { currency: 'idr', unit_amount: unitAmount, product_data: { name: 'Thing' } },
    });
    const over8 = await createCartSession(t.stripe, { line_items: [rupiah(150_000_000, 2)] });
    expect(over8.amount_total).toBe(300_000_000);
    const largest = await createCartSession(t.stripe, { line_items: [rupiah(333_333_333_333, 3)] });
    expect(largest.amount_total).toBe(999_999_999_999);

    const error = await stripeError(
      createCartSession(t.stripe, { line_items: [rupiah(500_000_000_000), rupiah(500_000_000_000)] }),
    );
    expect(error).toMatchObject({ statusCode: 400, code: 'amount_too_large' });
    // Intl writes a no-break space after the code.
    expect(error.message).toMatch(
      /^The Checkout Session's total amount due must be no more than IDR\s9,999,999,999\.99\.$/,
    );
  });
});

describe('amounts in currencies Stripe takes in steps', () => {
  const priced = (currency: string, unitAmount: number): Stripe.Checkout.SessionCreateParams.LineItem => ({
    quantity: 1,
    price_data: { currency, unit_amount: unitAmount, product_data: { name: 'Thing' } },
  });

  it.each([
    ['kwd', 1_005, 1_010, /rounded to the nearest ten/],
    ['isk', 15_050, 15_000, /evenly divisible by 100/],
    ['ugx', 500_001, 500_000, /evenly divisible by 100/],
  ])('refuses a %s amount off its step (%i) and takes one on it (%i)', async (currency, off, on, message) => {
    const error = await stripeError(createCartSession(t.stripe, { line_items: [priced(currency, off)] }));
    expect(error).toMatchObject({
      statusCode: 400,
      code: 'invalid_charge_amount',
      param: 'line_items[0][price_data][unit_amount]',
      message: expect.stringMatching(message),
    });
    expect((await createCartSession(t.stripe, { line_items: [priced(currency, on)] })).amount_total).toBe(on);
  });
});

describe('form encoding', () => {
  async function post(
    body: string,
    idempotencyKey?: string,
  ): Promise<{ status: number; body: { error?: { param?: string; message: string } } & Record<string, unknown> }> {
    const res = await fetch(`${t.standin.url}/v1/checkout/sessions`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${API_KEY}`,
        'Content-Type': 'application/x-www-form-urlencoded',
        ...(idempotencyKey && { 'Idempotency-Key': idempotencyKey }),
      },
      body,
    });
    return { status: res.status, body: (await res.json()) as { error?: { param?: string; message: string } } };
  }
  const item =
    'line_items[0][quantity]=1&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=700&line_items[0][price_data][product_data][name]=Mug';

  it('reads curl-style lists (`expand[]=`) and escaped brackets as stripe-node and curl send them', async () => {
    const res = await post(
      `mode=payment&success_url=https%3A%2F%2Fshop.example%2Fs&${item}&expand[]=line_items&metadata%5Bcart_id%5D=c9`,
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      metadata: { cart_id: 'c9' },
      line_items: { object: 'list', data: [{ description: 'Mug' }] },
    });
  });

  it('rejects a value that is both a string and a hash', async () => {
    const res = await post(`mode=payment&success_url=https://shop.example/s&${item}&metadata=x&metadata[a]=b`);
    expect(res).toMatchObject({ status: 400, body: { error: { param: 'metadata', message: 'Invalid hash' } } });
  });

  it('validates expand before acting, so a bad expand creates nothing', async () => {
    const params = `mode=payment&success_url=https://shop.example/s&${item}`;
    const res = await post(`${params}&expand[]=customer`, 'expand-key');
    expect(res).toMatchObject({ status: 400, body: { error: { param: 'expand' } } });
    // Had the request acted, its answer would be saved under the key and other parameters refused.
    expect((await post(params, 'expand-key')).status).toBe(200);
  });
});

describe('authentication', () => {
  it('answers 401 for a wrong key, masking it as Stripe does', async () => {
    const standin = await startTestStandin({ apiKey: API_KEY });
    try {
      const error = await stripeError(createCartSession(clientFor(standin.standin, 'sk_test_wrong_key_1234')));
      expect(error).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
      expect(error.statusCode).toBe(401);
      expect(error.message).toBe('Invalid API Key provided: sk_test_**********1234');
      expect((await createCartSession(standin.stripe)).status).toBe('open');
    } finally {
      await standin.standin.close();
    }
  });

  it('answers 401 without a key, and for live-mode keys', async () => {
    const res = await fetch(`${t.standin.url}/v1/checkout/sessions/cs_test_x`);
    expect(res.status).toBe(401);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    const body = (await res.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/^You did not provide an API key/);

    const live = await stripeError(
      clientFor(t.standin, 'sk_live_abcdefghijkl').checkout.sessions.retrieve('cs_test_x'),
    );
    expect(live).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
  });

  it('accepts the key as Basic auth user name, as curl -u sends it', async () => {
    const session = await createCartSession(t.stripe);
    const res = await fetch(`${t.standin.url}/v1/checkout/sessions/${session.id}`, {
      headers: { Authorization: `Basic ${Buffer.from(`${API_KEY}:`).toString('base64')}` },
    });
    expect(res.status).toBe(200);
  });
});

describe('connections', () => {
  it('keeps an idle connection open longer than workerd does (5 s), so the Worker is always the one to close it', async () => {
    const session = await createCartSession(t.stripe);
    const request = { method: 'GET', headers: { Authorization: `Bearer ${API_KEY}` } };
    expect(await reusedAfterWorkerdIdle(`${t.standin.url}/v1/checkout/sessions/${session.id}`, request)).toEqual([
      { status: 200, reused: false },
      { status: 200, reused: true },
    ]);
  });
});

describe('GET /v1/checkout/sessions/:id', () => {
  it('returns the session, and 404 resource_missing for an unknown id', async () => {
    const session = await createCartSession(t.stripe);
    expect(await t.stripe.checkout.sessions.retrieve(session.id)).toEqual(session);

    const error = await stripeError(t.stripe.checkout.sessions.retrieve('cs_test_unknown'));
    expect(error).toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
      param: 'session',
      message: "No such checkout.session: 'cs_test_unknown'",
    });
  });

  it('expands payment_intent and line_items', async () => {
    const session = await createCartSession(t.stripe);
    await control(t.standin, `/sessions/${session.id}/pay`, { outcome: 'paid' });

    const expanded = await t.stripe.checkout.sessions.retrieve(session.id, {
      expand: ['payment_intent.latest_charge', 'line_items'],
    });
    const intent = expanded.payment_intent as Stripe.PaymentIntent;
    expect(intent).toMatchObject({
      object: 'payment_intent',
      status: 'succeeded',
      amount: 3499,
      metadata: { cart_id: 'cart_123' },
    });
    expect(intent.latest_charge).toMatchObject({ object: 'charge', status: 'succeeded', amount: 3499 });
    expect(expanded.line_items?.data.map((item) => [item.description, item.quantity, item.amount_total])).toEqual([
      ['Edge T-shirt', 2, 3000],
      ['Sticker pack', 1, 499],
    ]);

    const unexpandable = await stripeError(t.stripe.checkout.sessions.retrieve(session.id, { expand: ['metadata'] }));
    expect(unexpandable).toMatchObject({ statusCode: 400, param: 'expand' });
  });

  it('answers Stripe’s 404 for a URL it does not serve', async () => {
    const res = await fetch(`${t.standin.url}/v1/customers`, { headers: { Authorization: `Bearer ${API_KEY}` } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: expect.objectContaining({
        type: 'invalid_request_error',
        message: expect.stringMatching(/^Unrecognized request URL \(GET: \/v1\/customers\)/),
      }),
    });
  });
});

describe('GET /v1/checkout/sessions/:id/line_items', () => {
  it('lists line items with inline prices, paginated like every Stripe list', async () => {
    const session = await createCartSession(t.stripe);
    const first = await t.stripe.checkout.sessions.listLineItems(session.id, { limit: 1 });
    expect(first).toMatchObject({
      object: 'list',
      has_more: true,
      url: `/v1/checkout/sessions/${session.id}/line_items`,
    });
    expect(first.data[0]).toMatchObject({
      object: 'item',
      description: 'Edge T-shirt',
      quantity: 2,
      amount_subtotal: 3000,
      currency: 'usd',
      price: { object: 'price', unit_amount: 1500, type: 'one_time', active: false },
    });
    // Sent as Stripe's decimal string, which the client turns into its Decimal type.
    expect(String(first.data[0].price?.unit_amount_decimal)).toBe('1500');
    const all = [];
    for await (const item of t.stripe.checkout.sessions.listLineItems(session.id, { limit: 1 }))
      all.push(item.description);
    expect(all).toEqual(['Edge T-shirt', 'Sticker pack']);
  });
});

describe('POST /v1/checkout/sessions/:id/expire', () => {
  it('expires an open session and refuses to expire it again, with Stripe’s message', async () => {
    const session = await createCartSession(t.stripe);
    const expired = await t.stripe.checkout.sessions.expire(session.id);
    expect(expired).toMatchObject({ id: session.id, status: 'expired', url: null, payment_status: 'unpaid' });

    const again = await stripeError(t.stripe.checkout.sessions.expire(session.id));
    expect(again).toMatchObject({ statusCode: 400, type: 'StripeInvalidRequestError' });
    expect(again.message).toBe(
      'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of `expired`.',
    );
  });

  it('refuses to expire a completed session', async () => {
    const session = await createCartSession(t.stripe);
    await control(t.standin, `/sessions/${session.id}/pay`, { outcome: 'paid' });
    const error = await stripeError(t.stripe.checkout.sessions.expire(session.id));
    expect(error.statusCode).toBe(400);
    expect(error.message).toMatch(/has a status of `complete`/);
  });

  it('answers 404 for an unknown session', async () => {
    const error = await stripeError(t.stripe.checkout.sessions.expire('cs_test_nope'));
    expect(error).toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });
});
