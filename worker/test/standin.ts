import { stripeEnv } from './stripe-helpers.ts';

/** Completes a session on the Stripe stand-in as a shopper would, without sending its webhook (a lost webhook). */
export async function payWithoutWebhook(sessionId: string, outcome: 'paid' | 'async' | 'async_fail'): Promise<void> {
  const res = await fetch(`${stripeEnv.STRIPE_API_BASE}/_standin/sessions/${sessionId}/pay`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ outcome }),
  });
  if (!res.ok) throw new Error(`stand-in pay failed: ${res.status} ${await res.text()}`);
}

/** The bank's answer to a delayed payment, now, again without a webhook. */
export async function settleWithoutWebhook(sessionId: string, result: 'succeed' | 'fail'): Promise<void> {
  const res = await fetch(`${stripeEnv.STRIPE_API_BASE}/_standin/sessions/${sessionId}/async/${result}`, { method: 'POST' });
  if (!res.ok) throw new Error(`stand-in settle failed: ${res.status} ${await res.text()}`);
}
