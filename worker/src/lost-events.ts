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
 * A run reads from the newest while the pages hold news, so recent losses never wait behind the
 * walk, then spends what is left of its pages (one at least) going on from where the last run
 * stopped (`starting_after`, https://docs.stripe.com/api/pagination). Never throws: what fails is
 * counted and logged, and the scheduled job goes on.
 */
export async function applyUndeliveredEvents(
  services: Services,
  opts: { pages?: number; pageSize?: number } = {},
): Promise<LostEventsReport> {
  const { sql, fulfilment } = services;
  const report: LostEventsReport = { applied: 0, errors: 0 };
  // Two at least: the newest page, and one of the walk.
  const pages = Math.max(2, opts.pages ?? PAGES_PER_RUN);

  /** Applies what a page lists that is not recorded yet, oldest first, as they happened; how many that was. */
  const applyPage = async (events: Stripe.Event[]): Promise<number> => {
    const recorded = new Set(
      (
        (await sql.query('SELECT id FROM payment_events WHERE id = ANY($1)', [events.map((e) => e.id)])) as {
          id: string;
        }[]
      ).map((r) => r.id),
    );
    const news = events.filter((e) => !recorded.has(e.id));
    for (const event of news.reverse()) {
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
    return news.length;
  };

  const list = (startingAfter: string | null) =>
    services.stripe.events.list({
      delivery_success: false,
      types: [...HANDLED_EVENT_TYPES],
      limit: opts.pageSize ?? PAGE_SIZE,
      ...(startingAfter && { starting_after: startingAfter }),
    });

  // Where the walk stands: the last event it read, or null when the next walk starts from the newest.
  let position: string | null = null;
  let used = 0;
  try {
    const [saved] = (await sql.query('SELECT starting_after FROM undelivered_events_cursor')) as {
      starting_after: string;
    }[];
    position = saved?.starting_after ?? null;
    // From the newest: without a walk under way this is the walk; with one, it stops at a page of no news.
    let at: string | null = null;
    const walking = position === null;
    while (used < (walking ? pages : pages - 1)) {
      const page = await list(at);
      used++;
      const news = await applyPage(page.data);
      at = page.has_more && page.data.length > 0 ? page.data.at(-1)!.id : null;
      if (walking) position = at;
      if (at === null || (!walking && news === 0)) break;
    }
    // The newest pages reached the end: nothing is left to walk.
    if (!walking && at === null) position = null;
    // Then the walk goes on with the pages left.
    if (!walking) {
      while (position !== null && used < pages) {
        const page = await list(position);
        used++;
        await applyPage(page.data);
        position = page.has_more && page.data.length > 0 ? page.data.at(-1)!.id : null;
      }
    }
  } catch (err) {
    // Stripe unreachable or failing: the next run goes on from where this one got to. An event
    // Stripe no longer lists (older than 30 days) cannot be gone on from: the walk starts afresh.
    report.errors++;
    log.error('lost_events_not_listed', { error: err });
    if (err instanceof Stripe.errors.StripeInvalidRequestError) position = null;
  }
  try {
    await sql.query(
      position === null
        ? 'DELETE FROM undelivered_events_cursor'
        : `INSERT INTO undelivered_events_cursor (starting_after) VALUES ($1)
           ON CONFLICT (one) DO UPDATE SET starting_after = EXCLUDED.starting_after, updated_at = now()`,
      position === null ? [] : [position],
    );
  } catch (err) {
    // The next run walks from where the last saved position says, doing some pages again.
    report.errors++;
    log.error('lost_events_not_listed', { error: err });
  }
  return report;
}
