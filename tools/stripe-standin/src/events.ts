import { resourceMissing } from './errors.ts';
import { randomId } from './ids.ts';
import type { StandinEvent } from './objects.ts';

// Every event the stand-in has created, with the session it belongs to (webhooks are ordered
// per session, and the test controls filter by it). Kept for the life of the process (Stripe
// keeps 30 days; a stand-in run is far shorter).
//
// Each snapshot event also has its thin counterpart, as Stripe makes one for an event destination
// of thin events for API v1 resources (https://docs.stripe.com/changelog/endive/2026-09-30/thin-events-for-api-v1-resources-generally-available):
// a `v2.core.event` named `v1.<type>` that points at the object changed, and, read from
// `GET /v2/core/events/:id`, at the snapshot event (`snapshot_event`).

/** What a thin event destination is sent (https://docs.stripe.com/event-destinations#thin-events). */
export interface ThinEventNotification {
  id: string;
  object: 'v2.core.event';
  type: string;
  livemode: false;
  created: string;
  /** The connected account's, for its events; the stand-in has none. */
  context: null;
  reason: null;
  related_object: { id: string; type: string; url: string };
}

/** A thin event as `GET /v2/core/events/:id` answers it (https://docs.stripe.com/api/v2/core/events/object). */
export interface ThinEvent extends ThinEventNotification {
  changes: null;
  snapshot_event: string;
}

export interface LoggedEvent {
  event: StandinEvent;
  sessionId: string;
  thin: ThinEvent;
}

// The API path of each object type the stand-in's events are about.
const OBJECT_PATHS: Record<string, string> = {
  'checkout.session': 'checkout/sessions',
  charge: 'charges',
  dispute: 'disputes',
};

export class EventLog {
  private readonly entries: LoggedEvent[] = [];
  private readonly byId = new Map<string, LoggedEvent>();
  private readonly byThinId = new Map<string, LoggedEvent>();

  add(event: StandinEvent, sessionId: string): LoggedEvent {
    const entry = { event, sessionId, thin: thinCounterpart(event) };
    this.entries.push(entry);
    this.byId.set(event.id, entry);
    this.byThinId.set(entry.thin.id, entry);
    return entry;
  }

  entry(id: string): LoggedEvent {
    const entry = this.byId.get(id);
    if (!entry) throw resourceMissing('event', id, 'id');
    return entry;
  }

  get(id: string): StandinEvent {
    return this.entry(id).event;
  }

  thin(id: string): ThinEvent {
    const entry = this.byThinId.get(id);
    if (!entry) throw resourceMissing('event', id, 'id');
    return entry.thin;
  }

  /** Oldest first, the order they happened in. */
  all(): readonly LoggedEvent[] {
    return this.entries;
  }

  /** Newest first, the order of Stripe's list endpoints. */
  newestFirst(): StandinEvent[] {
    return this.entries.map((e) => e.event).reverse();
  }
}

/** The notification alone, without what only the v2 API's answer holds. */
export function thinNotification({ changes, snapshot_event, ...notification }: ThinEvent): ThinEventNotification {
  return notification;
}

function thinCounterpart(event: StandinEvent): ThinEvent {
  const object = event.data.object as { id: string; object: string };
  return {
    // v2 event ids are longer than v1's and carry the mode (`evt_test_65…`).
    id: randomId('evt_test_65', 50),
    object: 'v2.core.event',
    type: `v1.${event.type}`,
    livemode: false,
    created: new Date(event.created * 1000).toISOString(),
    related_object: {
      id: object.id,
      type: object.object,
      url: `/v1/${OBJECT_PATHS[object.object] ?? `${object.object}s`}/${object.id}`,
    },
    context: null,
    reason: null,
    changes: null,
    snapshot_event: event.id,
  };
}
