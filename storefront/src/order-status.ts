import type { CartStatus } from './api/client.ts';

// What each cart status means to the shopper (docs/contract.md §3), in the storefront's words.

/** Short, for lists and the status line. */
export const STATUS_LABELS: Record<CartStatus, string> = {
  open: 'Open',
  checkout_pending: 'Checkout in progress',
  awaiting_payment: 'Awaiting bank transfer',
  paid: 'Paid',
  payment_failed: 'Payment failed',
  refunded: 'Refunded',
};

/** Headline and explanation of an order's result. */
export const STATUS_RESULTS: Record<CartStatus, { headline: string; message: string }> = {
  paid: { headline: 'Payment received', message: 'Thank you! Your order is paid.' },
  awaiting_payment: {
    headline: 'Waiting for your bank transfer',
    message:
      'Your bank is processing the payment, which can take a few days. This page checks on it every few minutes, and when you come back to it.',
  },
  checkout_pending: {
    headline: 'Confirming your payment…',
    message: 'This usually takes a few seconds. This page updates by itself.',
  },
  payment_failed: {
    headline: 'Payment failed',
    message: 'The payment did not go through and nothing was charged.',
  },
  open: { headline: 'Not checked out yet', message: 'Nothing was charged. The cart is waiting for you.' },
  refunded: { headline: 'Order refunded', message: 'This order has been refunded.' },
};
