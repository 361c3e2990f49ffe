import { describe, expect, it } from 'vitest';
import { createPubSubAdmin, type ReceivedMessage } from '../../tools/pubsub-admin.ts';
import { relayOutbox } from '../src/outbox.ts';
import { runScheduled } from '../src/scheduled.ts';
import { database } from '../src/db.ts';
import { call, db } from './helpers.ts';
import type Stripe from 'stripe';
import { cartStatus, checkedOutCart, deliver, eventsFor, outboxOf, stripeEnv } from './stripe-helpers.ts';

const emulatorHost = stripeEnv.PUBSUB_EMULATOR_HOST;
const admin = createPubSubAdmin({ host: emulatorHost || '127.0.0.1:9', projectId: 'edge-checkout-test' });
const pubsubDown = { ...stripeEnv, PUBSUB_EMULATOR_HOST: '127.0.0.1:9' };

/** A subscription of our own: it sees only what is published after it exists. */
async function subscribe(): Promise<string> {
  const name = `test-${crypto.randomUUID().slice(0, 8)}`;
  await admin.createSubscription(name, { topic: 'payment-events', enableMessageOrdering: true });
  return name;
}

const deliverWith = (env: typeof stripeEnv, event: Stripe.Event) => deliver(event, { env });

/**
 * Pulls until `expected` messages about these carts arrived (other tests publish to the same
 * topic), then a little longer, so a duplicate would be seen too.
 */
async function collect(subscription: string, cartIds: string[], expected: number): Promise<ReceivedMessage[]> {
  const ours: ReceivedMessage[] = [];
  const deadline = Date.now() + 15_000;
  let settleUntil = Infinity;
  while (Date.now() < Math.min(deadline, settleUntil)) {
    const batch = await admin.pull(subscription, 100);
    if (batch.length) await admin.ack(subscription, batch.map((m) => m.ackId));
    ours.push(...batch.filter((m) => cartIds.includes(m.attributes.cartId ?? '')));
    if (ours.length >= expected && settleUntil === Infinity) settleUntil = Date.now() + 500;
    if (!batch.length) await scheduler.wait(50);
  }
  return ours;
}

describe.skipIf(!emulatorHost)('payment events on Pub/Sub (Google emulator)', () => {
  it('publishes cart.paid right after the webhook, with attributes and the cart as ordering key', async () => {
    const subscription = await subscribe();
    const state = await checkedOutCart();
    const event = eventsFor(state).completedPaid();
    expect((await deliverWith(stripeEnv, event)).status).toBe(200);

    const [message, ...more] = await collect(subscription, [state.cartId], 1);
    expect(more).toEqual([]);
    const [row] = await outboxOf(state.cartId);
    expect(message).toBeDefined();
    expect(message!.orderingKey).toBe(state.cartId);
    expect(message!.attributes).toEqual({ eventType: 'cart.paid', eventId: row!.id, cartId: state.cartId, stripeEventId: event.id });
    expect(JSON.parse(message!.data)).toEqual(row!.payload);
    const [published] = await db().query('SELECT published_at IS NOT NULL AS done, message_id FROM outbox WHERE id = $1', [row!.id]);
    expect(published).toEqual({ done: true, message_id: message!.messageId });
  });

  it('answers Stripe 200 while Pub/Sub is down and delivers every transition once when it is back', async () => {
    const subscription = await subscribe();
    const carts = await Promise.all([checkedOutCart(), checkedOutCart(), checkedOutCart()]);
    for (const state of carts) {
      const events = eventsFor(state);
      for (const event of [events.completedUnpaid(), events.asyncSucceeded(), events.fullRefund()]) {
        expect((await deliverWith(pubsubDown, event)).status).toBe(200);
      }
      expect(await cartStatus(state.cartId)).toBe('refunded');
    }
    const cartIds = carts.map((c) => c.cartId);
    const pending = await db().query(
      'SELECT cart_id, attempts, last_error FROM outbox WHERE cart_id = ANY($1) AND published_at IS NULL ORDER BY seq', [cartIds]);
    expect(pending).toHaveLength(9);
    for (const cartId of cartIds) {
      // The first event failed and waits for its backoff; the later ones are held behind it so
      // the cart's events cannot overtake each other.
      const rows = pending.filter((r) => r.cart_id === cartId);
      expect(rows.map((r) => r.attempts)).toEqual([1, 0, 0]);
      expect(String(rows[0]!.last_error)).toMatch(/network error/);
    }

    // Later: the backoff has passed and the emulator is reachable again.
    await db().query('UPDATE outbox SET next_attempt_at = now() WHERE cart_id = ANY($1)', [cartIds]);
    await runScheduled(stripeEnv);

    const messages = await collect(subscription, cartIds, 9);
    const rows = await db().query('SELECT id, cart_id, event_type FROM outbox WHERE cart_id = ANY($1) ORDER BY seq', [cartIds]);
    expect(messages.map((m) => m.attributes.eventId).sort()).toEqual(rows.map((r) => r.id).sort());
    for (const cartId of cartIds) {
      // In each cart's order, which is what its ordering key promises consumers.
      expect(messages.filter((m) => m.orderingKey === cartId).map((m) => m.attributes.eventType)).toEqual([
        'cart.awaiting_payment', 'cart.paid', 'cart.refunded',
      ]);
    }
  });

  it('does not let a later event of a cart overtake an earlier one that is still waiting', async () => {
    const subscription = await subscribe();
    const state = await checkedOutCart();
    const events = eventsFor(state);
    await deliverWith(pubsubDown, events.completedUnpaid());
    // Its backoff is over, but no relay has run yet when the next event arrives.
    await db().query('UPDATE outbox SET next_attempt_at = now() WHERE cart_id = $1', [state.cartId]);
    await deliverWith(stripeEnv, events.asyncSucceeded());
    const messages = await collect(subscription, [state.cartId], 2);
    expect(messages.map((m) => m.attributes.eventType)).toEqual(['cart.awaiting_payment', 'cart.paid']);
  });

  it('never publishes a row twice when two relays race', async () => {
    const subscription = await subscribe();
    const carts = await Promise.all(Array.from({ length: 4 }, () => checkedOutCart()));
    for (const state of carts) await deliverWith(pubsubDown, eventsFor(state).completedPaid());
    const cartIds = carts.map((c) => c.cartId);
    const ids = (await db().query('SELECT id FROM outbox WHERE cart_id = ANY($1)', [cartIds])).map((r) => r.id as string);
    await db().query('UPDATE outbox SET next_attempt_at = now() WHERE id = ANY($1)', [ids]);

    const reports = await Promise.all([
      relayOutbox(stripeEnv, database(stripeEnv), { ids }),
      relayOutbox(stripeEnv, database(stripeEnv), { ids }),
    ]);
    expect(reports.reduce((n, r) => n + r.published, 0)).toBeLessThanOrEqual(ids.length);
    const messages = await collect(subscription, cartIds, ids.length);
    expect(messages.map((m) => m.attributes.eventId).sort()).toEqual([...ids].sort());
    const [row] = await db().query('SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1) AND published_at IS NOT NULL', [ids]);
    expect(row).toEqual({ n: ids.length });
  });

  it('keeps a row that Pub/Sub refuses for good, with its error, for operators', async () => {
    const state = await checkedOutCart();
    const noTopic = { ...stripeEnv, PUBSUB_TOPIC: 'no-such-topic' };
    expect((await deliverWith(noTopic, eventsFor(state).completedPaid())).status).toBe(200);
    const [row] = await db().query('SELECT failed_at IS NOT NULL AS failed, published_at, last_error FROM outbox WHERE cart_id = $1', [state.cartId]);
    expect(row).toMatchObject({ failed: true, published_at: null });
    expect(String(row!.last_error)).toMatch(/404/);

    // Operators see it, fix the cause (here: the topic name) and queue it again.
    const admin = { Authorization: `Bearer ${stripeEnv.ADMIN_API_KEY}` };
    const listed = await call('/v1/admin/outbox?state=failed&limit=500', { headers: admin });
    const { entries } = (await listed.json()) as { entries: { id: string; cartId: string; lastError: string }[] };
    const entry = entries.find((e) => e.cartId === state.cartId);
    expect(entry?.lastError).toMatch(/404/);
    expect((await call(`/v1/admin/outbox/${entry!.id}/retry`, { method: 'POST', headers: admin })).status).toBe(200);
    const subscription = await subscribe();
    expect((await relayOutbox(stripeEnv, database(stripeEnv), { ids: [entry!.id] })).published).toBe(1);
    expect((await collect(subscription, [state.cartId], 1)).map((m) => m.attributes.eventId)).toEqual([entry!.id]);
  });

  it('keeps the outbox for operators only', async () => {
    expect((await call('/v1/admin/outbox')).status).toBe(401);
    expect((await call(`/v1/admin/outbox/${crypto.randomUUID()}/retry`, { method: 'POST', headers: { Authorization: `Bearer ${stripeEnv.ADMIN_API_KEY}` } })).status).toBe(404);
  });
});
