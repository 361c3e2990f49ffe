// The whole stack as `npm run dev` runs it (Postgres, Stripe stand-in, Pub/Sub emulator,
// notification relay, the Worker under wrangler dev), driven as the app and a shopper would:
// the API over HTTP, the Checkout page's form, the redirect back to the Worker. Then what
// comes out: the cart's state, the outbox, the payment event on its topic, the notification.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LOCAL_STRIPE_KEY } from '@edge-checkout/dev-stack/local-stripe';
import { findChromium, launchPhoneBrowser, type PhoneBrowser } from '@edge-checkout/test-support/browser';
import { type OutboxRow, outboxRows, publishedOutboxRows } from '@edge-checkout/test-support/outbox';
import { chromiumMissing, pubsubEmulatorMissing, skipWithout } from '@edge-checkout/test-support/requirements';
import { type Cart, Shopper, submitHostedPage } from '@edge-checkout/test-support/shopper';
import { E2E_APP_RETURN_URL, useLocalStack } from '@edge-checkout/test-support/stack';
import { type DeliveredEvent, StandinControls } from '@edge-checkout/test-support/standin';
import { aboutCarts, TopicReader } from '@edge-checkout/test-support/topics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const stack = useLocalStack();
// Known at collection time (the stack starts later): the stack runs Pub/Sub only where it is.
const withoutEmulator = skipWithout("Google's Pub/Sub emulator", pubsubEmulatorMissing());
const withoutChromium = skipWithout('Chromium', chromiumMissing());
let standin: StandinControls;
let payments: TopicReader | undefined;
let notifications: TopicReader | undefined;

beforeAll(async () => {
  standin = new StandinControls(stack.stripeUrl);
  if (!stack.pubsub) {
    console.warn(
      'No Pub/Sub emulator on this machine: checking that events wait in the outbox instead of reading topics',
    );
    return;
  }
  // Made before anything is paid, so every event and notification of these tests is seen.
  payments = await TopicReader.subscribe(stack.pubsub.admin, stack.pubsub.paymentTopic);
  notifications = await TopicReader.subscribe(stack.pubsub.admin, stack.pubsub.notificationTopic);
});

afterAll(async () => {
  await payments?.close();
  await notifications?.close();
});

const databaseUrl = () => stack.vars.DATABASE_URL!;
const signIn = (label: string) => Shopper.signIn(stack.workerUrl, stack.vars.AUTH_JWT_SECRET!, label);
const customerOf = (shopper: Shopper, name: string) => ({ email: `${shopper.userId}@example.com`, name });

async function landingPage(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.text();
}

/**
 * The cart's transitions wrote these payment events to the outbox, in order. With no emulator
 * the stack runs no Pub/Sub, so they wait there.
 */
async function expectRecorded(cartId: string, types: string[]): Promise<void> {
  const rows = await outboxRows(databaseUrl(), cartId);
  expect(rows.map((r) => r.event_type)).toEqual(types);
  if (withoutEmulator) expect(rows.map((r) => r.published_at)).toEqual(types.map(() => null));
}

/**
 * The payment events of the cart went out in order: each outbox row published, each on the
 * topic once with the contract's attributes. Only for tests that skip without the emulator.
 */
async function expectPublished(
  cartId: string,
  types: string[],
): Promise<{ rows: OutboxRow[]; publishTimes: number[] }> {
  const rows = await publishedOutboxRows(databaseUrl(), cartId, types.length);
  expect(rows.map((r) => r.event_type)).toEqual(types);
  const messages = await payments!.atLeast(types.length, aboutCarts(cartId));
  expect(messages.map((m) => m.attributes.eventType)).toEqual(types);
  expect(messages.map((m) => m.attributes.eventId)).toEqual(rows.map((r) => r.id));
  expect(messages.map((m) => m.messageId)).toEqual(rows.map((r) => r.message_id));
  for (const m of messages) expect(m.orderingKey).toBe(cartId);
  return { rows, publishTimes: messages.map((m) => Date.parse(m.publishTime)) };
}

/** What a payment event and a notification say of an order with no discount, shipping, tax or refund. */
function plainOrder(total: number) {
  return {
    amounts: { subtotal: total, discount: 0, shipping: 0, tax: 0, total },
    refundedAmount: 0,
    shipping: null,
  };
}

/**
 * The one notification the relay published for the cart, of a plain order, to the shopper's
 * address. Only for tests that skip without the emulator.
 */
async function expectNotification(
  cart: Cart,
  to: { shopper: Shopper; email: string },
  expected: { id: string; type: string; totalAmount: number },
): Promise<void> {
  const [notification, ...more] = await notifications!.exactly(1, aboutCarts(cart.id));
  expect(more).toEqual([]);
  expect(notification!.attributes).toEqual({ channel: 'email', eventId: expected.id });
  expect(JSON.parse(notification!.data)).toEqual({
    ...expected,
    userId: to.shopper.userId,
    email: to.email,
    cartId: cart.id,
    currency: 'usd',
    items: cart.items,
    ...plainOrder(expected.totalAmount),
  });
}

function lastAttemptAt(event: DeliveredEvent): number {
  return Date.parse(event.delivery.attempts.at(-1)!.at);
}

/**
 * A checkout run once, whichever test asks first: what works without the emulator and what
 * reads its topics are separate tests (the latter skipped, and counted, where it is missing),
 * looking at the same paid cart.
 */
function once<T>(flow: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => {
    result ??= flow();
    return result;
  };
}

describe('checkout end to end, over HTTP', () => {
  const cardPaid = once(async () => {
    const shopper = await signIn('card');
    const customer = customerOf(shopper, 'Ada Card');
    const cart = await shopper.fillCart({ 'tshirt-classic': 1, 'mug-ceramic': 2 });
    expect(cart.totalAmount).toBe(5300);
    const checkout = await shopper.checkout(cart.id);
    expect(checkout.url.startsWith(`${stack.stripeUrl}/`)).toBe(true);

    const successUrl = await submitHostedPage(checkout.url, 'paid', customer);
    expect(successUrl).toBe(`${stack.workerUrl}/checkout/success?session_id=${checkout.sessionId}`);
    // The webhook first, as usually happens: this test is about the webhook's path to Pub/Sub.
    // (When the success page fulfils first, the Worker leaves the event to the cron; see the
    // lost-webhook test below.)
    const completed = await standin.delivered(checkout.sessionId, 'checkout.session.completed');
    const page = await landingPage(successUrl);
    expect(page).toContain('Payment received');
    expect(page).toContain('$53.00');
    expect((await shopper.cart(cart.id)).status).toBe('paid');
    return { shopper, customer, cart, checkout, completed };
  });

  it('card: paid on the Checkout page, back on the success page, cart.paid in the outbox', async () => {
    const { cart } = await cardPaid();
    await expectRecorded(cart.id, ['cart.paid']);
  });

  it.skipIf(withoutEmulator)('card: cart.paid published as the contract says, and one email notification', async () => {
    const { shopper, customer, cart, checkout, completed } = await cardPaid();
    const { rows, publishTimes } = await expectPublished(cart.id, ['cart.paid']);
    const [message] = await payments!.atLeast(1, aboutCarts(cart.id));
    expect(message!.attributes).toEqual({
      eventType: 'cart.paid',
      eventId: rows[0]!.id,
      cartId: cart.id,
      stripeEventId: completed.event.id,
    });
    expect(JSON.parse(message!.data)).toEqual({
      id: rows[0]!.id,
      type: 'cart.paid',
      occurredAt: expect.any(String),
      cart: {
        id: cart.id,
        userId: shopper.userId,
        status: 'paid',
        currency: 'usd',
        totalAmount: 5300,
        items: cart.items,
      },
      customer,
      stripe: {
        eventId: completed.event.id,
        sessionId: checkout.sessionId,
        paymentIntentId: expect.stringMatching(/^pi_/),
      },
      amountMismatch: false,
      ...plainOrder(5300),
      oversold: false,
      dispute: null,
    });
    await expectNotification(
      cart,
      { shopper, email: customer.email },
      { id: rows[0]!.id, type: 'cart.paid', totalAmount: 5300 },
    );

    // The stand-in logs when it sent the webhook; Postgres when the transition committed
    // (just before the Worker's 200); the emulator when the message was published.
    const published = publishTimes[0]!;
    console.log(
      `[latency] cart.paid: webhook sent → on the topic ${published - lastAttemptAt(completed)} ms; ` +
        `transition committed (≈ the 200) → on the topic ${published - rows[0]!.created_at.getTime()} ms`,
    );
  });

  const bankPaid = once(async () => {
    const shopper = await signIn('bank');
    const customer = customerOf(shopper, 'Ben Bank');
    const cart = await shopper.fillCart({ 'hoodie-zip': 1 });
    const checkout = await shopper.checkout(cart.id);

    const successUrl = await submitHostedPage(checkout.url, 'async', customer);
    await standin.delivered(checkout.sessionId, 'checkout.session.completed');
    expect(await landingPage(successUrl)).toContain('Payment processing');
    expect((await shopper.cart(cart.id)).status).toBe('awaiting_payment');

    await standin.settleBankTransfer(checkout.sessionId, 'succeed');
    await standin.delivered(checkout.sessionId, 'checkout.session.async_payment_succeeded');
    expect((await shopper.cart(cart.id)).status).toBe('paid');
    expect(await landingPage(successUrl)).toContain('Payment received');
    return { shopper, customer, cart };
  });

  it('bank transfer: awaiting_payment until the bank confirms, then paid; both events in the outbox in order', async () => {
    const { cart } = await bankPaid();
    await expectRecorded(cart.id, ['cart.awaiting_payment', 'cart.paid']);
  });

  it.skipIf(withoutEmulator)('bank transfer: both events published in order, one notification', async () => {
    const { shopper, customer, cart } = await bankPaid();
    const { rows } = await expectPublished(cart.id, ['cart.awaiting_payment', 'cart.paid']);
    // The relay writes only for paid, failed and refunded carts.
    await expectNotification(
      cart,
      { shopper, email: customer.email },
      { id: rows[1]!.id, type: 'cart.paid', totalAmount: 5900 },
    );
  });

  const bankFailed = once(async () => {
    const shopper = await signIn('failing');
    const customer = customerOf(shopper, 'Fay Fail');
    const cart = await shopper.fillCart({ 'mug-ceramic': 1 });
    const checkout = await shopper.checkout(cart.id);

    const successUrl = await submitHostedPage(checkout.url, 'async_fail', customer);
    await standin.delivered(checkout.sessionId, 'checkout.session.completed');
    expect((await shopper.cart(cart.id)).status).toBe('awaiting_payment');
    await standin.settleBankTransfer(checkout.sessionId, 'fail');
    await standin.delivered(checkout.sessionId, 'checkout.session.async_payment_failed');
    expect((await shopper.cart(cart.id)).status).toBe('payment_failed');
    expect(await landingPage(successUrl)).toContain('Payment failed');
    return { shopper, customer, cart, checkout };
  });

  it('failed bank transfer: payment_failed, the shopper is told, and the same cart can be checked out again', async () => {
    const { shopper, cart, checkout } = await bankFailed();
    await expectRecorded(cart.id, ['cart.awaiting_payment', 'cart.payment_failed']);

    // Still the shopper's active cart: the app can try again with a new session.
    const again = await shopper.call<{ id: string }>('POST', '/v1/carts');
    expect(again).toMatchObject({ status: 200, body: { id: cart.id } });
    const retry = await shopper.checkout(cart.id);
    expect(retry.sessionId).not.toBe(checkout.sessionId);
  });

  it.skipIf(withoutEmulator)('failed bank transfer: both events published in order, one notification', async () => {
    const { shopper, customer, cart } = await bankFailed();
    const { rows } = await expectPublished(cart.id, ['cart.awaiting_payment', 'cart.payment_failed']);
    await expectNotification(
      cart,
      { shopper, email: customer.email },
      { id: rows[1]!.id, type: 'cart.payment_failed', totalAmount: 1400 },
    );
  });

  it('cancel: back from the Checkout page the cart is still checkout_pending; DELETE checkout reopens it and expires the session', async () => {
    const shopper = await signIn('cancel');
    const cart = await shopper.fillCart({ 'tshirt-classic': 2 });
    const checkout = await shopper.checkout(cart.id);

    const cancelUrl = await submitHostedPage(checkout.url, 'cancel');
    expect(cancelUrl).toBe(`${stack.workerUrl}/checkout/cancel?cart_id=${cart.id}`);
    expect(await landingPage(cancelUrl)).toContain('Checkout cancelled');
    // As on Stripe, leaving the page keeps the session open: the app may reopen it.
    expect(await shopper.cart(cart.id)).toMatchObject({
      status: 'checkout_pending',
      checkout: { sessionId: checkout.sessionId },
    });

    const reopened = await shopper.call('DELETE', `/v1/carts/${cart.id}/checkout`);
    expect(reopened).toMatchObject({ status: 200, body: { id: cart.id, status: 'open', checkout: null } });
    expect(await standin.sessionStatus(checkout.sessionId, LOCAL_STRIPE_KEY)).toBe('expired');
    expect((await fetch(checkout.url)).status).toBe(410);
    // Back to open is not a payment event.
    expect(await outboxRows(databaseUrl(), cart.id)).toEqual([]);
  });
});

describe('when the success page fulfils before the webhook (a lost or late webhook)', () => {
  it('the success page alone settles the cart and records cart.paid', async () => {
    const shopper = await signIn('lost-webhook');
    const cart = await shopper.fillCart({ 'tshirt-classic': 1 });
    const checkout = await shopper.checkout(cart.id);
    await standin.webhooksEnabled(false);
    try {
      const successUrl = await submitHostedPage(checkout.url, 'paid', customerOf(shopper, 'Lou Lost'));
      expect(await landingPage(successUrl)).toContain('Payment received');
    } finally {
      await standin.webhooksEnabled(true);
    }
    expect((await shopper.cart(cart.id)).status).toBe('paid');
    expect((await outboxRows(databaseUrl(), cart.id)).map((r) => r.event_type)).toEqual(['cart.paid']);
  });

  // The redirect often beats the webhook: the success page's fulfilment must publish at once,
  // not leave the shopper's email to the cron.
  it.skipIf(withoutEmulator)('publishes cart.paid right away, as the webhook does', async () => {
    const shopper = await signIn('lost-webhook-publish');
    const cart = await shopper.fillCart({ 'tshirt-classic': 1 });
    const checkout = await shopper.checkout(cart.id);
    await standin.webhooksEnabled(false);
    try {
      await landingPage(await submitHostedPage(checkout.url, 'paid'));
    } finally {
      await standin.webhooksEnabled(true);
    }
    await publishedOutboxRows(databaseUrl(), cart.id, 1, 3_000);
  });

  // An earlier event of the cart still waiting must not be overtaken by a later one under the
  // same ordering key.
  it.skipIf(withoutEmulator)('keeps a bank transfer’s events in order on the topic', async () => {
    const shopper = await signIn('order');
    const cart = await shopper.fillCart({ 'mug-ceramic': 1 });
    const checkout = await shopper.checkout(cart.id);
    await standin.webhooksEnabled(false);
    try {
      await landingPage(await submitHostedPage(checkout.url, 'async'));
    } finally {
      await standin.webhooksEnabled(true);
    }
    await standin.settleBankTransfer(checkout.sessionId, 'succeed');
    await standin.delivered(checkout.sessionId, 'checkout.session.async_payment_succeeded');
    const messages = await payments!.atLeast(2, aboutCarts(cart.id));
    expect(messages.map((m) => m.attributes.eventType)).toEqual(['cart.awaiting_payment', 'cart.paid']);
  });
});

describe.skipIf(withoutChromium)('in a phone browser (Chromium)', () => {
  let browser: PhoneBrowser;
  // Kept after the run so a person can look at what the shopper saw.
  let screenshots: string;

  beforeAll(async () => {
    screenshots = mkdtempSync(path.join(tmpdir(), 'edge-checkout-screens-'));
    browser = await launchPhoneBrowser(findChromium()!);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('pays on the Checkout page with a tap on Pay and lands on the success page showing the total', async () => {
    const shopper = await signIn('browser');
    const cart = await shopper.fillCart({ 'hoodie-zip': 1, 'sticker-pack': 2 });
    const total = new Intl.NumberFormat('en', { style: 'currency', currency: 'USD' }).format(cart.totalAmount / 100);
    const checkout = await shopper.checkout(cart.id);

    const page = await browser.context.newPage();
    await page.goto(checkout.url);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe(`Pay ${total}`);
    await page.screenshot({ path: path.join(screenshots, 'checkout-page.png'), fullPage: true });
    await page.getByRole('button', { name: `Pay ${total}` }).tap();

    await page.waitForURL(`${stack.workerUrl}/checkout/success?session_id=${checkout.sessionId}`);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Payment received');
    expect(await page.locator('.total span').allInnerTexts()).toEqual(['Total', total]);
    expect(await page.getByText('1 × Zip Hoodie').isVisible()).toBe(true);
    const backToApp = new URL((await page.getByRole('link', { name: 'Back to the shop' }).getAttribute('href'))!);
    expect(`${backToApp.protocol}//${backToApp.host}${backToApp.pathname}`).toBe(E2E_APP_RETURN_URL);
    expect(Object.fromEntries(backToApp.searchParams)).toEqual({ cart_id: cart.id, status: 'paid' });
    // Nothing wider than the phone: no sideways scrolling.
    expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(390);
    const shot = path.join(screenshots, 'success-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`[screenshots] ${screenshots}`);
    expect((await shopper.cart(cart.id)).status).toBe('paid');
    await page.close();
  });

  it('renders the API operations on /docs from /openapi.json, under its Content-Security-Policy', async () => {
    const page = await browser.context.newPage();
    // Chromium reports every resource the page's CSP refused on the console.
    const refused: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) refused.push(message.text());
    });
    const res = await page.goto(`${stack.workerUrl}/docs`);
    expect(res?.headers()['content-security-policy']).toMatch(/script-src 'self';/);
    const checkoutOperation = page.locator('.op', { hasText: '/v1/carts/{cartId}/checkout' }).first();
    await checkoutOperation.waitFor();
    expect(await page.locator('.op').count()).toBeGreaterThanOrEqual(10);
    expect(await page.locator('#ops').textContent()).not.toContain('Could not load');
    expect(await checkoutOperation.textContent()).toContain('Start Stripe Checkout for the cart');
    await page.screenshot({ path: path.join(screenshots, 'docs.png') });
    expect(refused).toEqual([]);
    await page.close();
  });
});
