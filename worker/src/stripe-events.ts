import type { CartEvent } from './cart-state.ts';
import type { Stripe } from './stripe.ts';

/** What one Stripe event (or a session read back from Stripe) means for a cart. */
export interface CartEffect {
  /** Stripe's event id, or a synthetic id for sessions read back and API actions. */
  id: string;
  type: string;
  source: 'webhook' | 'reconcile' | 'api';
  event: CartEvent;
  /** Session events name their session; refunds only know the payment intent. */
  sessionId: string | null;
  paymentIntentId: string | null;
  fullRefund: boolean;
  /** What Stripe says was charged, compared with the cart's checkout snapshot. */
  charged: { amountTotal: number | null; currency: string | null } | null;
  customer: { email: string | null; name: string | null } | null;
  occurredAt: Date;
}

/** The effect of a webhook event, or null for event types we do not act on. */
export function effectOfEvent(event: Stripe.Event): CartEffect | null {
  const occurredAt = new Date(event.created * 1000);
  const base = { id: event.id, type: event.type, source: 'webhook' as const, occurredAt };
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
    case 'charge.refunded': {
      const charge = event.data.object;
      const fullRefund = charge.refunded || charge.amount_refunded >= charge.amount;
      return {
        ...base,
        event: fullRefund ? 'full_refund' : 'partial_refund',
        sessionId: null,
        paymentIntentId: idOf(charge.payment_intent),
        fullRefund,
        charged: null,
        customer: null,
      };
    }
    default:
      return null;
  }
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
 * A session Stripe answers 404 for can never be paid: recorded like an expiry, which gives the
 * cart back to the shopper.
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
  return {
    ...what,
    sessionId,
    paymentIntentId: null,
    fullRefund: false,
    charged: null,
    customer: null,
    occurredAt: new Date(),
  };
}

function fromSession(session: Stripe.Checkout.Session) {
  const details = session.customer_details;
  return {
    sessionId: session.id,
    paymentIntentId: idOf(session.payment_intent),
    fullRefund: false,
    charged: { amountTotal: session.amount_total, currency: session.currency },
    customer: details ? { email: details.email ?? null, name: details.name ?? null } : null,
  };
}

function idOf(ref: string | { id: string } | null | undefined): string | null {
  if (!ref) return null;
  return typeof ref === 'string' ? ref : ref.id;
}
