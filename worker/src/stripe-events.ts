// The shapes the cart and its payment events show: one definition, the published event's.
import type { Amounts, Dispute, Shipping } from '@edge-checkout/pubsub/payment-event';
import { type CartEvent, noticeOf } from './cart-state.ts';
import { storableForm } from './storable-text.ts';
import type { Stripe } from './stripe.ts';

/** What one Stripe event (or a session read back from Stripe) means for a cart. */
export interface CartEffect {
  /** Stripe's event id, or a synthetic id for sessions read back and API actions. */
  id: string;
  type: string;
  source: 'webhook' | 'reconcile' | 'api';
  event: CartEvent;
  /** Session events name their session; refunds and disputes only know the payment intent. */
  sessionId: string | null;
  paymentIntentId: string | null;
  fullRefund: boolean;
  /** For refunds: the charge's amount_refunded, every refund of it so far. */
  refundedAmount: number | null;
  dispute: Dispute | null;
  /** What a refund or dispute is published as once the payment has landed (`noticeOf`). */
  notice: string | null;
  /** A refund that failed after it was counted (`refund.failed`): what an operator needs to pay the shopper otherwise. */
  failedRefund: FailedRefund | null;
  /** What Stripe says was charged, compared with the cart's checkout snapshot. */
  charged: { currency: string | null; amounts: Amounts | null } | null;
  customer: { email: string | null; name: string | null } | null;
  /** The address collected; `rateId` names the shipping rate chosen among those the session offered. */
  shipping: { details: Shipping; rateId: string | null } | null;
  occurredAt: Date;
}

export interface FailedRefund {
  id: string;
  amount: number;
  currency: string;
  /** Stripe's reason (lost_or_stolen_card, expired_or_canceled_card, …), when it gives one. */
  reason: string | null;
}

/** The Stripe event types effectOfEvent acts on: the webhook endpoint's subscription. */
export const HANDLED_EVENT_TYPES = [
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
  'checkout.session.expired',
  'charge.refunded',
  'charge.dispute.created',
  'charge.dispute.closed',
  'refund.failed',
] as const;

/** The effect of a webhook event, or null for event types we do not act on. */
export function effectOfEvent(event: Stripe.Event, source: 'webhook' | 'reconcile' = 'webhook'): CartEffect | null {
  const occurredAt = new Date(event.created * 1000);
  const base = { id: event.id, type: event.type, source, occurredAt };
  switch (event.type) {
    case 'checkout.session.completed': {
      const session = event.data.object;
      // Checkout completes unpaid for delayed methods (bank debits); those settle later.
      const paid = session.payment_status !== 'unpaid';
      return { ...base, ...fromSession(session), event: paid ? 'session_completed_paid' : 'session_completed_unpaid' };
    }
    case 'checkout.session.async_payment_succeeded':
      return { ...base, ...fromSession(event.data.object), event: 'async_payment_succeeded' };
    case 'checkout.session.async_payment_failed':
      return { ...base, ...fromSession(event.data.object), event: 'async_payment_failed' };
    case 'checkout.session.expired':
      return { ...base, ...fromSession(event.data.object), event: 'session_expired' };
    case 'charge.refunded':
      return { ...base, ...refundOf(event.data.object) };
    case 'charge.dispute.created':
    case 'charge.dispute.closed': {
      const dispute = event.data.object;
      const closed = event.type === 'charge.dispute.closed';
      const status = storableForm(dispute.status);
      return {
        ...base,
        ...aboutThePayment(dispute.payment_intent),
        event: closed ? 'dispute_closed' : 'dispute_created',
        dispute: { id: dispute.id, status, reason: storableForm(dispute.reason), amount: dispute.amount, closed },
        notice: noticeOf({ disputeId: dispute.id, closed, status }),
      };
    }
    case 'refund.failed': {
      // Sent for every kind of refund since 2024-10-28.acacia
      // (https://docs.stripe.com/changelog/acacia/2024-10-28/refund-webhook-update). The money went
      // back to the account's balance, not to the shopper, and a refund to the same card would
      // fail again: someone has to pay the shopper otherwise (https://docs.stripe.com/refunds#failed-refunds).
      const refund = event.data.object;
      return {
        ...base,
        ...aboutThePayment(refund.payment_intent),
        event: 'refund_failed',
        failedRefund: {
          id: refund.id,
          amount: refund.amount,
          currency: refund.currency,
          reason: storableForm(refund.failure_reason ?? null),
        },
      };
    }
    default:
      return null;
  }
}

/**
 * The cart a payment's Checkout Session event names in the metadata this Worker gives every
 * session it makes (checkout.ts), or null. Never used to apply an event (fulfilment goes by our
 * own checkout rows); only to tell a payment for a checkout of ours the database no longer
 * knows. An expiry is not one: sessions the Worker made and gave up at once are never stored.
 */
export function cartIdOfOurPayment(event: Stripe.Event): string | null {
  if (event.type !== 'checkout.session.completed' && event.type !== 'checkout.session.async_payment_succeeded') {
    return null;
  }
  const cartId: unknown = event.data.object.metadata?.cart_id;
  return typeof cartId === 'string' ? cartId : null;
}

/**
 * The effect of a session read back from Stripe (success page, scheduled job), for when its
 * webhook is late or lost; null while the session is still open. Its id is derived from the
 * session's state, so reading the same state again is a replay. Expand `payment_intent` to
 * see a delayed payment that failed.
 */
export function effectOfSession(session: Stripe.Checkout.Session): CartEffect | null {
  let event: CartEvent;
  let outcome: string = session.payment_status;
  if (session.status === 'expired') event = 'session_expired';
  else if (session.status === 'complete' && session.payment_status === 'unpaid' && delayedPaymentFailed(session)) {
    event = 'async_payment_failed';
    outcome = 'failed';
  } else if (session.status === 'complete' && session.payment_status === 'unpaid') event = 'session_completed_unpaid';
  // A session that reads back paid is paid whichever way it got there: this event moves both
  // checkout_pending and awaiting_payment carts to paid.
  else if (session.status === 'complete') event = 'async_payment_succeeded';
  else return null;
  return {
    id: `reconcile:${session.id}:${session.status}:${outcome}`,
    type: `reconcile.${event}`,
    source: 'reconcile',
    occurredAt: new Date(),
    event,
    ...fromSession(session),
  };
}

/**
 * A session stays "complete, unpaid" after its delayed payment failed; only its payment intent
 * (read with `expand: ['payment_intent']`) tells: it asks for another payment method again.
 */
function delayedPaymentFailed(session: Stripe.Checkout.Session): boolean {
  const intent = session.payment_intent;
  return (
    typeof intent === 'object' &&
    intent !== null &&
    (intent.status === 'requires_payment_method' || intent.status === 'canceled')
  );
}

/**
 * A session Stripe answers 404 for ("doesn't exist"): recorded like an expiry, which gives a
 * checkout_pending cart back to the shopper and leaves an awaiting_payment one as it is.
 */
export function missingSessionEffect(sessionId: string): CartEffect {
  return ourOwnEffect(sessionId, {
    id: `reconcile:${sessionId}:missing`,
    type: 'reconcile.session_missing',
    source: 'reconcile',
    event: 'session_expired',
  });
}

/** A cancellation through our API, recorded like any other event of the session. */
export function cancelEffect(sessionId: string): CartEffect {
  return ourOwnEffect(sessionId, {
    id: `cancel:${sessionId}`,
    type: 'api.checkout.cancel',
    source: 'api',
    event: 'cancel_checkout',
  });
}

/** An effect we know of ourselves, not from a Stripe object: it carries no payment details. */
function ourOwnEffect(sessionId: string, what: Pick<CartEffect, 'id' | 'type' | 'source' | 'event'>): CartEffect {
  return { ...what, ...NO_DETAILS, sessionId, occurredAt: new Date() };
}

/**
 * A refund made through our admin API, applied from Stripe's answer (the refund with its charge
 * expanded) without waiting for `charge.refunded`. Its id is the refund's, so a replayed answer
 * is a replay here too; the webhook that follows reports the same amount and changes nothing.
 */
export function refundEffect(refund: Stripe.Refund, charge: Stripe.Charge): CartEffect {
  return {
    ...refundOf(charge),
    id: `refund:${refund.id}`,
    type: 'api.refund',
    source: 'api',
    occurredAt: new Date(refund.created * 1000),
  };
}

/**
 * What a charge's refunds come to, from `charge.refunded` or our own refund's answer alike:
 * `amount_refunded` counts every refund of it so far, so the charge says whether it is whole.
 */
function refundOf(charge: Stripe.Charge) {
  const fullRefund = charge.refunded || charge.amount_refunded >= charge.amount;
  return {
    ...aboutThePayment(charge.payment_intent),
    event: fullRefund ? ('full_refund' as const) : ('partial_refund' as const),
    fullRefund,
    refundedAmount: charge.amount_refunded,
    notice: noticeOf({ refunded: charge.amount_refunded, full: fullRefund }),
  };
}

const NO_DETAILS = {
  sessionId: null,
  paymentIntentId: null,
  fullRefund: false,
  refundedAmount: null,
  dispute: null,
  notice: null,
  failedRefund: null,
  charged: null,
  customer: null,
  shipping: null,
} satisfies Partial<CartEffect>;

/** Refunds and disputes name only the payment intent; the session is found through it. */
function aboutThePayment(paymentIntent: string | { id: string } | null) {
  return { ...NO_DETAILS, paymentIntentId: idOf(paymentIntent) };
}

function fromSession(session: Stripe.Checkout.Session) {
  const details = session.customer_details;
  return {
    ...NO_DETAILS,
    sessionId: session.id,
    paymentIntentId: idOf(session.payment_intent),
    charged: { currency: session.currency, amounts: amountsOf(session) },
    customer: details ? { email: storableForm(details.email ?? null), name: storableForm(details.name ?? null) } : null,
    shipping: shippingOf(session),
  };
}

/** Discount, shipping and tax are in `total_details`; the subtotal is the line items before them. */
function amountsOf(session: Stripe.Checkout.Session): Amounts | null {
  if (session.amount_subtotal == null || session.amount_total == null) return null;
  const details = session.total_details;
  return {
    subtotal: session.amount_subtotal,
    discount: details?.amount_discount ?? 0,
    shipping: details?.amount_shipping ?? 0,
    tax: details?.amount_tax ?? 0,
    total: session.amount_total,
  };
}

type CollectedShipping = NonNullable<Stripe.Checkout.Session['collected_information']>['shipping_details'];
/** A session as older API versions write it (see shippingOf). */
type SessionOfAnyVersion = Stripe.Checkout.Session & {
  shipping_details?: CollectedShipping;
  shipping?: CollectedShipping;
  shipping_rate?: string | { id: string } | null;
};

/**
 * The address Checkout collected and the rate chosen: `shipping_cost.shipping_rate` is the id
 * Stripe gave one of the session's `shipping_options`; its name is looked up among those we
 * offered. Stripe writes an event in the API version of the endpoint it goes to, and lists
 * events in the version each was created in (https://docs.stripe.com/api/events/list), and the
 * address moved twice: `collected_information.shipping_details` since 2025-02-24.acacia, the
 * top-level `shipping_details` from 2022-08-01 until 2025-03-31.basil removed it
 * (https://docs.stripe.com/changelog/basil/2025-03-31/checkout-session-remove-shipping-details),
 * and before 2022-08-01 `shipping`, with the rate's id in `shipping_rate` and its amount only in
 * `total_details` (https://docs.stripe.com/changelog/2022-08-01/updates-shipping-property-checkout-session).
 */
function shippingOf(session: SessionOfAnyVersion): CartEffect['shipping'] {
  const details = session.collected_information?.shipping_details ?? session.shipping_details ?? session.shipping;
  if (!details) return null;
  const rateId = idOf(session.shipping_cost?.shipping_rate ?? session.shipping_rate);
  const amount = session.shipping_cost?.amount_subtotal ?? session.total_details?.amount_shipping;
  const a = details.address;
  return {
    details: {
      name: storableForm(details.name ?? null),
      address: {
        line1: storableForm(a.line1 ?? null),
        line2: storableForm(a.line2 ?? null),
        city: storableForm(a.city ?? null),
        state: storableForm(a.state ?? null),
        postalCode: storableForm(a.postal_code ?? null),
        country: storableForm(a.country ?? null),
      },
      rate: rateId && amount != null ? { name: rateId, amount, minDays: null, maxDays: null } : null,
    },
    rateId,
  };
}

/** The id of a Stripe reference, whether it came as the id or as the expanded object. */
export function idOf(ref: string | { id: string } | null | undefined): string | null {
  if (!ref) return null;
  return typeof ref === 'string' ? ref : ref.id;
}
