import { log } from './log.ts';
import type { Services } from './services.ts';
import { Stripe } from './stripe.ts';
import { wellFormedEvent } from './stripe-event-shape.ts';
import { effectOfEvent, HANDLED_EVENT_TYPES } from './stripe-events.ts';

// Stripe lists events of the last 30 days, newest first. One run reads at most this many pages of
// 100 and the next goes on from where it stopped (undelivered_events_cursor), back to the newest
// once it has read to the end: a long outage is caught up over a few runs, none doing it all.
// Events listed stay listed once applied (Stripe still counts them undelivered), so starting from
// the newest every time would never get past the first pages.
const PAGES_PER_RUN = 5;
const PAGE_SIZE = 100;

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
 *
 * A run reads the newest page first, so today's lost events never wait behind the walk, then
 * spends the rest of its pages going on from where the last run stopped (`starting_after`).
 */
export async function applyUndeliveredEvents(
  services: Services,
  opts: { pages?: number; pageSize?: number } = {},
): Promise<LostEventsReport> {
  const { sql, fulfilment } = services;
  const report: LostEventsReport = { applied: 0, errors: 0 };
  const pages = opts.pages ?? PAGES_PER_RUN;
  const [saved] = (await sql.query('SELECT starting_after FROM undelivered_events_cursor')) as {
    starting_after: string;
  }[];

  /** Applies what a page lists that is not recorded yet, oldest first, as they happened. */
  const applyPage = async (events: Stripe.Event[]) => {
    const recorded = new Set(
      (
        (await sql.query('SELECT id FROM payment_events WHERE id = ANY($1)', [events.map((e) => e.id)])) as {
          id: string;
        }[]
      ).map((r) => r.id),
    );
    for (const event of events.filter((e) => !recorded.has(e.id)).reverse()) {
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
  };

  // Where the walk stands: the last event it read, or null once it has read to the end.
  let position: string | null = saved?.starting_after ?? null;
  /**
   * Reads up to `count` pages on from `from` (the newest when null): where it stopped, null at the
   * end. With `walking`, each page read moves `position`, so a failure keeps what was done.
   */
  const walk = async (from: string | null, count: number, walking: boolean): Promise<string | null> => {
    let at = from;
    for (let page = 0; page < count; page++) {
      const list = await services.stripe.events.list({
        delivery_success: false,
        types: [...HANDLED_EVENT_TYPES],
        limit: opts.pageSize ?? PAGE_SIZE,
        ...(at && { starting_after: at }),
      });
      await applyPage(list.data);
      if (!list.has_more || list.data.length === 0) return null;
      at = list.data.at(-1)!.id;
      if (walking) position = at;
    }
    return at;
  };

  try {
    if (position === null) position = await walk(null, pages, true);
    else {
      // A list that fits in the newest page has no older part left to walk.
      const newest = await walk(null, 1, false);
      position = newest === null ? null : await walk(position, pages - 1, true);
    }
  } catch (err) {
    // Stripe unreachable or failing: the next run goes on from where this one got to. An event
    // Stripe no longer lists (older than 30 days) cannot be gone on from: the walk starts afresh.
    report.errors++;
    log.error('lost_events_not_listed', { error: err });
    if (err instanceof Stripe.errors.StripeInvalidRequestError) position = null;
  }
  await sql.query(
    position === null
      ? 'DELETE FROM undelivered_events_cursor'
      : `INSERT INTO undelivered_events_cursor (starting_after) VALUES ($1)
         ON CONFLICT (one) DO UPDATE SET starting_after = EXCLUDED.starting_after, updated_at = now()`,
    position === null ? [] : [position],
  );
  return report;
}
