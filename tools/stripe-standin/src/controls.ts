import type { Context } from 'hono';
import { Hono } from 'hono';
import { invalidRequest, StripeApiError } from './errors.ts';
import { type EventLog, thinNotification } from './events.ts';
import type { Faults } from './faults.ts';
import { parseFault } from './faults.ts';
import { successRedirect } from './hosted-page.ts';
import { isEmail } from './params.ts';
import type { AsyncResult, Choices, Payments, PayOutcome } from './payments.ts';
import { TEST_CUSTOMER } from './payments.ts';
import type { WebhookDelivery, WebhookSettings } from './webhooks.ts';

// Test controls under /_standin: not part of Stripe's API. They let tests and developers do what
// a shopper, a bank or the network would (pay, settle a bank transfer, lose or repeat a webhook,
// let time pass) without a browser or waiting, and make Stripe itself fail, slow down or forget.
// JSON in and out; errors use Stripe's error shape. Documented in README.md.

export interface ControlOptions {
  payments: Payments;
  events: EventLog;
  webhooks: WebhookDelivery;
  faults: Faults;
}

const OUTCOMES: readonly PayOutcome[] = ['paid', 'async', 'async_fail'];
// Stripe's dispute reasons (the `reason` of a Dispute).
const DISPUTE_REASONS: readonly string[] = [
  'bank_cannot_process',
  'credit_not_processed',
  'customer_initiated',
  'debit_not_authorized',
  'duplicate',
  'fraudulent',
  'general',
  'incorrect_account_details',
  'insufficient_funds',
  'product_not_received',
  'product_unacceptable',
  'subscription_canceled',
  'unrecognized',
];
const RESULTS: Readonly<Record<string, AsyncResult>> = { succeed: 'succeeded', fail: 'failed' };

export function controlRoutes({ payments, events, webhooks, faults }: ControlOptions): Hono {
  const controls = new Hono();

  controls.onError((error, c) => {
    if (error instanceof StripeApiError) return c.json(error.toJSON(), error.status);
    throw error;
  });

  // What the hosted page's buttons do, without the page:
  // { outcome, email?, name?, shipping?: { name?, address, rate? }, promotion_code? }.
  controls.post('/sessions/:id/pay', async (c) => {
    const body = await jsonBody(c);
    const outcome = OUTCOMES.find((o) => o === body.outcome);
    if (outcome === undefined) throw invalidRequest(`outcome must be one of ${OUTCOMES.join(', ')}`, 'outcome');
    const email =
      optionalString(body, 'email') ?? payments.session(c.req.param('id')).customer_email ?? TEST_CUSTOMER.email;
    if (!isEmail(email)) throw invalidRequest(`Invalid email address: ${email}`, 'email');
    const name = optionalString(body, 'name') ?? TEST_CUSTOMER.name;
    const choices: Choices = { promotionCode: optionalString(body, 'promotion_code') };
    if (body.shipping !== undefined) choices.shipping = shippingChoice(body.shipping);
    const session = payments.pay(c.req.param('id'), outcome, { email, name }, choices);
    return c.json({ session, redirect_url: successRedirect(session) });
  });

  // A promotion code shoppers can enter where a session allows them:
  // { code, percent_off? | amount_off? and currency?, max_redemptions? }.
  controls.post('/promotion_codes', async (c) => {
    const body = await jsonBody(c);
    const code = optionalString(body, 'code');
    if (!code || !/^[A-Za-z0-9_-]{1,500}$/.test(code)) throw invalidRequest('code must be letters and digits', 'code');
    const percentOff = optionalNumber(body, 'percent_off');
    const amountOff = optionalNumber(body, 'amount_off');
    const currency = optionalString(body, 'currency')?.toLowerCase() ?? null;
    if ((percentOff === undefined) === (amountOff === undefined)) {
      throw invalidRequest('Give one of percent_off or amount_off.', 'percent_off');
    }
    if (percentOff !== undefined && !(percentOff > 0 && percentOff <= 100)) {
      throw invalidRequest('percent_off must be more than 0 and at most 100.', 'percent_off');
    }
    if (amountOff !== undefined && (!Number.isInteger(amountOff) || amountOff < 1 || currency === null)) {
      throw invalidRequest('amount_off must be a positive integer, with its currency.', 'amount_off');
    }
    const maxRedemptions = optionalNumber(body, 'max_redemptions') ?? null;
    return c.json(
      payments.createPromotionCode({
        code,
        percentOff: percentOff ?? null,
        amountOff: amountOff ?? null,
        currency: amountOff !== undefined ? currency : null,
        maxRedemptions,
      }),
    );
  });

  // The cardholder disputes a charge: { reason?, amount? } (default: fraudulent, the whole charge).
  controls.post('/charges/:id/dispute', async (c) => {
    const body = await jsonBody(c);
    const reason = optionalString(body, 'reason') ?? 'fraudulent';
    if (!DISPUTE_REASONS.includes(reason)) {
      throw invalidRequest(`reason must be one of ${DISPUTE_REASONS.join(', ')}`, 'reason');
    }
    return c.json(
      payments.disputeCharge(c.req.param('id'), { reason, amount: optionalNumber(body, 'amount') ?? null }),
    );
  });

  // The bank decides the dispute: { outcome: "won" | "lost" }.
  controls.post('/disputes/:id/close', async (c) => {
    const body = await jsonBody(c);
    if (body.outcome !== 'won' && body.outcome !== 'lost')
      throw invalidRequest('outcome must be won or lost', 'outcome');
    return c.json(payments.closeDispute(c.req.param('id'), body.outcome));
  });

  // The bank's answer to a delayed payment, now instead of after the configured delay.
  controls.post('/sessions/:id/async/:result', (c) => {
    const result = RESULTS[c.req.param('result')];
    if (result === undefined) throw invalidRequest('Use /async/succeed or /async/fail.');
    return c.json({ session: payments.settleAsync(c.req.param('id'), result) });
  });

  // Moves expires_at (to the past to expire the session through its timer now): { expires_at }.
  controls.post('/sessions/:id/expires_at', async (c) => {
    const body = await jsonBody(c);
    if (typeof body.expires_at !== 'number' || !Number.isInteger(body.expires_at)) {
      throw invalidRequest('expires_at must be a Unix timestamp in seconds', 'expires_at');
    }
    return c.json({ session: payments.moveExpiry(c.req.param('id'), body.expires_at) });
  });

  // Stripe forgets the session: later requests for it answer 404 resource_missing.
  controls.post('/sessions/:id/forget', (c) => c.json(payments.forget(c.req.param('id'))));

  // Every event, oldest first, with its webhook delivery; ?session=cs_… narrows to one session.
  controls.get('/events', (c) => {
    const session = c.req.query('session');
    const data = events
      .all()
      .filter((entry) => session === undefined || entry.sessionId === session)
      .map(({ event, sessionId, thin }) => ({
        event,
        session: sessionId,
        delivery: webhooks.delivery(event.id),
        thin_event: thinNotification(thin),
      }));
    return c.json({ data });
  });

  // Sends an event again (a duplicate delivery, as Stripe's retries and "Resend" make).
  controls.post('/events/:id/resend', (c) => {
    return c.json({ delivery: webhooks.resend(events.entry(c.req.param('id'))) });
  });

  controls.get('/webhooks', (c) => c.json(settingsJson(webhooks.current())));

  // { enabled?: boolean, url?: string | null, payload_style?: 'snapshot' | 'thin' }: switching
  // delivery off loses the events created meanwhile (a lost webhook); the URL can be set once the
  // receiver's port is known; `thin` sends each event's thin notification instead.
  controls.post('/webhooks', async (c) => {
    const body = await jsonBody(c);
    const change: Partial<WebhookSettings> = {};
    if (body.enabled !== undefined) {
      if (typeof body.enabled !== 'boolean') throw invalidRequest('enabled must be true or false', 'enabled');
      change.enabled = body.enabled;
    }
    if (body.url !== undefined) {
      if (body.url !== null && (typeof body.url !== 'string' || !URL.canParse(body.url))) {
        throw invalidRequest('url must be a URL or null', 'url');
      }
      change.url = body.url;
    }
    if (body.payload_style !== undefined) {
      if (body.payload_style !== 'snapshot' && body.payload_style !== 'thin') {
        throw invalidRequest('payload_style must be snapshot or thin', 'payload_style');
      }
      change.payloadStyle = body.payload_style;
    }
    return c.json(settingsJson(webhooks.configure(change)));
  });

  // Faults of the /v1 API (faults.ts): { method?, path, status?, delayMs?, times? }.
  controls.post('/faults', async (c) => c.json(faults.add(parseFault(await jsonBody(c)))));
  controls.get('/faults', (c) => c.json({ data: faults.list() }));
  controls.delete('/faults', (c) => c.json({ deleted: faults.clear() }));
  controls.delete('/faults/:id', (c) => c.json({ ...faults.remove(c.req.param('id')), deleted: true }));
  // Requests held by a fault's delay go on now: { released: n }.
  controls.post('/faults/release', (c) => c.json({ released: faults.release() }));

  return controls;
}

async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === 'object' && body !== null && !Array.isArray(body)) return { ...body };
  } catch {
    // answered below
  }
  throw invalidRequest('The body must be a JSON object.');
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalidRequest(`${key} must be a string`, key);
  return value;
}

function optionalNumber(body: Record<string, unknown>, key: string): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidRequest(`${key} must be a number`, key);
  return value;
}

/** `{ name?, address: { line1, line2?, city, state?, postal_code, country }, rate? }` as the page's fields give it. */
function shippingChoice(value: unknown): NonNullable<Choices['shipping']> {
  if (typeof value !== 'object' || value === null) throw invalidRequest('shipping must be an object', 'shipping');
  const shipping = value as Record<string, unknown>;
  if (typeof shipping.address !== 'object' || shipping.address === null) {
    throw invalidRequest('shipping.address must be an object', 'shipping[address]');
  }
  const address = shipping.address as Record<string, unknown>;
  const field = (key: string) => optionalString(address, key) ?? null;
  return {
    name: optionalString(shipping, 'name') ?? null,
    address: {
      line1: field('line1'),
      line2: field('line2'),
      city: field('city'),
      state: field('state'),
      postal_code: field('postal_code'),
      country: field('country')?.toUpperCase() ?? null,
    },
    rate: optionalString(shipping, 'rate') ?? null,
  };
}

/** The webhook settings as the controls name them, in Stripe's snake case. */
function settingsJson({ payloadStyle, ...settings }: WebhookSettings) {
  return { ...settings, payload_style: payloadStyle };
}
