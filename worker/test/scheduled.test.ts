import { StandinControls } from '@edge-checkout/test-support/standin';
import type Stripe from 'stripe';
import { beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { applyUndeliveredEvents } from '../src/lost-events.ts';
import { runScheduled } from '../src/scheduled.ts';
import { requestServices } from '../src/services.ts';
import { stripeApi } from '../src/stripe.ts';
import { call, createProduct, db, holdLocks, linesOf, newUser, openCart, publishOutboxBacklog } from './helpers.ts';
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

// A run reads at most 25 sessions, least recently read first: sessions other test files left due
// would take this file's turns. Each test starts with none due but its own.
beforeEach(async () => {
  await db().query('UPDATE checkouts SET reconciled_at = now()');
});

// The whole outbox's relay runs here: not behind what earlier files left.
beforeAll(publishOutboxBacklog);

describe('scheduled reconciliation', () => {
  it('applies sessions whose webhooks were lost: paid, and expired', async () => {
    const paid = await checkedOutCart();
    await standin.pay(paid.sessionId, 'paid');
    const expired = await checkedOutCart();
    // Expired through Stripe's API; this stand-in sends no webhooks here.
    await standinStripe().checkout.sessions.expire(expired.sessionId);
    // Both are past the grace period the job waits for webhooks.
    await db().query(`UPDATE checkouts SET created_at = now() - interval '1 hour' WHERE session_id = ANY($1)`, [
      [paid.sessionId, expired.sessionId],
    ]);

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
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'async');
    await call(`/checkout/success?session_id=${state.sessionId}`);
    expect(await cartStatus(state.cartId)).toBe('awaiting_payment');
    await standin.settleBankTransfer(state.sessionId, result === 'succeeds' ? 'succeed' : 'fail');

    await runScheduled(stripeEnv);
    expect(await cartStatus(state.cartId)).toBe(status);
    expect((await outboxOf(state.cartId)).map((o) => o.event_type)).toEqual(published);
    const [row] = await db().query('SELECT reconciled_at IS NOT NULL AS checked FROM checkouts WHERE session_id = $1', [
      state.sessionId,
    ]);
    expect(row).toEqual({ checked: true });
  });
});

describe('sessions Stripe no longer knows', () => {
  it('keeps a bank transfer whose session Stripe answers 404 for, holding its stock: a key of another account may see it clear', async () => {
    const product = await createProduct({ unitAmount: 900 });
    await db().query('UPDATE products SET stock = 5 WHERE id = $1', [product.id]);
    const user = await newUser();
    const cartId = await openCart(user.token, [{ id: product.id, quantity: 1 }]);
    const res = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token });
    const { sessionId } = (await res.json()) as { sessionId: string };
    await standin.pay(sessionId, 'async');
    await call(`/checkout/success?session_id=${sessionId}`);
    expect(await cartStatus(cartId)).toBe('awaiting_payment');
    // The key now in use belongs to another account, say: Stripe finds no such session.
    await standin.forget(sessionId);
    await db().query(`UPDATE checkouts SET reconciled_at = now() - interval '2 hours' WHERE session_id = $1`, [
      sessionId,
    ]);

    const lines = await linesOf(() => runScheduled(stripeEnv));
    // For an operator to look at, naming the cart the admin API finds.
    expect(lines.filter((line) => line.msg === 'stripe_session_missing')).toEqual([
      expect.objectContaining({ level: 'warn', sessionId, cartId }),
    ]);
    expect(await cartStatus(cartId)).toBe('awaiting_payment');
    expect((await outboxOf(cartId)).map((o) => o.event_type)).toEqual(['cart.awaiting_payment']);
    // The transfer clears on the account that made the session: the payment is kept, its stock taken.
    const total = 900;
    expect((await deliver(eventsFor({ sessionId, cartId, total }).asyncSucceeded())).status).toBe(200);
    expect(await cartStatus(cartId)).toBe('paid');
    const [counts] = await db().query('SELECT stock, reserved FROM products WHERE id = $1', [product.id]);
    expect(counts).toEqual({ stock: 4, reserved: 0 });
  });

  it("keeps a session asked about with the other mode's key: Stripe's 404 then means a wrong key, not a session gone", async () => {
    // Carts checked out in live mode, and a test key deployed by mistake: Stripe finds none of
    // their sessions with it. The stand-in takes test keys only, so the session is renamed live.
    const state = await checkedOutCart();
    const live = state.sessionId.replace('cs_test_', 'cs_live_');
    await db().query(
      `INSERT INTO checkouts SELECT (jsonb_populate_record(NULL::checkouts, to_jsonb(k) || jsonb_build_object('session_id', $2::text, 'expires_at', '2000-01-01'))).*
       FROM checkouts k WHERE session_id = $1`,
      [state.sessionId, live],
    );
    await db().query('UPDATE carts SET checkout_session_id = $2 WHERE id = $1', [state.cartId, live]);

    const report = await runScheduled(stripeEnv);
    expect(report.reconcileErrors).toBeGreaterThanOrEqual(1);
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');
    const cancel = await call(`/v1/carts/${state.cartId}/checkout`, { method: 'DELETE', token: state.user.token });
    expect(cancel.status).toBe(500);
    expect(await cancel.json()).toMatchObject({ code: 'misconfigured' });
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');
  });
});

describe("a session of the other mode than the key's", () => {
  const api = (key: string) => stripeApi({ ...stripeEnv, STRIPE_SECRET_KEY: key });

  it('is refused only for a live session with a test key, restricted keys included; the rest is asked of Stripe', async () => {
    for (const key of ['sk_test_deployed_by_mistake', 'rk_test_deployed_by_mistake']) {
      await expect(api(key).retrieveCheckoutSession('cs_live_a1b2')).rejects.toThrow(
        /test-mode key; Checkout Session cs_live_a1b2 was made in live mode/,
      );
      await expect(api(key).expireCheckoutSession('cs_live_a1b2')).rejects.toThrow(/made in live mode/);
    }
    // A test session is never paid with real money: a live key asks Stripe (the stand-in takes
    // test keys only, so 401), and its 404 would release the cart. Ids of other forms are asked too.
    await expect(api('sk_live_real').retrieveCheckoutSession('cs_test_a1b2')).rejects.toMatchObject({
      statusCode: 401,
    });
    await expect(api('sk_test_ours').retrieveCheckoutSession('cs_a1b2')).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe('scheduled reconciliation under failures', () => {
  it('is not starved by sessions Stripe no longer knows: they are released, and the rest get their turn', async () => {
    // More unknown sessions than one run reads, all due before the one whose webhook was lost.
    const unknown = await Promise.all(Array.from({ length: 26 }, () => checkedOutCart({ amounts: [1000] })));
    for (const state of unknown) await standin.forget(state.sessionId);
    const paid = await checkedOutCart();
    await standin.pay(paid.sessionId, 'paid');
    await db().query(
      `UPDATE checkouts SET expires_at = '2000-01-01'::timestamptz + (cart_id = $2)::int * interval '1 day' WHERE session_id = ANY($1)`,
      [[...unknown.map((u) => u.sessionId), paid.sessionId], paid.cartId],
    );

    for (let run = 0; run < 3 && (await cartStatus(paid.cartId)) !== 'paid'; run++) await runScheduled(stripeEnv);
    expect(await cartStatus(paid.cartId)).toBe('paid');
    const statuses = await db().query('SELECT DISTINCT status FROM carts WHERE id = ANY($1)', [
      unknown.map((u) => u.cartId),
    ]);
    expect(statuses).toEqual([{ status: 'open' }]);
  });

  it('counts a session it cannot read, stamps it and backs off before reading it again', async () => {
    const state = await checkedOutCart();
    await db().query(`UPDATE checkouts SET created_at = now() - interval '1 hour' WHERE session_id = $1`, [
      state.sessionId,
    ]);
    await standin.addFault({
      method: 'GET',
      path: `/v1/checkout/sessions/${state.sessionId}`,
      status: 500,
      times: 3,
    });

    const first = await runScheduled(stripeEnv);
    expect(first.reconcileErrors).toBeGreaterThanOrEqual(1);
    const [row] = await db().query(
      'SELECT reconciled_at IS NOT NULL AS stamped, reconcile_failures FROM checkouts WHERE session_id = $1',
      [state.sessionId],
    );
    expect(row).toEqual({ stamped: true, reconcile_failures: 1 });

    // Within its backoff it is left alone; once that has passed it is read again.
    await standin.pay(state.sessionId, 'paid');
    await runScheduled(stripeEnv);
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');
    await db().query(`UPDATE checkouts SET reconciled_at = now() - interval '11 minutes' WHERE session_id = $1`, [
      state.sessionId,
    ]);
    await clearFaultsFor(state.sessionId);
    await runScheduled(stripeEnv);
    expect(await cartStatus(state.cartId)).toBe('paid');
    const [after] = await db().query('SELECT reconcile_failures FROM checkouts WHERE session_id = $1', [
      state.sessionId,
    ]);
    expect(after).toEqual({ reconcile_failures: 0 });
  });

  // After n failed reads a session waits 10 · 2^(n−1) minutes, at most 6 hours, before the next.
  it.each([
    ['the third', 3, '39 minutes', '41 minutes'],
    ['a thousand, at the longest', 5000, '359 minutes', '361 minutes'],
  ])(
    'reads a session back again after %s failed reads, once its backoff has passed',
    async (_, failures, early, late) => {
      const state = await checkedOutCart();
      await standin.pay(state.sessionId, 'paid');
      const lastRead = (ago: string) =>
        db().query(
          `UPDATE checkouts SET created_at = now() - interval '1 day', reconcile_failures = $2,
           reconciled_at = now() - $3::interval WHERE session_id = $1`,
          [state.sessionId, failures, ago],
        );
      await lastRead(early);
      await runScheduled(stripeEnv);
      expect(await cartStatus(state.cartId)).toBe('checkout_pending');
      await lastRead(late);
      await runScheduled(stripeEnv);
      expect(await cartStatus(state.cartId)).toBe('paid');
    },
  );

  it('reads an awaiting_payment session back about once an hour, not on every run', async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'async');
    await call(`/checkout/success?session_id=${state.sessionId}`);
    expect(await cartStatus(state.cartId)).toBe('awaiting_payment');
    await db().query(`UPDATE checkouts SET reconciled_at = now() - interval '50 minutes' WHERE session_id = $1`, [
      state.sessionId,
    ]);
    await standin.settleBankTransfer(state.sessionId, 'succeed');

    await runScheduled(stripeEnv);
    expect(await cartStatus(state.cartId)).toBe('awaiting_payment');
    await db().query(`UPDATE checkouts SET reconciled_at = now() - interval '61 minutes' WHERE session_id = $1`, [
      state.sessionId,
    ]);
    await runScheduled(stripeEnv);
    expect(await cartStatus(state.cartId)).toBe('paid');
  });
});

describe('scheduled job parts', () => {
  it('reports a part that fails instead of ending the run with it, and keeps what the parts before it did', async () => {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'paid');
    await db().query(`UPDATE checkouts SET created_at = now() - interval '1 hour' WHERE session_id = $1`, [
      state.sessionId,
    ]);
    // Retention cannot run without a valid setting; the run used to end there, thrown.
    const report = await runScheduled({ ...stripeEnv, RETENTION_DAYS: '7' });
    expect(report.failedParts).toEqual(['retention']);
    expect(await cartStatus(state.cartId)).toBe('paid');
  });

  /** A cart paid at Stripe an hour ago, whose webhook never came: due to be read back. */
  async function paidWithoutWebhook() {
    const state = await checkedOutCart();
    await standin.pay(state.sessionId, 'paid');
    await db().query(
      `UPDATE checkouts SET created_at = now() - interval '1 hour', reconciled_at = NULL WHERE session_id = $1`,
      [state.sessionId],
    );
    return state;
  }

  it('without a database setting, says so part by part and still writes its run line', async () => {
    const lines = await linesOf(() => runScheduled({ ...stripeEnv, DATABASE_URL: undefined } as typeof stripeEnv));
    expect(lines.filter((line) => line.msg === 'scheduled_part_failed').map((line) => line.part)).toEqual([
      'lostEvents',
      'reconcile',
      'outbox',
      'retention',
    ]);
    expect(lines.filter((line) => line.msg === 'scheduled')).toEqual([
      expect.objectContaining({ failedParts: ['lostEvents', 'reconcile', 'outbox', 'retention'] }),
    ]);
  });

  it('starts no read-back once its time is spent, and leaves the sessions due for the next run', async () => {
    const state = await paidWithoutWebhook();
    const spent = await runScheduled(stripeEnv, { reconcileBudgetMs: 0 });
    expect([spent.reconciled, spent.reconcileErrors]).toEqual([0, 0]);
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');
    const [row] = await db().query('SELECT reconciled_at FROM checkouts WHERE session_id = $1', [state.sessionId]);
    expect(row).toEqual({ reconciled_at: null });

    await runScheduled(stripeEnv);
    expect(await cartStatus(state.cartId)).toBe('paid');
  });

  it('counts its time from the start of the run: a slow listing of undelivered events spends it', async () => {
    const state = await paidWithoutWebhook();
    // Stripe takes longer to list its events than the whole read-back budget.
    await standin.addFault({ method: 'GET', path: '/v1/events', delayMs: 1_500, times: 1 });
    const spent = await runScheduled(stripeEnv, { reconcileBudgetMs: 1_000 });
    expect([spent.reconciled, spent.reconcileErrors]).toEqual([0, 0]);
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');
  });
});

/** Removes what is left of the faults on one session (other test files share this stand-in). */
async function clearFaultsFor(sessionId: string) {
  const { data } = (await (await fetch(`${stripeEnv.STRIPE_API_BASE}/_standin/faults`)).json()) as {
    data: { id: string; path: string }[];
  };
  for (const fault of data.filter((f) => f.path.endsWith(sessionId))) {
    await fetch(`${stripeEnv.STRIPE_API_BASE}/_standin/faults/${fault.id}`, { method: 'DELETE' });
  }
}

describe('scheduled recovery of events Stripe could not deliver', () => {
  // A Stripe account whose webhook endpoint receives nothing (worker/test/global-setup.ts).
  const apiBase = inject('lostEventsStripeApiBase');
  const env = { ...stripeEnv, STRIPE_API_BASE: apiBase };
  const stripe = standinStripe(apiBase);
  const lostEventsStandin = new StandinControls(apiBase);

  it('applies a charge.refunded lost for good, and a lost dispute, through the webhook path, once', async () => {
    const state = await checkedOutCart({ env });
    await lostEventsStandin.pay(state.sessionId, 'paid');
    const session = await stripe.checkout.sessions.retrieve(state.sessionId, { expand: ['payment_intent'] });
    const intent = session.payment_intent as Stripe.PaymentIntent;
    // Its completion reached us; then a refund made in Stripe's Dashboard and a dispute did not.
    const completed = (await stripe.events.list({ type: 'checkout.session.completed' })).data.find(
      (e) => (e.data.object as Stripe.Checkout.Session).id === state.sessionId,
    );
    expect((await deliver(completed!)).status).toBe(200);
    expect(await cartStatus(state.cartId)).toBe('paid');
    await stripe.refunds.create({ payment_intent: intent.id, amount: 900 });
    const dispute = await lostEventsStandin.dispute(String(intent.latest_charge));

    let report: Awaited<ReturnType<typeof runScheduled>> | undefined;
    const lines = await linesOf(async () => {
      report = await runScheduled(env);
    });
    expect(report!.lostEvents.errors).toBe(0);
    // Each one applied late says so, for an operator to see the endpoint failing (§5).
    expect(lines.filter((line) => line.level === 'warn' && line.cartId === state.cartId)).toEqual([
      expect.objectContaining({ msg: 'lost_event_applied', type: 'charge.refunded' }),
      expect.objectContaining({ msg: 'lost_event_applied', type: 'charge.dispute.created' }),
    ]);
    const cart = await (await call(`/v1/carts/${state.cartId}`, { token: state.user.token })).json();
    expect(cart).toMatchObject({
      status: 'paid',
      refundedAmount: 900,
      dispute: { id: dispute.id, status: 'needs_response', reason: 'product_not_received', closed: false },
    });
    expect((await outboxOf(state.cartId)).map((o) => o.event_type)).toEqual([
      'cart.paid',
      'cart.partially_refunded',
      'cart.disputed',
    ]);

    // Later runs find them recorded, as does the webhook should it come after all.
    const refunded = (await stripe.events.list({ type: 'charge.refunded' })).data.find(
      (e) => (e.data.object as Stripe.Charge).payment_intent === intent.id,
    );
    expect((await deliver(refunded!)).status).toBe(200);
    const again = await runScheduled(env);
    expect(again.lostEvents).toEqual({ applied: 0, errors: 0 });
    expect(await outboxOf(state.cartId)).toHaveLength(3);
    const [row] = await db().query('SELECT source, outcome FROM payment_events WHERE id = $1', [refunded!.id]);
    expect(row).toEqual({ source: 'reconcile', outcome: 'applied' });
  });

  it("publishes a lost payment as happening when Stripe's event says, not when the job read its session", async () => {
    const state = await checkedOutCart({ env });
    await lostEventsStandin.pay(state.sessionId, 'paid');
    const completed = (await stripe.events.list({ type: 'checkout.session.completed' })).data.find(
      (e) => (e.data.object as Stripe.Checkout.Session).id === state.sessionId,
    );
    // Quiet long enough for the job to read the session back too.
    await db().query(`UPDATE checkouts SET created_at = now() - interval '1 hour' WHERE session_id = $1`, [
      state.sessionId,
    ]);
    await new Promise((resolve) => setTimeout(resolve, 1100));

    await runScheduled(env);
    const [paid] = await outboxOf(state.cartId);
    expect(paid).toMatchObject({
      event_type: 'cart.paid',
      event: { occurredAt: new Date(completed!.created * 1000).toISOString() },
    });
  });

  /** Carts paid at Stripe whose events the webhook never got, oldest first. */
  async function lostPayments(count: number) {
    const carts = [];
    for (let i = 0; i < count; i++) {
      const state = await checkedOutCart({ env });
      await lostEventsStandin.pay(state.sessionId, 'paid');
      carts.push(state);
    }
    return carts;
  }
  const statuses = (carts: { cartId: string }[]) => Promise.all(carts.map((c) => cartStatus(c.cartId)));
  /** A run of `pages` pages of one event. */
  const read = (pages = 2) =>
    applyUndeliveredEvents(
      requestServices(env, () => null),
      { pages, pageSize: 1 },
    );

  it('works through a backlog longer than a run reads, run after run, and finds new ones at once', async () => {
    // As on a new deployment: no run has read anything yet.
    await db().query('DELETE FROM undelivered_events_cursor');
    const carts = await lostPayments(3);
    // The newest page, then the walk one on from it.
    expect((await read()).applied).toBe(2);
    expect(await statuses(carts)).toEqual(['checkout_pending', 'paid', 'paid']);
    expect((await read()).applied).toBe(1);
    expect(await cartStatus(carts[0]!.cartId)).toBe('paid');

    // One lost while the walk goes on through older events is found by the next run all the same.
    const [later] = await lostPayments(1);
    expect((await read()).applied).toBe(1);
    expect(await cartStatus(later!.cartId)).toBe('paid');
  });

  it('takes up news more than one run reads where the last run stopped, before the walk comes round to it', async () => {
    // A walk under way through an older backlog, as after a new deployment's first run met one.
    await db().query('DELETE FROM undelivered_events_cursor');
    await lostPayments(4);
    await read();
    const burst = await lostPayments(3);
    // Two pages of news, the oldest first, and one of the walk.
    await read(3);
    expect((await statuses(burst)).slice(0, 2)).toEqual(['paid', 'paid']);
    await read(3);
    expect(await statuses(burst)).toEqual(['paid', 'paid', 'paid']);
  });

  it('reads news from the newest when Stripe no longer lists the event its mark names', async () => {
    // A walk under way through an older backlog.
    await db().query('DELETE FROM undelivered_events_cursor');
    await lostPayments(4);
    await read();
    // The marked event left the list (delivered after all, or older than 30 days).
    await db().query(`UPDATE undelivered_events_cursor SET newest_read = 'evt_no_longer_listed'`);
    const news = await lostPayments(3);
    // Runs of two pages: the refused one costs none. News from the newest, then the walk goes on
    // from where the news stopped, not from its place in the older backlog.
    let run: Awaited<ReturnType<typeof read>> | undefined;
    const lines = await linesOf(async () => {
      run = await read();
    });
    // Routine (the event was delivered after all), not an error: said at info, for the record.
    expect(run!.errors).toBe(0);
    expect(lines.filter((line) => line.level === 'error')).toEqual([]);
    expect(lines.filter((line) => line.msg === 'lost_events_mark_reset')).toEqual([
      expect.objectContaining({ mark: 'evt_no_longer_listed' }),
    ]);
    await read();
    expect(await statuses(news)).toEqual(['paid', 'paid', 'paid']);
  });

  it('counts an event once when two runs find it at the same time', async () => {
    await read();
    const [state] = await lostPayments(1);
    // Both runs have listed it as not recorded yet, and wait to apply it.
    const lock = await holdLocks([`SELECT 1 FROM carts WHERE id = '${state!.cartId}' FOR UPDATE`]);
    const runs = Promise.all([read(), read()]);
    await lock.waitForWaiters(2);
    await lock.release();
    expect((await runs).map((r) => r.applied).sort()).toEqual([0, 1]);
    expect(await cartStatus(state!.cartId)).toBe('paid');
    expect((await outboxOf(state!.cartId)).map((o) => o.event_type)).toEqual(['cart.paid']);
  });

  it('counts Stripe failing to list them, and gets them on the next run', async () => {
    const state = await checkedOutCart({ env });
    await lostEventsStandin.pay(state.sessionId, 'paid');
    await lostEventsStandin.addFault({ method: 'GET', path: '/v1/events', status: 500, times: 3 });
    expect((await runScheduled(env)).lostEvents.errors).toBe(1);
    expect(await cartStatus(state.cartId)).toBe('checkout_pending');
    await runScheduled(env);
    expect(await cartStatus(state.cartId)).toBe('paid');
  });
});
