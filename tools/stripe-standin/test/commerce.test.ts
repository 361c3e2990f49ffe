import type Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestStandin, WebhookReceiver } from './testing.ts';
import { control, createCartSession, SHIPPING, startReceiver, startTestStandin, verified, waitFor } from './testing.ts';

// Shipping, Stripe Tax at the stand-in's fixed test rate (10%), promotion codes, disputes and the
// listing of undelivered events, through the official client. The cart session is $34.99 of
// items: 2 × $15.00 and 1 × $4.99.

let t: TestStandin;
beforeEach(async () => {
  t = await startTestStandin();
});
afterEach(() => t.standin.close());

const ADDRESS = {
  line1: '1 Market St',
  line2: null,
  city: 'San Francisco',
  state: 'CA',
  postal_code: '94105',
  country: 'US',
};

async function promotionCode(body: object): Promise<Stripe.PromotionCode> {
  const res = await control<Stripe.PromotionCode>(t.standin, '/promotion_codes', body);
  expect(res.status).toBe(200);
  return res.body;
}

async function pay(sessionId: string, body: object) {
  return control<{ session: Stripe.Checkout.Session } & { error?: { message: string } }>(
    t.standin,
    `/sessions/${sessionId}/pay`,
    { outcome: 'paid', ...body },
  );
}

describe('shipping, tax and promotion codes', () => {
  it('creates the rates with the session, preselects the first, and shows what is collected', async () => {
    const session = await createCartSession(t.stripe, {
      ...SHIPPING,
      automatic_tax: { enabled: true },
      allow_promotion_codes: true,
    });
    expect(session).toMatchObject({
      allow_promotion_codes: true,
      automatic_tax: { enabled: true, status: 'requires_location_inputs' },
      shipping_address_collection: { allowed_countries: ['US', 'CA'] },
      amount_subtotal: 3499,
      // The first rate is preselected; tax waits for an address.
      amount_total: 3999,
      total_details: { amount_discount: 0, amount_shipping: 500, amount_tax: 0 },
    });
    expect(session.shipping_options.map((o) => o.shipping_amount)).toEqual([500, 1500]);
    const rate = await t.stripe.shippingRates.retrieve(String(session.shipping_options[1]!.shipping_rate));
    expect(rate).toMatchObject({ object: 'shipping_rate', display_name: 'Express', fixed_amount: { amount: 1500 } });
    expect(String(session.shipping_cost?.shipping_rate)).toBe(String(session.shipping_options[0]!.shipping_rate));
  });

  it('charges the discounted items, the chosen rate and tax on both, and keeps the address', async () => {
    const session = await createCartSession(t.stripe, {
      ...SHIPPING,
      automatic_tax: { enabled: true },
      allow_promotion_codes: true,
    });
    const promo = await promotionCode({ code: 'SPRING10', percent_off: 10 });
    const express = String(session.shipping_options[1]!.shipping_rate);
    const paid = await pay(session.id, {
      promotion_code: 'spring10', // codes are matched without case, as on Stripe
      shipping: { name: 'Sam Shopper', address: ADDRESS, rate: express },
    });
    expect(paid.status).toBe(200);

    // Items 3499 - 10% (3000 → 300, 499 → 50) = 3149; shipping 1500; tax 10% of 3149 + 1500.
    const done = await t.stripe.checkout.sessions.retrieve(session.id);
    expect(done).toMatchObject({
      status: 'complete',
      payment_status: 'paid',
      amount_subtotal: 3499,
      total_details: { amount_discount: 350, amount_shipping: 1500, amount_tax: 315 + 150 },
      amount_total: 3149 + 1500 + 465,
      automatic_tax: { enabled: true, status: 'complete' },
      collected_information: { shipping_details: { name: 'Sam Shopper', address: ADDRESS } },
      shipping_cost: { amount_subtotal: 1500, amount_tax: 150, amount_total: 1650, shipping_rate: express },
      discounts: [{ promotion_code: promo.id }],
    });
    const intent = await t.stripe.paymentIntents.retrieve(String(done.payment_intent));
    expect(intent.amount).toBe(done.amount_total);
    expect(intent.shipping).toMatchObject({ name: 'Sam Shopper', address: ADDRESS });
    const lines = await t.stripe.checkout.sessions.listLineItems(session.id);
    expect(lines.data.map((l) => [l.amount_subtotal, l.amount_discount, l.amount_tax, l.amount_total])).toEqual([
      [3000, 300, 270, 2970],
      [499, 50, 45, 494],
    ]);
    expect((await t.stripe.promotionCodes.retrieve(promo.id)).times_redeemed).toBe(1);
  });

  it('takes an amount off, leaves non-taxable items and prices that include tax as they are', async () => {
    const session = await createCartSession(t.stripe, {
      automatic_tax: { enabled: true },
      allow_promotion_codes: true,
      line_items: [
        {
          quantity: 1,
          price_data: {
            currency: 'usd',
            unit_amount: 2000,
            tax_behavior: 'exclusive',
            product_data: { name: 'Gift card', tax_code: 'txcd_00000000' },
          },
        },
        {
          quantity: 1,
          price_data: {
            currency: 'usd',
            unit_amount: 1100,
            tax_behavior: 'inclusive',
            product_data: { name: 'Book', tax_code: 'txcd_99999999' },
          },
        },
      ],
    });
    await promotionCode({ code: 'FIVE', amount_off: 310, currency: 'usd' });
    expect((await pay(session.id, { promotion_code: 'FIVE' })).status).toBe(200);
    // 310 off spread by size: 200 and 110. The book's 990 includes 90 of tax; nothing is added.
    const done = await t.stripe.checkout.sessions.retrieve(session.id);
    expect(done).toMatchObject({
      amount_subtotal: 3100,
      total_details: { amount_discount: 310, amount_shipping: 0, amount_tax: 90 },
      amount_total: 2790,
    });
  });

  it('completes with nothing to pay when a code covers everything', async () => {
    const session = await createCartSession(t.stripe, { allow_promotion_codes: true });
    await promotionCode({ code: 'FREE', percent_off: 100 });
    const { body } = await pay(session.id, { promotion_code: 'FREE' });
    expect(body.session).toMatchObject({
      status: 'complete',
      payment_status: 'no_payment_required',
      amount_total: 0,
      payment_intent: null,
    });
  });

  it.each([
    ['no address where one is collected', SHIPPING, {}, /shipping address/],
    [
      'a country the session does not ship to',
      SHIPPING,
      { shipping: { address: { ...ADDRESS, country: 'FR' } } },
      /FR/,
    ],
    ['a rate the session does not offer', SHIPPING, { shipping: { address: ADDRESS, rate: 'shr_other' } }, /shr_other/],
    ['an address where none is collected', {}, { shipping: { address: ADDRESS } }, /does not collect/],
    ['an unknown code', { allow_promotion_codes: true }, { promotion_code: 'NOPE' }, /This code is invalid/],
    ['a code where codes are not allowed', {}, { promotion_code: 'SPRING10' }, /does not accept/],
  ])('refuses to pay with %s, and the session stays open', async (_, params, body, message) => {
    await promotionCode({ code: 'SPRING10', percent_off: 10 });
    const session = await createCartSession(t.stripe, params);
    const res = await pay(session.id, body);
    expect(res.status).toBe(400);
    expect(res.body.error?.message).toMatch(message);
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
  });

  it('refuses a code in another currency and a code used up', async () => {
    await promotionCode({ code: 'EUROS', amount_off: 100, currency: 'eur' });
    await promotionCode({ code: 'ONCE', percent_off: 5, max_redemptions: 1 });
    const first = await createCartSession(t.stripe, { allow_promotion_codes: true });
    expect((await pay(first.id, { promotion_code: 'EUROS' })).status).toBe(400);
    expect((await pay(first.id, { promotion_code: 'ONCE' })).status).toBe(200);
    const second = await createCartSession(t.stripe, { allow_promotion_codes: true });
    expect((await pay(second.id, { promotion_code: 'ONCE' })).body.error?.message).toBe('This code is invalid.');
  });

  it.each<[string, Partial<Stripe.Checkout.SessionCreateParams>, string?]>([
    [
      'a shipping rate in another currency',
      {
        shipping_address_collection: { allowed_countries: ['US'] },
        shipping_options: [
          {
            shipping_rate_data: {
              display_name: 'X',
              type: 'fixed_amount',
              fixed_amount: { amount: 1, currency: 'eur' },
            },
          },
        ],
      },
    ],
    [
      'six shipping options',
      {
        shipping_address_collection: { allowed_countries: ['US'] },
        shipping_options: Array.from({ length: 6 }, (_, i) => ({
          shipping_rate_data: {
            display_name: `R${i}`,
            type: 'fixed_amount' as const,
            fixed_amount: { amount: i, currency: 'usd' },
          },
        })),
      },
    ],
    ['a country Checkout cannot ship to', { shipping_address_collection: { allowed_countries: ['KP' as 'US'] } }],
    ['a code that names no country', { shipping_address_collection: { allowed_countries: ['QQ' as 'US'] } }],
    ['a malformed tax code', { automatic_tax: { enabled: true } }, 'VAT'],
  ])('refuses a session with %s', async (_, params, taxCode) => {
    const lineItems = taxCode
      ? [
          {
            quantity: 1,
            price_data: { currency: 'usd', unit_amount: 1000, product_data: { name: 'X', tax_code: taxCode } },
          },
        ]
      : undefined;
    await expect(
      createCartSession(t.stripe, { ...params, ...(lineItems && { line_items: lineItems }) }),
    ).rejects.toMatchObject({ type: 'StripeInvalidRequestError' });
  });
});

describe('disputes', () => {
  let receiver: WebhookReceiver;
  beforeEach(async () => {
    receiver = await startReceiver();
    await control(t.standin, '/webhooks', { url: receiver.url });
  });
  afterEach(() => receiver.close());

  async function paidCharge(): Promise<Stripe.Charge> {
    const session = await createCartSession(t.stripe);
    await pay(session.id, {});
    const intent = await t.stripe.paymentIntents.retrieve(
      String((await t.stripe.checkout.sessions.retrieve(session.id)).payment_intent),
    );
    return t.stripe.charges.retrieve(String(intent.latest_charge));
  }

  it('opens a dispute of a charge, then closes it, each with its event to the webhook', async () => {
    const charge = await paidCharge();
    const opened = await control<Stripe.Dispute>(t.standin, `/charges/${charge.id}/dispute`, { reason: 'fraudulent' });
    expect(opened.status).toBe(200);
    expect(opened.body).toMatchObject({
      object: 'dispute',
      amount: 3499,
      charge: charge.id,
      payment_intent: charge.payment_intent,
      reason: 'fraudulent',
      status: 'needs_response',
    });
    const closed = await control<Stripe.Dispute>(t.standin, `/disputes/${opened.body.id}/close`, { outcome: 'lost' });
    expect(closed.body.status).toBe('lost');
    expect(await t.stripe.disputes.retrieve(opened.body.id)).toMatchObject({ status: 'lost' });
    expect((await t.stripe.charges.retrieve(charge.id)).disputed).toBe(true);

    const events = await waitFor(() => {
      const types = receiver.received.map((w) => verified(w));
      return types.length === 3 && types;
    });
    expect(events.map((e) => e.type)).toEqual([
      'checkout.session.completed',
      'charge.dispute.created',
      'charge.dispute.closed',
    ]);
    expect(events[1]!.data.object).toMatchObject({ id: opened.body.id, status: 'needs_response' });
    expect(events[2]!.data.object).toMatchObject({ id: opened.body.id, status: 'lost' });
  });

  it('refuses a second dispute, closing one twice, and disputing a charge that did not succeed', async () => {
    const charge = await paidCharge();
    const { body } = await control<Stripe.Dispute>(t.standin, `/charges/${charge.id}/dispute`, {});
    expect((await control(t.standin, `/charges/${charge.id}/dispute`, {})).status).toBe(409);
    await control(t.standin, `/disputes/${body.id}/close`, { outcome: 'won' });
    expect((await control(t.standin, `/disputes/${body.id}/close`, { outcome: 'lost' })).status).toBe(409);

    const session = await createCartSession(t.stripe, {});
    await pay(session.id, { outcome: 'async' });
    const intent = await t.stripe.paymentIntents.retrieve(
      String((await t.stripe.checkout.sessions.retrieve(session.id)).payment_intent),
    );
    expect((await control(t.standin, `/charges/${intent.latest_charge}/dispute`, {})).status).toBe(400);
  });
});

describe('GET /v1/events?delivery_success=', () => {
  it('lists the events not delivered to the endpoint, and those that were', async () => {
    const receiver = await startReceiver();
    try {
      await control(t.standin, '/webhooks', { url: receiver.url });
      const delivered = await createCartSession(t.stripe);
      await t.stripe.checkout.sessions.expire(delivered.id);
      await waitFor(() => receiver.received.length === 1);
      // The endpoint stops receiving: the next events are lost.
      await control(t.standin, '/webhooks', { enabled: false });
      const lost = await createCartSession(t.stripe);
      await t.stripe.checkout.sessions.expire(lost.id);

      const undelivered = await t.stripe.events.list({ delivery_success: false });
      expect(undelivered.data.map((e) => (e.data.object as Stripe.Checkout.Session).id)).toEqual([lost.id]);
      const succeeded = await t.stripe.events.list({ delivery_success: true });
      expect(succeeded.data.map((e) => (e.data.object as Stripe.Checkout.Session).id)).toEqual([delivered.id]);
      const both = await t.stripe.events.list({ types: ['checkout.session.expired'] });
      expect(both.data).toHaveLength(2);
    } finally {
      await receiver.close();
    }
  });
});
