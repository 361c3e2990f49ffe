import { resourceMissing } from './errors.ts';
import type { StandinEvent } from './objects.ts';

// Every event the stand-in has created, with the session it belongs to (webhooks are ordered
// per session, and the test controls filter by it). Kept for the life of the process (Stripe
// keeps 30 days; a stand-in run is far shorter).

export interface LoggedEvent {
  event: StandinEvent;
  sessionId: string;
}

export class EventLog {
  private readonly entries: LoggedEvent[] = [];
  private readonly byId = new Map<string, LoggedEvent>();

  add(event: StandinEvent, sessionId: string): void {
    const entry = { event, sessionId };
    this.entries.push(entry);
    this.byId.set(event.id, entry);
  }

  entry(id: string): LoggedEvent {
    const entry = this.byId.get(id);
    if (!entry) throw resourceMissing('event', id, 'id');
    return entry;
  }

  get(id: string): StandinEvent {
    return this.entry(id).event;
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
