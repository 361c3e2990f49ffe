import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import Stripe from 'stripe';
import { StripeApiError } from './errors.ts';
import { type LoggedEvent, thinNotification } from './events.ts';

// Sends events to the webhook endpoint as Stripe does: a JSON POST signed with `Stripe-Signature`
// (made by Stripe's own library, so the Worker's verification meets the real format), retried
// with backoff after a network error or any non-2xx answer (redirects included). Unlike Stripe,
// events of one session are delivered strictly in order: the next one waits until the one before
// it is delivered. An event is never dropped: after the quick retries it keeps being retried at
// the last interval until delivered or the stand-in stops, and its state is visible in the
// test controls (`GET /_standin/events`).

/**
 * - `pending`: queued, not tried yet (or waiting for an earlier event of its session)
 * - `retrying`: tried and failed, another attempt is scheduled
 * - `delivered`: the endpoint answered 2xx
 * - `lost`: created while delivery was switched off (a simulated lost webhook); resend to deliver
 * - `no_endpoint`: no webhook URL was configured when the event was created (Stripe only sends
 *   events to endpoints that existed then); resend to deliver
 */
export type DeliveryStatus = 'pending' | 'retrying' | 'delivered' | 'lost' | 'no_endpoint';

export interface DeliveryAttempt {
  at: string;
  url: string;
  /** The endpoint's HTTP status, or null when there was no answer. */
  status: number | null;
  error: string | null;
}

export interface Delivery {
  status: DeliveryStatus;
  attempts: DeliveryAttempt[];
  next_attempt_at: string | null;
}

export interface WebhookSettings {
  url: string | null;
  enabled: boolean;
  /** What the endpoint is sent, as an event destination's payload style: the snapshot event, or
   * its thin notification (https://docs.stripe.com/event-destinations#thin-events). */
  payloadStyle: 'snapshot' | 'thin';
}

export interface WebhookOptions extends WebhookSettings {
  secret: string;
  /** Waits between attempts; the last one repeats for as long as the endpoint keeps failing. */
  retryDelaysMs: readonly number[];
  /** How long an attempt waits for the endpoint's answer before it counts as failed; default 10 s. */
  attemptTimeoutMs?: number;
  log(line: string): void;
}

interface Job {
  entry: LoggedEvent;
  delivery: Delivery;
}

// Stripe gives up on an attempt the endpoint does not answer in time and retries it later: the
// delivery shows "Timed out" ("Stripe was able to establish a connection to your server, but it
// took too long for your server to provide a response",
// https://support.stripe.com/questions/webhooks-how-to-investigate-and-fix-timed-out). Stripe does
// not publish the limit; the stand-in waits 10 s.
const ATTEMPT_TIMEOUT_MS = 10_000;

export class WebhookDelivery {
  private readonly settings: WebhookSettings;
  private readonly deliveries = new Map<string, Delivery>();
  /** Per session, the events still to deliver, oldest first. */
  private readonly queues = new Map<string, Job[]>();
  private readonly closing = new AbortController();

  constructor(private readonly options: WebhookOptions) {
    this.settings = { url: options.url, enabled: options.enabled, payloadStyle: options.payloadStyle };
    // Each session's delivery in flight or waiting to retry listens for the close, and many are
    // at once when the endpoint is down: not a leak, as Node warns past 10.
    setMaxListeners(0, this.closing.signal);
  }

  configure(change: Partial<WebhookSettings>): WebhookSettings {
    Object.assign(this.settings, change);
    return this.current();
  }

  current(): WebhookSettings {
    return { ...this.settings };
  }

  /** Sends a new event after the earlier events of the same session. */
  send(entry: LoggedEvent): void {
    const { event } = entry;
    const delivery: Delivery = { status: 'pending', attempts: [], next_attempt_at: null };
    this.deliveries.set(event.id, delivery);
    if (this.settings.url === null) {
      delivery.status = 'no_endpoint';
      return;
    }
    if (!this.settings.enabled) {
      delivery.status = 'lost';
      this.options.log(`webhook ${event.id} ${event.type} lost (delivery is switched off)`);
      return;
    }
    // Stripe's count of endpoints that have yet to receive the event.
    event.pending_webhooks = 1;
    this.enqueue({ entry, delivery });
  }

  /** Sends an event again, as Stripe's "Resend" does: a duplicate delivery with a fresh signature. */
  resend(entry: LoggedEvent): Delivery {
    if (this.settings.url === null) {
      throw new StripeApiError(409, {
        type: 'invalid_request_error',
        message: 'No webhook URL is configured; set one with POST /_standin/webhooks first.',
      });
    }
    const delivery = this.delivery(entry.event.id);
    delivery.status = 'pending';
    this.enqueue({ entry, delivery });
    return delivery;
  }

  delivery(eventId: string): Delivery {
    const delivery = this.deliveries.get(eventId);
    if (!delivery) throw new Error(`no delivery record for ${eventId}`);
    return delivery;
  }

  /** Stops retrying and aborts requests in flight. */
  close(): void {
    const undelivered = [...this.queues.values()].reduce((n, jobs) => n + jobs.length, 0);
    if (undelivered > 0) this.options.log(`stopping with ${undelivered} webhook(s) not yet delivered`);
    this.closing.abort();
  }

  private enqueue(job: Job): void {
    const { sessionId } = job.entry;
    const queue = this.queues.get(sessionId);
    if (queue) {
      queue.push(job);
      return;
    }
    this.queues.set(sessionId, [job]);
    void this.drain(sessionId);
  }

  private async drain(sessionId: string): Promise<void> {
    const queue = this.queues.get(sessionId) ?? [];
    while (queue.length > 0) {
      const job = queue[0];
      for (let failures = 0; !(await this.attempt(job)); failures++) {
        const { retryDelaysMs } = this.options;
        const wait = retryDelaysMs[Math.min(failures, retryDelaysMs.length - 1)];
        job.delivery.status = 'retrying';
        job.delivery.next_attempt_at = new Date(Date.now() + wait).toISOString();
        try {
          await sleep(wait, undefined, { signal: this.closing.signal });
        } catch {
          return; // closed
        }
      }
      queue.shift();
    }
    this.queues.delete(sessionId);
  }

  /** One POST of the event; true when the endpoint accepted it. */
  private async attempt({ entry, delivery }: Job): Promise<boolean> {
    const { event } = entry;
    const url = this.settings.url;
    if (url === null || this.closing.signal.aborted) return false;
    // Stripe sends pretty-printed JSON; the signature covers these exact bytes. A thin
    // notification is signed the same way (Stripe.parseEventNotification checks it so).
    const body = this.settings.payloadStyle === 'thin' ? thinNotification(entry.thin) : event;
    const payload = JSON.stringify(body, null, 2);
    const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret: this.options.secret });
    const attempt: DeliveryAttempt = { at: new Date().toISOString(), url, status: null, error: null };
    delivery.attempts.push(attempt);
    delivery.next_attempt_at = null;
    // A timer and a listener of our own rather than AbortSignal.any([closing, AbortSignal.timeout()]):
    // on Node 20 a timeout signal referenced only by AbortSignal.any() may never fire
    // (https://github.com/nodejs/node/issues/57736), and an endpoint that never answers then holds
    // its session's deliveries for good.
    const timeoutMs = this.options.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const onClose = () => abort.abort(this.closing.signal.reason);
    this.closing.signal.addEventListener('abort', onClose, { once: true });
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          'stripe-signature': signature,
        },
        body: payload,
        redirect: 'manual',
        signal: abort.signal,
      });
      await response.body?.cancel();
      attempt.status = response.status;
    } catch (error) {
      attempt.error =
        error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    } finally {
      clearTimeout(timer);
      this.closing.signal.removeEventListener('abort', onClose);
    }
    if (attempt.status !== null && attempt.status >= 200 && attempt.status < 300) {
      delivery.status = 'delivered';
      event.pending_webhooks = 0;
      this.options.log(`webhook ${event.id} ${event.type} delivered (${attempt.status})`);
      return true;
    }
    this.options.log(
      `webhook ${event.id} ${event.type} failed (${attempt.status ?? attempt.error}), attempt ${delivery.attempts.length}`,
    );
    return false;
  }
}
