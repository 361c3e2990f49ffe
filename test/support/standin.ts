// The Stripe stand-in's test controls (tools/stripe-standin/README.md): its webhook delivery
// log, what shoppers, banks and cardholders do, and faults. No Node built-ins: the Worker's
// tests use it inside workerd too.

/** An event the stand-in made, with how its webhook went. `E`: Stripe.Event where the caller has the type. */
export interface DeliveredEvent<E = { id: string; type: string }> {
  event: E;
  /** What a destination of thin events is sent for it. */
  thin_event: { id: string; type: string };
  delivery: { status: string; attempts: Array<{ at: string; status: number | null; error?: string | null }> };
}

/** A fault of the stand-in's API (tools/stripe-standin/README.md, "Faults"). */
export interface StandinFault {
  method?: 'GET' | 'POST';
  path: string;
  status?: 500 | 404 | 409 | 429;
  delayMs?: number;
  times?: number;
}

export class StandinControls {
  constructor(private readonly url: string) {}

  /** The session's events, oldest first. */
  async events<E = DeliveredEvent['event']>(sessionId: string): Promise<DeliveredEvent<E>[]> {
    const res = await fetch(`${this.url}/_standin/events?session=${encodeURIComponent(sessionId)}`);
    return ((await res.json()) as { data: DeliveredEvent<E>[] }).data;
  }

  /** Waits until the Worker answered 2xx to the session's event of this type. */
  async delivered(sessionId: string, type: string, timeoutMs = 10_000): Promise<DeliveredEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.events(sessionId)).find(
        (e) => e.event.type === type && e.delivery.status === 'delivered',
      );
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(
          `${type} of ${sessionId} was not delivered within ${timeoutMs} ms: ${JSON.stringify(await this.events(sessionId))}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 25));
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

  /** Every event of these sessions (all events when none are named), oldest first. */
  async eventsOf(sessionIds?: readonly string[]): Promise<DeliveredEvent[]> {
    const res = await fetch(`${this.url}/_standin/events`);
    const all = ((await res.json()) as { data: Array<DeliveredEvent & { session: string }> }).data;
    return sessionIds ? all.filter((e) => sessionIds.includes(e.session)) : all;
  }

  /** What the shopper does on the Checkout page, without the page. */
  async pay(sessionId: string, outcome: 'paid' | 'async' | 'async_fail'): Promise<void> {
    await this.control('POST', `/_standin/sessions/${sessionId}/pay`, { outcome });
  }

  /** A promotion code shoppers can enter on sessions that allow them (a coupon of `percentOff` %). */
  async promotionCode(code: string, percentOff: number): Promise<void> {
    await this.control('POST', '/_standin/promotion_codes', { code, percent_off: percentOff });
  }

  /** The cardholder disputes the charge; answers the dispute. */
  async dispute(chargeId: string, reason = 'product_not_received'): Promise<{ id: string }> {
    return (await this.control('POST', `/_standin/charges/${chargeId}/dispute`, { reason })) as { id: string };
  }

  /** The bank decides the dispute. */
  async closeDispute(disputeId: string, outcome: 'won' | 'lost'): Promise<void> {
    await this.control('POST', `/_standin/disputes/${disputeId}/close`, { outcome });
  }

  /** Stripe no longer knows the session: it answers 404 for it from now on. */
  async forget(sessionId: string): Promise<void> {
    await this.control('POST', `/_standin/sessions/${sessionId}/forget`);
  }

  async addFault(fault: StandinFault): Promise<{ id: string; remaining: number }> {
    return (await this.control('POST', '/_standin/faults', fault)) as { id: string; remaining: number };
  }

  async faults(): Promise<Array<{ id: string; remaining: number }>> {
    return ((await this.control('GET', '/_standin/faults')) as { data: Array<{ id: string; remaining: number }> }).data;
  }

  async clearFaults(): Promise<void> {
    await this.control('DELETE', '/_standin/faults');
  }

  /** Ends the holds of delay faults now (the held requests go on); answers how many were held. */
  async releaseHeld(): Promise<number> {
    return ((await this.control('POST', '/_standin/faults/release')) as { released: number }).released;
  }

  private async control(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
    return res.json();
  }

  async sessionStatus(sessionId: string, apiKey: string): Promise<string> {
    const res = await fetch(`${this.url}/v1/checkout/sessions/${sessionId}`, {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    return ((await res.json()) as { status: string }).status;
  }
}
