import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { call, db } from './helpers.ts';
import { paidCart, standin, standinEvents } from './standin.ts';
import {
  checkedOutCart,
  deliver,
  disputeObject,
  eventsFor,
  outboxOf,
  standinStripe,
  stripeEvent,
} from './stripe-helpers.ts';

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

// A lost dispute may be appealed, and the appeal decided: Stripe then closes the same dispute
// again, in another charge.dispute.closed (https://docs.stripe.com/api/events/types#event_types-charge.dispute.closed:
// "the dispute status changes to lost, warning_closed, or won"), created later.
describe('a dispute closed again after an appeal', () => {
  async function appealed() {
    const checkout = await checkedOutCart();
    const start = Math.floor(Date.now() / 1000) - 3600;
    const at = (event: Stripe.Event, minutes: number) => ({ ...event, created: start + 60 * minutes });
    const close = (status: Stripe.Dispute.Status) =>
      stripeEvent('charge.dispute.closed', disputeObject(checkout, { status }));
    const events = eventsFor(checkout);
    return {
      checkout,
      paid: events.completedPaid(),
      opened: at(events.disputeCreated(), 0),
      lost: at(close('lost'), 1),
      won: at(close('won'), 2),
    };
  }
  const shown = async (checkout: Awaited<ReturnType<typeof checkedOutCart>>) =>
    (await (await call(`/v1/carts/${checkout.cartId}`, { token: checkout.user.token })).json()) as {
      dispute: { status: string };
    };
  const closes = async (cartId: string) =>
    (await outboxOf(cartId))
      .filter((o) => o.event_type === 'cart.dispute_closed')
      .map((o) => [o.stripe_event_id, o.event.dispute?.status]);

  it('shows the appeal won and publishes both outcomes in order; replays change nothing', async () => {
    const { checkout, paid, opened, lost, won } = await appealed();
    for (const event of [paid, opened, lost, won, lost, won]) expect((await deliver(event)).status).toBe(200);
    expect((await shown(checkout)).dispute).toMatchObject({ status: 'won', closed: true });
    expect(await closes(checkout.cartId)).toEqual([
      [lost.id, 'lost'],
      [won.id, 'won'],
    ]);
  });

  // A close older than one already reported is recorded and not published: published after
  // it, it would tell a consumer the stale outcome last.
  it.each([
    ['newest first', ['paid', 'opened', 'won', 'lost']],
    ['newest first, before the payment landed', ['opened', 'won', 'lost', 'paid']],
    ['in order, before the payment landed', ['opened', 'lost', 'won', 'paid']],
  ] as const)(
    'delivered %s, shows the appeal won and publishes that outcome alone; replays change nothing',
    async (_, order) => {
      const made = await appealed();
      const events = order.map((name) => made[name]);
      for (const event of [...events, ...events]) expect((await deliver(event)).status).toBe(200);
      expect((await shown(made.checkout)).dispute).toMatchObject({ status: 'won', closed: true });
      expect(await closes(made.checkout.cartId)).toEqual([[made.won.id, 'won']]);
      const [lost] = await db().query('SELECT outcome FROM payment_events WHERE id = $1', [made.lost.id]);
      // Recorded: ignored, or before the payment landed, of a payment not known yet.
      expect(lost?.outcome).toMatch(/^(ignored|unknown_cart)$/);
    },
  );
});
