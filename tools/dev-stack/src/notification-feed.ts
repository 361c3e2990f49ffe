/**
 * Shows the notifications the relay publishes (docs/contract.md §6) while `npm run dev` runs: no email
 * is sent locally, so one line per notification is what a developer can check instead.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { minorUnitDigits } from '@edge-checkout/worker/money';
import type { PubSubAdmin, ReceivedMessage } from './pubsub-admin.ts';

/** `[notify] email to ada@example.com cart 3f… cart.paid 45.00 usd` */
export function formatNotification(message: ReceivedMessage): string {
  const channel = message.attributes.channel ?? 'notification';
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(message.data) as Record<string, unknown>;
  } catch {
    return `[notify] unreadable ${channel} message ${message.messageId}: ${message.data.slice(0, 200)}`;
  }
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  // What was charged (discount, shipping and tax included) once Stripe reported it; else the items' sum.
  const charged = (body.amounts as { total?: unknown } | null | undefined)?.total;
  const amount =
    typeof charged === 'number' ? charged : typeof body.totalAmount === 'number' ? body.totalAmount : undefined;
  const currency = text(body.currency);
  const money = amount === undefined ? '?' : currency ? `${majorUnits(amount, currency)} ${currency}` : String(amount);
  return `[notify] ${channel} to ${text(body.email) ?? '(no address)'} cart ${text(body.cartId) ?? '?'} ${text(body.type) ?? '?'} ${money}`;
}

/** 4500 usd → "45.00"; 500 jpy → "500" (Stripe's minor units, as many decimals as Stripe gives the currency). */
function majorUnits(amount: number, currency: string): string {
  const digits = minorUnitDigits(currency);
  return (amount / 10 ** digits).toFixed(digits);
}

const PULL_MAX = 100;

export interface NotificationFeed {
  stop(): Promise<void>;
}

/** Pulls `subscription` until stopped, printing and acknowledging each notification. */
export function watchNotifications(opts: {
  admin: Pick<PubSubAdmin, 'pull' | 'ack'>;
  subscription: string;
  print: (line: string) => void;
  /** Wait after an empty pull; default 300 ms. */
  intervalMs?: number;
}): NotificationFeed {
  const stopping = new AbortController();
  const interval = opts.intervalMs ?? 300;
  const loop = (async () => {
    let failing = false;
    while (!stopping.signal.aborted) {
      let wait = interval;
      try {
        const batch = await opts.admin.pull(opts.subscription, PULL_MAX);
        for (const message of batch) opts.print(formatNotification(message));
        await opts.admin.ack(
          opts.subscription,
          batch.map((m) => m.ackId),
        );
        // Only a full pull means more is waiting. Pulling again at once after any message made
        // a pull and an ack per notification or two under load (0.7 ms of this process's CPU
        // each in `npm run bench`), where waiting lets them gather.
        if (batch.length === PULL_MAX) wait = 0;
        failing = false;
      } catch (err) {
        // Once per outage, not every few hundred milliseconds.
        if (!failing && !stopping.signal.aborted)
          opts.print(`[notify] cannot read ${opts.subscription}: ${(err as Error).message}`);
        failing = true;
        wait = interval * 10;
      }
      await sleep(wait, undefined, { signal: stopping.signal }).catch(() => {});
    }
  })();
  return {
    async stop() {
      stopping.abort();
      await loop;
    },
  };
}
