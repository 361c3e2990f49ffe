import { CHECKOUT_MAX_LINES, stripeMaxAmount } from './stripe-limits.ts';

/**
 * The cart state machine of docs/contract.md §3 as a pure function: no I/O, so every state and event
 * can be tested exhaustively, and the database only ever applies what this table allows.
 */

export const CART_STATUSES = [
  'open',
  'checkout_pending',
  'awaiting_payment',
  'paid',
  'payment_failed',
  'refunded',
] as const;
export type CartStatus = (typeof CART_STATUSES)[number];

export const CART_EVENTS = [
  'checkout', // API: start (or resume) a Checkout Session
  'cancel_checkout', // API: expire the live session
  'session_completed_paid',
  'session_completed_unpaid', // completed with a delayed (async) payment method
  'async_payment_succeeded',
  'async_payment_failed',
  'session_expired',
  'full_refund',
  'partial_refund',
  'dispute_created',
  'dispute_closed',
  'refund_failed', // a refund already counted failed: recorded and logged, the cart unchanged (§9)
] as const;
export type CartEvent = (typeof CART_EVENTS)[number];

/**
 * A shopper's active cart is in one of these, and they have at most one (the `active` column and
 * a unique index in the database). A cart that comes back into one of them after the shopper
 * started another cart (a delayed payment that failed) is superseded: not active, not editable.
 */
export const ACTIVE_STATUSES: readonly CartStatus[] = ['open', 'checkout_pending', 'payment_failed'];
/** Moves into these are published to Pub/Sub as payment events; back to open or checkout_pending are not. */
export const PUBLISHED_STATUSES = [
  'paid',
  'awaiting_payment',
  'payment_failed',
  'refunded',
] as const satisfies readonly CartStatus[];
/** Items can be changed only here. */
export const EDITABLE_STATUSES: readonly CartStatus[] = ['open', 'payment_failed'];
/** The payment may still come; checkout holds the cart's stock meanwhile. */
export const PAYMENT_PENDING_STATUSES: readonly CartStatus[] = ['checkout_pending', 'awaiting_payment'];
/** The payment has landed: refunds and disputes of it are news for the shop. */
export const LANDED_STATUSES: readonly CartStatus[] = ['paid', 'refunded'];

/**
 * What Stripe reports about a landed payment without changing the cart's status, published as
 * events of their own (`cart.partially_refunded`, …). A full refund is a status: `refunded`.
 */
const PAYMENT_NOTICES = ['partially_refunded', 'disputed', 'dispute_closed'] as const;
type PaymentNotice = (typeof PAYMENT_NOTICES)[number];
/** The type of a payment event published for a status or a notice (the outbox reads it as one of the bridge's types). */
export type PublishedEventType = `cart.${(typeof PUBLISHED_STATUSES)[number] | PaymentNotice}`;

const table: Record<CartStatus, Partial<Record<CartEvent, CartStatus>>> = {
  open: { checkout: 'checkout_pending' },
  checkout_pending: {
    checkout: 'checkout_pending', // the live session is handed out again
    cancel_checkout: 'open',
    session_completed_paid: 'paid',
    session_completed_unpaid: 'awaiting_payment',
    async_payment_succeeded: 'paid',
    async_payment_failed: 'payment_failed',
    session_expired: 'open',
  },
  awaiting_payment: { async_payment_succeeded: 'paid', async_payment_failed: 'payment_failed' },
  paid: { full_refund: 'refunded' },
  payment_failed: { checkout: 'checkout_pending' },
  refunded: {},
};

/**
 * The state a cart moves to when `event` happens in `status`, or null when the table does not
 * allow it: the API answers 409, a webhook event is recorded and changes nothing.
 */
export function transition(status: CartStatus, event: CartEvent): CartStatus | null {
  return table[status][event] ?? null;
}

/** The payment is still being decided: a checkout is open or a transfer is on its way. */
export function isPaymentPending(status: CartStatus): boolean {
  return PAYMENT_PENDING_STATUSES.includes(status);
}

/**
 * Back from Checkout without paying, the cart is simply kept (its checkout cancelled, or still
 * open if cancelling failed), unless something landed meanwhile (paid in another tab, say).
 */
export function isKeptAfterCancel(status: CartStatus): boolean {
  return status === 'open' || status === 'checkout_pending';
}

export function isEditable(status: CartStatus): boolean {
  return EDITABLE_STATUSES.includes(status);
}

/**
 * One thing Stripe reported about a payment: a refund that took the charge's `amount_refunded`
 * to `refunded`, or a dispute opened, or closed with an outcome. Stripe sends `charge.refunded`
 * for each refund, partial ones included (https://docs.stripe.com/api/events/types#event_types-charge.refunded),
 * and `amount_refunded` counts every refund of the charge so far
 * (https://docs.stripe.com/api/charges/object#charge_object-amount_refunded), so each refund
 * takes it to a total of its own. A dispute may close more than once: a lost one can be
 * appealed, and Stripe sends `charge.dispute.closed` again when the appeal is decided
 * (https://docs.stripe.com/api/events/types#event_types-charge.dispute.closed), so each
 * outcome is a fact of its own.
 */
type PaymentFact = { refunded: number; full: boolean } | { disputeId: string; closed: boolean; status: string };

/**
 * The notice a fact is published as, `type:key`, or null when it is none (a full refund moves
 * the cart instead). The key names the fact, not the event that reported it: a refund made
 * through our API and its `charge.refunded` webhook are one refund, published once. Each notice
 * is published once, as soon as the payment has landed, whatever order the facts arrive in: a
 * partial refund reported after the full one is still a refund the shopper had.
 */
export function noticeOf(fact: PaymentFact): `${PaymentNotice}:${string}` | null {
  if ('disputeId' in fact)
    return fact.closed ? `dispute_closed:${fact.disputeId}:${fact.status}` : `disputed:${fact.disputeId}`;
  return fact.full || fact.refunded <= 0 ? null : `partially_refunded:${fact.refunded}`;
}

/** What checkout's stock hold becomes when a cart moves: given back, or taken for good by the payment. */
type StockMove = 'release' | 'consume';

/** Checkout reserves the stock as the cart enters checkout_pending; its end is one of these. */
export function stockMove(from: CartStatus, to: CartStatus): StockMove | null {
  if (!PAYMENT_PENDING_STATUSES.includes(from) || PAYMENT_PENDING_STATUSES.includes(to)) return null;
  return LANDED_STATUSES.includes(to) ? 'consume' : 'release';
}

/** What one event does to a cart in one status. */
interface Decision {
  /** The statuses it passes through; empty when it stays. */
  path: CartStatus[];
  stock: StockMove | null;
}

/**
 * What `event` does in `status`. Stripe may report the full refund of a payment before its
 * completion; when the payment lands after such a refund (`refundedEarlier`), the cart moves on
 * to refunded right away, so every order of arrival ends in the same status.
 */
export function settle(status: CartStatus, event: CartEvent, refundedEarlier: boolean): Decision {
  const next = transition(status, event);
  const path = next ? [next] : [];
  if (next && refundedEarlier && LANDED_STATUSES.includes(next) && !LANDED_STATUSES.includes(status)) {
    const refunded = transition(next, 'full_refund');
    if (refunded) path.push(refunded);
  }
  return { path, stock: next ? stockMove(status, next) : null };
}

/**
 * `settle` for every current status, without and with a full refund reported earlier, so the
 * database picks the row's own: `[earlier][status]`, leaving out statuses where the event
 * moves nothing.
 */
export function decisionsFor(event: CartEvent): Record<'none' | 'full', Partial<Record<CartStatus, Decision>>> {
  const byStatus = (refundedEarlier: boolean) => {
    const decisions: Partial<Record<CartStatus, Decision>> = {};
    for (const status of CART_STATUSES) {
      const decision = settle(status, event, refundedEarlier);
      if (decision.path.length) decisions[status] = decision;
    }
    return decisions;
  };
  return { none: byStatus(false), full: byStatus(true) };
}

/**
 * A line holds 1 to 99 of its product (the contract's); what Stripe would refuse at checkout is
 * refused already when the cart is edited: more lines than Checkout takes, a total over Stripe's
 * largest amount in the cart's currency (`totalAmount(currency)`).
 */
export const CART_LIMITS = { quantity: 99, lines: CHECKOUT_MAX_LINES, totalAmount: stripeMaxAmount } as const;
