import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { call, createProduct, db, newUser, openCart, problem } from './helpers.ts';
import { standin, standinEvents } from './standin.ts';
import { ADDRESS, deliver, outboxOf, STRIPE_ADDRESS, standinStripe, stripeEnv } from './stripe-helpers.ts';

// Shipping, Stripe Tax and promotion codes as configured, through the stand-in: the session the
// Worker makes, what the shopper chooses on Stripe's page, and what comes back in the webhook.

const stripe = standinStripe();

const configured = {
  ...stripeEnv,
  SHIPPING_COUNTRIES: 'us, CA',
  SHIPPING_RATES: JSON.stringify([
    { name: 'Standard', amount: 500, currency: 'usd', minDays: 3, maxDays: 5 },
    { name: 'Express', amount: 1500, currency: 'usd', minDays: 1, maxDays: 2 },
    { name: 'Colissimo', amount: 900, currency: 'eur' },
  ]),
  STRIPE_AUTOMATIC_TAX: 'true',
  ALLOW_PROMOTION_CODES: 'true',
};

/**
 * The shopper pays on the stand-in with choices made on its page (shipping, a promotion code).
 * StandinControls.pay (test/support/standin.ts) sends the outcome alone, hence this request.
 */
async function payWithChoices(sessionId: string, choices: object): Promise<void> {
  const path = `/_standin/sessions/${sessionId}/pay`;
  const res = await fetch(`${stripeEnv.STRIPE_API_BASE}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ outcome: 'paid', ...choices }),
  });
  if (!res.ok) throw new Error(`stand-in ${path}: ${res.status} ${await res.text()}`);
}

/** A cart of a taxed product (2 × 2000) and a gift card Stripe Tax does not tax (1 × 1000), checked out with `env`. */
async function checkout(env: typeof stripeEnv) {
  const user = await newUser();
  const taxed = await createProduct({ unitAmount: 2000 });
  const giftCard = await createProduct({ unitAmount: 1000 });
  await db().query('UPDATE products SET tax_code = $2, stock = 10 WHERE id = $1', [taxed.id, 'txcd_99999999']);
  await db().query('UPDATE products SET tax_code = $2 WHERE id = $1', [giftCard.id, 'txcd_00000000']);
  const cartId = await openCart(user.token, [
    { id: taxed.id, quantity: 2 },
    { id: giftCard.id, quantity: 1 },
  ]);
  const res = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token, env });
  return { user, cartId, taxed, res };
}

describe('checkout with shipping, tax and promotion codes', () => {
  it('asks Stripe for the address, the rates in the cart’s currency, tax and promotion codes', async () => {
    const { res } = await checkout(configured);
    expect(res.status).toBe(201);
    const { sessionId } = (await res.json()) as { sessionId: string };
    const session = await stripe.checkout.sessions.retrieve(sessionId);
    expect(session).toMatchObject({
      shipping_address_collection: { allowed_countries: ['US', 'CA'] },
      automatic_tax: { enabled: true },
      allow_promotion_codes: true,
    });
    const rates = await Promise.all(
      session.shipping_options.map((o) => stripe.shippingRates.retrieve(String(o.shipping_rate))),
    );
    expect(rates.map((r) => [r.display_name, r.fixed_amount?.amount, r.tax_behavior, r.delivery_estimate])).toEqual([
      [
        'Standard',
        500,
        'exclusive',
        { minimum: { unit: 'business_day', value: 3 }, maximum: { unit: 'business_day', value: 5 } },
      ],
      [
        'Express',
        1500,
        'exclusive',
        { minimum: { unit: 'business_day', value: 1 }, maximum: { unit: 'business_day', value: 2 } },
      ],
    ]);
    const lines = await stripe.checkout.sessions.listLineItems(sessionId);
    expect(lines.data.map((l) => l.price?.tax_behavior)).toEqual(['exclusive', 'exclusive']);
  });

  it('asks for none of it when nothing is configured', async () => {
    const { res } = await checkout(stripeEnv);
    const session = await stripe.checkout.sessions.retrieve(((await res.json()) as { sessionId: string }).sessionId);
    expect(session).toMatchObject({
      shipping_address_collection: null,
      shipping_options: [],
      automatic_tax: { enabled: false },
      allow_promotion_codes: false,
    });
  });

  // Stripe takes twelve digits in IDR, eight in any other currency
  // (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
  it('offers an IDR rate over eight digits with an IDR cart', async () => {
    const env = {
      ...stripeEnv,
      SHIPPING_COUNTRIES: 'ID',
      SHIPPING_RATES: JSON.stringify([{ name: 'Kargo', amount: 250_000_000, currency: 'idr' }]),
    };
    const user = await newUser();
    const batik = await createProduct({ unitAmount: 150_000_000, currency: 'idr' });
    const cartId = await openCart(user.token, [{ id: batik.id, quantity: 1 }]);
    const res = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token, env });
    expect(res.status).toBe(201);
    const session = await stripe.checkout.sessions.retrieve(((await res.json()) as { sessionId: string }).sessionId);
    expect(session).toMatchObject({ currency: 'idr', amount_subtotal: 150_000_000 });
    const [rate] = await Promise.all(
      session.shipping_options.map((o) => stripe.shippingRates.retrieve(String(o.shipping_rate))),
    );
    expect(rate?.fixed_amount).toMatchObject({ amount: 250_000_000, currency: 'idr' });
  });

  /**
   * Pays the session on Stripe's page with a 10 % code and Express shipping; delivers Stripe's
   * webhook, in the form `asSent` gives it.
   */
  async function payWithCodeAndExpress(sessionId: string, asSent = (event: Stripe.Event) => event) {
    const code = `SAVE${crypto.randomUUID().slice(0, 6).toUpperCase()}`;
    await standin.promotionCode(code, 10);
    const session = await stripe.checkout.sessions.retrieve(sessionId);
    const express = String(session.shipping_options[1]!.shipping_rate);
    await payWithChoices(sessionId, {
      promotion_code: code,
      shipping: { name: 'Sam Shopper', address: STRIPE_ADDRESS, rate: express },
    });
    // The webhook Stripe sends for it, as it made it.
    const [completed] = await standinEvents(sessionId);
    expect((await deliver(asSent(completed!))).status).toBe(200);
  }

  it('records what the shopper chose: discount, shipping and tax from Stripe, the address and the rate by name', async () => {
    const { user, cartId, res } = await checkout(configured);
    const { sessionId } = (await res.json()) as { sessionId: string };
    await payWithCodeAndExpress(sessionId);

    // Items 5000, 10% off: 4000 → 3600 taxed at 10%, the gift card 1000 → 900 untaxed; Express 1500 + 150 tax.
    const amounts = { subtotal: 5000, discount: 500, shipping: 1500, tax: 360 + 150, total: 4500 + 1500 + 510 };
    const shipping = {
      name: 'Sam Shopper',
      address: ADDRESS,
      rate: { name: 'Express', amount: 1500, minDays: 1, maxDays: 2 },
    };
    const cart = await (await call(`/v1/carts/${cartId}`, { token: user.token })).json();
    expect(cart).toMatchObject({ status: 'paid', totalAmount: 5000, amounts, shipping, oversold: false });
    const [paid] = await outboxOf(cartId);
    expect(paid!.event).toMatchObject({ type: 'cart.paid', amountMismatch: false, amounts, shipping });
  });

  // Stripe writes an event in the API version of the endpoint it goes to (the Events API the
  // scheduled job reads: the account's default), and the address moved twice.
  it.each([
    [
      // Before 2025-02-24.acacia a session has the address only in `shipping_details`.
      'before collected_information (2025-02-24)',
      '2024-06-20',
      ({ collected_information, ...session }: Stripe.Checkout.Session) => ({
        ...session,
        shipping_details: collected_information!.shipping_details,
      }),
    ],
    [
      // Before 2022-08-01 it names the address `shipping` and the chosen rate's id `shipping_rate`
      // (https://docs.stripe.com/changelog/2022-08-01/updates-shipping-property-checkout-session).
      'before shipping_cost (2022-08-01)',
      '2020-08-27',
      ({ collected_information, shipping_cost, ...session }: Stripe.Checkout.Session) => ({
        ...session,
        shipping: collected_information!.shipping_details,
        shipping_rate: shipping_cost!.shipping_rate,
      }),
    ],
  ])('records the address and the rate from a webhook sent in an API version %s', async (_, version, asWritten) => {
    const { user, cartId, res } = await checkout(configured);
    const { sessionId } = (await res.json()) as { sessionId: string };
    await payWithCodeAndExpress(sessionId, (event) => {
      const object = asWritten(event.data.object as Stripe.Checkout.Session);
      return { ...event, api_version: version, data: { object } } as unknown as Stripe.Event;
    });

    const shipping = { name: 'Sam Shopper', address: ADDRESS, rate: { name: 'Express', amount: 1500 } };
    const cart = await (await call(`/v1/carts/${cartId}`, { token: user.token })).json();
    expect(cart).toMatchObject({ status: 'paid', shipping });
    const [paid] = await outboxOf(cartId);
    expect(paid!.event).toMatchObject({ type: 'cart.paid', shipping });
  });

  it('flags a discounted, taxed and shipped order whose subtotal at Stripe is not what the cart came to', async () => {
    const { user, cartId, res } = await checkout(configured);
    const { sessionId } = (await res.json()) as { sessionId: string };
    // Our snapshot says the items came to 1 cent less than the session Stripe charged for.
    await db().query('UPDATE checkouts SET amount_total = amount_total - 1 WHERE session_id = $1', [sessionId]);
    await payWithCodeAndExpress(sessionId);

    const cart = await (await call(`/v1/carts/${cartId}`, { token: user.token })).json();
    expect(cart).toMatchObject({ status: 'paid', amounts: { subtotal: 5000, discount: 500, shipping: 1500 } });
    const [paid] = await outboxOf(cartId);
    expect(paid!.event).toMatchObject({ type: 'cart.paid', amountMismatch: true });
  });

  it.each([
    ['SHIPPING_RATES that are not JSON', { SHIPPING_RATES: '[{name:' }],
    ['a shipping rate without a currency', { SHIPPING_RATES: '[{"name":"Standard","amount":500}]' }],
    [
      'six rates in one currency',
      { SHIPPING_RATES: JSON.stringify(Array(6).fill({ name: 'R', amount: 1, currency: 'usd' })) },
    ],
    ['a country that is not an ISO code', { SHIPPING_COUNTRIES: 'USA' }],
    ['STRIPE_AUTOMATIC_TAX that is not true or false', { STRIPE_AUTOMATIC_TAX: 'yes' }],
  ])('answers 500 misconfigured for %s, naming the variable, and leaves the cart open', async (_, bad) => {
    const name = Object.keys(bad)[0]!;
    const { cartId, res } = await checkout({ ...configured, ...bad });
    expect(res.status).toBe(500);
    const body = await problem(res);
    expect(body.code).toBe('misconfigured');
    expect(body.detail).toContain(name);
    const [row] = await db().query('SELECT status FROM carts WHERE id = $1', [cartId]);
    expect(row).toEqual({ status: 'open' });
  });
});
