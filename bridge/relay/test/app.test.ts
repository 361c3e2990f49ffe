// The relay's behaviour with the notification topic in memory; then, where Google's Pub/Sub
// emulator runs, behind a real push subscription with the notifications pulled back from the topic.

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  batchingPublisher,
  createPubSubPublisher,
  type PubSubMessage,
  PubSubPublishError,
  type PubSubPublisher,
} from '@edge-checkout/pubsub';
import { useSharedEmulator, withoutEmulator } from '@edge-checkout/test-support/shared-emulator';
import { TopicReader } from '@edge-checkout/test-support/topics';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRelayApp, type RelayDeps } from '../src/app.ts';
import type { RelayLog } from '../src/log.ts';
import { acceptEveryPush } from '../src/oidc.ts';
import { type RunningRelay, startRelay } from '../src/server.ts';
import { type FakeGoogleOidc, startFakeGoogleOidc } from './helpers/google-oidc.ts';
import { paymentEvent, pushEnvelope } from './helpers/payment-event.ts';

const PROJECT = 'demo-project';
const NOTIFICATIONS = 'notifications';

type LogEntry = { severity: string; message: string; fields: Record<string, unknown> };

let logs: LogEntry[];
const log: RelayLog = (severity, message, fields = {}) => logs.push({ severity, message, fields });
beforeEach(() => {
  logs = [];
});

async function push(app: ReturnType<typeof createRelayApp>, body: unknown, token?: string) {
  return app.request('/pubsub/push', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

type InMemoryTopic = PubSubPublisher & {
  /** What the relay published, with the ids it got back. */
  readonly published: Array<PubSubMessage & { messageId: string }>;
  /** The next publish throws `error` instead, as the real publisher does when Pub/Sub fails. */
  failNext(error: unknown): void;
};

/** The notification topic in memory: what the relay publishes is there as soon as it answers. */
function inMemoryTopic(): InMemoryTopic {
  const published: InMemoryTopic['published'] = [];
  const failures: unknown[] = [];
  return {
    topicPath: `projects/${PROJECT}/topics/${NOTIFICATIONS}`,
    published,
    failNext: (error) => failures.push(error),
    async publish(messages) {
      if (failures.length > 0) throw failures.shift();
      return messages.map((message) => {
        const messageId = String(1000 + published.length);
        published.push({ ...message, messageId });
        return messageId;
      });
    },
  };
}

describe('notification relay', () => {
  let google: FakeGoogleOidc;
  let topic: InMemoryTopic;

  beforeAll(async () => {
    google = await startFakeGoogleOidc();
  });
  afterAll(() => google?.close());
  beforeEach(() => {
    topic = inMemoryTopic();
  });

  function relay(overrides: Partial<RelayDeps> = {}) {
    return createRelayApp({ publisher: topic, verifier: google.verifier, log, ...overrides });
  }

  /** The notifications published so far, their data parsed. */
  function notifications() {
    return topic.published.map((message) => ({ ...message, json: JSON.parse(String(message.data)) }));
  }

  it('answers /healthz', async () => {
    const response = await relay().request('/healthz');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('publishes one email notification for a paid cart pushed with a valid Google OIDC token', async () => {
    const response = await push(relay(), pushEnvelope(paymentEvent()), await google.idToken());
    expect(response.status).toBe(200);
    const { messageId } = (await response.json()) as { messageId: string };

    const [notification, ...rest] = notifications();
    expect(rest).toEqual([]);
    expect(notification!.messageId).toBe(messageId);
    expect(notification!.json).toEqual({
      id: 'evt_cart_0001_paid',
      type: 'cart.paid',
      userId: 'user_42',
      email: 'ada@example.com',
      cartId: 'cart_0001',
      totalAmount: 4500,
      currency: 'usd',
      items: paymentEvent().cart.items,
      amounts: paymentEvent().amounts,
      refundedAmount: 0,
      shipping: paymentEvent().shipping,
    });
    expect(notification!.attributes).toEqual({ channel: 'email', eventId: 'evt_cart_0001_paid' });
    expect(notification!.orderingKey).toBe('cart_0001');
  });

  it('notifies failed payments and refunds too, with a null email when Stripe had no customer', async () => {
    const app = relay();
    const token = await google.idToken();
    const failed = paymentEvent({ id: 'evt_failed', type: 'cart.payment_failed', customer: null });
    const refunded = paymentEvent({ id: 'evt_refunded', type: 'cart.refunded' });
    expect((await push(app, pushEnvelope(failed), token)).status).toBe(200);
    expect((await push(app, pushEnvelope(refunded), token)).status).toBe(200);

    expect(
      notifications().map((message) => [message.json.type, message.json.email, message.attributes?.eventId]),
    ).toEqual([
      ['cart.payment_failed', null, 'evt_failed'],
      ['cart.refunded', 'ada@example.com', 'evt_refunded'],
    ]);
  });

  it('notifies a partial refund with the amount refunded, and leaves disputes to the shop', async () => {
    const app = relay({ verifier: acceptEveryPush });
    const partial = paymentEvent({ id: 'evt_partial', type: 'cart.partially_refunded', refundedAmount: 1200 });
    const disputed = paymentEvent({ id: 'evt_disputed', type: 'cart.disputed' });
    expect((await push(app, pushEnvelope(partial))).status).toBe(200);
    const ignored = await push(app, pushEnvelope(disputed));
    expect(await ignored.json()).toEqual({ status: 'ignored' });
    expect(notifications().map((message) => [message.json.type, message.json.refundedAmount])).toEqual([
      ['cart.partially_refunded', 1200],
    ]);
  });

  it('notifies an event an older Worker published, without amounts or shipping', async () => {
    const {
      amounts: _a,
      shipping: _s,
      refundedAmount: _r,
      oversold: _o,
      dispute: _d,
      ...older
    } = paymentEvent({
      id: 'evt_older',
    });
    expect((await push(relay({ verifier: acceptEveryPush }), pushEnvelope(older))).status).toBe(200);
    const [notification] = notifications();
    expect(notification!.json).toMatchObject({ id: 'evt_older', amounts: null, shipping: null, refundedAmount: 0 });
  });

  it('rejects pushes without a valid token and publishes nothing', async () => {
    const app = relay();
    const cases: Array<[string, string | undefined, number]> = [
      ['no token', undefined, 401],
      ['wrong audience', await google.idToken({ aud: 'https://someone-else.example.com' }), 401],
      ['expired', await google.idToken({}, { issuedAt: Math.floor(Date.now() / 1000) - 7200 }), 401],
      ['forged signature', await google.idToken({}, { signWith: google.forgeryKey }), 401],
      ['other service account', await google.idToken({ email: 'intruder@demo-project.iam.gserviceaccount.com' }), 403],
    ];
    for (const [name, token, status] of cases) {
      const response = await push(app, pushEnvelope(paymentEvent()), token);
      expect({ name, status: response.status }).toEqual({ name, status });
      if (status === 401) expect(response.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    }
    expect(notifications()).toEqual([]);
    // The logs explain each rejection but never carry the token.
    expect(logs.filter((entry) => entry.message === 'push rejected')).toHaveLength(cases.length);
    const logged = JSON.stringify(logs);
    for (const [, token] of cases) if (token) expect(logged).not.toContain(token.split('.')[2]);
  });

  it('accepts pushes without a token when verification is off (PUSH_AUTH=none, emulator only)', async () => {
    const response = await push(relay({ verifier: acceptEveryPush }), pushEnvelope(paymentEvent({ id: 'evt_local' })));
    expect(response.status).toBe(200);
    expect(notifications().map((message) => message.json.id)).toEqual(['evt_local']);
  });

  it("takes the push envelope as Google's push guide shows it, with message_id and publish_time only", async () => {
    const { message, subscription } = pushEnvelope(paymentEvent({ id: 'evt_snake' }));
    const { messageId, publishTime, ...rest } = message;
    const body = { message: { ...rest, message_id: messageId, publish_time: publishTime }, subscription };
    expect((await push(relay({ verifier: acceptEveryPush }), body)).status).toBe(200);
    expect(notifications().map((n) => n.json.id)).toEqual(['evt_snake']);
  });

  it('answers 400 to malformed messages, so the dead-letter policy takes them, and publishes nothing', async () => {
    const app = relay({ verifier: acceptEveryPush });
    const { cart } = paymentEvent();
    const malformed: Array<[string, unknown]> = [
      ['body not JSON', '{"message":'],
      ['no message', { subscription: 'projects/demo-project/subscriptions/s' }],
      ['data not base64', pushEnvelope(null, { base64Data: 'this is not base64!' })],
      ['data not JSON', pushEnvelope(null, { base64Data: Buffer.from('hello').toString('base64') })],
      ['data not UTF-8', pushEnvelope(null, { base64Data: Buffer.from([0xff, 0xfe, 0x7b]).toString('base64') })],
      ['no cart.userId', pushEnvelope(paymentEvent({ cart: { ...cart, userId: undefined } }))],
      ['totalAmount not an integer', pushEnvelope(paymentEvent({ cart: { ...cart, totalAmount: '45.00' } }))],
      ['occurredAt not a date', pushEnvelope(paymentEvent({ occurredAt: 'yesterday' }))],
      ['paid cart without currency', pushEnvelope(paymentEvent({ cart: { ...cart, currency: null } }))],
      // Pub/Sub would refuse the notification: its eventId attribute or ordering key over 1,024 bytes.
      ['id over 1024 bytes', pushEnvelope(paymentEvent({ id: `evt_${'é'.repeat(511)}` }))],
      ['cart id over 1024 bytes', pushEnvelope(paymentEvent({ cart: { ...cart, id: 'c'.repeat(1025) } }))],
    ];
    for (const [name, body] of malformed) {
      const response = await push(app, body);
      expect({ name, status: response.status }).toEqual({ name, status: 400 });
    }
    expect(notifications()).toEqual([]);
    // The dead-letter copy has another message id: the log names the event and cart, as the
    // copy's attributes do and `npm run redrive -- --dry-run` lists them (docs/operations.md §5).
    const refused = logs.find((entry) => entry.fields.reason === 'message.data is not JSON');
    expect(refused?.fields).toMatchObject({
      eventId: 'evt_cart_0001_paid',
      eventType: 'cart.paid',
      cartId: 'cart_0001',
    });
  });

  it('acknowledges event types that need no notification without publishing', async () => {
    const app = relay({ verifier: acceptEveryPush });
    for (const type of ['cart.awaiting_payment', 'cart.some_future_type']) {
      const response = await push(app, pushEnvelope(paymentEvent({ type })));
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status: 'ignored' });
    }
    expect(notifications()).toEqual([]);
  });

  it('answers 503 when the notification cannot be published, so Pub/Sub redelivers, and says whether a retry can help', async () => {
    const app = relay({ verifier: acceptEveryPush });
    topic.failNext(new PubSubPublishError('Pub/Sub publish failed: 404 NOT_FOUND', { retryable: false, status: 404 }));
    topic.failNext(new PubSubPublishError('Pub/Sub publish failed: network error', { retryable: true }));
    topic.failNext(new Error('something unexpected'));
    for (let attempt = 1; attempt <= 3; attempt++) {
      const response = await push(app, pushEnvelope(paymentEvent()));
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ error: 'could not publish the notification' });
    }
    expect(
      logs
        .filter((entry) => entry.message === 'could not publish notification')
        .map(({ severity, fields }) => [severity, fields.eventId, fields.retryable, fields.status, fields.error]),
    ).toEqual([
      ['ERROR', 'evt_cart_0001_paid', false, 404, 'Pub/Sub publish failed: 404 NOT_FOUND'],
      ['ERROR', 'evt_cart_0001_paid', true, undefined, 'Pub/Sub publish failed: network error'],
      ['ERROR', 'evt_cart_0001_paid', undefined, undefined, 'something unexpected'],
    ]);
    expect(notifications()).toEqual([]);

    // Pub/Sub's redelivery, once publishing works again, is notified.
    expect((await push(app, pushEnvelope(paymentEvent()))).status).toBe(200);
    expect(notifications().map((message) => message.json.id)).toEqual(['evt_cart_0001_paid']);
  });

  it('answers 400 when Pub/Sub refuses the notification itself, which no redelivery can publish', async () => {
    const app = relay({ verifier: acceptEveryPush });
    topic.failNext(
      new PubSubPublishError('Pub/Sub publish failed: 400 INVALID_ARGUMENT', {
        retryable: false,
        messageRejected: true,
      }),
    );
    const response = await push(app, pushEnvelope(paymentEvent()));
    expect(response.status).toBe(400);
    expect(notifications()).toEqual([]);
  });

  it('takes a payment event of several MB, as Pub/Sub carries up to 10 MB', async () => {
    const { cart } = paymentEvent();
    const item = cart.items[0]!;
    const big = paymentEvent({ cart: { ...cart, items: [{ ...item, name: 'x'.repeat(4_000_000) }] } });
    const response = await push(relay({ verifier: acceptEveryPush }), pushEnvelope(big));
    expect(response.status).toBe(200);
    expect(notifications().map((n) => n.json.items[0].name.length)).toEqual([4_000_000]);
  });

  it.each([
    ['with its metadata in x-goog-pubsub-* headers', { 'x-goog-pubsub-message-id': '42' }],
    ['without metadata', {}],
  ])(
    'says when the subscription unwraps payloads (the event as the body, %s): a configuration error',
    async (_, headers) => {
      const response = await relay({ verifier: acceptEveryPush }).request('/pubsub/push', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(paymentEvent()),
      });
      expect(response.status).toBe(400);
      expect(logs.map((entry) => [entry.severity, entry.message.split(':')[0]])).toEqual([
        ['ERROR', 'push without an envelope'],
      ]);
    },
  );

  it('lets concurrent pushes share a publish call per cart, each answered 200 with its own notification id', async () => {
    const callSizes: number[] = [];
    const counted: RelayDeps['publisher'] = {
      publish(messages) {
        callSizes.push(messages.length);
        return topic.publish(messages);
      },
    };
    // A cart's call goes when its fourth notification is queued, however long the pushes take to get there.
    const app = relay({
      verifier: acceptEveryPush,
      publisher: batchingPublisher(counted, { maxMessages: 4, maxDelayMs: 60_000 }),
    });
    // Two carts, four notifications each: a publish request holds one ordering key (the cart).
    const events = Array.from({ length: 8 }, (_, i) =>
      paymentEvent({ id: `evt_concurrent_${i}`, cart: { ...paymentEvent().cart, id: `cart_concurrent_${i % 2}` } }),
    );
    const responses = await Promise.all(events.map((event) => push(app, pushEnvelope(event))));

    expect(callSizes).toEqual([4, 4]);
    const answers = await Promise.all(
      responses.map(async (response) => [response.status, await response.json()] as const),
    );
    // Each push is answered with the id of its own event's notification.
    const notificationIdOf = new Map(notifications().map((message) => [message.json.id, message.messageId]));
    expect(new Set(notificationIdOf.values()).size).toBe(8);
    expect(answers).toEqual(
      events.map((event) => [200, { status: 'published', messageId: notificationIdOf.get(event.id) }]),
    );
  });
});

describe.skipIf(withoutEmulator)('notification relay behind a real push subscription (Pub/Sub emulator)', () => {
  const emulator = useSharedEmulator(PROJECT);
  let notificationPublisher: PubSubPublisher;
  let paymentEvents: PubSubPublisher;
  let relayServer: RunningRelay;

  beforeAll(async () => {
    for (const name of [NOTIFICATIONS, 'payment-events']) await emulator.admin.createTopic(name);
    await emulator.admin.createSubscription('notifications-pull', {
      topic: NOTIFICATIONS,
      enableMessageOrdering: true,
    });
    notificationPublisher = createPubSubPublisher({
      projectId: PROJECT,
      topic: NOTIFICATIONS,
      emulatorHost: emulator.host,
    });
    paymentEvents = createPubSubPublisher({ projectId: PROJECT, topic: 'payment-events', emulatorHost: emulator.host });
    relayServer = await startRelay(
      {
        port: 0,
        projectId: PROJECT,
        notificationTopic: NOTIFICATIONS,
        pushAuth: 'none',
        pushAudience: undefined,
        pushServiceAccount: undefined,
        emulatorHost: emulator.host,
      },
      { hostname: '127.0.0.1', log },
    );
  });
  afterAll(async () => {
    await relayServer?.close();
  });

  /** The notifications on the topic, `expected` and anything more; acknowledged, so the next call starts empty. */
  async function notifications(expected: number) {
    const received = await new TopicReader(emulator.admin, 'notifications-pull').exactly(expected);
    return received.map((message) => ({ ...message, json: JSON.parse(message.data) as Record<string, unknown> }));
  }

  /** Publishes payment events the way the Worker does (docs/contract.md §5). */
  function publishPaymentEvents(events: ReturnType<typeof paymentEvent>[]) {
    return paymentEvents.publish(
      events.map((event) => ({
        data: JSON.stringify(event),
        attributes: {
          eventType: event.type,
          eventId: event.id,
          cartId: event.cart.id,
          stripeEventId: event.stripe.eventId,
        },
        orderingKey: event.cart.id,
      })),
    );
  }

  it('turns a published payment event into a notification end to end', async () => {
    await emulator.admin.createSubscription('payment-events-relay', {
      topic: 'payment-events',
      pushEndpoint: `${relayServer.url}/pubsub/push`,
      enableMessageOrdering: true,
    });
    const awaiting = paymentEvent({
      id: 'evt_e2e_awaiting',
      type: 'cart.awaiting_payment',
      cart: { ...paymentEvent().cart, id: 'cart_e2e' },
    });
    const paid = paymentEvent({ id: 'evt_e2e_paid', cart: { ...paymentEvent().cart, id: 'cart_e2e' } });
    try {
      await publishPaymentEvents([awaiting, paid]);

      // The awaiting_payment event, delivered first, is acknowledged without a notification.
      const [notification, ...rest] = await notifications(1);
      expect(rest).toEqual([]);
      expect(notification!.json).toMatchObject({ id: 'evt_e2e_paid', type: 'cart.paid', cartId: 'cart_e2e' });
      expect(notification!.orderingKey).toBe('cart_e2e');
    } finally {
      await emulator.admin.deleteSubscription('payment-events-relay');
    }
  });

  it('leaves a message unacknowledged when publishing fails, and notifies once on redelivery', async () => {
    let calls = 0;
    const flakyPublisher: RelayDeps['publisher'] = {
      async publish(messages) {
        calls++;
        if (calls === 1)
          throw new PubSubPublishError('Pub/Sub publish failed: 503 UNAVAILABLE', { retryable: true, status: 503 });
        return notificationPublisher.publish(messages);
      },
    };
    const app = createRelayApp({ verifier: acceptEveryPush, publisher: flakyPublisher, log });
    const server = await new Promise<Server>((resolve) => {
      const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started as Server));
    });
    try {
      const { port } = server.address() as AddressInfo;
      await emulator.admin.createSubscription('payment-events-flaky', {
        topic: 'payment-events',
        pushEndpoint: `http://127.0.0.1:${port}/pubsub/push`,
      });
      await publishPaymentEvents([
        paymentEvent({ id: 'evt_flaky', cart: { ...paymentEvent().cart, id: 'cart_flaky' } }),
      ]);

      const received = await notifications(1);
      const failures = logs.filter((entry) => entry.message === 'could not publish notification');
      const successes = logs.filter(
        (entry) => entry.message === 'notification published' && entry.fields.eventId === 'evt_flaky',
      );
      expect(calls).toBe(2);
      expect(failures).toHaveLength(1);
      // Pub/Sub delivered the same message again after the 503.
      expect(successes.map((entry) => entry.fields.messageId)).toContain(failures[0]!.fields.messageId);
      expect(received.map((message) => message.json.id)).toEqual(['evt_flaky']);
    } finally {
      await emulator.admin.deleteSubscription('payment-events-flaky');
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
