// The payment core under faults, end to end on the local stack as `npm run dev` runs it: Stripe
// failing, forgetting and slow (the stand-in's faults), Pub/Sub refusing, failing and hanging
// (tools/pubsub-fault-proxy.ts between the Worker and the emulator), Postgres stalled (SIGSTOP).
// Every scenario ends with what the contract promises: the answers the webhooks got (the
// stand-in records each attempt), the carts' final states through the API, and each payment
// event on the topic exactly once and in order per cart. Prints a table of the results at the end.

import { outboxRows } from '@edge-checkout/test-support/outbox';
import { skipWithout } from '@edge-checkout/test-support/requirements';
import { type Cart, type Checkout, Shopper } from '@edge-checkout/test-support/shopper';
import type { DeliveredEvent } from '@edge-checkout/test-support/standin';
import { aboutCarts, TopicReader } from '@edge-checkout/test-support/topics';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { missingPrerequisite, useFaultStack } from './helpers/fault-stack.ts';
import { stallPostgres } from './helpers/postgres-stall.ts';
import { type ExpectedEvents, expectPublishedExactlyOnce } from './helpers/published.ts';
import { fiveXxSince, ResultsTable, type ScenarioRow, tally, webhookAnswers } from './helpers/report.ts';

const SCENARIOS = [
  '1. Stripe 500',
  '2. Stripe 409 (key in flight)',
  '3. Stripe 404',
  '4. Stripe slow',
  '5. Pub/Sub 403',
  '6. Pub/Sub 500',
  '7. Pub/Sub hanging',
  '8. Postgres stalled',
  '9. Pub/Sub answer lost',
] as const;
type Scenario = (typeof SCENARIOS)[number];

const CREATE_SESSION = { method: 'POST', path: '/v1/checkout/sessions' } as const;
// A delay no test outlasts: the request stays held until the test releases it.
const UNTIL_RELEASED_MS = 2 ** 31 - 1;
// How long "nothing more arrives" is watched for, after the scheduled job ran once more.
const QUIET_MS = 2_000;
// Long enough for the outbox's first backoff (30 s) and the job that then publishes.
const RECOVERY_TIMEOUT_MS = 75_000;

const skipped = skipWithout('the fault suite (test/faults)', missingPrerequisite());

interface Problem {
  code: string;
  detail: string;
}

interface Paying {
  shopper: Shopper;
  cart: Cart;
  checkout: Checkout;
}

describe.skipIf(skipped)('payments under faults, on the local stack', () => {
  const faults = useFaultStack();
  const results = new ResultsTable(SCENARIOS);
  let payments: TopicReader;

  beforeAll(async () => {
    // Made before anything is paid: every event of the suite is seen, and ordered per cart.
    payments = await TopicReader.subscribe(faults.stack.pubsub!.admin, faults.stack.pubsub!.paymentTopic);
  });

  beforeEach(({ onTestFailed }) => {
    const from = faults.stack.output.length;
    onTestFailed(() => {
      console.log(
        `--- what the stack printed during this test (last 150 lines) ---\n${faults.stack.output.slice(from).slice(-150).join('\n')}`,
      );
    });
  });

  afterEach(async () => {
    faults.proxy.reset();
    await faults.standin.clearFaults();
    // A scenario that failed while holding a request at Stripe must not leave it to act later.
    await faults.standin.releaseHeld();
  });

  afterAll(async () => {
    console.log(`\nFault suite results\n\n${results.render()}\n`);
    await payments?.close();
  });

  const stack = () => faults.stack;

  async function newCart(label: string): Promise<{ shopper: Shopper; cart: Cart }> {
    const shopper = await Shopper.signIn(stack().workerUrl, stack().vars.AUTH_JWT_SECRET!, `fault-${label}`);
    return { shopper, cart: await shopper.fillCart({ 'tshirt-classic': 1, 'mug-ceramic': 1 }) };
  }

  const tapCheckout = <T = Checkout>(shopper: Shopper, cartId: string) =>
    shopper.call<T>('POST', `/v1/carts/${cartId}/checkout`);

  /** `count` shoppers, each with a cart in checkout (Stripe working). */
  async function cartsInCheckout(label: string, count: number): Promise<Paying[]> {
    return Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const { shopper, cart } = await newCart(`${label}${i}`);
        return { shopper, cart, checkout: await shopper.checkout(cart.id) };
      }),
    );
  }

  /** Waits until the Worker answered 2xx to `count` events of these sessions; returns every event with its attempts. */
  async function deliveredEvents(sessionIds: string[], count: number): Promise<DeliveredEvent[]> {
    let events: DeliveredEvent[] = [];
    await expect
      .poll(
        async () => {
          events = await faults.standin.eventsOf(sessionIds);
          return events.filter((e) => e.delivery.status === 'delivered').length;
        },
        { timeout: 60_000, interval: 100 },
      )
      .toBe(count);
    expect(events).toHaveLength(count);
    return events;
  }

  /** The carts' statuses through the API, once each is `status`; summarised for the table. */
  async function expectCarts(paying: Array<{ shopper: Shopper; cart: Cart }>, status: Cart['status']): Promise<string> {
    const statuses = () => Promise.all(paying.map(async ({ shopper, cart }) => (await shopper.cart(cart.id)).status));
    await expect.poll(statuses, { timeout: 30_000, interval: 200 }).toEqual(paying.map(() => status));
    return `${paying.length} ${status}`;
  }

  function expectPublished(expected: ExpectedEvents): Promise<string> {
    return expectPublishedExactlyOnce({
      reader: payments,
      databaseUrl: stack().vars.DATABASE_URL!,
      expected,
      runScheduledJob: faults.runScheduledJob,
      quietMs: QUIET_MS,
    });
  }

  /**
   * Runs the scheduled job (the stack's cron) until nothing of these carts waits in the outbox:
   * what the Worker could not publish goes out once its backoff is over.
   */
  async function untilOutboxDrained(cartIds: string[]): Promise<void> {
    await expect
      .poll(
        async () => {
          await faults.runScheduledJob();
          return (await faults.outbox('pending'))
            .filter((e) => cartIds.includes(e.cartId))
            .map((e) => `${e.eventType} ${e.cartId}`);
        },
        { timeout: RECOVERY_TIMEOUT_MS, interval: 2_000 },
      )
      .toEqual([]);
  }

  function record(scenario: Scenario, row: Omit<ScenarioRow, 'scenario'>): void {
    results.add({ scenario, ...row });
  }

  function afterRecovery(events: DeliveredEvent[], since: number): string {
    const { fiveXx, attempts } = fiveXxSince(events, since);
    expect(fiveXx, 'webhook attempts answered 5xx after recovery').toBe(0);
    return `${fiveXx} of ${attempts} attempts`;
  }

  describe('Stripe failing', () => {
    it('1. Stripe 500 on creating a session: checkout answers 503, the next tap 201, paying works, cart.paid once', async () => {
      const { shopper, cart } = await newCart('stripe500');
      await faults.standin.addFault({ ...CREATE_SESSION, status: 500 });

      const failed = await tapCheckout<Problem>(shopper, cart.id);
      expect([failed.status, failed.body.code]).toEqual([503, 'service_unavailable']);
      // Stripe saved the 500 under that attempt's key; the next tap must not replay it.
      expect(await faults.standin.faults()).toEqual([]);
      const recoveredAt = Date.now();
      const retried = await tapCheckout(shopper, cart.id);
      expect(retried.status).toBe(201);

      await faults.standin.pay(retried.body.sessionId, 'paid');
      const events = await deliveredEvents([retried.body.sessionId], 1);
      record('1. Stripe 500', {
        fault: 'POST /v1/checkout/sessions → 500 (once); checkout 503, next tap 201',
        webhookAnswers: webhookAnswers(events),
        finalCarts: await expectCarts([{ shopper, cart }], 'paid'),
        published: await expectPublished(new Map([[cart.id, ['cart.paid']]])),
        fiveXxAfterRecovery: afterRecovery(events, recoveredAt),
      });
    });

    it('2. Stripe 409 (key in flight): a second tap while Stripe still makes the first one’s session gets 503; the first 201, the next tap 200, one session', async () => {
      const { shopper, cart } = await newCart('stripe409');
      // The first tap's request holds its idempotency key at Stripe until released below.
      await faults.standin.addFault({ ...CREATE_SESSION, delayMs: UNTIL_RELEASED_MS });
      const first = tapCheckout(shopper, cart.id);
      await expect.poll(() => faults.standin.faults()).toEqual([]);

      // The second tap sends the same key: Stripe answers 409 idempotency_key_in_use to each of
      // its tries until the Worker stops waiting, and the 503 names that code. Released after,
      // well within the first request's 10 s Stripe timeout (the tries take some 3 to 5 s).
      const second = await tapCheckout<Problem>(shopper, cart.id);
      expect([second.status, second.body.code]).toEqual([503, 'service_unavailable']);
      expect(second.body.detail).toMatch(/\bidempotency_key_in_use\b/);
      expect(await faults.standin.releaseHeld()).toBe(1);

      const created = await first;
      const recoveredAt = Date.now();
      const next = await tapCheckout(shopper, cart.id);
      expect([created.status, next.status]).toEqual([201, 200]);
      const sessionId = created.body.sessionId;
      expect(next.body.sessionId).toBe(sessionId);
      expect((await shopper.cart(cart.id)).checkout?.sessionId).toBe(sessionId);

      await faults.standin.pay(sessionId, 'paid');
      const events = await deliveredEvents([sessionId], 1);
      record('2. Stripe 409 (key in flight)', {
        fault: 'POST /v1/checkout/sessions held; tap during it → 503 (409 in use), then 201 + 200, one session',
        webhookAnswers: webhookAnswers(events),
        finalCarts: await expectCarts([{ shopper, cart }], 'paid'),
        published: await expectPublished(new Map([[cart.id, ['cart.paid']]])),
        fiveXxAfterRecovery: afterRecovery(events, recoveredAt),
      });
    });

    it('3. Stripe 404: cancelling the checkout of a session Stripe forgot answers 200, the cart is open again, nothing published', async () => {
      const { shopper, cart } = await newCart('stripe404');
      const checkout = await shopper.checkout(cart.id);
      await faults.standin.forget(checkout.sessionId);

      const cancelled = await shopper.call<Cart>('DELETE', `/v1/carts/${cart.id}/checkout`);
      expect([cancelled.status, cancelled.body.status, cancelled.body.checkout]).toEqual([200, 'open', null]);
      const finalCarts = await expectCarts([{ shopper, cart }], 'open');
      // Released for good: the shopper can check out again, with a session Stripe knows.
      const again = await tapCheckout(shopper, cart.id);
      expect(again.status).toBe(201);
      expect(again.body.sessionId).not.toBe(checkout.sessionId);

      const events = await faults.standin.eventsOf([checkout.sessionId]);
      expect(events).toEqual([]);
      record('3. Stripe 404', {
        fault: 'session forgotten (404 resource_missing); cancel → 200, cart open, checkout again 201',
        webhookAnswers: webhookAnswers(events),
        finalCarts: `${finalCarts} (after cancel)`,
        published: await expectPublished(new Map([[cart.id, []]])),
        fiveXxAfterRecovery: 'n/a (no webhooks)',
      });
    });

    it('4. Stripe slow (3 s per session): checkout still succeeds, paying works, cart.paid once', async () => {
      const { shopper, cart } = await newCart('stripeslow');
      await faults.standin.addFault({ ...CREATE_SESSION, delayMs: 3_000 });

      // Slower than usual but within the Worker's 10 s Stripe timeout: 201. Had it given up,
      // the answer would be 503 and the next tap would succeed; either is what the contract allows.
      const answers: number[] = [];
      let tap = await tapCheckout(shopper, cart.id);
      answers.push(tap.status);
      if (tap.status === 503) {
        tap = await tapCheckout(shopper, cart.id);
        answers.push(tap.status);
      }
      expect(tap.status).toBe(201);
      const recoveredAt = Date.now();

      await faults.standin.pay(tap.body.sessionId, 'paid');
      const events = await deliveredEvents([tap.body.sessionId], 1);
      record('4. Stripe slow', {
        fault: `POST /v1/checkout/sessions held 3 s; checkout → ${answers.join(', then ')}`,
        webhookAnswers: webhookAnswers(events),
        finalCarts: await expectCarts([{ shopper, cart }], 'paid'),
        published: await expectPublished(new Map([[cart.id, ['cart.paid']]])),
        fiveXxAfterRecovery: afterRecovery(events, recoveredAt),
      });
    });
  });

  describe('Pub/Sub failing', () => {
    /**
     * Five carts paid while the proxy does `mode` to every publish: four by card, one by bank
     * transfer (awaiting_payment, then paid: two events whose order must hold). Every webhook
     * gets 200 at once; nothing reaches the topic; once the proxy passes again and the scheduled
     * job runs, every event is published once, in order, and none is marked failed.
     */
    async function paidWhilePubSub(
      label: string,
      mode: 'forbidden' | 'internal' | 'hang',
    ): Promise<Omit<ScenarioRow, 'scenario' | 'fault'>> {
      const paying = await cartsInCheckout(label, 5);
      const sessions = paying.map((p) => p.checkout.sessionId);
      faults.proxy.setMode(mode);

      await Promise.all(paying.map((p, i) => faults.standin.pay(p.checkout.sessionId, i === 4 ? 'async' : 'paid')));
      await deliveredEvents([sessions[4]!], 1);
      await faults.standin.settleBankTransfer(sessions[4]!, 'succeed');
      const events = await deliveredEvents(sessions, 6);
      // Each event accepted at its first attempt: the answer never waited on Pub/Sub.
      expect(events.map((e) => e.delivery.attempts.map((a) => a.status))).toEqual(events.map(() => [200]));
      const carts = paying.map((p) => p.cart.id);

      // The Worker did try to publish meanwhile, and nothing got through.
      const tried = () => faults.proxy.publishCalls;
      const noPublish = 'the Worker sent no :publish after accepting the payments (nothing right after the commit)';
      if (mode === 'hang') {
        // Held by the proxy, unanswered, while every webhook already had its 200.
        await expect.poll(() => tried().held, { timeout: 10_000, message: noPublish }).toBeGreaterThan(0);
      } else {
        await expect.poll(() => tried().received, { timeout: 10_000, message: noPublish }).toBeGreaterThan(0);
      }
      expect(tried().forwarded, 'publish requests that reached the emulator during the fault').toBe(0);
      // Every event waits in the outbox (an access error or an outage never fails a row).
      const waiting = (await faults.outbox('pending')).filter((e) => carts.includes(e.cartId));
      expect(waiting.map((e) => e.eventType).sort()).toEqual([
        'cart.awaiting_payment',
        ...Array.from({ length: 5 }, () => 'cart.paid'),
      ]);
      expect(await faults.outbox('failed')).toEqual([]);
      expect(await payments.exactly(0, aboutCarts(...carts))).toEqual([]);
      const finalCarts = await expectCarts(paying, 'paid');

      faults.proxy.setMode('pass');
      await untilOutboxDrained(carts);
      const expected = new Map(
        paying.map((p, i) => [p.cart.id, i === 4 ? ['cart.awaiting_payment', 'cart.paid'] : ['cart.paid']]),
      );
      const published = await expectPublished(expected);
      expect(await faults.outbox('failed')).toEqual([]);
      return {
        webhookAnswers: webhookAnswers(events),
        finalCarts,
        published: `${published}; none failed`,
        // The webhooks never depended on Pub/Sub: no 5xx even while it failed.
        fiveXxAfterRecovery: `${afterRecovery(events, 0)}, fault included`,
      };
    }

    it('5. Pub/Sub refusing (403) while 5 carts are paid: every webhook 200; once it passes and the job runs, each event once, none failed', {
      timeout: 150_000,
    }, async () => {
      const row = await paidWhilePubSub('pubsub403', 'forbidden');
      record('5. Pub/Sub 403', { fault: ':publish → 403 PERMISSION_DENIED, then pass + scheduled job', ...row });
    });

    it('6. Pub/Sub failing (500) while 5 carts are paid: every webhook 200; once it passes and the job runs, each event once, none failed', {
      timeout: 150_000,
    }, async () => {
      const row = await paidWhilePubSub('pubsub500', 'internal');
      record('6. Pub/Sub 500', { fault: ':publish → 500 INTERNAL, then pass + scheduled job', ...row });
    });

    it('7. Pub/Sub hanging while 5 carts are paid: webhooks answer 200 while the publishes hang; after pass each event once', {
      timeout: 150_000,
    }, async () => {
      const row = await paidWhilePubSub('pubsubhang', 'hang');
      record('7. Pub/Sub hanging', { fault: ':publish held without an answer, then released (pass)', ...row });
    });

    // Unlike a hang, Pub/Sub took the message and only its answer is lost: the Worker cannot know,
    // publishes the event again, and Pub/Sub keeps both (it does not deduplicate publishes).
    // What the contract promises is at least once, with the eventId to drop the repeat by.
    it('9. Pub/Sub answer lost while 2 carts are paid: each cart.paid reaches the topic, the Worker retries it, consumers see it twice with one eventId', {
      timeout: 150_000,
    }, async () => {
      const paying = await cartsInCheckout('pubsublost', 2);
      const sessions = paying.map((p) => p.checkout.sessionId);
      const carts = paying.map((p) => p.cart.id);
      faults.proxy.setMode('answer_lost');

      await Promise.all(paying.map((p) => faults.standin.pay(p.checkout.sessionId, 'paid')));
      const events = await deliveredEvents(sessions, 2);
      expect(events.map((e) => e.delivery.attempts.map((a) => a.status))).toEqual(events.map(() => [200]));
      // Each event's first publish got through, unanswered: on the topic, yet waiting in the outbox.
      const first = await payments.atLeast(2, aboutCarts(...carts), 30_000);
      const waiting = (await faults.outbox('pending')).filter((e) => carts.includes(e.cartId));
      expect(waiting.map((e) => e.eventType)).toEqual(['cart.paid', 'cart.paid']);
      const finalCarts = await expectCarts(paying, 'paid');

      // Cut off without an answer, the Worker publishes each event again after its backoff.
      faults.proxy.setMode('pass');
      await untilOutboxDrained(carts);
      await faults.runScheduledJob();
      for (const cartId of carts) {
        const [row, ...others] = await outboxRows(stack().vars.DATABASE_URL!, cartId);
        expect(others).toEqual([]);
        expect(row!.published_at).not.toBeNull();
        const copies = await payments.exactly(2, aboutCarts(cartId), QUIET_MS);
        expect(copies.map((m) => [m.attributes.eventType, m.attributes.eventId, m.orderingKey])).toEqual([
          ['cart.paid', row!.id, cartId],
          ['cart.paid', row!.id, cartId],
        ]);
        // Two messages to Pub/Sub, the first being the one whose answer was lost; the outbox
        // records the retry's.
        expect(copies.map((m) => m.messageId)).toEqual([
          first.find((m) => m.attributes.cartId === cartId)!.messageId,
          row!.message_id,
        ]);
      }
      expect(await faults.outbox('failed')).toEqual([]);
      record('9. Pub/Sub answer lost', {
        fault: ':publish published, its answer withheld, then cut off (pass)',
        webhookAnswers: webhookAnswers(events),
        finalCarts,
        published: `${tally(carts.map(() => 'cart.paid'))}; each twice, one eventId`,
        fiveXxAfterRecovery: `${afterRecovery(events, 0)}, fault included`,
      });
    });
  });

  describe('Postgres stalled', () => {
    it('8. Postgres stopped (SIGSTOP) while 20 paid sessions are delivered and retried: after SIGCONT all paid, each cart.paid once, no 5xx', {
      timeout: 180_000,
    }, async () => {
      const paying = await cartsInCheckout('pgstall', 20);
      const sessions = paying.map((p) => p.checkout.sessionId);
      const stalled = await stallPostgres(faults.postgresDataDir);
      onTestFinished(() => stalled.resume());
      await Promise.all(sessions.map((id) => faults.standin.pay(id, 'paid')));
      // Every delivery met the stall (no answer, or a 5xx) and is being retried.
      await expect
        .poll(
          async () => {
            const events = await faults.standin.eventsOf(sessions);
            return events.filter((e) => e.delivery.status === 'retrying' && e.delivery.attempts.length > 0).length;
          },
          { timeout: 60_000, interval: 200 },
        )
        .toBe(20);
      expect((await faults.standin.eventsOf(sessions)).filter((e) => e.delivery.status === 'delivered')).toEqual([]);
      const recoveredAt = Date.now();
      stalled.resume();

      const events = await deliveredEvents(sessions, 20);
      const finalCarts = await expectCarts(paying, 'paid');
      await untilOutboxDrained(paying.map((p) => p.cart.id));
      const published = await expectPublished(new Map(paying.map((p) => [p.cart.id, ['cart.paid']])));
      expect(await faults.outbox('failed')).toEqual([]);
      record('8. Postgres stalled', {
        fault: `SIGSTOP postmaster + ${stalled.pids.length - 1} children until all 20 deliveries failed once, then SIGCONT`,
        webhookAnswers: `${webhookAnswers(events)} (${tally(events.map((e) => `${e.delivery.attempts.length} attempts`))})`,
        finalCarts,
        published,
        fiveXxAfterRecovery: afterRecovery(events, recoveredAt),
      });
    });
  });
});
