import { StandinControls } from '@edge-checkout/test-support/standin';
import type Stripe from 'stripe';
import { expect } from 'vitest';
import { cartStatus, checkedOutCart, deliver, stripeEnv } from './stripe-helpers.ts';

/** The controls of the stand-in the Worker under test calls (it sends no webhooks in these tests). */
export const standin = new StandinControls(stripeEnv.STRIPE_API_BASE);

/** Stripe's own events of a session on a stand-in, oldest first. */
export async function standinEvents(sessionId: string, controls = standin): Promise<Stripe.Event[]> {
  return (await controls.events<Stripe.Event>(sessionId)).map((d) => d.event);
}

/** A cart paid on the stand-in, its completion delivered as Stripe sent it: a real charge to refund or dispute. */
export async function paidCart(opts: { currency?: string; amounts?: number[] } = {}) {
  const state = await checkedOutCart(opts);
  await standin.pay(state.sessionId, 'paid');
  const [completed] = await standinEvents(state.sessionId);
  expect((await deliver(completed!)).status).toBe(200);
  expect(await cartStatus(state.cartId)).toBe('paid');
  return state;
}
