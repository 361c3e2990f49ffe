import { describe, expect, it } from 'vitest';
import {
  CART_EVENTS,
  CART_STATUSES,
  type CartEvent,
  type CartStatus,
  decisionsFor,
  noticeOf,
  settle,
  stockMove,
  transition,
} from '../src/cart-state.ts';

// docs/contract.md §3, written out cell by cell: null is "409 for the API, recorded and ignored for a webhook".
const expected: Record<CartStatus, Record<CartEvent, CartStatus | null>> = {
  open: {
    checkout: 'checkout_pending',
    cancel_checkout: null,
    session_completed_paid: null,
    session_completed_unpaid: null,
    async_payment_succeeded: null,
    async_payment_failed: null,
    session_expired: null,
    full_refund: null,
    partial_refund: null,
    dispute_created: null,
    dispute_closed: null,
  },
  checkout_pending: {
    checkout: 'checkout_pending',
    cancel_checkout: 'open',
    session_completed_paid: 'paid',
    session_completed_unpaid: 'awaiting_payment',
    async_payment_succeeded: 'paid',
    async_payment_failed: 'payment_failed',
    session_expired: 'open',
    full_refund: null,
    partial_refund: null,
    dispute_created: null,
    dispute_closed: null,
  },
  awaiting_payment: {
    checkout: null,
    cancel_checkout: null,
    session_completed_paid: null,
    session_completed_unpaid: null,
    async_payment_succeeded: 'paid',
    async_payment_failed: 'payment_failed',
    session_expired: null,
    full_refund: null,
    partial_refund: null,
    dispute_created: null,
    dispute_closed: null,
  },
  paid: {
    checkout: null,
    cancel_checkout: null,
    session_completed_paid: null,
    session_completed_unpaid: null,
    async_payment_succeeded: null,
    async_payment_failed: null,
    session_expired: null,
    full_refund: 'refunded',
    partial_refund: null,
    dispute_created: null,
    dispute_closed: null,
  },
  payment_failed: {
    checkout: 'checkout_pending',
    cancel_checkout: null,
    session_completed_paid: null,
    session_completed_unpaid: null,
    async_payment_succeeded: null,
    async_payment_failed: null,
    session_expired: null,
    full_refund: null,
    partial_refund: null,
    dispute_created: null,
    dispute_closed: null,
  },
  refunded: {
    checkout: null,
    cancel_checkout: null,
    session_completed_paid: null,
    session_completed_unpaid: null,
    async_payment_succeeded: null,
    async_payment_failed: null,
    session_expired: null,
    full_refund: null,
    partial_refund: null,
    dispute_created: null,
    dispute_closed: null,
  },
};

describe('cart state machine', () => {
  const cells = CART_STATUSES.flatMap((s) => CART_EVENTS.map((e) => [s, e, expected[s][e]] as const));

  it('covers every state and event', () => {
    expect(cells).toHaveLength(CART_STATUSES.length * CART_EVENTS.length);
  });

  it.each(cells)('%s + %s → %s', (status, event, next) => {
    expect(transition(status, event)).toBe(next);
  });
});

const none = { refund: 'none', dispute: 'none' } as const;

describe('notices: what happens to a landed payment without moving the cart', () => {
  const published: [CartStatus, CartEvent, string | null][] = [
    ['paid', 'partial_refund', 'partially_refunded'],
    ['refunded', 'partial_refund', null],
    ['checkout_pending', 'partial_refund', null],
    ['paid', 'dispute_created', 'disputed'],
    ['refunded', 'dispute_created', 'disputed'],
    ['paid', 'dispute_closed', 'dispute_closed'],
    ['refunded', 'dispute_closed', 'dispute_closed'],
    ['awaiting_payment', 'dispute_created', null],
    ['open', 'dispute_closed', null],
    ['paid', 'full_refund', null],
  ];
  it.each(published)('%s + %s → %s', (status, event, notice) => {
    expect(noticeOf(status, event)).toBe(notice);
  });
});

describe('stock held by checkout', () => {
  // Every move between statuses: only leaving a holding status does something to the hold.
  const moves = CART_STATUSES.flatMap((from) => CART_STATUSES.map((to) => [from, to, stockMove(from, to)] as const));
  it.each(moves.filter(([, , move]) => move !== null))('%s → %s: %s', (from, to, move) => {
    expect(['checkout_pending', 'awaiting_payment']).toContain(from);
    expect(move).toBe(to === 'paid' || to === 'refunded' ? 'consume' : 'release');
  });

  it('releases on expiry, cancel and payment failure, consumes on payment, keeps holding while a transfer is pending', () => {
    expect(settle('checkout_pending', 'session_expired', none).stock).toBe('release');
    expect(settle('checkout_pending', 'cancel_checkout', none).stock).toBe('release');
    expect(settle('checkout_pending', 'async_payment_failed', none).stock).toBe('release');
    expect(settle('awaiting_payment', 'async_payment_failed', none).stock).toBe('release');
    expect(settle('checkout_pending', 'session_completed_paid', none).stock).toBe('consume');
    expect(settle('awaiting_payment', 'async_payment_succeeded', none).stock).toBe('consume');
    expect(settle('checkout_pending', 'session_completed_unpaid', none).stock).toBeNull();
    expect(settle('paid', 'full_refund', none).stock).toBeNull();
  });
});

describe('settle: what Stripe reported before the payment landed', () => {
  it('applies a full refund right after the payment lands', () => {
    expect(settle('checkout_pending', 'session_completed_paid', { refund: 'full', dispute: 'none' })).toEqual({
      path: ['paid', 'refunded'],
      notices: [],
      stock: 'consume',
    });
    expect(settle('awaiting_payment', 'async_payment_succeeded', { refund: 'full', dispute: 'none' }).path).toEqual([
      'paid',
      'refunded',
    ]);
  });

  it('publishes a partial refund and a dispute after the payment, in that order', () => {
    expect(settle('checkout_pending', 'session_completed_paid', { refund: 'partial', dispute: 'open' })).toEqual({
      path: ['paid'],
      notices: ['partially_refunded', 'disputed'],
      stock: 'consume',
    });
    // A dispute first seen closed is published closed only; after a full refund no partial one.
    expect(settle('checkout_pending', 'session_completed_paid', { refund: 'full', dispute: 'closed' })).toEqual({
      path: ['paid', 'refunded'],
      notices: ['dispute_closed'],
      stock: 'consume',
    });
  });

  it('changes nothing when no payment lands', () => {
    const earlier = { refund: 'full', dispute: 'open' } as const;
    expect(settle('checkout_pending', 'session_completed_unpaid', earlier)).toEqual({
      path: ['awaiting_payment'],
      notices: [],
      stock: null,
    });
    expect(settle('paid', 'session_expired', earlier)).toEqual({ path: [], notices: [], stock: null });
    // The payment landed before: its own events apply, not the earlier ones again.
    expect(settle('paid', 'dispute_created', earlier)).toEqual({ path: [], notices: ['disputed'], stock: null });
  });

  it('gives the database one decision per earlier facts and current status, leaving out no-ops', () => {
    const decisions = decisionsFor('async_payment_succeeded');
    expect(Object.keys(decisions)).toHaveLength(9);
    expect(decisions['none/none']).toEqual({
      checkout_pending: { path: ['paid'], notices: [], stock: 'consume' },
      awaiting_payment: { path: ['paid'], notices: [], stock: 'consume' },
    });
    expect(decisionsFor('dispute_closed')['none/none']).toEqual({
      paid: { path: [], notices: ['dispute_closed'], stock: null },
      refunded: { path: [], notices: ['dispute_closed'], stock: null },
    });
  });
});
