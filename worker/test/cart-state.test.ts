import { describe, expect, it } from 'vitest';
import {
  CART_EVENTS,
  CART_STATUSES,
  type CartStatus,
  decisionsFor,
  noticeOf,
  settle,
  stockMove,
  transition,
} from '../src/cart-state.ts';

// docs/contract.md §3 as its table, written out cell by cell: a row per status, a column per
// event (in CART_EVENTS' order, named in the header line); '–' is "409 for the API, recorded and ignored for a webhook".
const columns = CART_EVENTS;
type Cell = CartStatus | '–';
// biome-ignore format: the table is aligned by column, as in the contract
const rows: Record<CartStatus, readonly Cell[]> = {
  //                 checkout            cancel  paid    unpaid              succeeded failed            expired full refund partial disputed closed refund failed
  open:             ['checkout_pending', '–',    '–',    '–',                '–',      '–',              '–',    '–',        '–',    '–',     '–',   '–'],
  checkout_pending: ['checkout_pending', 'open', 'paid', 'awaiting_payment', 'paid',   'payment_failed', 'open', '–',        '–',    '–',     '–',   '–'],
  awaiting_payment: ['–',                '–',    '–',    '–',                'paid',   'payment_failed', '–',    '–',        '–',    '–',     '–',   '–'],
  paid:             ['–',                '–',    '–',    '–',                '–',      '–',              '–',    'refunded', '–',    '–',     '–',   '–'],
  payment_failed:   ['checkout_pending', '–',    '–',    '–',                '–',      '–',              '–',    '–',        '–',    '–',     '–',   '–'],
  refunded:         ['–',                '–',    '–',    '–',                '–',      '–',              '–',    '–',        '–',    '–',     '–',   '–'],
};

describe('cart state machine', () => {
  const cells = CART_STATUSES.flatMap((s) =>
    columns.map((e, i) => [s, e, rows[s][i] === '–' ? null : (rows[s][i] as CartStatus)] as const),
  );

  it('covers every state and event', () => {
    expect(Object.keys(rows).sort()).toEqual([...CART_STATUSES].sort());
    for (const status of CART_STATUSES) expect(rows[status]).toHaveLength(columns.length);
  });

  it.each(cells)('%s + %s → %s', (status, event, next) => {
    expect(transition(status, event)).toBe(next);
  });
});

describe('notices: what happens to a landed payment without moving the cart', () => {
  it('names each fact, so that two reports of one refund are one notice', () => {
    expect(noticeOf({ refunded: 300, full: false })).toBe('partially_refunded:300');
    expect(noticeOf({ refunded: 800, full: false })).toBe('partially_refunded:800');
    expect(noticeOf({ disputeId: 'dp_1', closed: false, status: 'needs_response' })).toBe('disputed:dp_1');
    expect(noticeOf({ disputeId: 'dp_1', closed: false, status: 'under_review' })).toBe('disputed:dp_1');
    // An appeal closes the dispute again: each outcome is news.
    expect(noticeOf({ disputeId: 'dp_1', closed: true, status: 'lost' })).toBe('dispute_closed:dp_1:lost');
    expect(noticeOf({ disputeId: 'dp_1', closed: true, status: 'won' })).toBe('dispute_closed:dp_1:won');
  });

  it('has none for a full refund, which moves the cart to refunded instead', () => {
    expect(noticeOf({ refunded: 4500, full: true })).toBeNull();
    expect(noticeOf({ refunded: 0, full: false })).toBeNull();
  });
});

describe('stock held by checkout', () => {
  // Every move between statuses, written out: only leaving a holding status does something to
  // the hold (a pending transfer keeps holding). Columns: the status moved to, in this order.
  const columns = ['open', 'checkout_pending', 'awaiting_payment', 'paid', 'payment_failed', 'refunded'] as const;
  const [R, C, _] = ['release', 'consume', null] as const;
  const table: Record<CartStatus, ('release' | 'consume' | null)[]> = {
    open: [_, _, _, _, _, _],
    checkout_pending: [R, _, _, C, R, C],
    awaiting_payment: [R, _, _, C, R, C],
    paid: [_, _, _, _, _, _],
    payment_failed: [_, _, _, _, _, _],
    refunded: [_, _, _, _, _, _],
  };
  it('covers every status', () => {
    expect([...columns].sort()).toEqual([...CART_STATUSES].sort());
  });
  it.each(CART_STATUSES.flatMap((from) => columns.map((to, i) => [from, to, table[from][i]] as const)))(
    '%s → %s: %s',
    (from, to, move) => {
      expect(stockMove(from, to)).toBe(move);
    },
  );

  it('releases on expiry, cancel and payment failure, consumes on payment, keeps holding while a transfer is pending', () => {
    expect(settle('checkout_pending', 'session_expired', false).stock).toBe('release');
    expect(settle('checkout_pending', 'cancel_checkout', false).stock).toBe('release');
    expect(settle('checkout_pending', 'async_payment_failed', false).stock).toBe('release');
    expect(settle('awaiting_payment', 'async_payment_failed', false).stock).toBe('release');
    expect(settle('checkout_pending', 'session_completed_paid', false).stock).toBe('consume');
    expect(settle('awaiting_payment', 'async_payment_succeeded', false).stock).toBe('consume');
    expect(settle('checkout_pending', 'session_completed_unpaid', false).stock).toBeNull();
    expect(settle('paid', 'full_refund', false).stock).toBeNull();
  });
});

describe('settle: a full refund reported before the payment landed', () => {
  it('moves the cart on to refunded right after the payment lands', () => {
    expect(settle('checkout_pending', 'session_completed_paid', true)).toEqual({
      path: ['paid', 'refunded'],
      stock: 'consume',
    });
    expect(settle('awaiting_payment', 'async_payment_succeeded', true).path).toEqual(['paid', 'refunded']);
  });

  it('changes nothing more when no payment lands, or when it had landed before', () => {
    expect(settle('checkout_pending', 'session_completed_unpaid', true)).toEqual({
      path: ['awaiting_payment'],
      stock: null,
    });
    expect(settle('checkout_pending', 'async_payment_failed', true).path).toEqual(['payment_failed']);
    expect(settle('paid', 'session_expired', true)).toEqual({ path: [], stock: null });
    expect(settle('paid', 'dispute_created', true)).toEqual({ path: [], stock: null });
  });

  it('gives the database one decision per earlier full refund and current status, leaving out no-ops', () => {
    expect(decisionsFor('async_payment_succeeded')).toEqual({
      none: {
        checkout_pending: { path: ['paid'], stock: 'consume' },
        awaiting_payment: { path: ['paid'], stock: 'consume' },
      },
      full: {
        checkout_pending: { path: ['paid', 'refunded'], stock: 'consume' },
        awaiting_payment: { path: ['paid', 'refunded'], stock: 'consume' },
      },
    });
    expect(decisionsFor('dispute_closed')).toEqual({ none: {}, full: {} });
  });
});
