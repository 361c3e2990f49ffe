import { log } from './log.ts';
import type { Services } from './services.ts';
import { type Stripe, stripeRefused } from './stripe.ts';
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

  // Two at least: the newest page, and one of the walk.
  let pagesLeft = Math.max(2, opts.pages ?? PAGES_PER_RUN);
  /** Reads and applies one page on from `startingAfter` (the newest when null): the next page's cursor, null at the end, and how much was news. */
  const readPage = async (startingAfter: string | null) => {
    pagesLeft--;
    const list = await services.stripe.events.list({
      delivery_success: false,
      types: [...HANDLED_EVENT_TYPES],
      limit: opts.pageSize ?? PAGE_SIZE,
      ...(startingAfter && { starting_after: startingAfter }),
    });
    const news = await applyPage(list.data);
    return { next: list.has_more && list.data.length > 0 ? list.data.at(-1)!.id : null, news };
  };

  // Where the walk stands: the last event it read, or null when the next walk starts from the newest.
  let position: string | null = null;
  try {
    const [saved] = (await sql.query('SELECT starting_after FROM undelivered_events_cursor')) as {
      starting_after: string;
    }[];
    position = saved?.starting_after ?? null;
    let walk = true;
    if (position !== null) {
      // A walk is under way: recent losses first, from the newest while the pages hold news
      // (one page kept for the walk). Reaching the end that way leaves nothing to walk.
      let page = await readPage(null);
      while (page.next !== null && page.news > 0 && pagesLeft > 1) page = await readPage(page.next);
      if (page.next === null) [position, walk] = [null, false];
    }
    // Each page read moves the position, so a failure keeps what was done.
    while (walk && pagesLeft > 0) {
      position = (await readPage(position)).next;
      walk = position !== null;
    }
  } catch (err) {
    // Stripe unreachable or failing: the next run goes on from where this one got to. An event
    // Stripe no longer lists (older than 30 days) cannot be gone on from: the walk starts afresh.
    report.errors++;
    log.error('lost_events_not_listed', { error: err });
    if (stripeRefused(err)) position = null;
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
    // The next run goes on from the position saved before, reading some pages again.
    report.errors++;
    log.error('lost_events_position_not_saved', { error: err });
  }
  return report;
}
