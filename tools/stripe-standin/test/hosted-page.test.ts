import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestStandin } from './testing.ts';
import { control, createCartSession, SHIPPING, startTestStandin } from './testing.ts';

let t: TestStandin;
beforeEach(async () => {
  t = await startTestStandin();
});
afterEach(() => t.standin.close());

/** Submits the page's form as a browser would, without following the redirect. */
function submit(url: string, fields: Record<string, string>): Promise<Response> {
  return fetch(url, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
}

async function eventTypes(sessionId: string): Promise<string[]> {
  const { body } = await control<{ data: { event: Stripe.Event }[] }>(t.standin, `/events?session=${sessionId}`);
  return body.data.map((e) => e.event.type);
}

describe('hosted payment page', () => {
  it('shows the order, its total, an email field and the ways to pay, readable on a phone', async () => {
    const session = await createCartSession(t.stripe);
    const res = await fetch(String(session.url));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await res.text();
    expect(page).toContain('<meta name="viewport" content="width=device-width, initial-scale=1"');
    expect(page).toContain('Edge T-shirt');
    expect(page).toContain('Qty 2 × $15.00');
    expect(page).toContain('$30.00');
    expect(page).toContain('Pay $34.99');
    expect(page).toContain('type="email" name="email"');
    for (const action of ['paid', 'async', 'async_fail', 'cancel']) expect(page).toContain(`value="${action}"`);
    // No external assets: the page works offline (its only link is an empty data: icon).
    expect(page).not.toMatch(/<(script|img)\b|<link(?![^>]*href="data:)/);
  });

  it.each([
    ['huf', 250_000, 'HUF\u00a02,500.00'],
    // Two-decimal in the API, but whole krónur and shillings (#special-cases): 35000 is 350.
    ['isk', 35_000, 'ISK\u00a0350'],
    ['ugx', 500_000, 'UGX\u00a05,000'],
    ['jpy', 1_500, '¥1,500'],
    ['kwd', 12_340, 'KWD\u00a012.340'],
  ])(
    'shows %s amounts with the decimals Stripe gives the currency, not ISO 4217’s',
    async (currency, amount, shown) => {
      const session = await createCartSession(t.stripe, {
        line_items: [{ quantity: 1, price_data: { currency, unit_amount: amount, product_data: { name: 'Kit' } } }],
        shipping_options: undefined,
        shipping_address_collection: undefined,
      });
      expect(await (await fetch(String(session.url))).text()).toContain(`Pay ${shown}`);
    },
  );

  it('collects a shipping address, a shipping method and a promotion code, and charges for them', async () => {
    await control(t.standin, '/promotion_codes', { code: 'WELCOME', percent_off: 20 });
    const session = await createCartSession(t.stripe, { ...SHIPPING, allow_promotion_codes: true });
    const page = await (await fetch(String(session.url))).text();
    for (const label of ['Address line 1', 'City', 'Postal code', 'Country', 'Promotion code']) {
      expect(page).toContain(label);
    }
    expect(page).toContain('Standard · $5.00 · 3–5 business days');
    expect(page).toContain('Express · $15.00');
    const express = String(session.shipping_options[1]!.shipping_rate);
    const address = { line1: '5 Rue Sherbrooke', city: 'Montréal', state: 'QC', postal_code: 'H2X 1X1', country: 'CA' };

    // A code that does not exist: the page comes back with the message and what was entered.
    const refused = await submit(String(session.url), {
      email: 'ada@example.com',
      action: 'paid',
      shipping_name: 'Ada Lovelace',
      ...address,
      shipping_rate: express,
      promotion_code: 'WELCOM',
    });
    expect(refused.status).toBe(400);
    const again = await refused.text();
    expect(again).toContain('This code is invalid.');
    expect(again).toContain('value="5 Rue Sherbrooke"');

    const res = await submit(String(session.url), {
      email: 'ada@example.com',
      action: 'paid',
      shipping_name: 'Ada Lovelace',
      ...address,
      shipping_rate: express,
      promotion_code: 'WELCOME',
    });
    expect(res.status).toBe(303);
    const paid = await t.stripe.checkout.sessions.retrieve(session.id);
    expect(paid).toMatchObject({
      amount_subtotal: 3499,
      total_details: { amount_discount: 700, amount_shipping: 1500, amount_tax: 0 },
      amount_total: 3499 - 700 + 1500,
      collected_information: { shipping_details: { name: 'Ada Lovelace', address: { ...address, line2: null } } },
      shipping_cost: { shipping_rate: express },
    });
  });

  it('escapes what the merchant sent', async () => {
    const session = await createCartSession(t.stripe, {
      line_items: [
        { quantity: 1, price_data: { currency: 'usd', unit_amount: 900, product_data: { name: '<b>Bold</b> mug' } } },
      ],
    });
    const page = await (await fetch(String(session.url))).text();
    expect(page).toContain('&lt;b&gt;Bold&lt;/b&gt; mug');
  });

  it('pays by card: completes the session, creates a payment intent and redirects to success_url', async () => {
    const session = await createCartSession(t.stripe);
    const res = await submit(String(session.url), { email: 'ada@example.com', name: 'Ada Lovelace', action: 'paid' });

    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`https://shop.example/checkout/success?session_id=${session.id}`);
    const paid = await t.stripe.checkout.sessions.retrieve(session.id);
    expect(paid).toMatchObject({
      status: 'complete',
      payment_status: 'paid',
      url: null,
      customer_details: { email: 'ada@example.com', name: 'Ada Lovelace' },
    });
    expect(paid.payment_intent).toMatch(/^pi_/);
    const intent = await t.stripe.paymentIntents.retrieve(String(paid.payment_intent));
    expect(intent).toMatchObject({
      status: 'succeeded',
      amount: 3499,
      amount_received: 3499,
      payment_method_types: ['card'],
    });
    expect(await eventTypes(session.id)).toEqual(['checkout.session.completed']);
  });

  it('lands the shopper on the shop’s success page, following the redirect as a browser does', async () => {
    const visited: string[] = [];
    const shop = createServer((req, res) => {
      visited.push(String(req.url));
      res.end('Thank you');
    });
    await new Promise<void>((resolve) => shop.listen(0, '127.0.0.1', resolve));
    try {
      const origin = `http://127.0.0.1:${(shop.address() as AddressInfo).port}`;
      const session = await createCartSession(t.stripe, {
        success_url: `${origin}/checkout/success?session_id={CHECKOUT_SESSION_ID}`,
      });
      const res = await fetch(String(session.url), {
        method: 'POST',
        body: new URLSearchParams({ email: 'ada@example.com', action: 'paid' }),
      });
      expect(res.url).toBe(`${origin}/checkout/success?session_id=${session.id}`);
      expect(await res.text()).toBe('Thank you');
      expect(visited).toEqual([`/checkout/success?session_id=${session.id}`]);
    } finally {
      shop.close();
      shop.closeAllConnections();
    }
  });

  it('pays by bank transfer: completes the session unpaid and redirects; the money comes later', async () => {
    const session = await createCartSession(t.stripe);
    const res = await submit(String(session.url), { email: 'ada@example.com', action: 'async' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toContain(session.id);

    const completed = await t.stripe.checkout.sessions.retrieve(session.id, { expand: ['payment_intent'] });
    expect(completed).toMatchObject({
      status: 'complete',
      payment_status: 'unpaid',
      payment_method_types: ['card', 'customer_balance'],
    });
    expect(completed.payment_intent).toMatchObject({
      status: 'processing',
      payment_method_types: ['customer_balance'],
    });
    expect(await eventTypes(session.id)).toEqual(['checkout.session.completed']);
  });

  it('uses the session’s customer_email and does not let the shopper change it', async () => {
    const session = await createCartSession(t.stripe, { customer_email: 'known@example.com' });
    const page = await (await fetch(String(session.url))).text();
    expect(page).toMatch(/value="known@example.com" readonly/);
    await submit(String(session.url), { email: 'other@example.com', action: 'paid' });
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).customer_details?.email).toBe('known@example.com');
  });

  it('asks again for a missing or invalid email', async () => {
    const session = await createCartSession(t.stripe);
    const res = await submit(String(session.url), { email: 'not-an-email', action: 'paid' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('Enter a valid email address.');
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
  });

  it('offers only card payment when allowed_payment_method_types is card', async () => {
    const session = await createCartSession(t.stripe, { allowed_payment_method_types: ['card'] });
    const page = await (await fetch(String(session.url))).text();
    expect(page).toContain('value="paid"');
    expect(page).not.toContain('value="async"');
    const forced = await submit(String(session.url), { email: 'ada@example.com', action: 'async' });
    expect(forced.status).toBe(400);
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
  });

  it('cancels back to cancel_url and leaves the session open, sending no event', async () => {
    const session = await createCartSession(t.stripe);
    const res = await submit(String(session.url), { action: 'cancel' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('https://shop.example/checkout/cancel?cart_id=cart_123');
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
    expect(await eventTypes(session.id)).toEqual([]);
  });

  it('refuses to take money for an expired session', async () => {
    const session = await createCartSession(t.stripe);
    await t.stripe.checkout.sessions.expire(session.id);

    const page = await fetch(String(session.url));
    expect(page.status).toBe(410);
    expect(await page.text()).toContain('This Checkout Session is no longer active');
    const pay = await submit(String(session.url), { email: 'ada@example.com', action: 'paid' });
    expect(pay.status).toBe(410);
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).payment_intent).toBeNull();
  });

  it('refuses to pay a completed session twice', async () => {
    const session = await createCartSession(t.stripe);
    await submit(String(session.url), { email: 'ada@example.com', action: 'paid' });

    const again = await submit(String(session.url), { email: 'ada@example.com', action: 'paid' });
    expect(again.status).toBe(409);
    expect(await again.text()).toContain('already been paid');
    expect(await eventTypes(session.id)).toEqual(['checkout.session.completed']);
  });

  it('answers 404 for an unknown session', async () => {
    const res = await fetch(`${t.standin.url}/c/pay/cs_test_unknown`);
    expect(res.status).toBe(404);
  });
});
