import type Stripe from 'stripe';
import { invalidRequest, resourceMissing, StripeApiError } from './errors.ts';
import { sessionId } from './ids.ts';
import { formatAmount } from './money.ts';
import type { EventRequest, SessionEventType, SessionFields, StandinEvent } from './objects.ts';
import {
  buildCharge,
  buildChargeRefundedEvent,
  buildLineItem,
  buildPaymentIntent,
  buildRefund,
  buildSession,
  buildSessionEvent,
  failCharge,
  succeedCharge,
} from './objects.ts';

// The stand-in's account: Checkout Sessions and what paying them creates (PaymentIntent, Charge,
// Refunds), with the state changes and events Stripe makes. The HTTP layers (API, hosted page,
// test controls) only translate requests into calls here.

/** The payment methods this stand-in account has enabled, as Dashboard "dynamic payment methods". */
export const ACCOUNT_PAYMENT_METHODS = ['card', 'customer_balance'] as const;
/** Stripe's bank transfer method: Checkout completes unpaid, and the money arrives (or not) later. */
export const DELAYED_METHOD = 'customer_balance';

/** How the shopper pays on the hosted page: a card, or a bank transfer that later succeeds or fails. */
export type PayOutcome = 'paid' | 'async' | 'async_fail';
export type AsyncResult = 'succeeded' | 'failed';

export interface Customer {
  email: string;
  name: string | null;
}

/** Who pays when nobody says otherwise: Stripe's own example customer. */
export const TEST_CUSTOMER = { email: 'jenny.rosen@example.com', name: 'Jenny Rosen' } satisfies Customer;

export interface NewLineItem {
  name: string;
  unitAmount: number;
  quantity: number;
}

/** A validated create request (api.ts checks the parameters the way Stripe does). */
export interface NewSession extends Omit<SessionFields, 'id' | 'amountTotal' | 'url'> {
  lineItems: NewLineItem[];
  paymentIntentData: { description: string | null; metadata: Record<string, string> };
}

export interface NewRefund {
  paymentIntent: string | null;
  charge: string | null;
  amount: number | null;
  reason: Stripe.Refund.Reason | null;
  metadata: Record<string, string>;
}

interface SessionRecord {
  session: Stripe.Checkout.Session;
  lineItems: Stripe.LineItem[];
  paymentIntentData: NewSession['paymentIntentData'];
  /** The outcome of a delayed payment still to come, decided when the shopper picked it. */
  pendingAsync: AsyncResult | null;
}

export interface PaymentsOptions {
  /** The hosted payment page of a session. */
  pageUrl(sessionId: string): string;
  /** How long a delayed payment takes to succeed or fail; Infinity waits for a test control. */
  asyncDelayMs: number;
  /** Receives every event, with the session it belongs to (webhooks are ordered per session). */
  emit(event: StandinEvent, sessionId: string): void;
  log(line: string): void;
}

const NO_REQUEST: EventRequest = { id: null, idempotency_key: null };
// setTimeout fires at once for delays above 2^31-1 ms (~24.8 days); longer waits are re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export class Payments {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly paymentIntents = new Map<string, Stripe.PaymentIntent>();
  private readonly charges = new Map<string, Stripe.Charge>();
  private readonly refunds = new Map<string, Stripe.Refund>();
  private readonly sessionOfPaymentIntent = new Map<string, string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly options: PaymentsOptions) {}

  createSession(input: NewSession): Stripe.Checkout.Session {
    const id = sessionId();
    const lineItems = input.lineItems.map((item) =>
      buildLineItem({ ...item, created: input.created, currency: input.currency }),
    );
    const session = buildSession({
      ...input,
      id,
      amountTotal: lineItems.reduce((sum, item) => sum + item.amount_total, 0),
      url: this.options.pageUrl(id),
    });
    this.sessions.set(id, { session, lineItems, paymentIntentData: input.paymentIntentData, pendingAsync: null });
    this.armExpiry(id);
    this.options.log(`session ${id} created: ${formatAmount(session.amount_total ?? 0, input.currency)}`);
    return session;
  }

  session(id: string): Stripe.Checkout.Session {
    return this.record(id).session;
  }

  lineItems(id: string): Stripe.LineItem[] {
    return this.record(id).lineItems;
  }

  paymentIntent(id: string): Stripe.PaymentIntent {
    const intent = this.paymentIntents.get(id);
    if (!intent) throw resourceMissing('payment_intent', id, 'intent');
    return intent;
  }

  charge(id: string): Stripe.Charge {
    const charge = this.charges.get(id);
    if (!charge) throw resourceMissing('charge', id, 'charge');
    return charge;
  }

  refund(id: string): Stripe.Refund {
    const refund = this.refunds.get(id);
    if (!refund) throw resourceMissing('refund', id, 'refund');
    return refund;
  }

  /** A charge's refunds, newest first. */
  refundsOf(chargeId: string): Stripe.Refund[] {
    return [...this.refunds.values()].filter((refund) => refund.charge === chargeId).reverse();
  }

  expireSession(id: string, request: EventRequest): Stripe.Checkout.Session {
    const { session } = this.record(id);
    if (session.status !== 'open') {
      throw invalidRequest(
        `Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of \`${session.status}\`.`,
      );
    }
    this.clearTimer(id);
    Object.assign(session, { status: 'expired', url: null } satisfies Partial<Stripe.Checkout.Session>);
    this.options.log(`session ${id} expired`);
    this.publishSession('checkout.session.expired', session, request);
    return session;
  }

  /**
   * Moves a session's deadline to any time, unlike the API (which allows 30 min to 24 h ahead),
   * so tests can see the expiry timer fire without waiting half an hour.
   */
  moveExpiry(id: string, expiresAt: number): Stripe.Checkout.Session {
    const { session } = this.record(id);
    this.assertOpen(session);
    session.expires_at = expiresAt;
    this.armExpiry(id);
    return session;
  }

  /** The shopper pays on the hosted page (or a test control does it for them). */
  pay(id: string, outcome: PayOutcome, customer: Customer): Stripe.Checkout.Session {
    const record = this.record(id);
    const { session } = record;
    // The expiry timer may not have fired yet at the very second the session runs out.
    if (session.status === 'open' && Date.now() >= session.expires_at * 1000) this.expireSession(id, NO_REQUEST);
    this.assertOpen(session);
    const method = outcome === 'paid' ? 'card' : DELAYED_METHOD;
    if (!session.payment_method_types.includes(method)) {
      throw invalidRequest(
        `This Checkout Session does not offer ${method} (its payment_method_types are ${session.payment_method_types.join(', ')}).`,
      );
    }
    const created = nowSeconds();
    const intent = buildPaymentIntent({
      created,
      amount: session.amount_total ?? 0,
      currency: session.currency ?? 'usd',
      paymentMethodType: method,
      ...record.paymentIntentData,
    });
    const charge = buildCharge({ created, paymentIntent: intent, ...customer });
    intent.latest_charge = charge.id;
    this.paymentIntents.set(intent.id, intent);
    this.charges.set(charge.id, charge);
    this.sessionOfPaymentIntent.set(intent.id, id);

    this.clearTimer(id);
    Object.assign(session, {
      status: 'complete',
      payment_intent: intent.id,
      customer_details: {
        address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null },
        business_name: null,
        email: customer.email,
        individual_name: null,
        name: customer.name,
        phone: null,
        tax_exempt: 'none',
        tax_ids: [],
      },
      url: null,
    } satisfies Partial<Stripe.Checkout.Session>);

    if (outcome === 'paid') {
      this.settle(intent, charge, 'succeeded');
      session.payment_status = 'paid';
    } else {
      record.pendingAsync = outcome === 'async' ? 'succeeded' : 'failed';
      this.armAsync(id);
    }
    this.options.log(`session ${id} completed, ${session.payment_status} (${method})`);
    this.publishSession('checkout.session.completed', session, NO_REQUEST);
    return session;
  }

  /** The delayed payment's outcome arrives: the planned one, or `result` when a test forces it. */
  settleAsync(id: string, result?: AsyncResult): Stripe.Checkout.Session {
    const record = this.record(id);
    const { session } = record;
    if (record.pendingAsync === null || typeof session.payment_intent !== 'string') {
      throw new StripeApiError(409, {
        type: 'invalid_request_error',
        message: `Checkout Session ${id} has no delayed payment waiting for its outcome.`,
      });
    }
    const outcome = result ?? record.pendingAsync;
    record.pendingAsync = null;
    this.clearTimer(id);
    const intent = this.paymentIntent(session.payment_intent);
    this.settle(intent, this.charge(String(intent.latest_charge)), outcome);
    if (outcome === 'succeeded') session.payment_status = 'paid';
    this.options.log(`session ${id}: delayed payment ${outcome}`);
    this.publishSession(
      outcome === 'succeeded' ? 'checkout.session.async_payment_succeeded' : 'checkout.session.async_payment_failed',
      session,
      NO_REQUEST,
    );
    return session;
  }

  createRefund(input: NewRefund, request: EventRequest): Stripe.Refund {
    const charge = this.refundableCharge(input);
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining === 0) {
      throw invalidRequest(`Charge ${charge.id} has already been refunded.`, undefined, 'charge_already_refunded');
    }
    const amount = input.amount ?? remaining;
    if (amount > remaining) {
      throw invalidRequest(
        `Refund amount (${formatAmount(amount, charge.currency)}) is greater than unrefunded amount on charge (${formatAmount(remaining, charge.currency)})`,
        'amount',
      );
    }
    const refund = buildRefund({
      created: nowSeconds(),
      amount,
      charge,
      reason: input.reason,
      metadata: input.metadata,
    });
    this.refunds.set(refund.id, refund);

    const previous: Partial<Stripe.Charge> = {
      amount_refunded: charge.amount_refunded,
      ...(charge.amount_refunded + amount === charge.amount ? { refunded: false } : {}),
    };
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded === charge.amount;

    const intentId = String(charge.payment_intent);
    this.options.log(`charge ${charge.id}: refunded ${formatAmount(amount, charge.currency)}`);
    this.options.emit(
      buildChargeRefundedEvent(charge, previous, { created: refund.created, request }),
      this.sessionOfPaymentIntent.get(intentId) ?? intentId,
    );
    return refund;
  }

  /**
   * Stripe no longer knows the session (its test data was deleted, or the key now belongs to
   * another account): every later request for it answers 404. What paying it created stays.
   */
  forget(id: string): { id: string; object: 'checkout.session'; deleted: true } {
    this.record(id);
    this.clearTimer(id);
    this.sessions.delete(id);
    this.options.log(`session ${id} forgotten`);
    return { id, object: 'checkout.session', deleted: true };
  }

  /** Stops every timer, so a closed stand-in leaves nothing running. */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private record(id: string): SessionRecord {
    const record = this.sessions.get(id);
    if (!record) throw resourceMissing('checkout.session', id, 'session');
    return record;
  }

  private assertOpen(session: Stripe.Checkout.Session): void {
    if (session.status !== 'open') {
      throw new StripeApiError(409, {
        type: 'invalid_request_error',
        message: `This Checkout Session is no longer active (status: ${session.status}).`,
      });
    }
  }

  private refundableCharge(input: NewRefund): Stripe.Charge {
    if (input.charge !== null) {
      const charge = this.charges.get(input.charge);
      if (!charge) throw resourceMissing('charge', input.charge, 'charge');
      if (input.paymentIntent !== null && charge.payment_intent !== input.paymentIntent) {
        throw invalidRequest(`Charge ${charge.id} does not belong to PaymentIntent ${input.paymentIntent}.`, 'charge');
      }
      if (charge.status !== 'succeeded') {
        throw invalidRequest(`Charge ${charge.id} has not succeeded, so there is nothing to refund.`, 'charge');
      }
      return charge;
    }
    if (input.paymentIntent === null) {
      throw invalidRequest(
        'One of the following params should be provided for this request: payment_intent or charge.',
        undefined,
        'parameter_missing',
      );
    }
    const intent = this.paymentIntents.get(input.paymentIntent);
    if (!intent) throw resourceMissing('payment_intent', input.paymentIntent, 'payment_intent');
    const charge = intent.latest_charge ? this.charges.get(String(intent.latest_charge)) : undefined;
    if (intent.status !== 'succeeded' || !charge) {
      throw invalidRequest(
        `This PaymentIntent (${intent.id}) does not have a successful charge to refund.`,
        'payment_intent',
      );
    }
    return charge;
  }

  private settle(intent: Stripe.PaymentIntent, charge: Stripe.Charge, result: AsyncResult): void {
    if (result === 'succeeded') {
      Object.assign(intent, {
        status: 'succeeded',
        amount_received: intent.amount,
      } satisfies Partial<Stripe.PaymentIntent>);
      succeedCharge(charge);
      return;
    }
    // A failed bank payment leaves the PaymentIntent asking for another payment method, as Stripe does.
    const message = 'The customer did not complete the bank transfer.';
    Object.assign(intent, {
      status: 'requires_payment_method',
      last_payment_error: {
        type: 'invalid_request_error',
        code: 'payment_method_customer_decline',
        message,
        charge: charge.id,
      },
    } satisfies Partial<Stripe.PaymentIntent>);
    failCharge(charge, 'payment_method_customer_decline', message);
  }

  private publishSession(type: SessionEventType, session: Stripe.Checkout.Session, request: EventRequest): void {
    this.options.emit(buildSessionEvent(type, session, { created: nowSeconds(), request }), session.id);
  }

  /** Stripe expires an open session by itself once `expires_at` passes. */
  private armExpiry(id: string): void {
    this.clearTimer(id);
    const { session } = this.record(id);
    const delay = session.expires_at * 1000 - Date.now();
    this.timers.set(
      id,
      setTimeout(
        () => {
          this.timers.delete(id);
          if (session.status !== 'open') return;
          if (Date.now() < session.expires_at * 1000) this.armExpiry(id);
          else this.expireSession(id, NO_REQUEST);
        },
        Math.min(Math.max(delay, 0), MAX_TIMER_MS),
      ),
    );
  }

  private armAsync(id: string): void {
    if (!Number.isFinite(this.options.asyncDelayMs)) return;
    this.timers.set(
      id,
      setTimeout(() => {
        this.timers.delete(id);
        this.settleAsync(id);
      }, this.options.asyncDelayMs),
    );
  }

  private clearTimer(id: string): void {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
  }
}
