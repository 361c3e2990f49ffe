import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { call } from './helpers.ts';
import { paidCart, standin, standinEvents } from './standin.ts';
import { deliver, outboxOf, standinStripe } from './stripe-helpers.ts';

// Disputes as the stand-in makes them: the cardholder disputes a paid charge, the bank decides,
// and Stripe's charge.dispute.created and charge.dispute.closed reach the webhook.

const stripe = standinStripe();

describe('disputes of a paid cart', () => {
  it.each([
    ['as they happened', false],
    ['the closing first', true],
  ])(
    'records the dispute and publishes it opened and closed with the outcome, delivered %s, twice',
    async (_, reversed) => {
      const state = await paidCart();
      const session = await stripe.checkout.sessions.retrieve(state.sessionId, { expand: ['payment_intent'] });
      const dispute = await standin.dispute(String((session.payment_intent as Stripe.PaymentIntent).latest_charge));
      await standin.closeDispute(dispute.id, 'lost');
      const events = (await standinEvents(state.sessionId)).filter((e) => e.type.startsWith('charge.dispute.'));
      expect(events.map((e) => e.type)).toEqual(['charge.dispute.created', 'charge.dispute.closed']);
      if (reversed) events.reverse();
      for (const event of [...events, ...events]) expect((await deliver(event)).status).toBe(200);

      const opened = { id: dispute.id, reason: 'product_not_received', amount: state.total };
      const cart = await (await call(`/v1/carts/${state.cartId}`, { token: state.user.token })).json();
      expect(cart).toMatchObject({ status: 'paid', dispute: { ...opened, status: 'lost', closed: true } });
      const outbox = await outboxOf(state.cartId);
      expect(outbox.map((o) => [o.event_type, o.event.dispute])).toEqual([
        ['cart.paid', null],
        ...(reversed
          ? [
              ['cart.dispute_closed', { ...opened, status: 'lost', closed: true }],
              ['cart.disputed', { ...opened, status: 'needs_response', closed: false }],
            ]
          : [
              ['cart.disputed', { ...opened, status: 'needs_response', closed: false }],
              ['cart.dispute_closed', { ...opened, status: 'lost', closed: true }],
            ]),
      ]);
    },
  );

  it('refuses (400) a signed dispute event without its status or reason, which its published event could not carry', async () => {
    const state = await paidCart();
    const session = await stripe.checkout.sessions.retrieve(state.sessionId, { expand: ['payment_intent'] });
    await standin.dispute(String((session.payment_intent as Stripe.PaymentIntent).latest_charge));
    const [created] = (await standinEvents(state.sessionId)).filter((e) => e.type === 'charge.dispute.created');
    const object = { ...(created!.data.object as Stripe.Dispute), status: null, reason: null };
    const res = await deliver({ ...created!, data: { object } } as never);
    expect(res.status).toBe(400);
    expect((await outboxOf(state.cartId)).map((o) => o.event_type)).toEqual(['cart.paid']);
  });
});
