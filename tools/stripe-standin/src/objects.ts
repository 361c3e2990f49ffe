import { readFileSync } from 'node:fs';
import Stripe from 'stripe';
import { randomId } from './ids.ts';

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

/** The event types the stand-in sends: the ones the Worker's webhook endpoint subscribes to. */
export type StandinEvent =
  | Stripe.CheckoutSessionCompletedEvent
  | Stripe.CheckoutSessionAsyncPaymentSucceededEvent
  | Stripe.CheckoutSessionAsyncPaymentFailedEvent
  | Stripe.CheckoutSessionExpiredEvent
  | Stripe.ChargeRefundedEvent;

/** Which API request caused an event; both null when the shopper or a timer did. */
export type EventRequest = Stripe.Event.Request;

export interface SessionFields {
  id: string;
  created: number;
  expiresAt: number;
  currency: string;
  amountTotal: number;
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
  return {
    ...sessionFixture(),
    id: f.id,
    adaptive_pricing: { enabled: false },
    after_expiration: null,
    allowed_payment_method_types: f.allowedPaymentMethodTypes,
    // No taxes, discounts or shipping: the subtotal is the total.
    amount_subtotal: f.amountTotal,
    amount_total: f.amountTotal,
    automatic_tax: { enabled: false, liability: null, provider: null, status: null },
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
    shipping_address_collection: null,
    shipping_cost: null,
    status: 'open',
    success_url: f.successUrl,
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: 'hosted_page',
    url: f.url,
    wallet_options: null,
  };
}

export interface LineItemFields {
  created: number;
  currency: string;
  unitAmount: number;
  quantity: number;
  name: string;
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
      tax_behavior: 'unspecified',
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
