import { createPubSubAdmin } from '@edge-checkout/dev-stack/pubsub-admin';
import { aboutCarts, TopicReader } from '@edge-checkout/test-support/topics';
import { exportPKCS8, generateKeyPair } from 'jose';
import type Stripe from 'stripe';
import { afterEach, beforeAll, describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import type { Sql, Statement } from '../src/db.ts';
import { database } from '../src/db.ts';
import { applyEffect } from '../src/fulfilment.ts';
import { type EventFacts, publishSoon, relayOutbox } from '../src/outbox.ts';
import { runScheduled } from '../src/scheduled.ts';
import { effectOfEvent } from '../src/stripe-events.ts';
import {
  call,
  createProduct,
  db,
  dispatch,
  holdLocks,
  linesOf,
  newUser,
  openCart,
  problem,
  publishOutboxBacklog,
  tokenFor,
} from './helpers.ts';
import {
  cartStatus,
  checkedOutCart,
  deliver,
  deliveryRequest,
  eventsFor,
  outboxOf,
  stripeEnv,
} from './stripe-helpers.ts';
import { TEST_BINDINGS } from './test-bindings.ts';

const emulatorHost = stripeEnv.PUBSUB_EMULATOR_HOST;
const admin = createPubSubAdmin({ host: emulatorHost || '127.0.0.1:9', projectId: TEST_BINDINGS.GCP_PROJECT_ID });
const pubsubDown = { ...stripeEnv, PUBSUB_EMULATOR_HOST: '127.0.0.1:9' };

const deliverWith = (env: typeof stripeEnv, event: Stripe.Event) => deliver(event, { env });

/**
 * What reaches the topic from now on (other tests publish to it too: pick by cart), until the test
 * ends: a subscription left behind would receive, and keep, every message the later tests and
 * files publish to the shared emulator's topic.
 */
async function subscribe(): Promise<TopicReader> {
  const reader = await TopicReader.subscribe(admin, TEST_BINDINGS.PUBSUB_TOPIC);
  onTestFinished(() => reader.close());
  return reader;
}

// The whole outbox's relay runs here: not behind what earlier files left.
beforeAll(publishOutboxBacklog);

describe.skipIf(!emulatorHost)('payment events on Pub/Sub (Google emulator)', () => {
  it('publishes cart.paid right after the webhook, with attributes and the cart as ordering key', async () => {
    const payments = await subscribe();
    const state = await checkedOutCart();
    const event = eventsFor(state).completedPaid();
    expect((await deliverWith(stripeEnv, event)).status).toBe(200);

    const [message, ...more] = await payments.exactly(1, aboutCarts(state.cartId));
    expect(more).toEqual([]);
    const [row] = await outboxOf(state.cartId);
    expect(message).toBeDefined();
    expect(message!.orderingKey).toBe(state.cartId);
    expect(message!.attributes).toEqual({
      eventType: 'cart.paid',
      eventId: row!.id,
      cartId: state.cartId,
      stripeEventId: event.id,
    });
    expect(JSON.parse(message!.data)).toEqual(row!.event);
    const [published] = await db().query(
      'SELECT published_at IS NOT NULL AS done, message_id FROM outbox WHERE id = $1',
      [row!.id],
    );
    expect(published).toEqual({ done: true, message_id: message!.messageId });
  });

  it('publishes again, with their eventIds and in order, the events Pub/Sub took in the range an operator names', async () => {
    // A topic deleted and made again drops what it took before its new subscriptions existed.
    const payments = await subscribe();
    const [lost, kept] = await Promise.all([checkedOutCart(), checkedOutCart()]);
    for (const state of [lost, kept]) {
      for (const event of [eventsFor(state).completedUnpaid(), eventsFor(state).asyncSucceeded()]) {
        expect((await deliverWith(stripeEnv, event)).status).toBe(200);
      }
    }
    await payments.exactly(4, aboutCarts(lost.cartId, kept.cartId));
    // Published in a range no other test's rows share, `lost`'s later row after it, `kept`'s just before it.
    await db().query(`UPDATE outbox SET published_at = '2001-01-01T13:00:00Z' WHERE cart_id = $1`, [lost.cartId]);
    await db().query(
      `UPDATE outbox SET published_at = '2001-01-01T12:00:00Z'
       WHERE seq = (SELECT min(seq) FROM outbox WHERE cart_id = $1)`,
      [lost.cartId],
    );
    await db().query(`UPDATE outbox SET published_at = '2001-01-01T11:59:59Z' WHERE cart_id = $1`, [kept.cartId]);
    const adminKey = { Authorization: `Bearer ${stripeEnv.ADMIN_API_KEY}` };
    const republish = (body: unknown) =>
      call('/v1/admin/outbox/republish', { method: 'POST', headers: adminKey, json: body });

    for (const bad of [
      {},
      { publishedSince: 'yesterday' },
      { publishedSince: '2001-01-01T12:00:00Z', publishedBefore: '2001-01-01T12:00:00Z' },
      { publishedSince: '2001-01-01T12:00:00Z', cartId: 'not-a-cart' },
      { publishedSince: '2001-01-01T12:00:00Z', state: 'failed' },
      // Years Postgres does not have, in UTC (found by the guide audit: 500 on every retry).
      { publishedSince: '0000-01-01T00:00:00Z' },
      { publishedSince: '0001-01-01T00:30:00+01:00' },
    ]) {
      const res = await republish(bad);
      expect(res.status).toBe(400);
      expect((await problem(res)).code).toBe('validation_failed');
    }
    const [untouched] = await db().query(
      'SELECT count(*)::int AS n FROM outbox WHERE cart_id = $1 AND published_at IS NULL',
      [lost.cartId],
    );
    expect(untouched).toEqual({ n: 0 });

    // The cart's later row goes again too, after the one in the range, as its ordering key promises.
    // An offset RFC 3339 allows and Postgres does not (beyond ±15:59): 2001-01-01T12:00:01Z.
    const res = await republish({
      publishedSince: '2001-01-01T12:00:00Z',
      publishedBefore: '2001-01-02T11:00:01+23:00',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ requeued: 2 });
    await runScheduled(stripeEnv);
    // Received since the subscription: the 4 first publishes, then only `lost`'s again.
    const again = (await payments.exactly(6, aboutCarts(lost.cartId, kept.cartId))).slice(4);
    const rows = await outboxOf(lost.cartId);
    expect(again.map((m) => [m.attributes.eventId, m.attributes.eventType])).toEqual(
      rows.map((r) => [r.id, r.event_type]),
    );
    const [republished] = await db().query(
      "SELECT count(*)::int AS n FROM outbox WHERE cart_id = $1 AND published_at > now() - interval '1 hour'",
      [lost.cartId],
    );
    expect(republished).toEqual({ n: 2 });
  });

  it('answers Stripe 200 while Pub/Sub is down and delivers every transition once when it is back', async () => {
    const payments = await subscribe();
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
      'SELECT cart_id, attempts, last_error FROM outbox WHERE cart_id = ANY($1) AND published_at IS NULL ORDER BY seq',
      [cartIds],
    );
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

    const messages = await payments.exactly(9, aboutCarts(...cartIds));
    const rows = await db().query('SELECT id, cart_id, event_type FROM outbox WHERE cart_id = ANY($1) ORDER BY seq', [
      cartIds,
    ]);
    expect(messages.map((m) => m.attributes.eventId).sort()).toEqual(rows.map((r) => r.id).sort());
    for (const cartId of cartIds) {
      // In each cart's order, which is what its ordering key promises consumers.
      expect(messages.filter((m) => m.orderingKey === cartId).map((m) => m.attributes.eventType)).toEqual([
        'cart.awaiting_payment',
        'cart.paid',
        'cart.refunded',
      ]);
    }
  });

  it('answers Stripe 200 with Pub/Sub settings that are wrong, and publishes once they are mended', async () => {
    const payments = await subscribe();
    const state = await checkedOutCart();
    const wrong = { ...stripeEnv, GCP_PROJECT_ID: 'Not_A_Project', PUBSUB_EMULATOR_HOST: 'pubsub.example.com:8085' };
    expect((await deliverWith(wrong, eventsFor(state).completedPaid())).status).toBe(200);
    expect(await cartStatus(state.cartId)).toBe('paid');
    const [waiting] = await db().query('SELECT published_at FROM outbox WHERE cart_id = $1', [state.cartId]);
    expect(waiting).toEqual({ published_at: null });

    await runScheduled(stripeEnv);
    const [message] = await payments.exactly(1, aboutCarts(state.cartId));
    expect(message!.attributes.eventType).toBe('cart.paid');
  });

  it.each([
    ['only an emulator host', { GCP_PROJECT_ID: undefined, PUBSUB_TOPIC: undefined }, 'GCP_PROJECT_ID, PUBSUB_TOPIC'],
    ['no topic', { PUBSUB_TOPIC: undefined }, 'PUBSUB_TOPIC'],
    [
      'a project and topic without an emulator or a key',
      { PUBSUB_EMULATOR_HOST: undefined },
      'PUBSUB_EMULATOR_HOST or GCP_SERVICE_ACCOUNT_KEY',
    ],
  ])('says which setting is missing when Pub/Sub is configured in part (%s); events wait', async (_, over, unset) => {
    const state = await checkedOutCart();
    const lines = await linesOf(async () => {
      expect((await deliverWith({ ...stripeEnv, ...over }, eventsFor(state).completedPaid())).status).toBe(200);
    });
    const [waiting] = await db().query('SELECT published_at FROM outbox WHERE cart_id = $1', [state.cartId]);
    expect(waiting).toEqual({ published_at: null });
    expect(lines).toContainEqual(
      expect.objectContaining({
        msg: 'pubsub_misconfigured',
        error: `Pub/Sub is configured in part: ${unset} not set`,
      }),
    );
  });

  it('publishes late an event that says what was true when it happened, not what came after it', async () => {
    const payments = await subscribe();
    const user = await newUser();
    const product = await createProduct({ unitAmount: 1000 });
    await db().query('UPDATE products SET stock = 5 WHERE id = $1', [product.id]);
    const cartId = await openCart(user.token, [{ id: product.id, quantity: 2 }]);
    const res = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token });
    expect(res.status).toBe(201);
    const { sessionId } = (await res.json()) as { sessionId: string };
    const events = eventsFor({ sessionId, cartId, total: 2000 });
    // Pub/Sub is unreachable: cart.awaiting_payment waits. Then the stock is recounted to none,
    // and the bank transfer lands: paid, oversold.
    expect((await deliverWith(pubsubDown, events.completedUnpaid())).status).toBe(200);
    await db().query('UPDATE products SET stock = 0 WHERE id = $1', [product.id]);
    expect((await deliverWith(pubsubDown, events.asyncSucceeded())).status).toBe(200);
    await db().query('UPDATE outbox SET next_attempt_at = now(), claimed_until = NULL WHERE cart_id = $1', [cartId]);
    await runScheduledRelay(stripeEnv, cartId);
    const published = (await payments.exactly(2, aboutCarts(cartId))).map((m) => JSON.parse(m.data));
    expect(published.map((e) => [e.type, e.oversold])).toEqual([
      ['cart.awaiting_payment', false],
      ['cart.paid', true],
    ]);
  });

  it('does not let a later event of a cart overtake an earlier one that is still waiting', async () => {
    const payments = await subscribe();
    const state = await checkedOutCart();
    const events = eventsFor(state);
    await deliverWith(pubsubDown, events.completedUnpaid());
    // Its backoff is over, but no relay has run yet when the next event arrives.
    await db().query('UPDATE outbox SET next_attempt_at = now() WHERE cart_id = $1', [state.cartId]);
    await deliverWith(stripeEnv, events.asyncSucceeded());
    const messages = await payments.exactly(2, aboutCarts(state.cartId));
    expect(messages.map((m) => m.attributes.eventType)).toEqual(['cart.awaiting_payment', 'cart.paid']);
  });

  it('never publishes a row twice when two relays race', async () => {
    const payments = await subscribe();
    const carts = await Promise.all(Array.from({ length: 4 }, () => checkedOutCart()));
    for (const state of carts) await deliverWith(pubsubDown, eventsFor(state).completedPaid());
    const cartIds = carts.map((c) => c.cartId);
    const ids = (await db().query('SELECT id FROM outbox WHERE cart_id = ANY($1)', [cartIds])).map(
      (r) => r.id as string,
    );
    await db().query('UPDATE outbox SET next_attempt_at = now() WHERE id = ANY($1)', [ids]);

    // Both relays wait behind a lock on the table, then claim at the same moment.
    const lock = await holdLocks(['LOCK TABLE outbox IN SHARE MODE']);
    const racing = Promise.all([
      relayOutbox(stripeEnv, database(stripeEnv), { ids }),
      relayOutbox(stripeEnv, database(stripeEnv), { ids }),
    ]);
    // Matched by its start: pg_stat_activity keeps only a statement's first 1 KB
    // (track_activity_query_size), and the claim's FOR UPDATE SKIP LOCKED comes near the end.
    await lock.waitForWaiters(2, '%WITH candidates AS%');
    await lock.release();
    const reports = await racing;
    expect(reports.reduce((n, r) => n + r.published, 0)).toBe(ids.length);
    const messages = await payments.exactly(ids.length, aboutCarts(...cartIds));
    expect(messages.map((m) => m.attributes.eventId).sort()).toEqual([...ids].sort());
  });

  it('leaves a row another relay has claimed alone until its lease runs out', async () => {
    const state = await checkedOutCart();
    await deliverWith(pubsubDown, eventsFor(state).completedPaid());
    await db().query(
      `UPDATE outbox SET next_attempt_at = now(), claimed_until = now() + interval '1 minute' WHERE cart_id = $1`,
      [state.cartId],
    );
    const [row] = await outboxOf(state.cartId);
    expect((await relayOutbox(stripeEnv, database(stripeEnv), { ids: [row!.id] })).claimed).toBe(0);
    await db().query(`UPDATE outbox SET claimed_until = now() - interval '1 second' WHERE cart_id = $1`, [
      state.cartId,
    ]);
    expect((await relayOutbox(stripeEnv, database(stripeEnv), { ids: [row!.id] })).published).toBe(1);
  });

  it("records Pub/Sub's refusal even when its message, cut to length, would end in half a character", async () => {
    const state = await checkedOutCart();
    await deliverWith(pubsubDown, eventsFor(state).completedPaid());
    // "UNAVAILABLE: " and 486 letters, then an emoji: the 500 characters kept end in its first half.
    const message = `${'x'.repeat(486)}😀 and more`;
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (!url.endsWith(':publish')) return realFetch(input, init);
      return Response.json({ error: { code: 503, status: 'UNAVAILABLE', message } }, { status: 503 });
    });
    await db().query('UPDATE outbox SET next_attempt_at = now() WHERE cart_id = $1', [state.cartId]);
    await runScheduledRelay(stripeEnv, state.cartId);
    vi.restoreAllMocks();
    const [row] = await db().query('SELECT attempts, last_error, claimed_until FROM outbox WHERE cart_id = $1', [
      state.cartId,
    ]);
    expect(row).toMatchObject({ attempts: 2, claimed_until: null, last_error: expect.stringContaining('xxx\uFFFD') });
  });

  it('backs off exponentially between attempts, up to a bound', async () => {
    const state = await checkedOutCart();
    await deliverWith(pubsubDown, eventsFor(state).completedPaid());
    const waits: number[] = [];
    for (let attempt = 2; attempt <= 7; attempt++) {
      await db().query('UPDATE outbox SET next_attempt_at = now() WHERE cart_id = $1', [state.cartId]);
      await runScheduledRelay(pubsubDown, state.cartId);
      const [row] = await db().query(
        'SELECT attempts, extract(epoch FROM next_attempt_at - now())::int AS wait FROM outbox WHERE cart_id = $1',
        [state.cartId],
      );
      expect(row!.attempts).toBe(attempt);
      waits.push(Math.round(Number(row!.wait) / 30) * 30);
    }
    expect(waits).toEqual([60, 120, 240, 480, 600, 600]);

    // A week of retries and more: the wait stays at the bound, and recording it still works.
    await db().query('UPDATE outbox SET attempts = 5000, next_attempt_at = now() WHERE cart_id = $1', [state.cartId]);
    await runScheduledRelay(pubsubDown, state.cartId);
    const [late] = await db().query(
      'SELECT attempts, extract(epoch FROM next_attempt_at - now())::int AS wait FROM outbox WHERE cart_id = $1',
      [state.cartId],
    );
    expect({ attempts: late!.attempts, wait: Math.round(Number(late!.wait) / 30) * 30 }).toEqual({
      attempts: 5001,
      wait: 600,
    });
  });

  it("goes on with other carts however many rows wait behind a cart's refused row", async () => {
    const payments = await subscribe();
    const [held, other] = [await checkedOutCart(), await checkedOutCart()];
    await deliverWith(pubsubDown, eventsFor(held).completedUnpaid());
    await deliverWith(pubsubDown, eventsFor(held).asyncSucceeded());
    await deliverWith(pubsubDown, eventsFor(other).completedUnpaid());
    // The held cart's first row refused for good, as a 400 leaves it: its second row waits behind
    // it, and is older than the other cart's row. With a claim of one row, the waiting rows are a
    // claim's worth, as a hundred of them would be for the scheduled job.
    const [refused] = await outboxOf(held.cartId);
    await db().query('UPDATE outbox SET failed_at = now() WHERE id = $1', [refused!.id]);
    await db().query('UPDATE outbox SET next_attempt_at = now() WHERE cart_id = ANY($1)', [
      [held.cartId, other.cartId],
    ]);

    const report = await relayOutbox(stripeEnv, database(stripeEnv), {
      ids: await outboxIds([held.cartId, other.cartId]),
      limit: 1,
    });
    expect(report).toMatchObject({ claimed: 1, published: 1 });
    const [message] = await payments.exactly(1, aboutCarts(held.cartId, other.cartId));
    expect([message!.orderingKey, message!.attributes.eventType]).toEqual([other.cartId, 'cart.awaiting_payment']);
    const waiting = await db().query('SELECT published_at FROM outbox WHERE cart_id = $1 ORDER BY seq', [held.cartId]);
    expect(waiting).toEqual([{ published_at: null }, { published_at: null }]);
  });
});

/** One relay run over a cart's rows, as the scheduled job or the next webhook would start it. */
async function runScheduledRelay(env: typeof stripeEnv, cartId: string) {
  const ids = (await db().query('SELECT id FROM outbox WHERE cart_id = $1', [cartId])).map((r) => r.id as string);
  return relayOutbox(env, database(env), { ids });
}

const faultProxyHost = inject('pubsubFaultProxyHost');
// Publishing through the fault proxy in front of the emulator. Tests here switch its mode, so
// they run one at a time, and only they publish through it.
const viaProxy = { ...stripeEnv, PUBSUB_EMULATOR_HOST: faultProxyHost };

async function proxyStats(): Promise<{
  mode: string;
  publishCalls: { received: number; forwarded: number; held: number };
}> {
  return (await fetch(`http://${faultProxyHost}/_proxy/stats`)).json();
}

async function proxyMode(setting: { mode: string; match?: { attribute: string; value: string }; otherwise?: string }) {
  const res = await fetch(`http://${faultProxyHost}/_proxy/mode`, { method: 'POST', body: JSON.stringify(setting) });
  if (!res.ok) throw new Error(`proxy mode: ${res.status} ${await res.text()}`);
}

describe.skipIf(!faultProxyHost)('payment events when Pub/Sub refuses (a fault proxy in front of the emulator)', () => {
  afterEach(async () => {
    await proxyMode({ mode: 'pass' });
  });
  const admin = { Authorization: `Bearer ${stripeEnv.ADMIN_API_KEY}` };

  it.each([
    ['unauthenticated', 401],
    ['forbidden', 403],
    ['not_found', 404],
    ['throttled', 429],
    ['internal', 500],
    ['unavailable', 503],
  ])(
    'retries every row through %s (%i): none is failed, and all go out in order once it is fixed',
    async (mode, status) => {
      const payments = await subscribe();
      await proxyMode({ mode });
      const carts = await Promise.all([checkedOutCart(), checkedOutCart()]);
      for (const state of carts) {
        const events = eventsFor(state);
        for (const event of [events.completedUnpaid(), events.asyncSucceeded()])
          expect((await deliverWith(viaProxy, event)).status).toBe(200);
      }
      const cartIds = carts.map((c) => c.cartId);
      const rows = await db().query('SELECT failed_at, published_at, last_error FROM outbox WHERE cart_id = ANY($1)', [
        cartIds,
      ]);
      expect(rows.every((r) => r.failed_at === null && r.published_at === null)).toBe(true);
      expect(
        rows.filter((r) => r.last_error !== null).every((r) => String(r.last_error).includes(String(status))),
      ).toBe(true);

      await proxyMode({ mode: 'pass' });
      await db().query('UPDATE outbox SET next_attempt_at = now() WHERE cart_id = ANY($1)', [cartIds]);
      await runScheduled(viaProxy);
      const messages = await payments.exactly(4, aboutCarts(...cartIds));
      for (const cartId of cartIds) {
        expect(messages.filter((m) => m.orderingKey === cartId).map((m) => m.attributes.eventType)).toEqual([
          'cart.awaiting_payment',
          'cart.paid',
        ]);
      }
    },
  );

  it('logs each kind of failure of a round: a rejected row is named, not hidden behind another cart failing', async () => {
    const [down, bad] = await Promise.all([checkedOutCart(), checkedOutCart()]);
    // The row that meets the outage first: a round's first failure used to be its only line.
    for (const state of [down, bad]) await deliverWith(pubsubDown, eventsFor(state).completedUnpaid());
    await proxyMode({
      mode: 'invalid_argument',
      match: { attribute: 'cartId', value: bad.cartId },
      otherwise: 'unavailable',
    });
    await db().query('UPDATE outbox SET next_attempt_at = now() WHERE cart_id = ANY($1)', [[down.cartId, bad.cartId]]);
    const [badRow] = await outboxIds([bad.cartId]);
    const ids = await outboxIds([down.cartId, bad.cartId]);
    let report: Awaited<ReturnType<typeof relayOutbox>> | undefined;
    const lines = await linesOf(async () => {
      report = await relayOutbox(viaProxy, database(viaProxy), { ids });
    });
    expect(report).toMatchObject({ published: 0, retrying: 1, failed: 1 });
    const logged = lines.filter((line) => line.msg === 'pubsub_publish_failed');
    expect(logged).toEqual([
      expect.objectContaining({ rejected: false, status: 503, rows: 1 }),
      expect.objectContaining({ rejected: true, status: 400, rows: 1, outboxIds: [badRow] }),
    ]);
  });

  it('fails only the row whose message Pub/Sub rejects (400); it holds back its cart until requeued, other carts go on', async () => {
    const payments = await subscribe();
    const [bad, good] = await Promise.all([checkedOutCart(), checkedOutCart()]);
    // Both carts' first events wait, then go out in one relay run: a publish request per cart (one
    // ordering key per request), and Pub/Sub refuses the bad cart's.
    for (const state of [bad, good]) await deliverWith(pubsubDown, eventsFor(state).completedUnpaid());
    await proxyMode({ mode: 'invalid_argument', match: { attribute: 'cartId', value: bad.cartId } });
    await db().query('UPDATE outbox SET next_attempt_at = now() WHERE cart_id = ANY($1)', [[bad.cartId, good.cartId]]);
    const report = await relayOutbox(viaProxy, database(viaProxy), { ids: await outboxIds([bad.cartId, good.cartId]) });
    expect(report).toMatchObject({ published: 1, failed: 1 });

    // The bad cart's later event waits behind the failed one; the good cart's goes out.
    expect((await deliverWith(viaProxy, eventsFor(bad).asyncSucceeded())).status).toBe(200);
    expect((await deliverWith(viaProxy, eventsFor(good).asyncSucceeded())).status).toBe(200);
    const early = await payments.exactly(2, aboutCarts(bad.cartId, good.cartId));
    expect(early.map((m) => [m.orderingKey, m.attributes.eventType])).toEqual([
      [good.cartId, 'cart.awaiting_payment'],
      [good.cartId, 'cart.paid'],
    ]);
    const [failed, held] = await db().query(
      'SELECT failed_at IS NOT NULL AS failed, last_error FROM outbox WHERE cart_id = $1 ORDER BY seq',
      [bad.cartId],
    );
    expect(failed).toMatchObject({ failed: true, last_error: expect.stringContaining('400') });
    expect(held).toMatchObject({ failed: false });

    // The operator fixes the cause and requeues every failed row at once: the cart's events go out in order.
    await proxyMode({ mode: 'pass' });
    const listed = (await (await call('/v1/admin/outbox?state=failed&limit=500', { headers: admin })).json()) as {
      entries: { cartId: string }[];
    };
    expect(listed.entries.filter((e) => e.cartId === bad.cartId)).toHaveLength(1);
    const requeued = await call('/v1/admin/outbox/retry', { method: 'POST', headers: admin });
    expect(requeued.status).toBe(200);
    expect(((await requeued.json()) as { entries: { cartId: string }[] }).entries.map((e) => e.cartId)).toContain(
      bad.cartId,
    );
    await relayOutbox(viaProxy, database(viaProxy), { ids: await outboxIds([bad.cartId]) });
    const late = await payments.exactly(2, aboutCarts(bad.cartId));
    expect(late.map((m) => m.attributes.eventType)).toEqual(['cart.awaiting_payment', 'cart.paid']);
  });

  it("finds the refused message among a cart's rows sent together (400): the rows before it go out, only it fails", async () => {
    const payments = await subscribe();
    const state = await checkedOutCart();
    const events = eventsFor(state);
    // Three events of one cart wait while Pub/Sub is unreachable: the relay then sends them in one request.
    for (const event of [events.completedUnpaid(), events.asyncSucceeded(), events.fullRefund()]) {
      expect((await deliverWith(pubsubDown, event)).status).toBe(200);
    }
    const [awaiting, paid, refunded] = await outboxOf(state.cartId);
    expect([awaiting, paid, refunded].map((row) => row?.event_type)).toEqual([
      'cart.awaiting_payment',
      'cart.paid',
      'cart.refunded',
    ]);
    // Pub/Sub refuses every request that carries the cart.paid message: the cart's request of three too.
    await proxyMode({ mode: 'invalid_argument', match: { attribute: 'eventId', value: paid!.id } });
    await db().query('UPDATE outbox SET next_attempt_at = now() WHERE cart_id = $1', [state.cartId]);
    const report = await relayOutbox(viaProxy, database(viaProxy), { ids: await outboxIds([state.cartId]) });
    expect(report).toMatchObject({ published: 1, failed: 1 });

    // The valid event before it reaches consumers; the refused one waits for an operator, and the
    // one after it waits behind it, not failed.
    expect((await payments.exactly(1, aboutCarts(state.cartId))).map((m) => m.attributes.eventId)).toEqual([
      awaiting!.id,
    ]);
    const rows = await db().query(
      'SELECT id, published_at IS NOT NULL AS published, failed_at IS NOT NULL AS failed FROM outbox WHERE cart_id = $1 ORDER BY seq',
      [state.cartId],
    );
    expect(rows).toEqual([
      { id: awaiting!.id, published: true, failed: false },
      { id: paid!.id, published: false, failed: true },
      { id: refunded!.id, published: false, failed: false },
    ]);
    const [failed] = await db().query('SELECT last_error FROM outbox WHERE id = $1', [paid!.id]);
    expect(String(failed!.last_error)).toContain('400');
  });

  // Pub/Sub takes one ordering key per publish request (PubsubMessage.ordering_key), and ours is
  // the cart: payments of K carts are K requests (sent side by side, results written together).
  it('publishes K payments committed together in one request per cart, each once', async () => {
    const payments = await subscribe();
    await fetch(`http://${faultProxyHost}/_proxy/reset`, { method: 'POST' });
    // The first publish is held at Pub/Sub while the other payments commit behind it.
    await proxyMode({ mode: 'hang' });
    const carts = await Promise.all(Array.from({ length: 8 }, () => checkedOutCart()));
    const requests = await Promise.all(
      carts.map(async (state) =>
        dispatch(viaProxy, '/v1/webhooks/stripe', await deliveryRequest(eventsFor(state).completedPaid())),
      ),
    );
    expect(requests.map((r) => r.res.status)).toEqual(carts.map(() => 200));
    await expect.poll(async () => (await proxyStats()).publishCalls.held).toBeGreaterThanOrEqual(1);
    await proxyMode({ mode: 'pass' });
    await Promise.all(requests.map((r) => r.settled));

    // The held calls, then one for each cart committed behind them: every request one cart's.
    const { publishCalls } = await proxyStats();
    expect(publishCalls.received).toBe(carts.length);
    const messages = await payments.exactly(carts.length, aboutCarts(...carts.map((c) => c.cartId)));
    expect(messages.map((m) => m.orderingKey).sort()).toEqual(carts.map((c) => c.cartId).sort());
  });

  // Workers end waitUntil work 30 s after the response: a leader cancelled then never hands over.
  it('lets the next request lead when the leader has been publishing longer than Workers would let it', async () => {
    const payments = await subscribe();
    const [stuck, next] = [await checkedOutCart(), await checkedOutCart()];
    await proxyMode({ mode: 'hang', match: { attribute: 'cartId', value: stuck.cartId }, otherwise: 'pass' });
    const first = await dispatch(
      viaProxy,
      '/v1/webhooks/stripe',
      await deliveryRequest(eventsFor(stuck).completedPaid()),
    );
    expect(first.res.status).toBe(200);
    await expect.poll(async () => (await proxyStats()).publishCalls.held).toBe(1);
    // A minute on, with the leader still waiting on Pub/Sub, as one Workers cancelled would be forever.
    const realNow = Date.now.bind(Date);
    const later = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 61_000);
    try {
      expect((await deliverWith(viaProxy, eventsFor(next).completedPaid())).status).toBe(200);
      expect((await payments.exactly(1, aboutCarts(next.cartId))).map((m) => m.attributes.eventType)).toEqual([
        'cart.paid',
      ]);
    } finally {
      later.mockRestore();
    }
    await proxyMode({ mode: 'pass' });
    await first.settled;
    expect(await payments.exactly(1, aboutCarts(stuck.cartId))).toHaveLength(1);
  });

  // A lead publishes for 15 s, half the 30 s Workers give waitUntil work. Under a steady load its
  // queue is never empty when that time is up: what is queued goes out in its last round, not a
  // minute later through the relay, and the next request leads anew.
  it('publishes what is queued when a lead runs out of time, and a request meanwhile leads anew', async () => {
    const payments = await subscribe();
    const { leased, work, ctx, sql } = await leasedRequests(3);
    const [leader, queued, next] = leased;
    // The leader's second result write, its last round's, waits until the test lets it go.
    const { sql: leaderSql, letGo } = holdingWrite(sql, 2);
    await proxyMode({ mode: 'hang', match: { attribute: 'cartId', value: leader.state.cartId }, otherwise: 'pass' });
    publishSoon(viaProxy, ctx, leaderSql, leader.leased, []);
    await expect.poll(async () => (await proxyStats()).publishCalls.held).toBe(1);
    publishSoon(viaProxy, ctx, sql, queued.leased, []);
    // 16 s on, with the leader's first call still held at Pub/Sub and a row queued behind it.
    const realNow = Date.now.bind(Date);
    const later = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 16_000);
    try {
      await proxyMode({ mode: 'pass' });
      // The queued row goes out in the leader's last round, …
      expect(await payments.exactly(1, aboutCarts(queued.state.cartId))).toHaveLength(1);
      // … during which a request's row is its own to publish: the lead was handed over.
      publishSoon(viaProxy, ctx, sql, next.leased, []);
      expect(await payments.exactly(1, aboutCarts(next.state.cartId))).toHaveLength(1);
      letGo();
      await Promise.all(work);
    } finally {
      letGo();
      later.mockRestore();
    }
    const carts = [leader, queued, next].map((p) => p.state.cartId);
    const [unpublished] = await db().query(
      'SELECT count(*)::int AS n FROM outbox WHERE cart_id = ANY($1) AND published_at IS NULL',
      [carts],
    );
    expect(unpublished).toEqual({ n: 0 });
    expect(await payments.exactly(1, aboutCarts(leader.state.cartId))).toHaveLength(1);
  });

  // A leader presumed cancelled (LEADER_GONE_MS) that comes back after all must leave the new
  // leader's queue alone: taking rows from it would split a cart's rows between two leaders.
  it("a leader taken over leaves the new leader's queue to it when it comes back", async () => {
    const payments = await subscribe();
    const { leased, work, ctx, sql } = await leasedRequests(3);
    const [first, second, third] = leased;
    // The new leader's first result write waits until the test lets it go.
    const { sql: newLeaderSql, letGo, writes } = holdingWrite(sql, 1);
    await proxyMode({ mode: 'hang', match: { attribute: 'cartId', value: first!.state.cartId }, otherwise: 'pass' });
    publishSoon(viaProxy, ctx, sql, first!.leased, []);
    await expect.poll(async () => (await proxyStats()).publishCalls.held).toBe(1);
    // A minute on the first leader is presumed cancelled: the next request leads, and a third
    // request's row queues behind it while its round's result write waits.
    const realNow = Date.now.bind(Date);
    const later = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 61_000);
    try {
      publishSoon(viaProxy, ctx, newLeaderSql, second!.leased, []);
      await expect.poll(writes).toBe(1);
      publishSoon(viaProxy, ctx, sql, third!.leased, []);
      // The first leader's call goes through and it comes back: the third row is not its to publish.
      await proxyMode({ mode: 'pass' });
      await work[0];
      expect(await payments.exactly(0, aboutCarts(third!.state.cartId))).toEqual([]);
      letGo();
      await Promise.all(work);
    } finally {
      letGo();
      later.mockRestore();
    }
    for (const { state } of leased) expect(await payments.exactly(1, aboutCarts(state.cartId))).toHaveLength(1);
  });

  // More than a round's worth queued when the lead's time is up: its last rounds take them all,
  // 100 at a time, not only the first 100 with the rest left a minute or more to the relay.
  it("publishes everything queued at a lead's hand-over, a round's worth at a time", async () => {
    const payments = await subscribe();
    const { leased, work, ctx, sql } = await leasedRequests(102);
    const [leader, ...behind] = leased;
    await proxyMode({ mode: 'hang', match: { attribute: 'cartId', value: leader!.state.cartId }, otherwise: 'pass' });
    publishSoon(viaProxy, ctx, sql, leader!.leased, []);
    await expect.poll(async () => (await proxyStats()).publishCalls.held).toBe(1);
    for (const request of behind) publishSoon(viaProxy, ctx, sql, request.leased, []);
    const realNow = Date.now.bind(Date);
    const later = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 16_000);
    let lines: Record<string, unknown>[];
    try {
      lines = await linesOf(async () => {
        await proxyMode({ mode: 'pass' });
        await Promise.all(work);
      });
    } finally {
      later.mockRestore();
    }
    expect(lines.filter((line) => line.msg === 'outbox_rows_left_to_relay')).toEqual([]);
    const carts = leased.map((request) => request!.state.cartId);
    const [unpublished] = await db().query(
      'SELECT count(*)::int AS n FROM outbox WHERE cart_id = ANY($1) AND published_at IS NULL',
      [carts],
    );
    expect(unpublished).toEqual({ n: 0 });
    expect(await payments.exactly(carts.length, aboutCarts(...carts))).toHaveLength(carts.length);
  }, 120_000);

  // The last rounds begin only within 20 s of the lead's start, inside the 30 s Workers give
  // waitUntil work: what is left then waits for its lease and the relay, which the log says.
  it('logs the rows its last rounds had no time for, which the relay then publishes', async () => {
    const payments = await subscribe();
    const { leased, work, ctx, sql } = await leasedRequests(102);
    const [leader, ...behind] = leased;
    // The leader's second result write, its first last round's, waits until the test lets it go.
    const { sql: leaderSql, letGo, writes } = holdingWrite(sql, 2);
    await proxyMode({ mode: 'hang', match: { attribute: 'cartId', value: leader!.state.cartId }, otherwise: 'pass' });
    publishSoon(viaProxy, ctx, leaderSql, leader!.leased, []);
    await expect.poll(async () => (await proxyStats()).publishCalls.held).toBe(1);
    for (const request of behind) publishSoon(viaProxy, ctx, sql, request.leased, []);
    const realNow = Date.now.bind(Date);
    let skew = 16_000;
    const later = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skew);
    let lines: Record<string, unknown>[];
    try {
      lines = await linesOf(async () => {
        await proxyMode({ mode: 'pass' });
        // 21 s on, while that round records what it published: no time for another.
        await expect.poll(writes).toBe(2);
        skew = 21_000;
        letGo();
        await Promise.all(work);
      });
    } finally {
      letGo();
      later.mockRestore();
    }
    expect(lines.filter((line) => line.msg === 'outbox_rows_left_to_relay')).toEqual([
      expect.objectContaining({ level: 'warn', rows: 1 }),
    ]);
    const unpublished = (await db().query(
      'SELECT id, cart_id FROM outbox WHERE cart_id = ANY($1) AND published_at IS NULL',
      [behind.map((request) => request.state.cartId)],
    )) as { id: string; cart_id: string }[];
    expect(unpublished.map((row) => row.cart_id)).toEqual([behind.at(-1)!.state.cartId]);

    // Its lease over, the relay publishes it.
    await db().query(`UPDATE outbox SET claimed_until = now() - interval '1 second' WHERE id = $1`, [
      unpublished[0]!.id,
    ]);
    await relayOutbox(viaProxy, sql, { ids: [unpublished[0]!.id] });
    expect(await payments.exactly(1, aboutCarts(behind.at(-1)!.state.cartId))).toHaveLength(1);
  }, 120_000);

  // Events of one cart share an ordering key, so they may share a request: K events committed
  // while the cart's first one is still being published go out together right after it.
  it("publishes a cart's events committed behind a held publish in one request after it: 2 calls for 4 events", async () => {
    const payments = await subscribe();
    await fetch(`http://${faultProxyHost}/_proxy/reset`, { method: 'POST' });
    await proxyMode({ mode: 'hang' });
    const state = await checkedOutCart();
    const events = eventsFor(state);
    const first = await dispatch(viaProxy, '/v1/webhooks/stripe', await deliveryRequest(events.completedPaid()));
    expect(first.res.status).toBe(200);
    await expect.poll(async () => (await proxyStats()).publishCalls.held).toBe(1);
    for (const event of [events.partialRefund(), events.disputeCreated(), events.fullRefund()]) {
      expect((await deliverWith(viaProxy, event)).status).toBe(200);
    }
    expect((await proxyStats()).publishCalls.received).toBe(1);
    await proxyMode({ mode: 'pass' });
    await first.settled;

    expect((await proxyStats()).publishCalls.received).toBe(2);
    const messages = await payments.exactly(4, aboutCarts(state.cartId));
    expect(messages.map((m) => m.attributes.eventType)).toEqual([
      'cart.paid',
      'cart.partially_refunded',
      'cart.disputed',
      'cart.refunded',
    ]);
  });

  // Google orders a key's messages only among those published in one region
  // (https://cloud.google.com/pubsub/docs/ordering): PUBSUB_API_ENDPOINT pins one.
  it('publishes to PUBSUB_API_ENDPOINT with the service account, and an emulator host wins over it', async () => {
    const payments = await subscribe();
    await fetch(`http://${faultProxyHost}/_proxy/reset`, { method: 'POST' });
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const regional = {
      ...stripeEnv,
      PUBSUB_EMULATOR_HOST: undefined,
      GCP_SERVICE_ACCOUNT_KEY: JSON.stringify({
        type: 'service_account',
        client_email: 'payments@edge-checkout-test.iam.gserviceaccount.com',
        private_key: await exportPKCS8(privateKey),
      }),
      // The fault proxy stands for the locational endpoint (the emulator behind it takes any token).
      PUBSUB_API_ENDPOINT: `http://${faultProxyHost}`,
    };
    const [first, second] = await Promise.all([checkedOutCart(), checkedOutCart()]);
    expect((await deliverWith(regional, eventsFor(first).completedPaid())).status).toBe(200);
    expect((await payments.exactly(1, aboutCarts(first.cartId)))[0]!.attributes.eventType).toBe('cart.paid');
    expect((await proxyStats()).publishCalls.received).toBe(1);

    // With an emulator host the endpoint is not used: it points nowhere here, and still the event goes out.
    const emulated = { ...stripeEnv, PUBSUB_API_ENDPOINT: 'http://127.0.0.1:9' };
    expect((await deliverWith(emulated, eventsFor(second).completedPaid())).status).toBe(200);
    expect((await payments.exactly(1, aboutCarts(second.cartId)))[0]!.attributes.eventType).toBe('cart.paid');
    expect((await proxyStats()).publishCalls.received).toBe(1);
  });

  // A request's rows queued behind a leader whose round fails stay leased to their request, and
  // the scheduled relay publishes them once the lease runs out. The next leader must not publish
  // them as well.
  it('leaves rows queued behind a failed publishing round to the relay: each goes out once', async () => {
    const payments = await subscribe();
    const { leased, work, ctx, sql } = await leasedRequests(3);
    const [leader, queued, next] = leased;
    // The leader's publish is held at Pub/Sub; its result write then fails (the database went away).
    const lostDatabase = {
      query: () => ({}),
      transaction: () => Promise.reject(new Error('connection lost')),
    } as unknown as Sql;
    await proxyMode({ mode: 'hang' });
    publishSoon(viaProxy, ctx, lostDatabase, leader.leased, []);
    await expect.poll(async () => (await proxyStats()).publishCalls.held).toBe(1);
    publishSoon(viaProxy, ctx, sql, queued.leased, []);
    await proxyMode({ mode: 'pass' });
    await Promise.all(work);

    // The queued row's lease runs out and the relay publishes it.
    await db().query(`UPDATE outbox SET claimed_until = now() - interval '1 second' WHERE cart_id = $1`, [
      queued.state.cartId,
    ]);
    await relayOutbox(viaProxy, sql, { ids: queued.leased.map((row) => row.id) });
    // A later request of the isolate leads the queue.
    publishSoon(viaProxy, ctx, sql, next.leased, []);
    await Promise.all(work);

    expect(await payments.exactly(1, aboutCarts(queued.state.cartId))).toHaveLength(1);
    expect(await payments.exactly(1, aboutCarts(next.state.cartId))).toHaveLength(1);
  });

  it('keeps the record of a row another relay published when its first publisher, its lease run out, fails late', async () => {
    const payments = await subscribe();
    await fetch(`http://${faultProxyHost}/_proxy/reset`, { method: 'POST' });
    const late = await leasedPayment();
    const work: Promise<unknown>[] = [];
    const sql = database(viaProxy);
    // The request's publish goes out, but its answer never comes back (another isolate, frozen).
    await proxyMode({ mode: 'answer_lost' });
    publishSoon(viaProxy, { waitUntil: (promise) => void work.push(promise) }, sql, late.leased, []);
    await expect.poll(async () => (await proxyStats()).publishCalls.held).toBe(1);
    // Its lease runs out; the relay publishes the row and records it.
    await db().query(`UPDATE outbox SET claimed_until = now() - interval '1 second' WHERE cart_id = $1`, [
      late.state.cartId,
    ]);
    expect((await relayOutbox(stripeEnv, database(stripeEnv), { ids: late.leased.map((r) => r.id) })).published).toBe(
      1,
    );
    // Then the first publisher learns its call failed, and records that.
    await proxyMode({ mode: 'pass' });
    await Promise.all(work);

    const [row] = await db().query(
      'SELECT published_at, last_error, next_attempt_at <= now() AS due FROM outbox WHERE cart_id = $1',
      [late.state.cartId],
    );
    expect(row).toMatchObject({ published_at: expect.any(Date), last_error: null, due: true });
    // At least once: the lost answer's copy and the relay's, one event.
    const messages = await payments.exactly(2, aboutCarts(late.state.cartId));
    expect(new Set(messages.map((m) => m.attributes.eventId)).size).toBe(1);
  });

  // A round carries at most 100 rows, so one request's rows of a cart can straddle two rounds.
  it.each(['invalid_argument', 'unavailable'])(
    "keeps a cart's later row back when its earlier row failed (%s) in the round before",
    async (failure) => {
      const payments = await subscribe();
      await fetch(`http://${faultProxyHost}/_proxy/reset`, { method: 'POST' });
      // 101 carts through the app, not the entry point: each request through the entry point costs
      // more than the one before it in this file (see `call`); this late in it, hundreds of them
      // took over a minute, and the test past its timeout on a slow machine.
      const leader = await checkedOutCart({ env: stripeEnv });
      const others: Awaited<ReturnType<typeof checkedOutCart>>[] = [];
      while (others.length < 99)
        others.push(
          ...(await Promise.all(Array.from({ length: 11 }, () => checkedOutCart({ amounts: [1000], env: stripeEnv })))),
        );
      const x = await checkedOutCart({ env: stripeEnv });
      // X's full refund is reported before its payment lands: the payment writes paid and refunded at once.
      expect((await deliverWith(viaProxy, eventsFor(x).fullRefund())).status).toBe(200);

      // The leader's publish is held while 99 payments and then X's two rows queue behind it.
      await proxyMode({ mode: 'hang', match: { attribute: 'cartId', value: leader.cartId }, otherwise: 'pass' });
      const webhook = async (state: typeof x) =>
        dispatch(viaProxy, '/v1/webhooks/stripe', await deliveryRequest(eventsFor(state).completedPaid()));
      const lead = await webhook(leader);
      await expect.poll(async () => (await proxyStats()).publishCalls.held).toBe(1);
      const queued = await Promise.all(others.slice(0, 99).map(webhook));
      const last = await webhook(x);
      expect([lead, ...queued, last].every((r) => r.res.status === 200)).toBe(true);
      const [paid, refunded] = (await db().query('SELECT id FROM outbox WHERE cart_id = $1 ORDER BY seq', [
        x.cartId,
      ])) as { id: string }[];

      // Pub/Sub refuses X's first row alone; the held call goes through.
      await proxyMode({ mode: failure, match: { attribute: 'eventId', value: paid!.id }, otherwise: 'pass' });
      await Promise.all([lead, ...queued, last].map((r) => r.settled));
      await proxyMode({ mode: 'pass' });
      const unpublished = await db().query('SELECT id FROM outbox WHERE cart_id = $1 AND published_at IS NULL', [
        x.cartId,
      ]);
      expect(unpublished.map((r) => r.id).sort()).toEqual([paid!.id, refunded!.id].sort());

      // Requeued (or its backoff over), X's events go out in their order.
      await db().query(
        'UPDATE outbox SET failed_at = NULL, next_attempt_at = now(), claimed_until = NULL WHERE cart_id = $1',
        [x.cartId],
      );
      await runScheduledRelay(viaProxy, x.cartId);
      expect((await payments.exactly(2, aboutCarts(x.cartId))).map((m) => m.attributes.eventType)).toEqual([
        'cart.paid',
        'cart.refunded',
      ]);
    },
    120_000,
  );

  it("publishes a cart's event committed while the event before it is being recorded right after it, not with the cron", async () => {
    const x = await checkedOutCart();
    const events = eventsFor(x);
    expect((await deliverWith(viaProxy, events.completedUnpaid())).status).toBe(200);
    await proxyMode({ mode: 'hang', match: { attribute: 'cartId', value: x.cartId }, otherwise: 'pass' });
    const paid = await dispatch(viaProxy, '/v1/webhooks/stripe', await deliveryRequest(events.asyncSucceeded()));
    expect(paid.res.status).toBe(200);
    await expect.poll(async () => (await proxyStats()).publishCalls.held).toBe(1);
    // Published, its result write waits behind a lock on the row, with its snapshot taken.
    const lock = await holdLocks([
      `SELECT 1 FROM outbox WHERE cart_id = '${x.cartId}' AND event_type = 'cart.paid' FOR UPDATE`,
    ]);
    await proxyMode({ mode: 'pass' });
    await lock.waitForWaiters(1, '%WITH done AS%');
    // The cart's next event comes now: its webhook commits meanwhile, or waits for the write.
    const refund = dispatch(viaProxy, '/v1/webhooks/stripe', await deliveryRequest(events.partialRefund()));
    await expect
      .poll(async () => {
        const [row] = await db().query(
          `SELECT (SELECT count(*) FROM outbox WHERE cart_id = $1 AND event_type = 'cart.partially_refunded')
                + (SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%FOR UPDATE OF c%') AS n`,
          [x.cartId],
        );
        return Number(row!.n);
      })
      .toBeGreaterThan(0);
    await lock.release();
    const { res, settled } = await refund;
    expect(res.status).toBe(200);
    await Promise.all([settled, paid.settled]);
    const rows = await db().query(
      'SELECT event_type, published_at IS NOT NULL AS published FROM outbox WHERE cart_id = $1 ORDER BY seq',
      [x.cartId],
    );
    expect(rows.map((r) => [r.event_type, r.published])).toEqual([
      ['cart.awaiting_payment', true],
      ['cart.paid', true],
      ['cart.partially_refunded', true],
    ]);
  });

  it("lets an operator discard a refused row, so its cart's later events go on without it", async () => {
    const payments = await subscribe();
    const state = await checkedOutCart();
    await proxyMode({ mode: 'invalid_argument', match: { attribute: 'cartId', value: state.cartId } });
    await deliverWith(viaProxy, eventsFor(state).completedUnpaid());
    await proxyMode({ mode: 'pass' });
    await deliverWith(viaProxy, eventsFor(state).asyncSucceeded());
    const [first] = await outboxOf(state.cartId);
    const discarded = await call(`/v1/admin/outbox/${first!.id}/discard`, { method: 'POST', headers: admin });
    expect(discarded.status).toBe(200);
    expect(await discarded.json()).toMatchObject({ id: first!.id, discardedAt: expect.any(String) });
    // A discard is final: the row can no longer be put back in line.
    expect((await call(`/v1/admin/outbox/${first!.id}/retry`, { method: 'POST', headers: admin })).status).toBe(404);
    await relayOutbox(viaProxy, database(viaProxy), { ids: await outboxIds([state.cartId]) });
    expect((await payments.exactly(1, aboutCarts(state.cartId))).map((m) => m.attributes.eventType)).toEqual([
      'cart.paid',
    ]);
  });
});

describe('the outbox while other carts’ events wait for Pub/Sub', () => {
  it('a payment’s outbox write reads none of the rows waiting, however many (a probe of its own cart’s)', async () => {
    const state = await checkedOutCart();
    const backlog = withRowsWaiting(database(stripeEnv), 1000);
    const { result } = await applyEffect(backlog.sql, effectOfEvent(eventsFor(state).completedPaid())!, {
      lease: true,
    });
    expect(result.leased.map((row) => row.event_type)).toEqual(['cart.paid']);
    expect(backlog.reads).toEqual([0]);
    expect(await db().query("SELECT count(*)::int AS n FROM carts WHERE user_id LIKE 'waiting-%'")).toEqual([{ n: 0 }]);
  });

  it.skipIf(!faultProxyHost)(
    'a publishing round’s result write reads the rows it published, none of those waiting',
    async () => {
      const payments = await subscribe();
      const { leased, work, ctx, sql } = await leasedRequests(1);
      const [payment] = leased;
      const backlog = withRowsWaiting(sql, 1000);
      publishSoon(viaProxy, ctx, backlog.sql, payment!.leased, []);
      await Promise.all(work);
      expect(await payments.exactly(1, aboutCarts(payment!.state.cartId))).toHaveLength(1);
      const unpublished = 'SELECT count(*)::int AS n FROM outbox WHERE cart_id = $1 AND published_at IS NULL';
      expect(await db().query(unpublished, [payment!.state.cartId])).toEqual([{ n: 0 }]);
      // The published row, by its key, in the update that records it and in the look for rows
      // behind it of its cart, where the snapshot still shows it unpublished.
      expect(backlog.reads).toEqual([2]);
    },
  );
});

/**
 * `sql` whose every transaction runs with `count` rows of other carts waiting for Pub/Sub, as while
 * it is down, written and removed again inside it (no other test sees them); `reads` collects how
 * many outbox rows each transaction's own statements read.
 */
function withRowsWaiting(sql: Sql, count: number): { sql: Sql; reads: number[] } {
  const reads: number[] = [];
  const transaction = async (
    statements: Parameters<Sql['transaction']>[0],
    opts: Parameters<Sql['transaction']>[1],
  ) => {
    const results = (await sql.transaction(
      [
        // Planned as Neon plans them: its proxy sends every statement unnamed, so Postgres plans
        // each afresh with its values. The local proxy prepares them, and once a connection has
        // run one a few times Postgres may take a generic plan, whose choice for a table as small
        // as the tests' (a scan of it all against a hundred lookups by key) would make the count
        // depend on the tests run before on that connection.
        sql.query('SET LOCAL plan_cache_mode = force_custom_plan'),
        sql.query(OUTBOX_ROWS_READ),
        sql.query(WAITING_ROWS, [count]),
        ...(statements as Statement[]),
        sql.query(OUTBOX_ROWS_READ),
        ...REMOVE_WAITING.map((text) => sql.query(text)),
      ],
      opts,
    )) as unknown[];
    const [before, after] = [results[1], results[statements.length + 3]] as [{ rows: number }][];
    reads.push(after[0].rows - before[0].rows);
    return results.slice(3, statements.length + 3);
  };
  return { sql: { query: sql.query, transaction } as unknown as Sql, reads };
}

const WAITING_ROWS = `
  WITH cart AS (
    INSERT INTO carts (user_id, status) SELECT 'waiting-' || gen_random_uuid(), 'paid' FROM generate_series(1, $1) RETURNING id
  ), checkout AS (
    INSERT INTO checkouts (session_id, cart_id, url, expires_at, currency, amount_total, items)
    SELECT 'cs_waiting_' || id, id, 'https://checkout.stripe.com/c/pay/cs_waiting', now(), 'usd', 100, '[]' FROM cart
    RETURNING session_id, cart_id
  )
  INSERT INTO outbox (cart_id, event_type, stripe_event_id, cart_status, session_id, occurred_at)
  SELECT cart_id, 'cart.paid', 'evt_waiting_' || cart_id, 'paid', session_id, now() FROM checkout`;
/**
 * Rows of the outbox read by any scan: in this transaction, and in the connection's earlier ones
 * whose figures Postgres has not flushed yet (it does so at most once a second; PostgreSQL 18
 * counts them in pg_stat_xact_user_tables all the same), so a test reads it twice in its
 * transaction and takes the difference.
 */
const OUTBOX_ROWS_READ = `
  SELECT (seq_tup_read + COALESCE(idx_tup_fetch, 0))::int AS rows FROM pg_stat_xact_user_tables WHERE relname = 'outbox'`;
const REMOVE_WAITING = [
  "DELETE FROM outbox WHERE xmin = pg_current_xact_id()::xid AND stripe_event_id LIKE 'evt\\_waiting\\_%'",
  "DELETE FROM checkouts WHERE xmin = pg_current_xact_id()::xid AND session_id LIKE 'cs\\_waiting\\_%'",
  "DELETE FROM carts WHERE xmin = pg_current_xact_id()::xid AND user_id LIKE 'waiting-%'",
];

describe('the admin outbox routes', () => {
  const admin = { Authorization: `Bearer ${stripeEnv.ADMIN_API_KEY}` };

  it.each([
    ['GET', '/v1/admin/outbox'],
    ['POST', '/v1/admin/outbox/retry'],
    ['POST', '/v1/admin/outbox/republish'],
    ['POST', `/v1/admin/outbox/${crypto.randomUUID()}/retry`],
    ['POST', `/v1/admin/outbox/${crypto.randomUUID()}/discard`],
  ])('refuse %s %s without the admin key, or with a user token or a wrong key', async (method, path) => {
    const attempts: Record<string, string>[] = [
      {},
      { Authorization: 'Bearer not-the-admin-key-0123' },
      { Authorization: `Bearer ${await tokenFor('someone')}` },
    ];
    for (const headers of attempts) {
      const res = await call(path, { method, headers });
      expect(res.status).toBe(401);
      expect((await problem(res)).code).toBe('unauthorized');
    }
  });

  it('leave a row being published alone when asked to retry it: it goes out once', async () => {
    const payments = await subscribe();
    const paid = await leasedPayment(stripeEnv);
    const [row] = paid.leased;
    const retried = await call(`/v1/admin/outbox/${row!.id}/retry`, { method: 'POST', headers: admin });
    expect(retried.status).toBe(200);
    expect(await retried.json()).toMatchObject({ id: row!.id, publishedAt: null, failedAt: null });
    // The scheduled relay comes by while the row's request still holds it, then the request publishes.
    await relayOutbox(stripeEnv, database(stripeEnv), { ids: [row!.id] });
    await publishLeased(paid.leased);
    expect(await payments.exactly(1, aboutCarts(paid.state.cartId))).toHaveLength(1);
  });

  it('refuse to discard a row being published (409, Retry-After): it goes out once and is not recorded as discarded', async () => {
    const payments = await subscribe();
    const paid = await leasedPayment(stripeEnv);
    const [row] = paid.leased;
    const refused = await call(`/v1/admin/outbox/${row!.id}/discard`, { method: 'POST', headers: admin });
    expect(refused.status).toBe(409);
    expect(refused.headers.get('Retry-After')).toBe('60');
    expect((await problem(refused)).code).toBe('event_being_published');
    // Declared, so that a client generated from the document reads it.
    const doc = (await (await call('/openapi.json')).json()) as {
      paths: Record<string, { post: { responses: Record<string, { headers: Record<string, unknown> }> } }>;
    };
    expect(doc.paths['/v1/admin/outbox/{eventId}/discard']!.post.responses['409']!.headers).toHaveProperty(
      'Retry-After',
    );
    await publishLeased(paid.leased);
    expect(await payments.exactly(1, aboutCarts(paid.state.cartId))).toHaveLength(1);
    const [after] = await db().query('SELECT published_at, discarded_at FROM outbox WHERE id = $1', [row!.id]);
    expect(after).toEqual({ published_at: expect.any(Date), discarded_at: null });
  });

  it('answer 404 for an unknown or already published event and 400 for a malformed id or state', async () => {
    const state = await checkedOutCart();
    await deliverWith(stripeEnv, eventsFor(state).completedPaid());
    const [row] = await outboxOf(state.cartId);
    await db().query('UPDATE outbox SET published_at = now() WHERE id = $1', [row!.id]);
    for (const id of [crypto.randomUUID(), row!.id]) {
      expect((await call(`/v1/admin/outbox/${id}/retry`, { method: 'POST', headers: admin })).status).toBe(404);
      expect((await call(`/v1/admin/outbox/${id}/discard`, { method: 'POST', headers: admin })).status).toBe(404);
    }
    expect((await call('/v1/admin/outbox/not-a-uuid/retry', { method: 'POST', headers: admin })).status).toBe(400);
    expect((await call('/v1/admin/outbox?state=lost', { headers: admin })).status).toBe(400);
    expect((await call('/v1/admin/outbox?limit=0', { headers: admin })).status).toBe(400);
  });
});

/** A paid cart whose event row is written leased to "its request", as a webhook writes it, and not yet published. */
async function leasedPayment(env: typeof stripeEnv = viaProxy) {
  // Through the app, not the entry point: tests make a hundred of these, and every request through
  // the entry point nests one more proxy in the test pool (see `call`).
  const state = await checkedOutCart({ env: stripeEnv });
  const {
    result: { leased },
  } = await applyEffect(database(env), effectOfEvent(eventsFor(state).completedPaid())!, {
    lease: true,
  });
  expect(leased).toHaveLength(1);
  return { state, leased };
}

/**
 * `count` payments leased to their requests (made eleven at a time), with the fault proxy reset,
 * and a waitUntil that collects each request's work after its answer.
 */
async function leasedRequests(count: number) {
  await fetch(`http://${faultProxyHost}/_proxy/reset`, { method: 'POST' });
  const leased: Awaited<ReturnType<typeof leasedPayment>>[] = [];
  while (leased.length < count) {
    leased.push(
      ...(await Promise.all(Array.from({ length: Math.min(11, count - leased.length) }, () => leasedPayment()))),
    );
  }
  const work: Promise<unknown>[] = [];
  const ctx = { waitUntil: (promise: Promise<unknown>) => void work.push(promise) };
  return { leased, work, ctx, sql: database(viaProxy) };
}

/** `sql` whose `nth` transaction (a publishing round's result write) waits until `letGo`. */
function holdingWrite(sql: Sql, nth: number) {
  let letGo = () => {};
  const held = new Promise<void>((resolve) => (letGo = resolve));
  let count = 0;
  const holding = {
    query: sql.query,
    transaction: async (...args: Parameters<Sql['transaction']>) => {
      if (++count === nth) await held;
      return sql.transaction(...args);
    },
  } as unknown as Sql;
  return { sql: holding, letGo: () => letGo(), writes: () => count };
}

/** What the request that leased these rows does after its answer (its waitUntil work), to the end. */
async function publishLeased(leased: EventFacts[]): Promise<void> {
  const work: Promise<unknown>[] = [];
  publishSoon(stripeEnv, { waitUntil: (p) => void work.push(p) }, database(stripeEnv), leased, []);
  await Promise.all(work);
}

async function outboxIds(cartIds: string[]): Promise<string[]> {
  return (await db().query('SELECT id FROM outbox WHERE cart_id = ANY($1)', [cartIds])).map((r) => r.id as string);
}
