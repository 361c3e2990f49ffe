import Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestStandin } from './testing.ts';
import { control, createCartSession, startTestStandin } from './testing.ts';

let t: TestStandin;
beforeEach(async () => {
  t = await startTestStandin();
});
afterEach(() => t.standin.close());

/** A session paid by card (total $34.99); returns its PaymentIntent and Charge ids. */
async function paidOrder(): Promise<{ sessionId: string; intentId: string; chargeId: string }> {
  const session = await createCartSession(t.stripe);
  await control(t.standin, `/sessions/${session.id}/pay`, { outcome: 'paid' });
  const intent = await t.stripe.paymentIntents.retrieve(
    String((await t.stripe.checkout.sessions.retrieve(session.id)).payment_intent),
  );
  return { sessionId: session.id, intentId: intent.id, chargeId: String(intent.latest_charge) };
}

async function refundEvents(): Promise<Stripe.ChargeRefundedEvent[]> {
  const { data } = await t.stripe.events.list({ type: 'charge.refunded' });
  return data.filter((e): e is Stripe.ChargeRefundedEvent => e.type === 'charge.refunded').reverse();
}

describe('POST /v1/refunds', () => {
  it('refunds a payment in full and sends charge.refunded with the refunded charge', async () => {
    const order = await paidOrder();
    const refund = await t.stripe.refunds.create({ payment_intent: order.intentId });
    expect(refund).toMatchObject({
      object: 'refund',
      amount: 3499,
      currency: 'usd',
      status: 'succeeded',
      charge: order.chargeId,
      payment_intent: order.intentId,
    });
    expect(refund.id).toMatch(/^re_/);

    const [event] = await refundEvents();
    expect(event.data.object).toMatchObject({
      id: order.chargeId,
      object: 'charge',
      amount: 3499,
      amount_refunded: 3499,
      refunded: true,
      currency: 'usd',
      payment_intent: order.intentId,
    });
    expect(event.data.previous_attributes).toMatchObject({ amount_refunded: 0, refunded: false });
    expect(event.request).toEqual({
      id: refund.lastResponse.requestId,
      idempotency_key: expect.stringMatching(/^stripe-node-retry-/),
    });
  });

  it('refunds part of a charge, then the rest', async () => {
    const order = await paidOrder();
    await t.stripe.refunds.create({ charge: order.chargeId, amount: 1000, reason: 'requested_by_customer' });
    await t.stripe.refunds.create({ charge: order.chargeId });

    const events = await refundEvents();
    expect(events.map((e) => [e.data.object.amount_refunded, e.data.object.refunded])).toEqual([
      [1000, false],
      [3499, true],
    ]);
    // Since API version 2022-11-15 a charge lists its refunds only when asked to.
    expect(await t.stripe.charges.retrieve(order.chargeId)).not.toHaveProperty('refunds');
    const charge = await t.stripe.charges.retrieve(order.chargeId, { expand: ['refunds'] });
    expect(charge.refunds?.data.map((r) => r.amount)).toEqual([2499, 1000]);
  });

  it('refuses more than is left to refund, and a charge already refunded', async () => {
    const order = await paidOrder();
    await expect(t.stripe.refunds.create({ payment_intent: order.intentId, amount: 3500 })).rejects.toMatchObject({
      statusCode: 400,
      param: 'amount',
      message: 'Refund amount ($35.00) is greater than unrefunded amount on charge ($34.99)',
    });
    await t.stripe.refunds.create({ payment_intent: order.intentId });
    await expect(t.stripe.refunds.create({ payment_intent: order.intentId })).rejects.toMatchObject({
      statusCode: 400,
      code: 'charge_already_refunded',
    });
    expect(await refundEvents()).toHaveLength(1);
  });

  it('refuses a three-decimal amount not ending in 0, as Stripe does for refunds too', async () => {
    const session = await createCartSession(t.stripe, {
      line_items: [
        { quantity: 1, price_data: { currency: 'kwd', unit_amount: 5_000, product_data: { name: 'Lamp' } } },
      ],
    });
    await control(t.standin, `/sessions/${session.id}/pay`, { outcome: 'paid' });
    const intent = String((await t.stripe.checkout.sessions.retrieve(session.id)).payment_intent);
    const error = await t.stripe.refunds.create({ payment_intent: intent, amount: 1_005 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ statusCode: 400, code: 'invalid_charge_amount', param: 'amount' });
    expect(await t.stripe.refunds.create({ payment_intent: intent, amount: 1_000 })).toMatchObject({ amount: 1_000 });
  });

  it('refuses to refund a bank transfer that has not arrived', async () => {
    const session = await createCartSession(t.stripe);
    await control(t.standin, `/sessions/${session.id}/pay`, { outcome: 'async' });
    const pending = await t.stripe.checkout.sessions.retrieve(session.id);
    await expect(t.stripe.refunds.create({ payment_intent: String(pending.payment_intent) })).rejects.toMatchObject({
      statusCode: 400,
      param: 'payment_intent',
      message: expect.stringMatching(/does not have a successful charge to refund/),
    });
  });

  it('refunds a bank transfer once it has arrived, back to the customer balance', async () => {
    const session = await createCartSession(t.stripe);
    await control(t.standin, `/sessions/${session.id}/pay`, { outcome: 'async' });
    await control(t.standin, `/sessions/${session.id}/async/succeed`, {});
    const paid = await t.stripe.checkout.sessions.retrieve(session.id);
    const refund = await t.stripe.refunds.create({ payment_intent: String(paid.payment_intent), amount: 500 });
    expect(refund).toMatchObject({ amount: 500, destination_details: { type: 'customer_cash_balance' } });
  });

  it.each([
    ['an unknown payment intent', { payment_intent: 'pi_unknown' }, 404, 'payment_intent'],
    ['an unknown charge', { charge: 'ch_unknown' }, 404, 'charge'],
    ['a zero amount', { payment_intent: 'pi_unknown', amount: 0 }, 400, 'amount'],
  ] satisfies [string, Stripe.RefundCreateParams, number, string][])(
    'answers %s with %i naming %s',
    async (_case, params, statusCode, param) => {
      await expect(t.stripe.refunds.create(params)).rejects.toMatchObject({ statusCode, param });
    },
  );

  it('needs a payment intent or a charge', async () => {
    await expect(t.stripe.refunds.create({})).rejects.toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
  });

  it('makes one refund for a retried request with the same Idempotency-Key', async () => {
    const order = await paidOrder();
    const first = await t.stripe.refunds.create(
      { payment_intent: order.intentId, amount: 100 },
      { idempotencyKey: 'refund-1' },
    );
    const retry = await t.stripe.refunds.create(
      { payment_intent: order.intentId, amount: 100 },
      { idempotencyKey: 'refund-1' },
    );
    expect(retry.id).toBe(first.id);
    expect(await refundEvents()).toHaveLength(1);
  });
});

describe('GET /v1/refunds/:id', () => {
  it('returns the refund, with its charge expanded on request', async () => {
    const order = await paidOrder();
    const refund = await t.stripe.refunds.create({ payment_intent: order.intentId, amount: 700 });
    const read = await t.stripe.refunds.retrieve(refund.id, { expand: ['charge'] });
    expect(read.charge).toMatchObject({ id: order.chargeId, amount_refunded: 700 });
  });
});
