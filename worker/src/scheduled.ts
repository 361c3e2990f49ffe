import { reconcileSession } from './checkout.ts';
import { cappedBackoff } from './db.ts';
import type { Env } from './env.ts';
import { log } from './log.ts';
import { applyUndeliveredEvents, type LostEventsReport } from './lost-events.ts';
import { type RelayReport, relayOutbox } from './outbox.ts';
import { forgetExpiredData, type RetentionReport } from './retention.ts';
import { requestServices, type Services } from './services.ts';

const RECONCILE_BATCH = 25;
// No new session is read back after this much of a run, counted from its start (listing
// Stripe's undelivered events comes first and can take as long): with Stripe slow to answer
// (10 s a call, retried twice) 25 sessions would take most of a cron run's 15 minutes, and the
// outbox and retention come after them.
const RECONCILE_BUDGET_MS = 60_000;
// A session still pending this long after it started has probably lost its webhook.
const PENDING_GRACE_MINUTES = 10;
// Delayed payments settle within days: each one waiting is read back about once an hour.
const AWAITING_RECHECK_MINUTES = 60;
// A session whose read-back keeps failing waits longer each time, up to this.
const FAILURE_BACKOFF_MAX_MINUTES = 6 * 60;

export interface ScheduledReport {
  reconciled: number;
  reconcileErrors: number;
  /** Parts of the run that failed as a whole (logged as scheduled_part_failed); the others ran. */
  failedParts: string[];
  lostEvents: LostEventsReport;
  outbox: RelayReport;
  retention: RetentionReport;
}

/**
 * The cron job: applies the events of every type the webhook handles that Stripe could not
 * deliver (lost-events.ts); reads back from Stripe the sessions whose webhooks may still be
 * missing (checkout_pending carts past their expiry or quiet for too long, awaiting_payment carts
 * whose delayed payment may have settled) and applies them as their webhooks would have; then
 * publishes whatever is still waiting in the outbox, oldest first; and forgets what is older than
 * RETENTION_DAYS (retention.ts).
 *
 * Every session read is stamped, failed or not, and the least recently read go first; one
 * that keeps failing backs off. So sessions that cannot be read never starve the others.
 */
export async function runScheduled(env: Env, opts: { reconcileBudgetMs?: number } = {}): Promise<ScheduledReport> {
  const readBackUntil = Date.now() + (opts.reconcileBudgetMs ?? RECONCILE_BUDGET_MS);
  // No waitUntil publishing: the relay below publishes what reconciling wrote.
  const services = requestServices(env, () => null);
  const report: ScheduledReport = {
    reconciled: 0,
    reconcileErrors: 0,
    failedParts: [],
    lostEvents: { applied: 0, errors: 0 },
    outbox: { claimed: 0, published: 0, retrying: 0, failed: 0 },
    retention: { outboxDeleted: 0, eventsDeleted: 0, emailsBlanked: 0 },
  };

  // Each part on its own: one failing (the database refusing a query, a setting missing) is
  // logged, and the parts after it still run.
  const contained = async <T>(part: string, work: () => Promise<T>, otherwise: T): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      report.failedParts.push(part);
      log.error('scheduled_part_failed', { part, error: err });
      return otherwise;
    }
  };

  // Stripe's own events first: they say when things happened. A session read back says only
  // what it is now, so what it settles is published as happening at the reading.
  report.lostEvents = await contained('lostEvents', () => applyUndeliveredEvents(services), report.lostEvents);
  const reconciled = await contained('reconcile', () => reconcileDue(services, readBackUntil), {
    reconciled: 0,
    reconcileErrors: 0,
  });
  Object.assign(report, reconciled);
  report.outbox = await contained('outbox', () => relayOutbox(env, services.sql), report.outbox);
  report.retention = await contained(
    'retention',
    () => forgetExpiredData(services.sql, services.config.required('RETENTION_DAYS')),
    report.retention,
  );
  log.info('scheduled', { ...report });
  return report;
}

/**
 * Reads back from Stripe the sessions due (least recently read first, at most RECONCILE_BATCH,
 * none started after `until`) and applies them; stamps every session read.
 */
async function reconcileDue(
  services: Services,
  until: number,
): Promise<{ reconciled: number; reconcileErrors: number }> {
  const { sql, fulfilment: f } = services;
  const due = (await sql.query(
    `SELECT k.session_id FROM carts c JOIN checkouts k ON k.session_id = c.checkout_session_id
     -- The two payment-pending statuses, each with its own condition: a checkout_pending session
     -- is due once past its expiry or $1 minutes after it started.
     WHERE ((c.status = 'checkout_pending' AND (k.expires_at < now() OR k.created_at < now() - make_interval(mins => $1)))
            OR c.status = 'awaiting_payment')
       AND (k.reconciled_at IS NULL OR k.reconciled_at < now() - make_interval(mins => CASE
              WHEN k.reconcile_failures > 0 THEN ${cappedBackoff('$1', 'k.reconcile_failures', '$3')}::int
              WHEN c.status = 'awaiting_payment' THEN $2
              ELSE $1 END))
     ORDER BY k.reconciled_at NULLS FIRST, k.expires_at LIMIT $4`,
    [PENDING_GRACE_MINUTES, AWAITING_RECHECK_MINUTES, FAILURE_BACKOFF_MAX_MINUTES, RECONCILE_BATCH],
  )) as { session_id: string }[];
  const read: string[] = [];
  const failed: string[] = [];
  for (const { session_id } of due) {
    if (Date.now() >= until) break;
    read.push(session_id);
    try {
      await reconcileSession(f, services.stripe, session_id);
    } catch (err) {
      failed.push(session_id);
      log.error('reconcile_failed', { sessionId: session_id, error: err });
    }
  }
  if (read.length > 0) {
    await sql.query(
      `UPDATE checkouts SET reconciled_at = now(),
         reconcile_failures = CASE WHEN session_id = ANY($2) THEN reconcile_failures + 1 ELSE 0 END
       WHERE session_id = ANY($1)`,
      [read, failed],
    );
  }
  return { reconciled: read.length - failed.length, reconcileErrors: failed.length };
}
