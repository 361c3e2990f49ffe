import { log } from './log.ts';
import type { Services } from './services.ts';
import { type Stripe, stripeRefused } from './stripe.ts';
import { wellFormedEvent } from './stripe-event-shape.ts';
import { effectOfEvent, HANDLED_EVENT_TYPES } from './stripe-events.ts';

// Stripe lists events of the last 30 days, newest first. One run reads at most this many pages of
// 100 in two passes, each going on from where the last run's stopped (undelivered_events_cursor):
// the news, from the newest event a run has read towards the newest (`ending_before`), and a walk
// through all of them (`starting_after`), back to the newest once at the end. Events listed stay
// listed once applied (Stripe still counts them undelivered), so starting from the newest every
// time would never get past the first pages; the walk finds those the news pass could not
// (listed late, or failed when it read them).
const PAGES_PER_RUN = 5;
const PAGE_SIZE = 100;

export interface LostEventsReport {
  /** Events Stripe could not deliver that had not been recorded here: recorded now. */
  applied: number;
  errors: number;
}

/** Where each pass stands: ids of events Stripe lists, or null (no news mark yet; the walk starts from the newest). */
interface Marks {
  newestRead: string | null;
  walk: string | null;
}

/**
 * Applies the events Stripe could not deliver to the webhook, of every type it handles
 * (HANDLED_EVENT_TYPES: refunds and disputes as well as sessions): Stripe's documented recovery
 * lists them with `delivery_success=false`
 * (https://docs.stripe.com/webhooks/process-undelivered-events), including those it has given up
 * on after three days of retries. Each goes through the same fulfilment as a webhook, and an event
 * id already recorded (delivered after all, or recovered by an earlier run) is skipped: one
 * query per page finds them, so a lasting backlog of undelivered events costs little.
 *
 * The news comes first, oldest first, with all pages but one: `ending_before` the newest event
 * read lists the page just newer than it, `has_more` saying whether there are newer still
 * (https://docs.stripe.com/api/pagination). Without that mark (a first run, or one Stripe refuses
 * as it no longer lists its event), the news is read from the newest while the pages hold some.
 * The page left, at least, goes on with the walk (`starting_after`). Never throws: what fails is
 * counted and logged, and the scheduled job goes on.
 */
export async function applyUndeliveredEvents(
  services: Services,
  opts: { pages?: number; pageSize?: number } = {},
): Promise<LostEventsReport> {
  const { sql, fulfilment } = services;
  const report: LostEventsReport = { applied: 0, errors: 0 };

  /** Applies what a page lists that is not recorded yet, oldest first, as they happened; whether there was any. */
  const applyPage = async (events: Stripe.Event[]): Promise<boolean> => {
    // An empty page (the usual case: nothing undelivered) has nothing to look up.
    if (events.length === 0) return false;
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
        // Another run may have recorded it since this one looked.
        const result = await fulfilment.apply(effect);
        if (result.outcome === 'duplicate') continue;
        report.applied++;
        // Stripe could not deliver it: the webhook endpoint failed, or is disabled (§5 of
        // docs/operations.md says what to do), and any cart it moved moved late.
        log.warn('lost_event_applied', { eventId: event.id, type: event.type, cartId: result.cartId });
      } catch (err) {
        report.errors++;
        log.error('lost_event_not_applied', { eventId: event.id, error: err });
      }
    }
    return news.length > 0;
  };

  // Two at least: one of news, and one of the walk.
  let pagesLeft = Math.max(2, opts.pages ?? PAGES_PER_RUN);
  /** Reads and applies one page: the events listed, newest first, whether the list goes on past them, and whether it held news. */
  const readPage = async (cursor: { starting_after: string } | { ending_before: string } | null) => {
    pagesLeft--;
    const list = await services.stripe.listUndeliveredEvents(HANDLED_EVENT_TYPES, {
      limit: opts.pageSize ?? PAGE_SIZE,
      ...cursor,
    });
    return { ...list, news: await applyPage(list.data) };
  };

  let marks: Marks;
  let saved: Marks;
  try {
    marks = await readMarks(sql);
    saved = { ...marks };
  } catch (err) {
    report.errors++;
    log.error('lost_events_not_listed', { error: err });
    return report;
  }
  // Each page read moves its mark, so a failure keeps what was done.
  try {
    for (let more = marks.newestRead !== null; more && pagesLeft > 1; ) {
      const page = await readPage({ ending_before: marks.newestRead! });
      if (page.data.length > 0) marks.newestRead = page.data[0]!.id;
      more = page.has_more;
    }
  } catch (err) {
    if (listingFailed(report, err, marks.newestRead)) {
      marks.newestRead = null;
      // Refused at once, the page read nothing: it is not taken from the walk's.
      pagesLeft++;
    }
  }
  try {
    if (marks.newestRead === null) {
      // No mark (a first run, or Stripe no longer lists the event it named): from the newest while
      // the pages hold news.
      let page = await readPage(null);
      marks.newestRead = page.data[0]?.id ?? null;
      while (page.news && page.has_more && pagesLeft > 1)
        page = await readPage({ starting_after: page.data.at(-1)!.id });
      // Read to the end of the list from the newest: the walk has nothing left to find this run.
      if (!page.has_more && marks.walk === null) pagesLeft = 0;
      // What lies beyond is the walk's. News still there goes first: the walk goes on from it, and
      // reads to the end of the list, so nothing its old place had ahead of it is skipped.
      if (page.has_more && (page.news || marks.walk === null)) marks.walk = page.data.at(-1)!.id;
    }
  } catch (err) {
    listingFailed(report, err, null);
  }
  try {
    while (pagesLeft > 0) {
      const page = await readPage(marks.walk === null ? null : { starting_after: marks.walk });
      // At the end, the next walk starts from the newest.
      marks.walk = page.has_more && page.data.length > 0 ? page.data.at(-1)!.id : null;
      if (marks.walk === null) break;
    }
  } catch (err) {
    if (listingFailed(report, err, marks.walk)) marks.walk = null;
  }
  try {
    if (marks.newestRead !== saved.newestRead || marks.walk !== saved.walk) await saveMarks(sql, marks);
  } catch (err) {
    // The next run goes on from the marks saved before, reading some pages again.
    report.errors++;
    log.error('lost_events_position_not_saved', { error: err });
  }
  return report;
}

/**
 * A page not listed. True when `mark`, the event the page was to go on from, cannot be gone on
 * from, as Stripe no longer lists it (delivered after all, or older than 30 days): the pass then
 * starts again from the newest, which is routine, not a failure. Otherwise Stripe was
 * unreachable or failing, and the next run goes on from where this one got to.
 */
function listingFailed(report: LostEventsReport, err: unknown, mark: string | null): boolean {
  if (mark !== null && stripeRefused(err)) {
    log.info('lost_events_mark_reset', { mark, error: err });
    return true;
  }
  report.errors++;
  log.error('lost_events_not_listed', { error: err });
  return stripeRefused(err);
}

async function readMarks(sql: Services['sql']): Promise<Marks> {
  const [saved] = (await sql.query('SELECT newest_read, starting_after FROM undelivered_events_cursor')) as {
    newest_read: string | null;
    starting_after: string | null;
  }[];
  return { newestRead: saved?.newest_read ?? null, walk: saved?.starting_after ?? null };
}

async function saveMarks(sql: Services['sql'], marks: Marks): Promise<void> {
  await sql.query(
    `INSERT INTO undelivered_events_cursor (newest_read, starting_after) VALUES ($1, $2)
     ON CONFLICT (one) DO UPDATE SET newest_read = EXCLUDED.newest_read, starting_after = EXCLUDED.starting_after,
                                     updated_at = now()`,
    [marks.newestRead, marks.walk],
  );
}
