import type Stripe from 'stripe';
import { expect } from 'vitest';
import { cartStatus, checkedOutCart, deliver, stripeEnv } from './stripe-helpers.ts';

/** Completes a session on the Stripe stand-in as a shopper would, without sending its webhook (a lost webhook). */
export async function payWithoutWebhook(
  sessionId: string,
  outcome: 'paid' | 'async' | 'async_fail',
  apiBase = stripeEnv.STRIPE_API_BASE,
): Promise<void> {
  const res = await fetch(`${apiBase}/_standin/sessions/${sessionId}/pay`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ outcome }),
  });
  if (!res.ok) throw new Error(`stand-in pay failed: ${res.status} ${await res.text()}`);
}

/** The bank's answer to a delayed payment, now, again without a webhook. */
export async function settleWithoutWebhook(sessionId: string, result: 'succeed' | 'fail'): Promise<void> {
  const res = await fetch(`${stripeEnv.STRIPE_API_BASE}/_standin/sessions/${sessionId}/async/${result}`, {
    method: 'POST',
  });
  if (!res.ok) throw new Error(`stand-in settle failed: ${res.status} ${await res.text()}`);
}

/** Stripe forgets the session (test data deleted, another account's key): it answers 404 for it from now on. */
export async function forgetSession(sessionId: string): Promise<void> {
  await control(stripeEnv.STRIPE_API_BASE, `/_standin/sessions/${sessionId}/forget`, {});
}

export interface StripeFault {
  method?: 'GET' | 'POST';
  /** Exact, or a prefix ending in `*`. */
  path: string;
  status?: 500 | 404 | 409 | 429;
  delayMs?: number;
  times?: number;
}

/** Makes the stand-in at `apiBase` fail or slow down matching /v1 requests (tools/stripe-standin/faults.ts). */
export async function injectStripeFault(apiBase: string, fault: StripeFault): Promise<void> {
  await control(apiBase, '/_standin/faults', fault);
}

export async function clearStripeFaults(apiBase: string): Promise<void> {
  const res = await fetch(`${apiBase}/_standin/faults`, { method: 'DELETE' });
  if (!res.ok) throw new Error(`clearing faults failed: ${res.status} ${await res.text()}`);
}

async function control(apiBase: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${apiBase}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`stand-in ${path} failed: ${res.status} ${await res.text()}`);
  return res.json();
}

/** The cardholder disputes the charge (a stand-in control); answers the dispute. */
export async function disputeCharge(apiBase: string, chargeId: string): Promise<{ id: string }> {
  return (await control(apiBase, `/_standin/charges/${chargeId}/dispute`, { reason: 'product_not_received' })) as {
    id: string;
  };
}

/** Stripe's own events of a session on the stand-in (it sends no webhooks in these tests), oldest first. */
export async function standinEvents(sessionId: string): Promise<Stripe.Event[]> {
  const res = await fetch(`${stripeEnv.STRIPE_API_BASE}/_standin/events?session=${sessionId}`);
  return ((await res.json()) as { data: { event: Stripe.Event }[] }).data.map((d) => d.event);
}

/** A cart paid on the stand-in, its completion delivered as Stripe sent it: a real charge to refund or dispute. */
export async function paidCart() {
  const state = await checkedOutCart();
  await payWithoutWebhook(state.sessionId, 'paid');
  const [completed] = await standinEvents(state.sessionId);
  expect((await deliver(completed!)).status).toBe(200);
  expect(await cartStatus(state.cartId)).toBe('paid');
  return state;
}
