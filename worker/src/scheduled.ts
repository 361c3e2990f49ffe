import { reconcileSession } from './checkout.ts';
import { fulfilment } from './fulfilment.ts';
import type { Env } from './env.ts';
import { relayOutbox, type RelayReport } from './outbox.ts';
import { stripeClient } from './stripe.ts';

const RECONCILE_BATCH = 25;
// A session still pending this long after it started has probably lost its webhook.
const PENDING_GRACE_MINUTES = 10;
// Delayed payments settle within days: each one waiting is read back about once an hour.
const AWAITING_RECHECK_MINUTES = 60;

export interface ScheduledReport {
  reconciled: number;
  reconcileErrors: number;
  outbox: RelayReport;
}

/**
 * The cron job: reads back from Stripe the sessions whose webhooks may have been lost
 * (checkout_pending carts past their expiry or quiet for too long, awaiting_payment carts whose
 * delayed payment may have settled) and applies them as their webhooks would have; then
 * publishes whatever is still waiting in the outbox, oldest first.
 */
export async function runScheduled(env: Env): Promise<ScheduledReport> {
  // No waitUntil publishing: the relay below publishes what reconciling wrote.
  const f = fulfilment(env, null);
  const { sql } = f;
  const report: ScheduledReport = { reconciled: 0, reconcileErrors: 0, outbox: { claimed: 0, published: 0, retrying: 0, failed: 0 } };

  const due = (await sql.query(
    `SELECT k.session_id FROM carts c JOIN checkouts k ON k.session_id = c.checkout_session_id
     WHERE (c.status = 'checkout_pending'
            AND (k.expires_at < now() OR k.created_at < now() - make_interval(mins => $1))
            AND (k.reconciled_at IS NULL OR k.reconciled_at < now() - make_interval(mins => $1)))
        OR (c.status = 'awaiting_payment'
            AND (k.reconciled_at IS NULL OR k.reconciled_at < now() - make_interval(mins => $2)))
     ORDER BY k.reconciled_at NULLS FIRST, k.expires_at LIMIT $3`,
    [PENDING_GRACE_MINUTES, AWAITING_RECHECK_MINUTES, RECONCILE_BATCH],
  )) as { session_id: string }[];
  const checked: string[] = [];
  if (due.length > 0) {
    const stripe = stripeClient(env);
    for (const { session_id } of due) {
      try {
        await reconcileSession(f, stripe, session_id);
        checked.push(session_id);
      } catch (err) {
        report.reconcileErrors++;
        console.error(JSON.stringify({ level: 'error', msg: 'reconcile_failed', sessionId: session_id, error: String(err) }));
      }
    }
    report.reconciled = checked.length;
    if (checked.length) await sql.query('UPDATE checkouts SET reconciled_at = now() WHERE session_id = ANY($1)', [checked]);
  }

  report.outbox = await relayOutbox(env, sql);
  console.log(JSON.stringify({ level: 'info', msg: 'scheduled', ...report }));
  return report;
}
