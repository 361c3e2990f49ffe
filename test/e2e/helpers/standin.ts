// The Stripe stand-in's test controls (tools/stripe-standin/README.md): its webhook delivery
// log, and a bank's answer to a delayed payment.
import { setTimeout as sleep } from 'node:timers/promises';

export interface DeliveredEvent {
  event: { id: string; type: string };
  delivery: { status: string; attempts: Array<{ at: string; status: number | null }> };
}

export class StandinControls {
  constructor(private readonly url: string) {}

  async events(sessionId: string): Promise<DeliveredEvent[]> {
    const res = await fetch(`${this.url}/_standin/events?session=${encodeURIComponent(sessionId)}`);
    return ((await res.json()) as { data: DeliveredEvent[] }).data;
  }

  /** Waits until the Worker answered 2xx to the session's event of this type. */
  async delivered(sessionId: string, type: string, timeoutMs = 10_000): Promise<DeliveredEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.events(sessionId)).find((e) => e.event.type === type && e.delivery.status === 'delivered');
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`${type} of ${sessionId} was not delivered within ${timeoutMs} ms: ${JSON.stringify(await this.events(sessionId))}`);
      await sleep(25);
    }
  }

  /** The bank's answer to a bank transfer, now. */
  async settleBankTransfer(sessionId: string, result: 'succeed' | 'fail'): Promise<void> {
    const res = await fetch(`${this.url}/_standin/sessions/${sessionId}/async/${result}`, { method: 'POST' });
    if (!res.ok) throw new Error(`async/${result} answered ${res.status}: ${await res.text()}`);
  }

  /** enabled: false loses every event created until it is switched back on (a lost webhook). */
  async webhooksEnabled(enabled: boolean): Promise<void> {
    const res = await fetch(`${this.url}/_standin/webhooks`, { method: 'POST', body: JSON.stringify({ enabled }) });
    if (!res.ok) throw new Error(`POST /_standin/webhooks answered ${res.status}`);
  }

  async sessionStatus(sessionId: string, apiKey: string): Promise<string> {
    const res = await fetch(`${this.url}/v1/checkout/sessions/${sessionId}`, { headers: { authorization: `Bearer ${apiKey}` } });
    return ((await res.json()) as { status: string }).status;
  }
}
