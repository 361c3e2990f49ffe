import { z } from 'zod';
import { ApiError } from './errors.ts';
import type { Stripe } from './stripe.ts';
import type { HANDLED_EVENT_TYPES } from './stripe-events.ts';
import { CURRENCY_CODE } from './stripe-limits.ts';

// What the Worker reads of a Stripe event, with the types Stripe's API reference gives them
// (https://docs.stripe.com/api/events/object, /checkout/sessions/object, /charges/object,
// /disputes/object). A signed event is Stripe's, but a field of another type would surface deep
// in the database as a 500 on every retry; checked here, it is a 400 naming the event.
// Only checked: the event goes on as it came, so every other field is allowed. The schemas are
// plain (stripping) objects because what zod gives back is dropped: a loose object would copy
// every field of Stripe's objects on every webhook (3× the time of the check).

// Stripe's ids are opaque: letters, digits and underscores today, but their length, form and
// prefix (cs_, ch_, …) may change, up to 255 characters
// (https://docs.stripe.com/upgrades#what-changes-does-stripe-consider-to-be-backward-compatible).
// So no id is held to a prefix: a session id is an id like any other.
export const STRIPE_ID = /^[\w-]{1,255}$/;
const id = z.string().regex(STRIPE_ID, 'an id');
const amount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
// Stripe's text is taken as it comes and made storable where it is read (storableForm).
const text = z.string().max(5000).nullish();
/** An id, or the object when expanded. */
const ref = z.union([id, z.object({ id })]).nullish();

const shippingDetails = z
  .object({
    name: text,
    address: z.object({ line1: text, line2: text, city: text, state: text, postal_code: text, country: text }),
  })
  .nullish();

const session = z.object({
  id,
  status: text,
  payment_status: text,
  currency: z.string().regex(CURRENCY_CODE).nullish(),
  amount_total: amount.nullish(),
  amount_subtotal: amount.nullish(),
  total_details: z
    .object({ amount_discount: amount.nullish(), amount_shipping: amount.nullish(), amount_tax: amount.nullish() })
    .nullish(),
  customer_details: z.object({ email: text, name: text }).nullish(),
  payment_intent: ref,
  collected_information: z.object({ shipping_details: shippingDetails }).nullish(),
  // The same in older API versions (stripe-events.ts, shippingOf).
  shipping_details: shippingDetails,
  shipping: shippingDetails,
  shipping_cost: z.object({ amount_subtotal: amount, shipping_rate: ref }).nullish(),
  shipping_rate: ref,
});

const charge = z.object({ amount, amount_refunded: amount, refunded: z.boolean(), payment_intent: ref });

// Stripe always gives a dispute's status and reason, and the published event (Dispute in
// bridge/pubsub) requires them: one without would be refused downstream on every delivery.
const disputeText = z.string().max(5000);
const dispute = z.object({ id, status: disputeText, reason: disputeText, amount, payment_intent: ref });

const refund = z.object({
  id,
  amount,
  currency: z.string().regex(CURRENCY_CODE),
  payment_intent: ref,
  failure_reason: text,
});

const objectOf = {
  'checkout.session.completed': session,
  'checkout.session.async_payment_succeeded': session,
  'checkout.session.async_payment_failed': session,
  'checkout.session.expired': session,
  'charge.refunded': charge,
  'charge.dispute.created': dispute,
  'charge.dispute.closed': dispute,
  'refund.failed': refund,
} satisfies Record<(typeof HANDLED_EVENT_TYPES)[number], z.ZodType>;

const envelope = z.object({
  id,
  type: z.string().min(1).max(255),
  // Seconds since the epoch, up to the end of year 9999: a later date has no ISO form Postgres
  // takes (toISOString writes +010000-…), a 500 on every retry.
  created: z.number().int().min(0).max(253_402_300_799),
  data: z.object({ object: z.object({}) }),
});

/**
 * The event, when it has the shape Stripe gives the fields we read; else 400 `validation_failed`.
 * It is whatever JSON was signed, so it may not even be an object. An event of a type we do not
 * handle is acknowledged and ignored whatever else it holds: nothing of it is read.
 */
export function wellFormedEvent(event: unknown): Stripe.Event {
  const type = (event as { type?: unknown } | null)?.type;
  const objectSchema = typeof type === 'string' ? (objectOf as Record<string, z.ZodType | undefined>)[type] : undefined;
  if (typeof type === 'string' && !objectSchema) return event as Stripe.Event;
  const outer = envelope.safeParse(event);
  const inner = outer.success && objectSchema ? objectSchema.safeParse((event as Stripe.Event).data.object) : outer;
  if (inner.success) return event as Stripe.Event;
  const issue = inner.error.issues[0];
  const where = [...(outer.success ? ['data', 'object'] : []), ...(issue?.path ?? [])].join('.');
  const what = objectSchema ? `Stripe sends ${type}` : 'a Stripe event';
  throw new ApiError(
    'validation_failed',
    `The event is not shaped as ${what}: ${where ? `${where}: ` : ''}${issue?.message ?? 'invalid'}`,
  );
}
