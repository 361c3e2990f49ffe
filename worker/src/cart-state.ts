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
] as const;
export type CartEvent = (typeof CART_EVENTS)[number];

/**
 * A shopper's active cart is in one of these, and they have at most one (the `active` column and
 * a unique index in the database). A cart that comes back into one of them after the shopper
 * started another cart (a delayed payment that failed) is superseded: not active, not editable.
 */
export const ACTIVE_STATUSES: readonly CartStatus[] = ['open', 'checkout_pending', 'payment_failed'];
/** Moves into these are published to Pub/Sub as payment events; back to open or checkout_pending are not. */
export const PUBLISHED_STATUSES: readonly CartStatus[] = ['paid', 'awaiting_payment', 'payment_failed', 'refunded'];
/** Items can be changed only here. */
export const EDITABLE_STATUSES: readonly CartStatus[] = ['open', 'payment_failed'];

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

export function isEditable(status: CartStatus): boolean {
  return EDITABLE_STATUSES.includes(status);
}

/**
 * The statuses a cart passes through when `event` happens in `status`: empty when nothing
 * changes. A full refund of this payment that was recorded earlier (Stripe may deliver
 * `charge.refunded` before the completion) is applied right after the payment lands, so every
 * order of arrival of one checkout's events ends in the same state.
 */
export function settle(status: CartStatus, event: CartEvent, refundRecorded: boolean): CartStatus[] {
  const next = transition(status, event);
  if (!next) return [];
  const refunded = refundRecorded ? transition(next, 'full_refund') : null;
  return refunded ? [next, refunded] : [next];
}

/** `settle` for every current status at once, so the database can pick the row's own. */
export function pathsFor(event: CartEvent, refundRecorded: boolean): Partial<Record<CartStatus, CartStatus[]>> {
  const paths: Partial<Record<CartStatus, CartStatus[]>> = {};
  for (const status of CART_STATUSES) {
    const path = settle(status, event, refundRecorded);
    if (path.length) paths[status] = path;
  }
  return paths;
}

/**
 * What Stripe would refuse at checkout, refused already when the cart is edited:
 * Checkout takes at most 100 line items in payment mode
 * (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-line_items), and
 * an amount of at most eight digits in minor units
 * (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
 */
export const CART_LIMITS = { lines: 100, totalAmount: 99_999_999 } as const;
