import { PaymentEvent } from '@edge-checkout/pubsub/payment-event';
import chargeFixture from '@edge-checkout/stripe-standin/fixtures/charge.json';
import sessionFixture from '@edge-checkout/stripe-standin/fixtures/checkout.session.json';
import eventFixture from '@edge-checkout/stripe-standin/fixtures/event.json';
import Stripe from 'stripe';
import type { Env } from '../src/env.ts';
import { EVENT_FACTS, type EventFacts, paymentEventOf } from '../src/outbox.ts';
import type { CheckoutOut } from '../src/schemas.ts';
import { call, callWithEnv, createProduct, db, newUser, openCart, testEnv } from './helpers.ts';

export const stripeEnv = testEnv as typeof testEnv & {
  STRIPE_WEBHOOK_SECRET: string;
  STRIPE_API_BASE: string;
  STRIPE_SECRET_KEY: string;
};

const stripe = new Stripe(stripeEnv.STRIPE_SECRET_KEY, { httpClient: Stripe.createFetchHttpClient() });
const cryptoProvider = Stripe.createSubtleCryptoProvider();

export type CheckoutBody = CheckoutOut;

/** The official client, pointed at a stand-in (the main one unless `apiBase` names another). */
export function standinStripe(apiBase = stripeEnv.STRIPE_API_BASE): Stripe {
  const base = new URL(apiBase);
  return new Stripe(stripeEnv.STRIPE_SECRET_KEY, {
    host: base.hostname,
    port: base.port,
    protocol: 'http',
    httpClient: Stripe.createFetchHttpClient(),
  });
}

/** The cart's sessions that Stripe expired, as its checkout.session.expired events tell, oldest last. */
export async function expiredSessionsOf(cartId: string): Promise<Stripe.Checkout.Session[]> {
  const events = await standinStripe()
    .events.list({ type: 'checkout.session.expired', limit: 100 })
    .autoPagingToArray({ limit: 10_000 });
  return events.map((e) => e.data.object as Stripe.Checkout.Session).filter((s) => s.client_reference_id === cartId);
}

/** A shipping address as carts and payment events show it … */
export const ADDRESS = {
  line1: '1 Main St',
  line2: null,
  city: 'Springfield',
  state: 'IL',
  postalCode: '62701',
  country: 'US',
};
const { postalCode, ...sameInStripe } = ADDRESS;
/** … and as Stripe writes it (`collected_information.shipping_details.address`). */
export const STRIPE_ADDRESS = { ...sameInStripe, postal_code: postalCode };

/** A user whose cart holds two products and has been checked out through the stand-in; `env` as for `call`. */
export async function checkedOutCart(opts: { amounts?: number[]; currency?: string; env?: Env } = {}) {
  const user = await newUser();
  const products = await Promise.all(
    (opts.amounts ?? [2000, 1250]).map((unitAmount) => createProduct({ unitAmount, currency: opts.currency })),
  );
  const env = opts.env;
  const cartId = await openCart(
    user.token,
    products.map((p, i) => ({ id: p.id, quantity: i + 1 })),
    env,
  );
  const res = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token, env });
  if (res.status !== 201) throw new Error(`checkout failed: ${res.status} ${await res.text()}`);
  const checkout = (await res.json()) as CheckoutBody;
  const total = products.reduce((sum, p, i) => sum + p.unitAmount * (i + 1), 0);
  return { user, cartId, sessionId: checkout.sessionId, checkout, total, products };
}

type SessionState = { sessionId: string; cartId: string; total: number; paymentIntent?: string };

/** A Checkout Session object as Stripe sends it in events, built on Stripe's own fixture. */
export function sessionObject(s: SessionState, over: Partial<Stripe.Checkout.Session> = {}): Stripe.Checkout.Session {
  return {
    ...(sessionFixture as unknown as Stripe.Checkout.Session),
    id: s.sessionId,
    client_reference_id: s.cartId,
    metadata: { cart_id: s.cartId },
    amount_subtotal: s.total,
    amount_total: s.total,
    // The fixture's placeholders: our sessions collect no address and have nothing but items.
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    collected_information: null,
    shipping_cost: null,
    currency: 'usd',
    mode: 'payment',
    status: 'complete',
    payment_status: 'paid',
    payment_intent: s.paymentIntent ?? `pi_${s.sessionId.slice(-12)}`,
    customer_details: { email: 'shopper@example.com', name: 'Sam Shopper' } as Stripe.Checkout.Session.CustomerDetails,
    ...over,
  };
}

export function chargeObject(s: SessionState, over: Partial<Stripe.Charge> = {}): Stripe.Charge {
  // Events carry refunds only when expanded, so the fixture's `refunds` list is left out.
  const { refunds: _, ...charge } = chargeFixture as unknown as Stripe.Charge;
  return {
    ...(charge as Stripe.Charge),
    id: `ch_${s.sessionId.slice(-12)}`,
    amount: s.total,
    amount_captured: s.total,
    amount_refunded: s.total,
    refunded: true,
    currency: 'usd',
    payment_intent: s.paymentIntent ?? `pi_${s.sessionId.slice(-12)}`,
    ...over,
  };
}

let counter = 0;
export function stripeEvent(type: string, object: object, id?: string): Stripe.Event {
  return {
    ...(eventFixture as unknown as Stripe.Event),
    id: id ?? `evt_test_${Date.now().toString(36)}${(counter++).toString(36)}${crypto.randomUUID().slice(0, 6)}`,
    type,
    created: Math.floor(Date.now() / 1000),
    api_version: Stripe.API_VERSION,
    data: { object },
  } as Stripe.Event;
}

/**
 * A dispute of the checkout's charge as Stripe sends it in `charge.dispute.*` events (the fields
 * the Worker reads, with the shape of Stripe's object; the stand-in makes full ones).
 */
export function disputeObject(s: SessionState, over: Partial<Stripe.Dispute> = {}): Stripe.Dispute {
  return {
    id: `dp_${s.sessionId.slice(-12)}`,
    object: 'dispute',
    amount: s.total,
    charge: `ch_${s.sessionId.slice(-12)}`,
    created: Math.floor(Date.now() / 1000),
    currency: 'usd',
    livemode: false,
    metadata: {},
    payment_intent: s.paymentIntent ?? `pi_${s.sessionId.slice(-12)}`,
    reason: 'fraudulent',
    status: 'needs_response',
    ...over,
  } as Stripe.Dispute;
}

/** The events of one checkout, by what happened to it. */
export function eventsFor(s: SessionState) {
  return {
    completedPaid: () => stripeEvent('checkout.session.completed', sessionObject(s)),
    completedUnpaid: () => stripeEvent('checkout.session.completed', sessionObject(s, { payment_status: 'unpaid' })),
    asyncSucceeded: () => stripeEvent('checkout.session.async_payment_succeeded', sessionObject(s)),
    asyncFailed: () =>
      stripeEvent('checkout.session.async_payment_failed', sessionObject(s, { payment_status: 'unpaid' })),
    expired: () =>
      stripeEvent(
        'checkout.session.expired',
        sessionObject(s, { status: 'expired', payment_status: 'unpaid', payment_intent: null, customer_details: null }),
      ),
    fullRefund: () => stripeEvent('charge.refunded', chargeObject(s)),
    partialRefund: () => stripeEvent('charge.refunded', chargeObject(s, { amount_refunded: 100, refunded: false })),
    disputeCreated: () => stripeEvent('charge.dispute.created', disputeObject(s)),
    disputeClosed: () => stripeEvent('charge.dispute.closed', disputeObject(s, { status: 'lost' })),
  };
}

/** A `Stripe-Signature` header for `payload`, made by Stripe's own library. */
export function signatureFor(payload: string, opts: { secret?: string; timestamp?: number } = {}): Promise<string> {
  return stripe.webhooks.generateTestHeaderStringAsync({
    payload,
    secret: opts.secret ?? stripeEnv.STRIPE_WEBHOOK_SECRET,
    timestamp: opts.timestamp,
    cryptoProvider,
  });
}

/**
 * Delivers an event as Stripe does: raw JSON body, signed with Stripe's own library. With `env`,
 * through the app with those bindings, waiting for its waitUntil work.
 */
export async function deliver(
  event: Stripe.Event | string,
  opts: { secret?: string; timestamp?: number; signature?: string | null; env?: Env } = {},
): Promise<Response> {
  const init = await deliveryRequest(event, opts);
  return opts.env ? callWithEnv(opts.env, '/v1/webhooks/stripe', init) : call('/v1/webhooks/stripe', init);
}

/** The request Stripe sends for `event`: raw JSON body, signed with Stripe's own library. */
export async function deliveryRequest(
  event: Stripe.Event | string,
  opts: { secret?: string; timestamp?: number; signature?: string | null } = {},
): Promise<RequestInit> {
  const payload = typeof event === 'string' ? event : JSON.stringify(event);
  const signature = opts.signature === undefined ? await signatureFor(payload, opts) : opts.signature;
  const headers: Record<string, string> = { 'Content-Type': 'application/json; charset=utf-8' };
  if (signature !== null) headers['Stripe-Signature'] = signature;
  return { method: 'POST', headers, body: payload };
}

export async function cartStatus(cartId: string): Promise<string> {
  const [row] = await db().query('SELECT status FROM carts WHERE id = $1', [cartId]);
  return (row as { status: string }).status;
}

/** A cart's outbox rows, oldest first, each with the payment event it publishes (checked against the contract's schema). */
export async function outboxOf(
  cartId: string,
): Promise<{ id: string; event_type: string; stripe_event_id: string; event: PaymentEvent }[]> {
  const rows = (await db().query('SELECT id, event_type, stripe_event_id FROM outbox WHERE cart_id = $1 ORDER BY seq', [
    cartId,
  ])) as {
    id: string;
    event_type: string;
    stripe_event_id: string;
  }[];
  const events = (
    (await db().query(
      `SELECT ${EVENT_FACTS} FROM outbox o JOIN carts ca ON ca.id = o.cart_id JOIN checkouts k ON k.session_id = o.session_id
       WHERE o.cart_id = $1 ORDER BY o.seq`,
      [cartId],
    )) as EventFacts[]
  ).map(paymentEventOf);
  return rows.map((row, i) => ({ ...row, event: PaymentEvent.parse(events[i]) }));
}

export async function eventRecorded(eventId: string): Promise<boolean> {
  return (await db().query('SELECT 1 FROM payment_events WHERE id = $1', [eventId])).length > 0;
}

/** Every ordering of `items` (Heap's algorithm), for arrival-order tests. */
export function permutations<T>(items: T[]): T[][] {
  const result: T[][] = [];
  const a = [...items];
  const c = new Array<number>(a.length).fill(0);
  result.push([...a]);
  let i = 0;
  while (i < a.length) {
    if (c[i]! < i) {
      const j = i % 2 === 0 ? 0 : c[i]!;
      [a[j], a[i]] = [a[i]!, a[j]!];
      result.push([...a]);
      c[i]!++;
      i = 0;
    } else {
      c[i] = 0;
      i++;
    }
  }
  return result;
}
