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
/** Checkout holds the cart's stock while the cart is here (the payment may still come). */
export const HOLDING_STATUSES: readonly CartStatus[] = ['checkout_pending', 'awaiting_payment'];
/** The payment has landed: refunds and disputes of it are news for the shop. */
export const LANDED_STATUSES: readonly CartStatus[] = ['paid', 'refunded'];

/**
 * What happens to a landed payment without changing the cart's status, published as events of
 * their own (`cart.partially_refunded`, …). A full refund is a status: `refunded`.
 */
export const PAYMENT_NOTICES = ['partially_refunded', 'disputed', 'dispute_closed'] as const;
export type PaymentNotice = (typeof PAYMENT_NOTICES)[number];

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

const noticeOfEvent: Partial<Record<CartEvent, { notice: PaymentNotice; in: readonly CartStatus[] }>> = {
  // Once the whole payment is refunded, a partial refund reported late is old news.
  partial_refund: { notice: 'partially_refunded', in: ['paid'] },
  dispute_created: { notice: 'disputed', in: LANDED_STATUSES },
  dispute_closed: { notice: 'dispute_closed', in: LANDED_STATUSES },
};

/** The notice `event` gives in `status`, or null when it is no news there. */
export function noticeOf(status: CartStatus, event: CartEvent): PaymentNotice | null {
  const rule = noticeOfEvent[event];
  return rule?.in.includes(status) ? rule.notice : null;
}

/** What checkout's stock hold becomes when a cart moves: given back, or taken for good by the payment. */
export type StockMove = 'release' | 'consume';

/** Checkout reserves the stock as the cart enters checkout_pending; its end is one of these. */
export function stockMove(from: CartStatus, to: CartStatus): StockMove | null {
  if (!HOLDING_STATUSES.includes(from) || HOLDING_STATUSES.includes(to)) return null;
  return LANDED_STATUSES.includes(to) ? 'consume' : 'release';
}

/**
 * What Stripe reported about a payment before it landed (it may deliver `charge.refunded` or a
 * dispute before the completion): the furthest each has gone.
 */
export interface EarlierFacts {
  refund: 'none' | 'partial' | 'full';
  dispute: 'none' | 'open' | 'closed';
}
const REFUND_STAGES: readonly EarlierFacts['refund'][] = ['none', 'partial', 'full'];
const DISPUTE_STAGES: readonly EarlierFacts['dispute'][] = ['none', 'open', 'closed'];

/** What one event does to a cart in one status. */
export interface Decision {
  /** The statuses it passes through; empty when it stays. */
  path: CartStatus[];
  /** Published after the moves, in this order. */
  notices: PaymentNotice[];
  stock: StockMove | null;
}

/**
 * What `event` does in `status`. When the payment lands, what Stripe reported about it earlier
 * is applied right after, so every order of arrival of one checkout's events ends in the same
 * state: a full refund moves the cart on to refunded, a partial one and a dispute are published.
 * The database drops a notice that is not news for the payment (a refund that does not add to
 * what is known to be refunded, a dispute stage already reached).
 */
export function settle(status: CartStatus, event: CartEvent, earlier: EarlierFacts): Decision {
  const next = transition(status, event);
  const path = next ? [next] : [];
  const own = noticeOf(status, event);
  const notices = own ? [own] : [];
  if (next && LANDED_STATUSES.includes(next) && !LANDED_STATUSES.includes(status)) {
    const refunded = earlier.refund === 'full' ? transition(next, 'full_refund') : null;
    if (refunded) path.push(refunded);
    const landed = path[path.length - 1]!;
    const earlierEvents: CartEvent[] = [];
    if (earlier.refund === 'partial') earlierEvents.push('partial_refund');
    if (earlier.dispute !== 'none')
      earlierEvents.push(earlier.dispute === 'open' ? 'dispute_created' : 'dispute_closed');
    for (const e of earlierEvents) {
      const notice = noticeOf(landed, e);
      if (notice) notices.push(notice);
    }
  }
  return { path, notices, stock: next ? stockMove(status, next) : null };
}

/** The key of `earlier` in `decisionsFor`: `refund/dispute`. */
export type EarlierKey = `${EarlierFacts['refund']}/${EarlierFacts['dispute']}`;

/**
 * `settle` for every current status and every earlier fact at once, so the database picks the
 * row's own: `[earlier][status]`, leaving out statuses where the event does nothing.
 */
export function decisionsFor(event: CartEvent): Record<EarlierKey, Partial<Record<CartStatus, Decision>>> {
  const all = {} as Record<EarlierKey, Partial<Record<CartStatus, Decision>>>;
  for (const refund of REFUND_STAGES) {
    for (const dispute of DISPUTE_STAGES) {
      const byStatus: Partial<Record<CartStatus, Decision>> = {};
      for (const status of CART_STATUSES) {
        const decision = settle(status, event, { refund, dispute });
        if (decision.path.length || decision.notices.length) byStatus[status] = decision;
      }
      all[`${refund}/${dispute}`] = byStatus;
    }
  }
  return all;
}

/**
 * What Stripe would refuse at checkout, refused already when the cart is edited:
 * Checkout takes at most 100 line items in payment mode
 * (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-line_items), and
 * an amount of at most eight digits in minor units
 * (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
 */
export const CART_LIMITS = { lines: 100, totalAmount: 99_999_999 } as const;
