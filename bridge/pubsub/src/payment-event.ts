// The payment event on the payment-events topic (docs: published events): the one definition
// that the Worker's outbox builds, the notification relay reads and the tests check.
import { z } from 'zod';

export const PAYMENT_EVENT_TYPES = [
  'cart.paid',
  'cart.awaiting_payment',
  'cart.payment_failed',
  'cart.refunded',
  'cart.partially_refunded',
  'cart.disputed',
  'cart.dispute_closed',
] as const;
export type PaymentEventType = (typeof PAYMENT_EVENT_TYPES)[number];

const PaymentEventCartItem = z.object({
  productId: z.string(),
  name: z.string(),
  unitAmount: z.number().int(),
  quantity: z.number().int(),
  lineTotal: z.number().int(),
});

/** Minor units Stripe charged at completion: the line items (`subtotal`), then discount, shipping and tax. */
export const Amounts = z.object({
  subtotal: z.number().int(),
  discount: z.number().int(),
  shipping: z.number().int(),
  tax: z.number().int(),
  total: z.number().int(),
});

const ShippingAddress = z.object({
  line1: z.string().nullable(),
  line2: z.string().nullable(),
  city: z.string().nullable(),
  state: z.string().nullable(),
  postalCode: z.string().nullable(),
  country: z.string().nullable(),
});

/** Where the order goes and the shipping rate the shopper chose (delivery estimate in business days). */
export const Shipping = z.object({
  name: z.string().nullable(),
  address: ShippingAddress,
  rate: z
    .object({
      name: z.string(),
      amount: z.number().int(),
      minDays: z.number().int().nullable(),
      maxDays: z.number().int().nullable(),
    })
    .nullable(),
});

/** A dispute of the payment: Stripe's status (`won`, `lost`, … once `closed`) and reason. */
export const Dispute = z.object({
  id: z.string(),
  status: z.string(),
  reason: z.string(),
  amount: z.number().int(),
  closed: z.boolean(),
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
    /** Stripe's event id, or ours for a session read back (`reconcile:…`) or a refund made through the API (`refund:re_…`). */
    eventId: z.string(),
    sessionId: z.string(),
    paymentIntentId: z.string().nullable(),
  }),
  amountMismatch: z.boolean(),
  /** Null until the checkout completed. */
  amounts: Amounts.nullable(),
  /** Null when no address was collected. */
  shipping: Shipping.nullable(),
  /** Refunded so far, when the event was written. */
  refundedAmount: z.number().int(),
  /** The payment landed for stock that was gone: paid, for a person to resolve. */
  oversold: z.boolean(),
  dispute: Dispute.nullable(),
});
export type PaymentEvent = z.infer<typeof PaymentEvent>;
export type Amounts = z.infer<typeof Amounts>;
export type ShippingAddress = z.infer<typeof ShippingAddress>;
export type Shipping = z.infer<typeof Shipping>;
export type Dispute = z.infer<typeof Dispute>;

/** The message attributes published with each event (for filtering and dedup without parsing data). */
export function paymentEventAttributes(event: PaymentEvent): Record<string, string> {
  return { eventType: event.type, eventId: event.id, cartId: event.cart.id, stripeEventId: event.stripe.eventId };
}

/**
 * For consumers: a type published by a newer Worker is still read (and acknowledged) rather than
 * dead-lettered; unknown fields are ignored, and fields an older Worker did not publish yet
 * read as empty.
 */
export const ReceivedPaymentEvent = PaymentEvent.extend({
  type: z.string().min(1),
  amounts: Amounts.nullable().default(null),
  shipping: Shipping.nullable().default(null),
  refundedAmount: z.number().int().default(0),
  oversold: z.boolean().default(false),
  dispute: Dispute.nullable().default(null),
});
export type ReceivedPaymentEvent = z.infer<typeof ReceivedPaymentEvent>;
