import { log } from './log.ts';
import type { Services } from './services.ts';
import { wellFormedEvent } from './stripe-event-shape.ts';
import { effectOfEvent, HANDLED_EVENT_TYPES } from './stripe-events.ts';

// Stripe lists events of the last 30 days; one run reads at most this many pages of 100 (newest
// first), so a long outage is caught up over a few runs without one run doing it all.
const PAGES_PER_RUN = 5;

export interface LostEventsReport {
  /** Events Stripe could not deliver that had not been recorded here: applied now. */
  applied: number;
  errors: number;
}

/**
 * Applies the events Stripe could not deliver to the webhook, whatever their type: Stripe's
 * documented recovery lists them with `delivery_success=false`
 * (https://docs.stripe.com/webhooks/process-undelivered-events), including those it has given up
 * on after three days of retries. Each goes through the same fulfilment as a webhook, and an event
 * id already recorded (delivered after all, or recovered by an earlier run) is skipped: one
 * query per page finds them, so a lasting backlog of undelivered events costs little.
 */
export async function applyUndeliveredEvents(services: Services): Promise<LostEventsReport> {
  const { sql, fulfilment } = services;
  const report: LostEventsReport = { applied: 0, errors: 0 };
  let startingAfter: string | undefined;
  try {
    for (let page = 0; page < PAGES_PER_RUN; page++) {
      const list = await services.stripe.events.list({
        delivery_success: false,
        types: [...HANDLED_EVENT_TYPES],
        limit: 100,
        ...(startingAfter && { starting_after: startingAfter }),
      });
      if (list.data.length === 0) break;
      const recorded = new Set(
        (
          (await sql.query('SELECT id FROM payment_events WHERE id = ANY($1)', [list.data.map((e) => e.id)])) as {
            id: string;
          }[]
        ).map((r) => r.id),
      );
      // Oldest first within the page, as they happened (the outcome does not depend on it).
      for (const event of list.data.filter((e) => !recorded.has(e.id)).reverse()) {
        try {
          // Checked as the webhook checks it: a field of another type is logged here, not stored.
          const effect = effectOfEvent(wellFormedEvent(event), 'reconcile');
          if (!effect) continue;
          await fulfilment.apply(effect);
          report.applied++;
        } catch (err) {
          report.errors++;
          log.error('lost_event_not_applied', { eventId: event.id, error: err });
        }
      }
      if (!list.has_more) break;
      startingAfter = list.data.at(-1)!.id;
    }
  } catch (err) {
    // Stripe unreachable or failing: the next run lists them again.
    report.errors++;
    log.error('lost_events_not_listed', { error: err });
  }
  return report;
}
