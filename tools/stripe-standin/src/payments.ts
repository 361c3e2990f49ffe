import type Stripe from 'stripe';
import { invalidRequest, resourceMissing, StripeApiError } from './errors.ts';
import { sessionId } from './ids.ts';
import { amountRefusal, formatAmount } from './money.ts';
import type {
  DisputeEventType,
  EventRequest,
  SessionEventType,
  SessionFields,
  ShippingRateFields,
  StandinEvent,
} from './objects.ts';
import {
  applyTotals,
  buildCharge,
  buildChargeRefundedEvent,
  buildDispute,
  buildDisputeEvent,
  buildLineItem,
  buildPaymentIntent,
  buildPromotionCode,
  buildRefund,
  buildSession,
  buildSessionEvent,
  buildShippingRate,
  failCharge,
  succeedCharge,
} from './objects.ts';
import { computeTotals, type DiscountTerms, type TaxBehavior, type Taxed, type Totals } from './totals.ts';

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
  taxCode: string | null;
  taxBehavior: TaxBehavior | null;
}

/** A validated create request (api.ts checks the parameters the way Stripe does). */
export interface NewSession extends Omit<SessionFields, 'id' | 'totals' | 'url' | 'shippingRates'> {
  lineItems: NewLineItem[];
  shippingRates: Omit<ShippingRateFields, 'created'>[];
  paymentIntentData: { description: string | null; metadata: Record<string, string> };
}

/** Where the shopper has the order shipped, and which of the session's shipping rates they chose (default: the first). */
export interface ShippingChoice {
  name: string | null;
  address: Stripe.Address;
  rate: string | null;
}

/** What the shopper chose on the hosted page besides how to pay. */
export interface Choices {
  shipping?: ShippingChoice;
  promotionCode?: string;
}

export interface NewPromotionCode {
  code: string;
  percentOff: number | null;
  amountOff: number | null;
  currency: string | null;
  maxRedemptions: number | null;
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
  /** Each line item as tax sees it, in order. */
  taxed: Taxed[];
  shippingRates: Stripe.ShippingRate[];
  automaticTax: boolean;
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
  private readonly shippingRates = new Map<string, Stripe.ShippingRate>();
  private readonly promotionCodes = new Map<string, Stripe.PromotionCode>();
  private readonly disputes = new Map<string, Stripe.Dispute>();
  private readonly sessionOfPaymentIntent = new Map<string, string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly options: PaymentsOptions) {}

  createSession(input: NewSession): Stripe.Checkout.Session {
    const id = sessionId();
    const lineItems = input.lineItems.map((item) =>
      buildLineItem({ ...item, created: input.created, currency: input.currency }),
    );
    const taxed = input.lineItems.map((item) => ({
      amount: item.unitAmount * item.quantity,
      taxCode: item.taxCode,
      taxBehavior: item.taxBehavior ?? 'unspecified',
    }));
    const shippingRates = input.shippingRates.map((rate) => buildShippingRate({ ...rate, created: input.created }));
    for (const rate of shippingRates) this.shippingRates.set(rate.id, rate);
    // Until the shopper enters an address there is no tax; the first rate is preselected.
    const totals = computeTotals({
      lines: taxed,
      discount: null,
      shipping: shippingRates[0] ? taxedRate(shippingRates[0]) : null,
      automaticTax: false,
    });
    const session = buildSession({ ...input, id, totals, shippingRates, url: this.options.pageUrl(id) });
    this.sessions.set(id, {
      session,
      lineItems,
      taxed,
      shippingRates,
      automaticTax: input.automaticTax,
      paymentIntentData: input.paymentIntentData,
      pendingAsync: null,
    });
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
    return found(this.paymentIntents, id, 'payment_intent', 'intent');
  }

  charge(id: string): Stripe.Charge {
    return found(this.charges, id, 'charge', 'charge');
  }

  refund(id: string): Stripe.Refund {
    return found(this.refunds, id, 'refund', 'refund');
  }

  shippingRate(id: string): Stripe.ShippingRate {
    return found(this.shippingRates, id, 'shipping_rate', 'shipping_rate_token');
  }

  promotionCode(id: string): Stripe.PromotionCode {
    return found(this.promotionCodes, id, 'promotion_code', 'promotion_code');
  }

  dispute(id: string): Stripe.Dispute {
    return found(this.disputes, id, 'dispute', 'dispute');
  }

  /** A coupon with a customer-facing code, as made in the Dashboard; codes are unique among active ones, ignoring case, as on Stripe. */
  createPromotionCode(input: NewPromotionCode): Stripe.PromotionCode {
    if (this.activePromotion(input.code)) {
      throw invalidRequest(`An active promotion code with \`code: ${input.code}\` already exists.`, 'code');
    }
    const promotion = buildPromotionCode({ ...input, created: nowSeconds() });
    this.promotionCodes.set(promotion.id, promotion);
    this.options.log(`promotion code ${promotion.code} created`);
    return promotion;
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

  /**
   * The shopper pays on the hosted page (or a test control does it for them), with the shipping
   * address and rate and the promotion code they entered. Everything is checked before anything
   * changes, so a refused payment leaves the session as it was.
   */
  pay(id: string, outcome: PayOutcome, customer: Customer, choices: Choices = {}): Stripe.Checkout.Session {
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
    const shipping = this.shippingOf(record, choices.shipping);
    const promotion = this.promotionFor(record, choices.promotionCode);
    const totals = computeTotals({
      lines: record.taxed,
      discount: promotion ? discountOf(promotion) : null,
      shipping: shipping?.rate ? taxedRate(shipping.rate) : null,
      automaticTax: record.automaticTax,
    });
    this.applyChoices(record, totals, shipping, promotion);

    const created = nowSeconds();
    if (totals.total === 0) {
      // A discount that covers everything: nothing to pay, so no PaymentIntent.
      this.clearTimer(id);
      Object.assign(session, {
        status: 'complete',
        payment_status: 'no_payment_required',
        customer_details: customerDetails(customer),
        url: null,
      } satisfies Partial<Stripe.Checkout.Session>);
      this.publishSession('checkout.session.completed', session, NO_REQUEST);
      return session;
    }
    const intent = buildPaymentIntent({
      created,
      amount: session.amount_total ?? 0,
      currency: session.currency ?? 'usd',
      paymentMethodType: method,
      ...record.paymentIntentData,
    });
    const charge = buildCharge({ created, paymentIntent: intent, ...customer });
    intent.latest_charge = charge.id;
    if (shipping) {
      const shippingDetails = { ...shipping.details, carrier: null, phone: null, tracking_number: null };
      intent.shipping = shippingDetails;
      charge.shipping = shippingDetails;
    }
    this.paymentIntents.set(intent.id, intent);
    this.charges.set(charge.id, charge);
    this.sessionOfPaymentIntent.set(intent.id, id);

    this.clearTimer(id);
    Object.assign(session, {
      status: 'complete',
      payment_intent: intent.id,
      customer_details: customerDetails(customer),
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
    // A chargeback (`is_charge_refundable: false`, unlike an inquiry) has given the money back
    // already: Stripe refuses the refund (error code charge_disputed) unless the merchant won.
    const chargeback = [...this.disputes.values()].find(
      (d) => d.charge === charge.id && !d.is_charge_refundable && d.status !== 'won',
    );
    if (chargeback) {
      throw invalidRequest(
        `Charge ${charge.id} has been charged back; cannot issue a refund.`,
        undefined,
        'charge_disputed',
      );
    }
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining === 0) {
      throw invalidRequest(`Charge ${charge.id} has already been refunded.`, undefined, 'charge_already_refunded');
    }
    const amount = input.amount ?? remaining;
    const offStep = amountRefusal(amount, charge.currency);
    if (offStep) throw invalidRequest(offStep, 'amount', 'invalid_charge_amount');
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
   * The cardholder disputes a charge with their bank (what Stripe's test card 4000 0000 0000
   * 0259 does): the dispute opens with a response due, `charge.dispute.created`.
   */
  disputeCharge(chargeId: string, input: { reason: string; amount: number | null }): Stripe.Dispute {
    const charge = this.charge(chargeId);
    if (charge.status !== 'succeeded') {
      throw invalidRequest(`Charge ${charge.id} has not succeeded, so there is nothing to dispute.`, 'charge');
    }
    if (charge.disputed) {
      throw new StripeApiError(409, {
        type: 'invalid_request_error',
        message: `Charge ${charge.id} is already disputed.`,
      });
    }
    const amount = input.amount ?? charge.amount;
    if (amount < 1 || amount > charge.amount) {
      throw invalidRequest(`The disputed amount must be between 1 and ${charge.amount}.`, 'amount');
    }
    const dispute = buildDispute({ created: nowSeconds(), charge, amount, reason: input.reason });
    this.disputes.set(dispute.id, dispute);
    charge.disputed = true;
    this.options.log(`charge ${charge.id}: disputed (${input.reason})`);
    this.publishDispute('charge.dispute.created', dispute);
    return dispute;
  }

  /** The bank decides: `won` (the money comes back) or `lost`; `charge.dispute.closed`. */
  closeDispute(id: string, outcome: 'won' | 'lost'): Stripe.Dispute {
    const dispute = this.dispute(id);
    if (['won', 'lost', 'warning_closed', 'prevented'].includes(dispute.status)) {
      throw new StripeApiError(409, {
        type: 'invalid_request_error',
        message: `Dispute ${id} is already closed (status: ${dispute.status}).`,
      });
    }
    dispute.status = outcome;
    this.options.log(`dispute ${id} closed: ${outcome}`);
    this.publishDispute('charge.dispute.closed', dispute);
    return dispute;
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
    return found(this.sessions, id, 'checkout.session', 'session');
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

  private publishDispute(type: DisputeEventType, dispute: Stripe.Dispute): void {
    const intentId = String(dispute.payment_intent);
    this.options.emit(
      buildDisputeEvent(type, dispute, { created: nowSeconds(), request: NO_REQUEST }),
      this.sessionOfPaymentIntent.get(intentId) ?? intentId,
    );
  }

  /** The shipping address and rate, checked against what the session collects and offers. */
  private shippingOf(
    record: SessionRecord,
    choice: ShippingChoice | undefined,
  ): { details: { name: string; address: Stripe.Address }; rate: Stripe.ShippingRate | null } | null {
    const allowed = record.session.shipping_address_collection?.allowed_countries;
    if (!allowed) {
      if (choice) throw invalidRequest('This Checkout Session does not collect a shipping address.', 'shipping');
      return null;
    }
    const address = choice?.address;
    if (!address?.line1 || !address.city || !address.postal_code || !address.country) {
      throw invalidRequest('Enter a shipping address: address line 1, city, postal code and country.', 'shipping');
    }
    if (!(allowed as string[]).includes(address.country)) {
      throw invalidRequest(`This Checkout Session does not ship to ${address.country}.`, 'shipping[address][country]');
    }
    const rate =
      choice?.rate === null || choice?.rate === undefined
        ? (record.shippingRates[0] ?? null)
        : record.shippingRates.find((r) => r.id === choice.rate);
    if (rate === undefined) {
      throw invalidRequest(`${choice?.rate} is not one of this Checkout Session's shipping options.`, 'shipping[rate]');
    }
    return { details: { name: choice?.name ?? '', address }, rate };
  }

  /** Stripe's hosted page answers "This code is invalid." for a code it cannot apply. */
  private promotionFor(record: SessionRecord, code: string | undefined): Stripe.PromotionCode | null {
    if (code === undefined || code === '') return null;
    if (!record.session.allow_promotion_codes) {
      throw invalidRequest('This Checkout Session does not accept promotion codes.', 'promotion_code');
    }
    const promotion = this.activePromotion(code);
    const coupon = promotion?.promotion.coupon as Stripe.Coupon | undefined;
    if (!promotion || !coupon || (coupon.currency !== null && coupon.currency !== record.session.currency)) {
      throw invalidRequest('This code is invalid.', 'promotion_code');
    }
    return promotion;
  }

  private activePromotion(code: string): Stripe.PromotionCode | undefined {
    return [...this.promotionCodes.values()].find(
      (p) =>
        p.active &&
        p.code.toLowerCase() === code.toLowerCase() &&
        (p.max_redemptions === null || p.times_redeemed < p.max_redemptions),
    );
  }

  /** What the shopper chose, on the session and its line items, as Stripe shows it once they pay. */
  private applyChoices(
    record: SessionRecord,
    totals: Totals,
    shipping: { details: { name: string; address: Stripe.Address }; rate: Stripe.ShippingRate | null } | null,
    promotion: Stripe.PromotionCode | null,
  ): void {
    const { session } = record;
    applyTotals(session, totals, shipping?.rate ?? null);
    record.lineItems.forEach((item, i) => {
      const line = totals.lines[i]!;
      const added = item.price?.tax_behavior === 'inclusive' ? 0 : line.tax;
      Object.assign(item, {
        amount_discount: line.discount,
        amount_tax: line.tax,
        amount_total: item.amount_subtotal - line.discount + added,
      });
    });
    if (shipping) {
      session.collected_information = {
        business_name: null,
        individual_name: null,
        shipping_details: shipping.details,
      };
    }
    if (record.automaticTax) session.automatic_tax.status = 'complete';
    if (promotion) {
      const coupon = promotion.promotion.coupon as Stripe.Coupon;
      promotion.times_redeemed++;
      coupon.times_redeemed++;
      session.discounts = [{ coupon: coupon.id, promotion_code: promotion.id }];
    }
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

function taxedRate(rate: Stripe.ShippingRate): Taxed {
  return {
    amount: rate.fixed_amount?.amount ?? 0,
    taxCode: typeof rate.tax_code === 'string' ? rate.tax_code : null,
    taxBehavior: (rate.tax_behavior as TaxBehavior | null) ?? 'unspecified',
  };
}

function discountOf(promotion: Stripe.PromotionCode): DiscountTerms {
  const coupon = promotion.promotion.coupon as Stripe.Coupon;
  return coupon.percent_off !== null ? { percentOff: coupon.percent_off } : { amountOff: coupon.amount_off ?? 0 };
}

function customerDetails(customer: Customer): Stripe.Checkout.Session.CustomerDetails {
  return {
    address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null },
    business_name: null,
    email: customer.email,
    individual_name: null,
    name: customer.name,
    phone: null,
    tax_exempt: 'none',
    tax_ids: [],
  };
}

/** The object stored under `id`, or Stripe's resource_missing for it. */
function found<T>(objects: Map<string, T>, id: string, kind: string, param: string): T {
  const object = objects.get(id);
  if (object === undefined) throw resourceMissing(kind, id, param);
  return object;
}
