// The payment event on the payment-events topic (docs: published events): the one definition
// that the Worker's outbox builds, the notification relay reads and the tests check.
import { z } from 'zod';

export const PAYMENT_EVENT_TYPES = [
  'cart.paid',
  'cart.awaiting_payment',
  'cart.payment_failed',
  'cart.refunded',
] as const;
export type PaymentEventType = (typeof PAYMENT_EVENT_TYPES)[number];

export const PaymentEventCartItem = z.object({
  productId: z.string(),
  name: z.string(),
  unitAmount: z.number().int(),
  quantity: z.number().int(),
  lineTotal: z.number().int(),
});

export const PaymentEvent = z.object({
  /** Stable per cart transition: consumers drop repeats by it. */
  id: z.string().min(1),
  type: z.enum(PAYMENT_EVENT_TYPES),
  occurredAt: z.iso.datetime({ offset: true }),
  cart: z.object({
    id: z.string().min(1),
    userId: z.string().min(1),
    status: z.string(),
    currency: z.string().nullable(),
    totalAmount: z.number().int(),
    items: z.array(PaymentEventCartItem),
  }),
  /** From Checkout's customer_details; null when Stripe had none. */
  customer: z.object({ email: z.string().nullable(), name: z.string().nullable() }).nullable(),
  stripe: z.object({
    /** Stripe's event id, or ours for a session read back from Stripe (`reconcile:…`). */
    eventId: z.string(),
    sessionId: z.string(),
    paymentIntentId: z.string().nullable(),
  }),
  amountMismatch: z.boolean(),
});
export type PaymentEvent = z.infer<typeof PaymentEvent>;

/** The message attributes published with each event (for filtering and dedup without parsing data). */
export function paymentEventAttributes(event: PaymentEvent): Record<string, string> {
  return { eventType: event.type, eventId: event.id, cartId: event.cart.id, stripeEventId: event.stripe.eventId };
}

/**
 * For consumers: a type published by a newer Worker is still read (and acknowledged) rather than
 * dead-lettered; unknown fields are ignored.
 */
export const ReceivedPaymentEvent = PaymentEvent.extend({ type: z.string().min(1) });
export type ReceivedPaymentEvent = z.infer<typeof ReceivedPaymentEvent>;
