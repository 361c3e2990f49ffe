import { beforeAll, describe, expect, it } from 'vitest';
import { forgetExpiredData, RETENTION_BATCH } from '../src/retention.ts';
import { runScheduled } from '../src/scheduled.ts';
import { db, publishOutboxBacklog } from './helpers.ts';
import { checkedOutCart, deliver, eventsFor, outboxOf, stripeEnv } from './stripe-helpers.ts';

// A retention of its own, so the scheduled runs of other test files (90 days) never touch
// the rows these tests age.
const DAYS = 35;
const env = { ...stripeEnv, RETENTION_DAYS: String(DAYS) };

/** A paid cart whose payment event is published, everything about it dated `age` days back. */
async function paidCartAged(age: number, opts: { published: boolean } = { published: true }) {
  const state = await checkedOutCart();
  const paid = eventsFor(state).completedPaid();
  // Waits for its publishing, which would otherwise stamp the row after it is aged.
  expect((await deliver(paid, { env: stripeEnv })).status).toBe(200);
  const sql = db();
  await sql.transaction([
    sql.query(
      `UPDATE outbox SET created_at = now() - make_interval(days => $2),
         published_at = CASE WHEN $3 THEN now() - make_interval(days => $2) END,
         failed_at = CASE WHEN $3 THEN NULL ELSE now() END, claimed_until = NULL
       WHERE cart_id = $1`,
      [state.cartId, age, opts.published],
    ),
    sql.query(`UPDATE payment_events SET received_at = now() - make_interval(days => $2) WHERE cart_id = $1`, [
      state.cartId,
      age,
    ]),
    sql.query(`UPDATE checkouts SET created_at = now() - make_interval(days => $2) WHERE cart_id = $1`, [
      state.cartId,
      age,
    ]),
    sql.query(`UPDATE carts SET updated_at = now() - make_interval(days => $2) WHERE id = $1`, [state.cartId, age]),
  ]);
  return { ...state, paidEventId: paid.id };
}

async function facts(cartId: string) {
  const [row] = (await db().query(
    `SELECT (SELECT count(*) FROM outbox WHERE cart_id = $1)::int AS outbox,
            (SELECT count(*) FROM payment_events WHERE cart_id = $1)::int AS events,
            (SELECT customer FROM checkouts WHERE cart_id = $1) AS customer,
            (SELECT status FROM carts WHERE id = $1) AS status`,
    [cartId],
  )) as [{ outbox: number; events: number; customer: { email: string | null; name: string | null }; status: string }];
  return row;
}

// The whole outbox's relay runs here: not behind what earlier files left.
beforeAll(publishOutboxBacklog);

describe('retention in the scheduled job', () => {
  it('deletes published events and processed events past RETENTION_DAYS and blanks the email, keeping the order', async () => {
    const old = await paidCartAged(DAYS + 1);
    const recent = await paidCartAged(DAYS - 1);

    const report = await runScheduled(env);
    expect(report.retention.outboxDeleted).toBeGreaterThanOrEqual(1);
    expect(report.retention.eventsDeleted).toBeGreaterThanOrEqual(1);
    expect(report.retention.emailsBlanked).toBeGreaterThanOrEqual(1);

    expect(await facts(old.cartId)).toEqual({
      outbox: 0,
      events: 0,
      customer: { email: null, name: 'Sam Shopper' },
      status: 'paid',
    });
    expect(await facts(recent.cartId)).toEqual({
      outbox: 1,
      events: 1,
      customer: { email: 'shopper@example.com', name: 'Sam Shopper' },
      status: 'paid',
    });
  });

  it('still ignores a replay of an event it keeps', async () => {
    const recent = await paidCartAged(DAYS - 1);
    await runScheduled(env);
    const replay = await deliver({ ...eventsFor(recent).completedPaid(), id: recent.paidEventId });
    expect(replay.status).toBe(200);
    expect((await outboxOf(recent.cartId)).map((o) => o.event_type)).toEqual(['cart.paid']);
  });

  it('keeps the email and the event of a cart whose payment event still waits to be published', async () => {
    const waiting = await paidCartAged(DAYS + 1, { published: false });
    await runScheduled(env);
    const kept = await facts(waiting.cartId);
    expect(kept.outbox).toBe(1);
    expect(kept.customer.email).toBe('shopper@example.com');
  });

  it('forgets an outbox row an operator discarded that long ago, and keeps one discarded since', async () => {
    const [old, recent] = [
      await paidCartAged(DAYS + 1, { published: false }),
      await paidCartAged(DAYS + 1, { published: false }),
    ];
    await db().query(
      `UPDATE outbox SET discarded_at = now() - make_interval(days => CASE WHEN cart_id = $1 THEN $3::int ELSE $4::int END)
       WHERE cart_id = ANY($2)`,
      [old.cartId, [old.cartId, recent.cartId], DAYS + 1, DAYS - 1],
    );
    await runScheduled(env);
    expect((await facts(old.cartId)).outbox).toBe(0);
    expect((await facts(recent.cartId)).outbox).toBe(1);
  });

  it(`forgets at most ${RETENTION_BATCH} rows of a kind per run; a backlog drains over runs`, async () => {
    const prefix = `evt_retention_${crypto.randomUUID().slice(0, 8)}_`;
    const backlog = RETENTION_BATCH + 20;
    await db().query(
      `INSERT INTO payment_events (id, type, source, outcome, received_at)
       SELECT $1 || n, 'checkout.session.completed', 'webhook', 'unknown_cart', now() - make_interval(days => $3)
       FROM generate_series(1, $2) AS n`,
      [prefix, backlog, DAYS + 2],
    );
    const left = async () =>
      (
        (await db().query('SELECT count(*)::int AS n FROM payment_events WHERE id LIKE $1', [`${prefix}%`])) as [
          { n: number },
        ]
      )[0].n;

    const first = await forgetExpiredData(db(), DAYS);
    expect(first.eventsDeleted).toBe(RETENTION_BATCH);
    expect(await left()).toBe(backlog - RETENTION_BATCH);
    await forgetExpiredData(db(), DAYS);
    expect(await left()).toBe(0);
  });
});
