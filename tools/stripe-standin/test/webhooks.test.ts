import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventLog } from '../src/events.ts';
import type { StandinEvent } from '../src/objects.ts';
import { type Delivery, WebhookDelivery } from '../src/webhooks.ts';
import type { TestStandin, WebhookReceiver } from './testing.ts';
import {
  API_KEY,
  control,
  createCartSession,
  startReceiver,
  startTestStandin,
  stripeError,
  verified,
  WEBHOOK_SECRET,
  waitFor,
} from './testing.ts';

interface ControlEvents {
  data: { event: Stripe.Event; session: string; delivery: Delivery; thin_event: unknown }[];
}

let receiver: WebhookReceiver;
let t: TestStandin;
beforeEach(async () => {
  receiver = await startReceiver();
  t = await startTestStandin({ webhookUrl: receiver.url });
});
afterEach(async () => {
  await t.standin.close();
  await receiver.close();
});

function pay(sessionId: string, outcome: 'paid' | 'async' | 'async_fail') {
  return control(t.standin, `/sessions/${sessionId}/pay`, { outcome });
}

async function deliveries(query = ''): Promise<ControlEvents['data']> {
  return (await control<ControlEvents>(t.standin, `/events${query}`)).body.data;
}

function receivedTypes(): string[] {
  return receiver.received.map((w) => verified(w).type);
}

describe('webhook delivery', () => {
  it('posts a Stripe event signed with the webhook secret, which Stripe’s library verifies', async () => {
    const session = await createCartSession(t.stripe);
    await pay(session.id, 'paid');
    const [webhook] = await waitFor(() => receiver.received.length === 1 && receiver.received);

    const event = verified(webhook);
    expect(event).toMatchObject({
      object: 'event',
      type: 'checkout.session.completed',
      api_version: Stripe.API_VERSION,
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      data: { object: { id: session.id, object: 'checkout.session', status: 'complete', payment_status: 'paid' } },
    });
    expect(event.id).toMatch(/^evt_/);
    expect(webhook.userAgent).toBe('Stripe/1.0 (+https://stripe.com/docs/webhooks)');
    expect(() => verified(webhook, 'whsec_some_other_secret')).toThrow(Stripe.errors.StripeSignatureVerificationError);
  });

  it('retries with backoff after a 5xx answer until delivered', async () => {
    receiver.respond = (_webhook, n) => [500, 503][n] ?? 200;
    const session = await createCartSession(t.stripe);
    await pay(session.id, 'paid');

    const [entry] = await waitFor(async () => {
      const data = await deliveries();
      return data[0]?.delivery.status === 'delivered' && data;
    });
    expect(entry.delivery.attempts.map((a) => a.status)).toEqual([500, 503, 200]);
    expect(new Set(receiver.received.map((w) => verified(w).id))).toEqual(new Set([entry.event.id]));
  });

  it('sends thin notifications when asked to, whose v2 event names the snapshot event', async () => {
    await control(t.standin, '/webhooks', { payload_style: 'thin' });
    const session = await createCartSession(t.stripe);
    await pay(session.id, 'paid');
    const [webhook] = await waitFor(() => receiver.received.length === 1 && receiver.received);

    // Parsed and checked as Stripe's library does for an event destination of thin events.
    const notification = new Stripe(API_KEY).parseEventNotification(webhook.body, webhook.signature, WEBHOOK_SECRET);
    expect(notification).toMatchObject({
      object: 'v2.core.event',
      type: 'v1.checkout.session.completed',
      livemode: false,
      related_object: { id: session.id, type: 'checkout.session', url: `/v1/checkout/sessions/${session.id}` },
    });
    expect(JSON.parse(webhook.body)).not.toHaveProperty('snapshot_event');
    const [{ event, thin_event }] = await deliveries();
    expect(thin_event).toEqual(JSON.parse(webhook.body));

    const thin = await t.stripe.v2.core.events.retrieve(notification.id);
    expect(thin).toMatchObject({ id: notification.id, snapshot_event: event.id });
    expect((await t.stripe.events.retrieve(thin.snapshot_event!)).data.object).toMatchObject({ id: session.id });
    const missing = await stripeError(t.stripe.v2.core.events.retrieve('evt_test_65nothing'));
    expect(missing.statusCode).toBe(404);
  });

  it('gives up on an attempt the endpoint does not answer in time (no answer), and retries it', async () => {
    // Accepts the connection, never answers the first request, answers 200 after that.
    const held: ServerResponse[] = [];
    const endpoint = createServer((req, res) => {
      req.resume();
      if (held.length === 0) held.push(res);
      else res.writeHead(200).end('{"received":true}');
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    const session = await createCartSession(t.stripe);
    await t.stripe.checkout.sessions.expire(session.id);
    const [event] = (await t.stripe.events.list({ limit: 1 })).data;
    if (event?.type !== 'checkout.session.expired') throw new Error(`expected the expiry event, got ${event?.type}`);
    const webhooks = new WebhookDelivery({
      url: `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/v1/webhooks/stripe`,
      enabled: true,
      payloadStyle: 'snapshot',
      secret: 'whsec_timeout_test',
      retryDelaysMs: [20],
      // The second attempt must get its answer within it too, on a busy machine.
      attemptTimeoutMs: 2_000,
      log: () => {},
    });
    try {
      webhooks.send(new EventLog().add(event as StandinEvent, session.id));
      const delivery = await waitFor(
        () => webhooks.delivery(event.id).status === 'delivered' && webhooks.delivery(event.id),
      );
      expect(delivery.attempts.map((a) => [a.status, a.error])).toEqual([
        [null, 'no answer within 2000 ms'],
        [200, null],
      ]);
    } finally {
      webhooks.close();
      endpoint.closeAllConnections();
      await new Promise<void>((resolve) => endpoint.close(() => resolve()));
    }
  });

  it('keeps an event it cannot deliver and delivers it once the endpoint is back', async () => {
    const gone = await startReceiver();
    await gone.close();
    await control(t.standin, '/webhooks', { url: gone.url });
    const session = await createCartSession(t.stripe);
    await t.stripe.checkout.sessions.expire(session.id);

    const [entry] = await waitFor(async () => {
      const data = await deliveries();
      return data[0]?.delivery.attempts.length >= 3 && data;
    });
    expect(entry.delivery.status).toBe('retrying');
    expect(entry.delivery.attempts[0]).toMatchObject({ status: null, error: expect.stringMatching(/ECONNREFUSED/) });

    await control(t.standin, '/webhooks', { url: receiver.url });
    await waitFor(() => receiver.received.length === 1);
    expect(receivedTypes()).toEqual(['checkout.session.expired']);
  });

  it('delivers the events of one session in the order they happened, even when one needs retries', async () => {
    receiver.respond = (_webhook, n) => (n < 2 ? 500 : 200);
    const session = await createCartSession(t.stripe);
    await pay(session.id, 'async');
    await control(t.standin, `/sessions/${session.id}/async/succeed`, {});
    const paid = await t.stripe.checkout.sessions.retrieve(session.id);
    await t.stripe.refunds.create({ payment_intent: String(paid.payment_intent) });

    await waitFor(() => receiver.received.length === 5);
    expect(receivedTypes()).toEqual([
      'checkout.session.completed',
      'checkout.session.completed',
      'checkout.session.completed',
      'checkout.session.async_payment_succeeded',
      'charge.refunded',
    ]);
  });

  it('does not hold one session’s events back behind another session’s failing delivery', async () => {
    const failing = await createCartSession(t.stripe);
    const healthy = await createCartSession(t.stripe);
    receiver.respond = (webhook) => (webhook.body.includes(failing.id) ? 500 : 200);
    await pay(failing.id, 'paid');
    await pay(healthy.id, 'paid');

    await waitFor(() => receiver.received.some((w) => w.body.includes(healthy.id)));
    const byId = new Map(
      (await deliveries()).map((e) => [(e.event.data.object as { id: string }).id, e.delivery.status]),
    );
    expect(byId.get(healthy.id)).toBe('delivered');
    expect(byId.get(failing.id)).toMatch(/pending|retrying/);
  });

  it('loses events while delivery is switched off, and resends one on request (a duplicate)', async () => {
    expect((await control(t.standin, '/webhooks', { enabled: false })).body).toEqual({
      url: receiver.url,
      enabled: false,
      payload_style: 'snapshot',
    });
    const session = await createCartSession(t.stripe);
    await pay(session.id, 'paid');

    // A delivery records its first attempt as it starts it: none was made, and none is due.
    const [lost] = await deliveries(`?session=${session.id}`);
    expect(lost.event.type).toBe('checkout.session.completed');
    expect(lost.delivery).toEqual({ status: 'lost', attempts: [], next_attempt_at: null });
    expect(receiver.received).toEqual([]);

    await control(t.standin, '/webhooks', { enabled: true });
    const eventId = lost.event.id;
    expect((await control(t.standin, `/events/${eventId}/resend`, {})).status).toBe(200);
    expect((await control(t.standin, `/events/${eventId}/resend`, {})).status).toBe(200);
    await waitFor(() => receiver.received.length === 2);
    expect(receiver.received.map((w) => verified(w).id)).toEqual([eventId, eventId]);
  });

  it('records events without sending them when no webhook URL is configured', async () => {
    const quiet = await startTestStandin();
    try {
      const session = await createCartSession(quiet.stripe);
      await quiet.stripe.checkout.sessions.expire(session.id);
      const { body } = await control<ControlEvents>(quiet.standin, '/events');
      expect(body.data.map((e) => e.delivery.status)).toEqual(['no_endpoint']);
      const resend = await control(quiet.standin, `/events/${body.data[0].event.id}/resend`, {});
      expect(resend.status).toBe(409);
    } finally {
      await quiet.standin.close();
    }
  });
});

describe('delayed (bank transfer) payments', () => {
  it('sends async_payment_succeeded after the configured delay, and the session becomes paid', async () => {
    const fast = await startTestStandin({ webhookUrl: receiver.url, asyncDelayMs: 50 });
    try {
      const session = await createCartSession(fast.stripe);
      await control(fast.standin, `/sessions/${session.id}/pay`, { outcome: 'async' });
      await waitFor(() => receiver.received.length === 2);
      expect(receivedTypes()).toEqual(['checkout.session.completed', 'checkout.session.async_payment_succeeded']);
      expect(verified(receiver.received[0]).data.object).toMatchObject({ payment_status: 'unpaid' });
      expect(verified(receiver.received[1]).data.object).toMatchObject({ status: 'complete', payment_status: 'paid' });
      const intent = await fast.stripe.paymentIntents.retrieve(
        String((await fast.stripe.checkout.sessions.retrieve(session.id)).payment_intent),
      );
      expect(intent.status).toBe('succeeded');
    } finally {
      await fast.standin.close();
    }
  });

  it('sends async_payment_failed for a failing transfer; the session stays complete and unpaid', async () => {
    const session = await createCartSession(t.stripe);
    await pay(session.id, 'async_fail');
    await control(t.standin, `/sessions/${session.id}/async/fail`, {});
    await waitFor(() => receiver.received.length === 2);
    expect(receivedTypes()).toEqual(['checkout.session.completed', 'checkout.session.async_payment_failed']);

    const failed = await t.stripe.checkout.sessions.retrieve(session.id, { expand: ['payment_intent.latest_charge'] });
    expect(failed).toMatchObject({ status: 'complete', payment_status: 'unpaid' });
    const intent = failed.payment_intent as Stripe.PaymentIntent;
    expect(intent.status).toBe('requires_payment_method');
    expect(intent.last_payment_error?.code).toBe('payment_method_customer_decline');
    expect(intent.latest_charge).toMatchObject({ status: 'failed', paid: false });
  });

  it('lets a test decide the outcome now, and refuses a second outcome', async () => {
    const session = await createCartSession(t.stripe);
    await pay(session.id, 'async_fail');
    expect((await control(t.standin, `/sessions/${session.id}/async/succeed`, {})).status).toBe(200);
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).payment_status).toBe('paid');
    expect((await control(t.standin, `/sessions/${session.id}/async/fail`, {})).status).toBe(409);
  });
});

describe('expiry', () => {
  it('expires a session by itself when expires_at passes and sends checkout.session.expired', async () => {
    const session = await createCartSession(t.stripe);
    await control(t.standin, `/sessions/${session.id}/expires_at`, { expires_at: Math.floor(Date.now() / 1000) - 1 });
    await waitFor(() => receiver.received.length === 1);
    const event = verified(receiver.received[0]);
    expect(event).toMatchObject({ type: 'checkout.session.expired', request: { id: null } });
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).status).toBe('expired');
  });

  it('names the API request that expired a session in its event', async () => {
    const session = await createCartSession(t.stripe);
    const expired = await t.stripe.checkout.sessions.expire(session.id, {}, { idempotencyKey: 'expire-1' });
    await waitFor(() => receiver.received.length === 1);
    expect(verified(receiver.received[0]).request).toEqual({
      id: expired.lastResponse.requestId,
      idempotency_key: 'expire-1',
    });
  });
});

describe('GET /v1/events', () => {
  it('lists events newest first, filters by type, and retrieves one by id', async () => {
    const first = await createCartSession(t.stripe);
    const second = await createCartSession(t.stripe);
    await pay(first.id, 'paid');
    await t.stripe.checkout.sessions.expire(second.id);

    const all = await t.stripe.events.list();
    expect(all.data.map((e) => e.type)).toEqual(['checkout.session.expired', 'checkout.session.completed']);
    const completed = await t.stripe.events.list({ type: 'checkout.session.c*' });
    expect(completed.data.map((e) => e.type)).toEqual(['checkout.session.completed']);
    const page = await t.stripe.events.list({ limit: 1 });
    expect(page.has_more).toBe(true);

    const one = await t.stripe.events.retrieve(all.data[1].id);
    expect(one).toMatchObject({ id: all.data[1].id, type: 'checkout.session.completed' });
    await expect(t.stripe.events.retrieve('evt_unknown')).rejects.toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
    });
  });
});
