import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { expect } from 'vitest';
import type { Fault } from '../src/faults.ts';
import type { StripeStandin, StripeStandinOptions } from '../src/server.ts';
import { startStripeStandin } from '../src/server.ts';

// Shared by the stand-in's tests: a fresh stand-in per test, the official client pointed at it
// the way the Worker does it, and a local webhook receiver.

export const WEBHOOK_SECRET = 'whsec_standin_tests_0123456789abcdef';
export const API_KEY = 'sk_test_standin_tests';

export interface TestStandin {
  standin: StripeStandin;
  stripe: Stripe;
}

export async function startTestStandin(options: Partial<StripeStandinOptions> = {}): Promise<TestStandin> {
  const standin = await startStripeStandin({
    webhookSecret: WEBHOOK_SECRET,
    asyncDelayMs: Number.POSITIVE_INFINITY,
    webhookRetryDelaysMs: [20, 40],
    ...options,
  });
  return { standin, stripe: clientFor(standin, API_KEY) };
}

/** @param maxNetworkRetries 0 by default: a failed request must show its first answer, not a retried one. */
export function clientFor(
  standin: StripeStandin,
  key: string,
  maxNetworkRetries = 0,
  fetchFn: typeof fetch = fetch,
): Stripe {
  return new Stripe(key, {
    host: '127.0.0.1',
    port: standin.port,
    protocol: 'http',
    httpClient: Stripe.createFetchHttpClient(fetchFn),
    maxNetworkRetries,
  });
}

export const CART_SESSION: Stripe.Checkout.SessionCreateParams = {
  mode: 'payment',
  line_items: [
    {
      quantity: 2,
      price_data: {
        currency: 'usd',
        unit_amount: 1500,
        product_data: { name: 'Edge T-shirt', description: 'Organic cotton', metadata: { product_id: 'tee' } },
      },
    },
    { quantity: 1, price_data: { currency: 'usd', unit_amount: 499, product_data: { name: 'Sticker pack' } } },
  ],
  client_reference_id: 'cart_123',
  metadata: { cart_id: 'cart_123' },
  payment_intent_data: { metadata: { cart_id: 'cart_123' } },
  success_url: 'https://shop.example/checkout/success?session_id={CHECKOUT_SESSION_ID}',
  cancel_url: 'https://shop.example/checkout/cancel?cart_id=cart_123',
};

/** Two shipping rates with the session, prices before tax: Standard ($5, 3–5 business days) and Express ($15). */
export const SHIPPING: Partial<Stripe.Checkout.SessionCreateParams> = {
  shipping_address_collection: { allowed_countries: ['US', 'CA'] },
  shipping_options: [
    {
      shipping_rate_data: {
        type: 'fixed_amount',
        display_name: 'Standard',
        fixed_amount: { amount: 500, currency: 'usd' },
        delivery_estimate: { minimum: { unit: 'business_day', value: 3 }, maximum: { unit: 'business_day', value: 5 } },
        tax_behavior: 'exclusive',
      },
    },
    {
      shipping_rate_data: {
        type: 'fixed_amount',
        display_name: 'Express',
        fixed_amount: { amount: 1500, currency: 'usd' },
        tax_behavior: 'exclusive',
      },
    },
  ],
};

export function createCartSession(
  stripe: Stripe,
  overrides: Partial<Stripe.Checkout.SessionCreateParams> = {},
): Promise<Stripe.Checkout.Session> {
  return stripe.checkout.sessions.create({ ...CART_SESSION, ...overrides });
}

export async function control<T = unknown>(
  standin: StripeStandin,
  path: string,
  body?: object,
  method = body === undefined ? 'GET' : 'POST',
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${standin.url}/_standin${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

/** The error the official client throws for a request (fails the test if it succeeds). */
export async function stripeError(request: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  const error = await request.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof Stripe.errors.StripeError)) throw new Error(`expected a StripeError, got ${String(error)}`);
  return error;
}

/** Arms a fault (/_standin/faults) and answers it as the stand-in stored it. */
export async function addFault(standin: StripeStandin, spec: object): Promise<Fault> {
  const res = await control<Fault>(standin, '/faults', spec);
  expect(res.status).toBe(200);
  return res.body;
}

export interface ReceivedWebhook {
  body: string;
  signature: string;
  userAgent: string;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** The status to answer a request with (the n-th, from 0); 200 unless a test says otherwise. */
  respond: (webhook: ReceivedWebhook, n: number) => number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<WebhookReceiver> {
  const receiver: Omit<WebhookReceiver, 'url' | 'close'> = { received: [], respond: () => 200 };
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const webhook = {
        body,
        signature: String(req.headers['stripe-signature']),
        userAgent: String(req.headers['user-agent']),
      };
      const status = receiver.respond(webhook, receiver.received.length);
      receiver.received.push(webhook);
      res.writeHead(status, { 'content-type': 'application/json' }).end('{"received":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}/v1/webhooks/stripe`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}

/** Verifies a received webhook the way the Worker does, and returns its event. */
export function verified(webhook: ReceivedWebhook, secret = WEBHOOK_SECRET): Stripe.Event {
  return new Stripe(API_KEY).webhooks.constructEvent(webhook.body, webhook.signature, secret);
}

export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
