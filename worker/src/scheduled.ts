import { reconcileSession } from './checkout.ts';
import type { Env } from './env.ts';
import { log } from './log.ts';
import { applyUndeliveredEvents, type LostEventsReport } from './lost-events.ts';
import { type RelayReport, relayOutbox } from './outbox.ts';
import { forgetExpiredData, type RetentionReport } from './retention.ts';
import { requestServices } from './services.ts';

const RECONCILE_BATCH = 25;
// A session still pending this long after it started has probably lost its webhook.
const PENDING_GRACE_MINUTES = 10;
// Delayed payments settle within days: each one waiting is read back about once an hour.
const AWAITING_RECHECK_MINUTES = 60;
// A session whose read-back keeps failing waits longer each time, up to this.
const FAILURE_BACKOFF_MAX_MINUTES = 6 * 60;

export interface ScheduledReport {
  reconciled: number;
  reconcileErrors: number;
  lostEvents: LostEventsReport;
  outbox: RelayReport;
  retention: RetentionReport;
}

/**
 * The cron job: reads back from Stripe the sessions whose webhooks may have been lost
 * (checkout_pending carts past their expiry or quiet for too long, awaiting_payment carts whose
 * delayed payment may have settled) and applies them as their webhooks would have; applies the
 * events of any kind that Stripe could not deliver (lost-events.ts); then publishes whatever is
 * still waiting in the outbox, oldest first; and forgets what is older than RETENTION_DAYS
 * (retention.ts).
 *
 * Every session read is stamped, failed or not, and the least recently read go first; one
 * that keeps failing backs off. So sessions that cannot be read never starve the others.
 */
export async function runScheduled(env: Env): Promise<ScheduledReport> {
  // No waitUntil publishing: the relay below publishes what reconciling wrote.
  const services = requestServices(env, () => null);
  const { sql, fulfilment: f } = services;
  const report: ScheduledReport = {
    reconciled: 0,
    reconcileErrors: 0,
    lostEvents: { applied: 0, errors: 0 },
    outbox: { claimed: 0, published: 0, retrying: 0, failed: 0 },
    retention: { outboxDeleted: 0, eventsDeleted: 0, emailsBlanked: 0 },
  };

  const due = (await sql.query(
    `SELECT k.session_id FROM carts c JOIN checkouts k ON k.session_id = c.checkout_session_id
     WHERE ((c.status = 'checkout_pending' AND (k.expires_at < now() OR k.created_at < now() - make_interval(mins => $1)))
            OR c.status = 'awaiting_payment')
       AND (k.reconciled_at IS NULL OR k.reconciled_at < now() - make_interval(mins => CASE
              -- Capped exponent: power() raises an error past 2^1023 rather than growing.
              WHEN k.reconcile_failures > 0 THEN LEAST($1 * power(2, LEAST(k.reconcile_failures - 1, 30)), $3)::int
              WHEN c.status = 'awaiting_payment' THEN $2
              ELSE $1 END))
     ORDER BY k.reconciled_at NULLS FIRST, k.expires_at LIMIT $4`,
    [PENDING_GRACE_MINUTES, AWAITING_RECHECK_MINUTES, FAILURE_BACKOFF_MAX_MINUTES, RECONCILE_BATCH],
  )) as { session_id: string }[];
  const failed: string[] = [];
  if (due.length > 0) {
    for (const { session_id } of due) {
      try {
        await reconcileSession(f, services.stripe, session_id);
      } catch (err) {
        failed.push(session_id);
        log.error('reconcile_failed', { sessionId: session_id, error: err });
      }
    }
    await sql.query(
      `UPDATE checkouts SET reconciled_at = now(),
         reconcile_failures = CASE WHEN session_id = ANY($2) THEN reconcile_failures + 1 ELSE 0 END
       WHERE session_id = ANY($1)`,
      [due.map((d) => d.session_id), failed],
    );
  }
  report.reconciled = due.length - failed.length;
  report.reconcileErrors = failed.length;
  report.lostEvents = await applyUndeliveredEvents(services);

  report.outbox = await relayOutbox(env, sql);
  report.retention = await forgetExpiredData(sql, services.config.required('RETENTION_DAYS'));
  log.info('scheduled', { ...report });
  return report;
}
