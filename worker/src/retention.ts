import type { Sql } from './db.ts';
import { unpublished } from './outbox.ts';

/** Rows each run removes or blanks at most, per kind: a run stays short, a backlog drains over runs. */
export const RETENTION_BATCH = 500;

export interface RetentionReport {
  outboxDeleted: number;
  eventsDeleted: number;
  emailsBlanked: number;
}

/**
 * Forgets what we no longer need `days` after it happened (RETENTION_DAYS, at least 30), in one
 * round trip (a statement for each kind) and bounded batches:
 *
 * - outbox rows published or discarded that long ago (Pub/Sub has the event, or an operator
 *   gave it up; unpublished rows are kept, whatever their age, until then);
 * - processed payment events received that long ago. Their ids are what makes a replayed event
 *   a no-op, so they are kept well past the time Stripe may still send one: Stripe retries a
 *   delivery for up to three days (https://docs.stripe.com/webhooks#automatic-retries) and
 *   lists undelivered events for 30 days (https://docs.stripe.com/api/events/list), and
 *   RETENTION_DAYS is never under 30;
 * - the customer's email on checkouts of carts unchanged for that long (the rest of the order
 *   stays for the shopper's history), unless one of the cart's events still waits to be
 *   published: the notification needs the address.
 */
export async function forgetExpiredData(sql: Sql, days: number): Promise<RetentionReport> {
  const older = 'now() - make_interval(days => $1)';
  /** How many rows `change` touched, as one statement of the batch. */
  const counted = (change: string) =>
    sql.query(`WITH changed AS (${change} RETURNING 1) SELECT count(*)::int AS n FROM changed`, [
      days,
      RETENTION_BATCH,
    ]);
  const [[outbox], [events], [emails]] = (await sql.transaction([
    counted(`DELETE FROM outbox WHERE id IN (
       (SELECT id FROM outbox WHERE published_at < ${older} ORDER BY published_at LIMIT $2)
       UNION ALL
       (SELECT id FROM outbox WHERE discarded_at < ${older} ORDER BY discarded_at LIMIT $2))`),
    counted(`DELETE FROM payment_events WHERE id IN (
       SELECT id FROM payment_events WHERE received_at < ${older} ORDER BY received_at LIMIT $2)`),
    counted(`UPDATE checkouts SET customer = jsonb_set(customer, '{email}', 'null')
       WHERE session_id IN (
         SELECT k.session_id FROM checkouts k JOIN carts c ON c.id = k.cart_id
         WHERE k.customer ->> 'email' IS NOT NULL AND k.created_at < ${older} AND c.updated_at < ${older}
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.cart_id = c.id AND ${unpublished('o')})
         ORDER BY k.created_at LIMIT $2)`),
  ])) as [{ n: number }][];
  return { outboxDeleted: outbox!.n, eventsDeleted: events!.n, emailsBlanked: emails!.n };
}
