import { readFileSync } from 'node:fs';
import Stripe from 'stripe';
import { randomId } from './ids.ts';
import type { TaxBehavior, Totals } from './totals.ts';

// Every object the stand-in serves starts as a copy of Stripe's own example object (fixtures/)
// and then gets the fields it knows set, so clients see the full shape of a real object, nulls
// included. The fixtures' placeholder values (random shipping costs, `"type": "type"`, a fake
// receipt URL) are overwritten here, never served. Objects are typed with the `stripe` package's
// own definitions, so a field set with the wrong shape fails type-checking.

/** The API version of the installed `stripe` library; the stand-in speaks this version. */
export const API_VERSION: string = Stripe.API_VERSION;

function fixture<T>(file: string): () => T {
  const text = readFileSync(new URL(`../fixtures/${file}`, import.meta.url), 'utf8');
  // The fixture files are Stripe's examples of exactly these types (see fixtures/README.md).
  const parsed = JSON.parse(text) as T;
  return () => structuredClone(parsed);
}

const sessionFixture = fixture<Stripe.Checkout.Session>('checkout.session.json');
const paymentIntentFixture = fixture<Stripe.PaymentIntent>('payment_intent.json');
const chargeFixture = fixture<Stripe.Charge>('charge.json');
const refundFixture = fixture<Stripe.Refund>('refund.json');
const eventFixture = fixture<Stripe.EventBase>('event.json');

export type SessionEventType =
  | 'checkout.session.completed'
  | 'checkout.session.async_payment_succeeded'
  | 'checkout.session.async_payment_failed'
  | 'checkout.session.expired';

export type DisputeEventType = 'charge.dispute.created' | 'charge.dispute.closed';

/** The event types the stand-in sends: the ones the Worker's webhook endpoint subscribes to. */
export type StandinEvent =
  | Stripe.CheckoutSessionCompletedEvent
  | Stripe.CheckoutSessionAsyncPaymentSucceededEvent
  | Stripe.CheckoutSessionAsyncPaymentFailedEvent
  | Stripe.CheckoutSessionExpiredEvent
  | Stripe.ChargeRefundedEvent
  | Stripe.ChargeDisputeCreatedEvent
  | Stripe.ChargeDisputeClosedEvent;

/** Which API request caused an event; both null when the shopper or a timer did. */
export type EventRequest = Stripe.Event.Request;

export interface SessionFields {
  id: string;
  created: number;
  expiresAt: number;
  currency: string;
  /** What the session comes to before the shopper has chosen anything: the first shipping rate, no discount, no tax yet. */
  totals: Totals;
  allowPromotionCodes: boolean;
  automaticTax: boolean;
  /** Countries a shipping address is collected for; null: none is. */
  shippingCountries: string[] | null;
  shippingRates: Stripe.ShippingRate[];
  successUrl: string;
  cancelUrl: string | null;
  clientReferenceId: string | null;
  customerEmail: string | null;
  metadata: Record<string, string>;
  allowedPaymentMethodTypes: string[] | null;
  paymentMethodTypes: string[];
  url: string;
}

export function buildSession(f: SessionFields): Stripe.Checkout.Session {
  const session: Stripe.Checkout.Session = {
    ...sessionFixture(),
    id: f.id,
    adaptive_pricing: { enabled: false },
    after_expiration: null,
    allow_promotion_codes: f.allowPromotionCodes,
    allowed_payment_method_types: f.allowedPaymentMethodTypes,
    amount_subtotal: f.totals.subtotal,
    amount_total: f.totals.total,
    // Stripe Tax needs the shopper's address before it can compute anything.
    automatic_tax: f.automaticTax
      ? { enabled: true, liability: { type: 'self' }, provider: 'stripe', status: 'requires_location_inputs' }
      : { enabled: false, liability: null, provider: null, status: null },
    cancel_url: f.cancelUrl,
    client_reference_id: f.clientReferenceId,
    collected_information: null,
    consent: null,
    consent_collection: null,
    created: f.created,
    currency: f.currency,
    currency_conversion: null,
    custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
    customer_creation: 'if_required',
    // Set when the shopper completes the page (Stripe has no details before that).
    customer_details: null,
    customer_email: f.customerEmail,
    expires_at: f.expiresAt,
    invoice_creation: {
      enabled: false,
      invoice_data: {
        account_tax_ids: null,
        custom_fields: null,
        description: null,
        footer: null,
        issuer: null,
        metadata: {},
        rendering_options: null,
      },
    },
    managed_payments: { enabled: false },
    metadata: f.metadata,
    payment_intent: null,
    payment_method_collection: 'if_required',
    payment_method_configuration_details: null,
    payment_method_types: f.paymentMethodTypes,
    payment_status: 'unpaid',
    permissions: null,
    saved_payment_method_options: null,
    shipping_address_collection: f.shippingCountries
      ? {
          allowed_countries: f.shippingCountries as Stripe.Checkout.Session.ShippingAddressCollection.AllowedCountry[],
        }
      : null,
    shipping_cost: null,
    shipping_options: f.shippingRates.map((rate) => ({
      shipping_amount: rate.fixed_amount?.amount ?? 0,
      shipping_rate: rate.id,
    })),
    status: 'open',
    success_url: f.successUrl,
    total_details: null,
    ui_mode: 'hosted_page',
    url: f.url,
    wallet_options: null,
  };
  applyTotals(session, f.totals, f.shippingRates[0] ?? null);
  return session;
}

/**
 * Sets what a session comes to (as it is created, and again once the shopper chose a rate,
 * entered a promotion code and an address): the subtotal of the items, the total, the discount,
 * shipping and tax in `total_details`, and the chosen rate in `shipping_cost`.
 */
export function applyTotals(session: Stripe.Checkout.Session, totals: Totals, rate: Stripe.ShippingRate | null): void {
  Object.assign(session, {
    amount_subtotal: totals.subtotal,
    amount_total: totals.total,
    total_details: { amount_discount: totals.discount, amount_shipping: totals.shipping, amount_tax: totals.tax },
    shipping_cost: rate && {
      amount_subtotal: totals.shipping,
      amount_tax: totals.shippingTax,
      amount_total: totals.shipping + (rate.tax_behavior === 'inclusive' ? 0 : totals.shippingTax),
      shipping_rate: rate.id,
    },
  } satisfies Partial<Stripe.Checkout.Session>);
}

export interface ShippingRateFields {
  created: number;
  displayName: string;
  amount: number;
  currency: string;
  deliveryEstimate: Stripe.ShippingRate.DeliveryEstimate | null;
  taxBehavior: TaxBehavior | null;
  taxCode: string | null;
  metadata: Record<string, string>;
}

/** A ShippingRate as Stripe makes one for a session's `shipping_rate_data`. */
export function buildShippingRate(f: ShippingRateFields): Stripe.ShippingRate {
  return {
    id: randomId('shr_'),
    object: 'shipping_rate',
    active: true,
    created: f.created,
    delivery_estimate: f.deliveryEstimate,
    display_name: f.displayName,
    fixed_amount: { amount: f.amount, currency: f.currency },
    livemode: false,
    metadata: f.metadata,
    tax_behavior: f.taxBehavior,
    tax_code: f.taxCode,
    type: 'fixed_amount',
  };
}

export interface PromotionCodeFields {
  created: number;
  code: string;
  percentOff: number | null;
  amountOff: number | null;
  currency: string | null;
  maxRedemptions: number | null;
}

/** A coupon and the customer-facing promotion code for it, as a Dashboard user would make them. */
export function buildPromotionCode(f: PromotionCodeFields): Stripe.PromotionCode {
  const coupon: Stripe.Coupon = {
    id: randomId('', 8),
    object: 'coupon',
    amount_off: f.amountOff,
    created: f.created,
    currency: f.currency,
    duration: 'once',
    duration_in_months: null,
    livemode: false,
    max_redemptions: null,
    metadata: {},
    name: f.code,
    percent_off: f.percentOff,
    redeem_by: null,
    times_redeemed: 0,
    valid: true,
  };
  return {
    id: randomId('promo_'),
    object: 'promotion_code',
    active: true,
    code: f.code,
    created: f.created,
    customer: null,
    customer_account: null,
    expires_at: null,
    livemode: false,
    max_redemptions: f.maxRedemptions,
    metadata: {},
    promotion: { type: 'coupon', coupon },
    restrictions: {
      first_time_transaction: false,
      minimum_amount: null,
      minimum_amount_currency: null,
    },
    times_redeemed: 0,
  };
}

export interface DisputeFields {
  created: number;
  charge: Stripe.Charge;
  amount: number;
  reason: string;
}

/** A card dispute as the cardholder's bank opens it: the money is withdrawn and a response is due. */
export function buildDispute(f: DisputeFields): Stripe.Dispute {
  return {
    id: randomId('dp_'),
    object: 'dispute',
    amount: f.amount,
    balance_transactions: [],
    charge: f.charge.id,
    created: f.created,
    currency: f.charge.currency,
    enhanced_eligibility_types: [],
    evidence: {
      access_activity_log: null,
      billing_address: null,
      cancellation_policy: null,
      cancellation_policy_disclosure: null,
      cancellation_rebuttal: null,
      customer_communication: null,
      customer_email_address: f.charge.billing_details.email,
      customer_name: f.charge.billing_details.name,
      customer_purchase_ip: null,
      customer_signature: null,
      duplicate_charge_documentation: null,
      duplicate_charge_explanation: null,
      duplicate_charge_id: null,
      enhanced_evidence: {},
      product_description: null,
      receipt: null,
      refund_policy: null,
      refund_policy_disclosure: null,
      refund_refusal_explanation: null,
      service_date: null,
      service_documentation: null,
      shipping_address: null,
      shipping_carrier: null,
      shipping_date: null,
      shipping_documentation: null,
      shipping_tracking_number: null,
      uncategorized_file: null,
      uncategorized_text: null,
    },
    evidence_details: {
      // Card networks give the merchant about three weeks to respond.
      due_by: f.created + 21 * 24 * 3600,
      enhanced_eligibility: {},
      has_evidence: false,
      past_due: false,
      submission_count: 0,
      submission_method: 'not_submitted',
    },
    intended_submission_method: null,
    is_charge_refundable: false,
    livemode: false,
    metadata: {},
    payment_intent: typeof f.charge.payment_intent === 'string' ? f.charge.payment_intent : null,
    reason: f.reason,
    status: 'needs_response',
  };
}

export interface LineItemFields {
  created: number;
  currency: string;
  unitAmount: number;
  quantity: number;
  name: string;
  taxBehavior: TaxBehavior | null;
}

/** A line item with its inline Price, as Stripe makes one for `price_data`. */
export function buildLineItem(f: LineItemFields): Stripe.LineItem {
  const amount = f.unitAmount * f.quantity;
  return {
    id: randomId('li_'),
    object: 'item',
    adjustable_quantity: null,
    amount_discount: 0,
    amount_subtotal: amount,
    amount_tax: 0,
    amount_total: amount,
    currency: f.currency,
    description: f.name,
    metadata: {},
    price: {
      id: randomId('price_'),
      object: 'price',
      // Prices made from price_data are inline: inactive and not reusable.
      active: false,
      billing_scheme: 'per_unit',
      created: f.created,
      currency: f.currency,
      custom_unit_amount: null,
      livemode: false,
      lookup_key: null,
      metadata: {},
      nickname: null,
      product: randomId('prod_', 14),
      recurring: null,
      tax_behavior: f.taxBehavior ?? 'unspecified',
      tiers_mode: null,
      transform_quantity: null,
      type: 'one_time',
      unit_amount: f.unitAmount,
      // The library types this as its Decimal class, which serialises to Stripe's decimal string.
      unit_amount_decimal: Stripe.Decimal.from(f.unitAmount),
    },
    quantity: f.quantity,
  };
}

export interface PaymentIntentFields {
  created: number;
  amount: number;
  currency: string;
  paymentMethodType: string;
  description: string | null;
  metadata: Record<string, string>;
}

/** A PaymentIntent as Checkout leaves it once the shopper has confirmed: processing, until settled. */
export function buildPaymentIntent(f: PaymentIntentFields): Stripe.PaymentIntent {
  const id = randomId('pi_3');
  return {
    ...paymentIntentFixture(),
    id,
    allowed_payment_method_types: null,
    amount: f.amount,
    amount_capturable: 0,
    amount_details: { tip: {} },
    amount_received: 0,
    automatic_payment_methods: null,
    canceled_at: null,
    client_secret: `${id}_secret_${randomId('', 25)}`,
    created: f.created,
    currency: f.currency,
    description: f.description,
    last_payment_error: null,
    latest_charge: null,
    managed_payments: null,
    metadata: f.metadata,
    next_action: null,
    payment_method: randomId('pm_'),
    payment_method_configuration_details: null,
    payment_method_options: {},
    payment_method_types: [f.paymentMethodType],
    payment_record: null,
    processing: null,
    shipping: null,
    status: 'processing',
    transfer_data: null,
  };
}

export interface ChargeFields {
  created: number;
  paymentIntent: Stripe.PaymentIntent;
  email: string;
  name: string | null;
}

/** A pending charge for the PaymentIntent; succeedCharge or failCharge decides how it ends. */
export function buildCharge(f: ChargeFields): Stripe.Charge {
  // `refunds` is only sent when expanded (since API version 2022-11-15); the fixture shows it expanded.
  const { refunds: _refunds, ...base } = chargeFixture();
  const id = randomId('ch_3');
  const method = f.paymentIntent.payment_method_types[0];
  return {
    ...base,
    id,
    amount: f.paymentIntent.amount,
    amount_captured: 0,
    amount_refunded: 0,
    balance_transaction: null,
    billing_details: { ...base.billing_details, email: f.email, name: f.name },
    calculated_statement_descriptor: 'STRIPE STAND-IN',
    captured: false,
    created: f.created,
    currency: f.paymentIntent.currency,
    description: f.paymentIntent.description,
    metadata: {},
    outcome: null,
    paid: false,
    payment_intent: f.paymentIntent.id,
    payment_method: typeof f.paymentIntent.payment_method === 'string' ? f.paymentIntent.payment_method : null,
    // The fixture describes a Visa card ending 4242, Stripe's standard test card.
    payment_method_details: method === 'card' ? base.payment_method_details : { type: method, customer_balance: {} },
    receipt_url: null,
    refunded: false,
    shipping: null,
    source: null,
    status: 'pending',
    transfer_data: null,
  };
}

export function succeedCharge(charge: Stripe.Charge): void {
  Object.assign(charge, {
    amount_captured: charge.amount,
    balance_transaction: randomId('txn_3'),
    captured: true,
    outcome: outcome('authorized', 'approved_by_network', 'Payment complete.'),
    paid: true,
    status: 'succeeded',
  } satisfies Partial<Stripe.Charge>);
}

export function failCharge(charge: Stripe.Charge, code: string, message: string): void {
  Object.assign(charge, {
    failure_code: code,
    failure_message: message,
    outcome: outcome('issuer_declined', 'declined_by_network', message),
    status: 'failed',
  } satisfies Partial<Stripe.Charge>);
}

function outcome(type: string, networkStatus: string, sellerMessage: string): Stripe.Charge.Outcome {
  return {
    advice_code: null,
    network_advice_code: null,
    network_decline_code: null,
    network_status: networkStatus,
    reason: null,
    risk_level: 'normal',
    seller_message: sellerMessage,
    type,
  };
}

export interface RefundFields {
  created: number;
  amount: number;
  charge: Stripe.Charge;
  reason: Stripe.Refund.Reason | null;
  metadata: Record<string, string>;
}

export function buildRefund(f: RefundFields): Stripe.Refund {
  const base = refundFixture();
  const method = f.charge.payment_method_details?.type ?? 'card';
  return {
    ...base,
    id: randomId('re_3'),
    amount: f.amount,
    balance_transaction: randomId('txn_3'),
    charge: f.charge.id,
    created: f.created,
    currency: f.charge.currency,
    // Card refunds reverse the charge; bank transfers go back to the customer's cash balance.
    destination_details:
      method === 'card' ? base.destination_details : { type: 'customer_cash_balance', customer_cash_balance: {} },
    metadata: f.metadata,
    payment_intent: typeof f.charge.payment_intent === 'string' ? f.charge.payment_intent : null,
    payment_method: f.charge.payment_method,
    reason: f.reason,
    status: 'succeeded',
  };
}

interface EventBaseFields {
  created: number;
  request: EventRequest;
}

function eventBase(f: EventBaseFields): Omit<Stripe.EventBase, 'type' | 'data'> {
  const { type: _type, data: _data, ...base } = eventFixture();
  return {
    ...base,
    id: randomId('evt_1'),
    api_version: API_VERSION,
    created: f.created,
    livemode: false,
    pending_webhooks: 0,
    request: f.request,
  };
}

/** `data.object` is a snapshot: later changes to the session do not alter past events. */
export function buildSessionEvent(
  type: SessionEventType,
  session: Stripe.Checkout.Session,
  f: EventBaseFields,
): StandinEvent {
  return { ...eventBase(f), type, data: { object: structuredClone(session) } };
}

export function buildChargeRefundedEvent(
  charge: Stripe.Charge,
  previous: Partial<Stripe.Charge>,
  f: EventBaseFields,
): StandinEvent {
  return {
    ...eventBase(f),
    type: 'charge.refunded',
    data: { object: structuredClone(charge), previous_attributes: previous },
  };
}

export function buildDisputeEvent(type: DisputeEventType, dispute: Stripe.Dispute, f: EventBaseFields): StandinEvent {
  return { ...eventBase(f), type, data: { object: structuredClone(dispute) } } as StandinEvent;
}
