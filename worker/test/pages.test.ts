import { describe, expect, it } from 'vitest';
import { call, callWithEnv, holdLocks } from './helpers.ts';
import { standin } from './standin.ts';
import {
  cartStatus,
  checkedOutCart,
  deliver,
  eventsFor,
  outboxOf,
  standinStripe,
  stripeEnv,
} from './stripe-helpers.ts';

describe('GET /checkout/success', () => {
  it('fulfils from the session read back from Stripe when the webhook has not arrived', async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'paid');
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

  it("fulfils a session read back with a shopper's name Postgres cannot store as it is", async () => {
    const state = await checkedOutCart();
    const paid = await fetch(`${stripeEnv.STRIPE_API_BASE}/_standin/sessions/${state.sessionId}/pay`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ outcome: 'paid', name: 'Sam\u0000 Shopper\uD800' }),
    });
    expect(paid.status).toBe(200);
    const res = await call(`/checkout/success?session_id=${state.sessionId}`);
    expect(res.status).toBe(200);
    expect(await cartStatus(state.cartId)).toBe('paid');
    expect((await outboxOf(state.cartId))[0]!.event.customer).toMatchObject({ name: 'Sam Shopper\uFFFD' });
  });

  it('shows a delayed payment as processing, then as received once it clears', async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'async');
    const html = await (await call(`/checkout/success?session_id=${state.sessionId}`)).text();
    expect(html).toContain('Payment processing');
    expect(await cartStatus(state.cartId)).toBe('awaiting_payment');

    // The transfer clears; its webhook is late. The shopper's reload reads the session again.
    await standin.settleBankTransfer(state.sessionId, 'succeed');
    const settled = await (await call(`/checkout/success?session_id=${state.sessionId}`)).text();
    expect(settled).toContain('Payment received');
    expect(await cartStatus(state.cartId)).toBe('paid');
  });

  it("says a reloaded tab's checkout has ended once the cart went on to a newer one, without showing the newer as its own", async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'async');
    await standin.settleBankTransfer(state.sessionId, 'fail');
    const failed = await (await call(`/checkout/success?session_id=${state.sessionId}`)).text();
    expect(failed).toContain('Payment failed');

    // The shopper checks the same cart out again; the old tab is reloaded meanwhile.
    const again = await call(`/v1/carts/${state.cartId}/checkout`, { method: 'POST', token: state.user.token });
    expect(again.status).toBe(201);
    const res = await callWithEnv(
      { ...stripeEnv, APP_RETURN_URL: 'myshop://orders' },
      `/checkout/success?session_id=${state.sessionId}`,
    );
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('This checkout has ended');
    expect(html).not.toContain('Confirming');
    expect(html).not.toContain('Check again');
    expect(html).toContain(`href="myshop://orders?cart_id=${state.cartId}&amp;status=checkout_pending"`);
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');
  });

  it('does not offer to pay a failed cart again once the shopper started another: it answers 409 to checkout (contract §3)', async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'async');
    expect(await (await call(`/checkout/success?session_id=${state.sessionId}`)).text()).toContain(
      'Payment processing',
    );
    expect((await call('/v1/carts', { method: 'POST', token: state.user.token })).status).toBe(201);
    await standin.settleBankTransfer(state.sessionId, 'fail');

    for (const page of [
      `/checkout/success?session_id=${state.sessionId}`,
      `/checkout/cancel?cart_id=${state.cartId}`,
    ]) {
      const html = await (await call(page)).text();
      expect(html).toContain('Payment failed');
      expect(html).toContain('To order these items, add them to your cart in the app again.');
      expect(html).not.toContain('try again');
    }
    const retried = await call(`/v1/carts/${state.cartId}/checkout`, { method: 'POST', token: state.user.token });
    expect(retried.status).toBe(409);
  });

  it('keeps a still-open session pending and offers to check again, without reloading by itself (WCAG 2.2.1)', async () => {
    const state = await checkedOutCart();
    const html = await (await call(`/checkout/success?session_id=${state.sessionId}`)).text();
    expect(html).not.toContain('http-equiv="refresh"');
    expect(html).toContain('<a class="button secondary" href="">Check again</a>');
    // Everything in one main landmark, where a screen reader's "skip to main" lands.
    expect(html).toMatch(/<body><main>[\s\S]*<\/main><\/body>/);
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');
  });

  it('offers APP_RETURN_URL with the cart and its status', async () => {
    const state = await checkedOutCart();
    await deliver(eventsFor(state).completedPaid());
    const res = await callWithEnv(
      { ...stripeEnv, APP_RETURN_URL: 'myshop://orders' },
      `/checkout/success?session_id=${state.sessionId}`,
    );
    const html = await res.text();
    expect(html).toContain(`href="myshop://orders?cart_id=${state.cartId}&amp;status=paid"`);
  });

  it("keeps APP_RETURN_URL's own query as written, and appends the cart's after it, before its fragment", async () => {
    const state = await checkedOutCart();
    const res = await callWithEnv(
      { ...stripeEnv, APP_RETURN_URL: 'https://app.example/return?next=a%20b&ref=~me&flag#top' },
      `/checkout/cancel?cart_id=${state.cartId}`,
    );
    expect(await res.text()).toContain(
      `href="https://app.example/return?next=a%20b&amp;ref=~me&amp;flag&amp;cart_id=${state.cartId}&amp;status=checkout_pending&amp;cancelled=true&amp;session_id=${state.sessionId}#top"`,
    );
  });

  it('leads back to the app from its error pages too: an in-app browser has no other way out', async () => {
    const res = await callWithEnv(
      { ...stripeEnv, APP_RETURN_URL: 'myshop://orders' },
      `/checkout/cancel?cart_id=${crypto.randomUUID()}`,
    );
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('<a class="button" href="myshop://orders">Back to the shop</a>');
  });

  it('leads back to the storefront it serves when no APP_RETURN_URL is set', async () => {
    const state = await checkedOutCart();
    const { APP_RETURN_URL: _, ...withoutAppLink } = stripeEnv;
    const res = await callWithEnv(
      { ...withoutAppLink, PUBLIC_BASE_URL: 'https://shop.example' },
      `/checkout/cancel?cart_id=${state.cartId}`,
    );
    const html = await res.text();
    expect(html).toContain(
      `href="https://shop.example/?cart_id=${state.cartId}&amp;status=checkout_pending&amp;cancelled=true&amp;session_id=${state.sessionId}">Back to the shop</a>`,
    );
  });

  it('shows what it knows when Stripe is unreachable', async () => {
    const state = await checkedOutCart();
    const res = await callWithEnv(
      { ...stripeEnv, STRIPE_API_BASE: 'http://127.0.0.1:9' },
      `/checkout/success?session_id=${state.sessionId}`,
    );
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('data-status="checkout_pending"');
  });

  it('shows what it knows when Postgres gives up its transaction to break a deadlock', async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'paid');
    const session = await standinStripe().checkout.sessions.retrieve(state.sessionId);
    // As in the webhook's test: the page's fulfilment waits for the cart held here, then this
    // side asks for the payment's lock it holds, and Postgres fails the page's side.
    const lock = await holdLocks([
      "SET deadlock_timeout = '60s'",
      `SELECT 1 FROM carts WHERE id = '${state.cartId}' FOR UPDATE`,
    ]);
    const page = call(`/checkout/success?session_id=${state.sessionId}`);
    await lock.waitForWaiters(1);
    await lock.thenRun([`SELECT pg_advisory_xact_lock(hashtextextended('${String(session.payment_intent)}', 0))`]);
    const res = await page;
    await lock.release();
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('data-status="checkout_pending"');
    // Reloaded, it fulfils.
    expect(await (await call(`/checkout/success?session_id=${state.sessionId}`)).text()).toContain(
      'data-status="paid"',
    );
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

describe('the landing pages', () => {
  it("say what went wrong in a shopper's words, keeping the status, never a validator's or the database's", async () => {
    const pages = [
      { path: '/checkout/cancel?cart_id=not-a-cart', status: 400, words: 'This link is incomplete or damaged.' },
      { path: '/checkout/success', status: 400, words: 'This link is incomplete or damaged.' },
      { path: '/checkout/success?session_id=%7BCHECKOUT_SESSION_ID%7D', status: 400, words: 'incomplete or damaged' },
      { path: `/checkout/cancel?cart_id=${crypto.randomUUID()}`, status: 404, words: 'This order could not be found' },
    ];
    for (const { path, status, words } of pages) {
      const res = await call(path);
      expect(res.status, path).toBe(status);
      const html = await res.text();
      expect(html, path).toContain(words);
      expect(html, path).toContain(`Reference: ${res.headers.get('X-Request-Id')}`);
      for (const developerWords of ['cart_id', 'session_id', 'Invalid', 'expected string', 'Validation failed'])
        expect(html, path).not.toContain(developerWords);
    }
    const unreachable = await callWithEnv(
      { ...stripeEnv, NEON_HTTP_ENDPOINT: 'http://127.0.0.1:9/sql' },
      `/checkout/cancel?cart_id=${crypto.randomUUID()}`,
    );
    expect(unreachable.status).toBe(503);
    const html = await unreachable.text();
    expect(html).toContain('The shop could not show this page just now. Try again in a moment.');
    expect(html).not.toContain('database');
  });

  it("are kept by no browser or proxy cache (a cart's contents), their error pages neither", async () => {
    const state = await checkedOutCart();
    for (const path of [
      `/checkout/success?session_id=${state.sessionId}`,
      `/checkout/cancel?cart_id=${state.cartId}`,
      '/checkout/success?session_id=cs_test_unknown',
      `/checkout/cancel?cart_id=${crypto.randomUUID()}`,
    ]) {
      const res = await call(path);
      expect(res.headers.get('Cache-Control'), path).toBe('no-store');
    }
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

  it('leads back to the shop saying the checkout was cancelled, and which, so the shop can reopen the cart without ending a newer one', async () => {
    const state = await checkedOutCart();
    const res = await callWithEnv(
      { ...stripeEnv, APP_RETURN_URL: 'myshop://orders' },
      `/checkout/cancel?cart_id=${state.cartId}`,
    );
    expect(await res.text()).toContain(
      `<a class="button" href="myshop://orders?cart_id=${state.cartId}&amp;status=checkout_pending&amp;cancelled=true&amp;session_id=${state.sessionId}">Back to the shop</a>`,
    );
  });

  it('says so when the cart was paid after all', async () => {
    const state = await checkedOutCart();
    await deliver(eventsFor(state).completedPaid());
    const res = await callWithEnv(
      { ...stripeEnv, APP_RETURN_URL: 'myshop://orders' },
      `/checkout/cancel?cart_id=${state.cartId}`,
    );
    const html = await res.text();
    expect(html).toContain('Payment received');
    expect(html).not.toContain('Checkout cancelled');
    expect(html).toContain(`href="myshop://orders?cart_id=${state.cartId}&amp;status=paid"`);
  });

  it('says the payment was received, not "nothing was charged", when Stripe was paid in another tab and its webhook has not arrived', async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'paid');
    const html = await (await call(`/checkout/cancel?cart_id=${state.cartId}`)).text();
    expect(html).toContain('Payment received');
    expect(html).not.toContain('Nothing was charged');
    expect(await cartStatus(state.cartId)).toBe('paid');
  });

  it('says the status in words that agree with its headline, not the raw status ("checkout pending")', async () => {
    const state = await checkedOutCart();
    const html = await (await call(`/checkout/cancel?cart_id=${state.cartId}`)).text();
    expect(html).toContain('<h1>Checkout cancelled</h1>');
    expect(html).toContain('Status: <strong data-status="checkout_pending">Cancelled</strong>');
    expect(html).not.toContain('checkout pending');
  });

  it('answers 404 for an unknown cart', async () => {
    expect((await call(`/checkout/cancel?cart_id=${crypto.randomUUID()}`)).status).toBe(404);
    expect((await call('/checkout/cancel?cart_id=00000000-0000-0000-0000-000000000001')).status).toBe(404);
  });
});
