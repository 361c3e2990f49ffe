import { describe, expect, it } from 'vitest';
import {
  CART_EVENTS,
  CART_STATUSES,
  type CartEvent,
  type CartStatus,
  pathsFor,
  settle,
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

describe('settle: a refund recorded before its payment completed', () => {
  it('is applied right after the payment lands', () => {
    expect(settle('checkout_pending', 'session_completed_paid', true)).toEqual(['paid', 'refunded']);
    expect(settle('awaiting_payment', 'async_payment_succeeded', true)).toEqual(['paid', 'refunded']);
  });

  it('changes nothing when no payment lands', () => {
    expect(settle('checkout_pending', 'session_completed_unpaid', true)).toEqual(['awaiting_payment']);
    expect(settle('paid', 'session_expired', true)).toEqual([]);
  });

  it('gives the database one path per current status', () => {
    expect(pathsFor('async_payment_succeeded', false)).toEqual({
      checkout_pending: ['paid'],
      awaiting_payment: ['paid'],
    });
  });
});
