import { describe, expect, it } from 'vitest';
import { call, callWithEnv, db } from './helpers.ts';
import { cartStatus, checkedOutCart, deliver, eventsFor, outboxOf, stripeEnv } from './stripe-helpers.ts';
import { payWithoutWebhook, settleWithoutWebhook } from './standin.ts';

describe('GET /checkout/success', () => {
  it('fulfils from the session read back from Stripe when the webhook has not arrived', async () => {
    const state = await checkedOutCart();
    await payWithoutWebhook(state.sessionId, 'paid');
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');

    const res = await call(`/checkout/success?session_id=${state.sessionId}`, { headers: { Accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('Payment received');
    expect(html).toContain('data-status="paid"');
    expect(html).toContain('$45.00'); // 1 × $20.00 + 2 × $12.50
    expect(await cartStatus(state.cartId)).toBe('paid');
    expect((await outboxOf(state.cartId)).map((o) => o.event_type)).toEqual(['cart.paid']);

    // The webhook that arrives afterwards changes nothing and publishes nothing more.
    expect((await deliver(eventsFor(state).completedPaid())).status).toBe(200);
    expect((await outboxOf(state.cartId)).map((o) => o.event_type)).toEqual(['cart.paid']);
    // Reloading the page is a replay too.
    await call(`/checkout/success?session_id=${state.sessionId}`);
    expect(await outboxOf(state.cartId)).toHaveLength(1);
  });

  it('shows a delayed payment as processing', async () => {
    const state = await checkedOutCart();
    await payWithoutWebhook(state.sessionId, 'async');
    const html = await (await call(`/checkout/success?session_id=${state.sessionId}`)).text();
    expect(html).toContain('Payment processing');
    expect(await cartStatus(state.cartId)).toBe('awaiting_payment');
  });

  it('keeps a still-open session pending and refreshes itself', async () => {
    const state = await checkedOutCart();
    const html = await (await call(`/checkout/success?session_id=${state.sessionId}`)).text();
    expect(html).toContain('http-equiv="refresh"');
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');
  });

  it('offers APP_RETURN_URL with the cart and its status', async () => {
    const state = await checkedOutCart();
    await deliver(eventsFor(state).completedPaid());
    const res = await callWithEnv({ ...stripeEnv, APP_RETURN_URL: 'myshop://orders' }, `/checkout/success?session_id=${state.sessionId}`);
    const html = await res.text();
    expect(html).toContain(`href="myshop://orders?cart_id=${state.cartId}&amp;status=paid"`);
  });

  it('shows what it knows when Stripe is unreachable', async () => {
    const state = await checkedOutCart();
    const res = await callWithEnv({ ...stripeEnv, STRIPE_API_BASE: 'http://127.0.0.1:9' }, `/checkout/success?session_id=${state.sessionId}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('data-status="checkout_pending"');
  });

  it('answers an unknown session with a 404 page and a malformed one with a 400 page', async () => {
    const unknown = await call('/checkout/success?session_id=cs_test_unknown');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('Content-Type')).toMatch(/text\/html/);
    const html = await unknown.text();
    expect(html).toContain('Not found');
    expect(html).toContain(unknown.headers.get('X-Request-Id'));
    const malformed = await call('/checkout/success?session_id=<script>');
    expect(malformed.status).toBe(400);
    expect(await malformed.text()).not.toContain('<script>');
    expect((await call('/checkout/success')).status).toBe(400);
  });
});

describe('GET /checkout/cancel', () => {
  it('shows the saved cart and leaves it as it is', async () => {
    const state = await checkedOutCart();
    const res = await call(`/checkout/cancel?cart_id=${state.cartId}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('Checkout cancelled');
    expect(html).toContain('$45.00');
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');
  });

  it('says so when the cart was paid after all', async () => {
    const state = await checkedOutCart();
    await deliver(eventsFor(state).completedPaid());
    const html = await (await call(`/checkout/cancel?cart_id=${state.cartId}`)).text();
    expect(html).toContain('Payment received');
    expect(html).not.toContain('Checkout cancelled');
  });

  it('answers 404 for an unknown cart', async () => {
    expect((await call(`/checkout/cancel?cart_id=${crypto.randomUUID()}`)).status).toBe(404);
  });
});

describe('scheduled reconciliation', () => {
  it('applies sessions whose webhooks were lost: paid, and expired', async () => {
    const { runScheduled } = await import('../src/scheduled.ts');
    const paid = await checkedOutCart();
    await payWithoutWebhook(paid.sessionId, 'paid');
    const expired = await checkedOutCart();
    await expireWithoutWebhook(expired.sessionId);
    // Both are past the grace period the job waits for webhooks.
    await db().query(`UPDATE checkouts SET created_at = now() - interval '1 hour' WHERE session_id = ANY($1)`, [[paid.sessionId, expired.sessionId]]);

    const report = await runScheduled(stripeEnv);
    expect(report.reconcileErrors).toBe(0);
    expect(await cartStatus(paid.cartId)).toBe('paid');
    expect(await cartStatus(expired.cartId)).toBe('open');
    expect((await outboxOf(paid.cartId)).map((o) => o.event_type)).toEqual(['cart.paid']);

  });
});

describe('scheduled reconciliation of delayed payments', () => {
  it.each([
    ['succeeds', 'paid', ['cart.awaiting_payment', 'cart.paid']],
    ['fails', 'payment_failed', ['cart.awaiting_payment', 'cart.payment_failed']],
  ] as const)('applies a bank transfer that %s while its webhook was lost', async (result, status, published) => {
    const { runScheduled } = await import('../src/scheduled.ts');
    const state = await checkedOutCart();
    await payWithoutWebhook(state.sessionId, 'async');
    await call(`/checkout/success?session_id=${state.sessionId}`);
    expect(await cartStatus(state.cartId)).toBe('awaiting_payment');
    await settleWithoutWebhook(state.sessionId, result === 'succeeds' ? 'succeed' : 'fail');

    await runScheduled(stripeEnv);
    expect(await cartStatus(state.cartId)).toBe(status);
    expect((await outboxOf(state.cartId)).map((o) => o.event_type)).toEqual(published);
    const [row] = await db().query('SELECT reconciled_at IS NOT NULL AS checked FROM checkouts WHERE session_id = $1', [state.sessionId]);
    expect(row).toEqual({ checked: true });
  });
});

async function expireWithoutWebhook(sessionId: string) {
  const res = await fetch(`${stripeEnv.STRIPE_API_BASE}/v1/checkout/sessions/${sessionId}/expire`, {
    method: 'POST', headers: { Authorization: `Bearer ${stripeEnv.STRIPE_SECRET_KEY}` },
  });
  if (!res.ok) throw new Error(`expire failed: ${res.status}`);
}
