import { Amounts, Dispute, PAYMENT_EVENT_TYPES, Shipping } from '@edge-checkout/pubsub/payment-event';
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { CART_LIMITS, CART_STATUSES } from './cart-state.ts';
import { offStep, onStep } from './money.ts';
import { LINES, NOT_LINES, NOT_ONE_LINE, NOT_STORABLE, ONE_LINE, storableText } from './storable-text.ts';
import {
  CURRENCY_CODE,
  isCurrencyCode,
  overMaximum,
  STRIPE_MAX_AMOUNT_ANY,
  STRIPE_MAX_AMOUNTS_TEXT,
  stripeMaxAmount,
} from './stripe-limits.ts';

// One source for validation and for the OpenAPI document: every request is checked against
// these, and /openapi.json is generated from them.

export const Currency = z
  .string()
  .refine(isCurrencyCode, 'an ISO 4217 code in lower case, as Stripe writes it (usd), of a currency Stripe charges in')
  .openapi({ example: 'usd', pattern: CURRENCY_CODE.source });

// The bound here is the largest of any currency (IDR's); the amount's own currency's is checked
// where the currency is known (stripeMaxAmount).
const MinorUnits = z
  .number()
  .int()
  .min(0)
  .max(STRIPE_MAX_AMOUNT_ANY)
  .openapi({
    description: `Integer amount in the currency's minor unit (cents for usd); at most Stripe's maximum in that currency: ${STRIPE_MAX_AMOUNTS_TEXT}`,
    example: 2500,
  });

export const ProductId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'letters, digits, _ and -, at most 64')
  .openapi({ example: 'tshirt-classic' });

// Any UUID Postgres can hold, whatever its version and variant bits (z.uuid() checks those): a
// well-formed id that is no cart of the caller's is a cart that does not exist (404), not a
// malformed request, even if it is not one we would make.
// In lower case whatever the case it was given in (RFC 9562 §4: a UUID is read in either case,
// written in lower): one cart has one id in every answer, Stripe parameter and idempotency key.
export const CartId = z.guid().toLowerCase().openapi({ example: '0b9e4a1c-2f7e-4c55-9a43-1d2b3c4d5e6f' });

export const CartStatus = z.enum(CART_STATUSES).openapi('CartStatus');

export const Product = z
  .object({
    id: ProductId,
    name: z.string(),
    description: z.string(),
    imageUrl: z.string().nullable(),
    unitAmount: MinorUnits,
    currency: Currency,
    available: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'Units that can still be bought (stock not held by checkouts); null: not counted' }),
  })
  .openapi('Product');

/** A product as operators see it: with what shoppers do not. */
export const AdminProduct = Product.extend({
  active: z.boolean(),
  stock: z.number().int().nullable().openapi({ description: 'Units on hand; null: not counted' }),
  reserved: z.number().int().openapi({ description: 'Units held by live checkouts' }),
  taxCode: z.string().nullable(),
}).openapi('AdminProduct');

export const ProductList = z.object({ products: z.array(Product) }).openapi('ProductList');

export const ProductUpsert = z
  .object({
    // A Product as the API returns it may be sent back as it is: its id, if given, must be the
    // path's, and `available` is worked out from the stock, so it is not taken from the client.
    id: ProductId.optional().openapi({ description: "The path's product id, if given" }),
    available: z.number().int().nullable().optional().openapi({ description: 'Ignored: worked out from stock' }),
    name: z.string().trim().min(1).max(200).refine(storableText, NOT_STORABLE).regex(ONE_LINE, NOT_ONE_LINE),
    description: z.string().max(2000).refine(storableText, NOT_STORABLE).regex(LINES, NOT_LINES).default(''),
    // "" is no image, as null is. A web address: the storefront shows it in an <img>, Checkout
    // takes https ones as the product's images.
    imageUrl: z
      .union([
        z.literal('').transform(() => null),
        z
          .url({ protocol: /^https?$/, error: 'an http or https URL' })
          .max(2000)
          .refine(storableText, NOT_STORABLE)
          // Checkout is sent the address as the URL standard writes it (checkout.ts), where a
          // character outside ASCII takes up to nine: the bound holds for what is sent. Zod runs
          // this check after z.url has refused a string as no URL, so that one is let through here.
          .refine(
            (url) => !URL.canParse(url) || new URL(url).href.length <= 2000,
            'at most 2000 characters once percent-encoded',
          ),
      ])
      .nullable()
      .default(null),
    unitAmount: MinorUnits,
    currency: Currency,
    active: z.boolean().default(true),
    stock: z.number().int().min(0).max(2_147_483_647).nullable().optional().openapi({
      description: 'Units on hand; null: not counted (unlimited). Omitted: left as it is, as sales count it down',
    }),
    taxCode: z
      .string()
      .regex(/^txcd_\d{8}$/, 'a Stripe Tax product tax code (txcd_ and eight digits)')
      .nullable()
      .optional()
      .openapi({ description: 'Stripe Tax product tax code; omitted: left as it is', example: 'txcd_99999999' }),
  })
  .strict()
  .refine((p) => onStep(p.unitAmount, p.currency), {
    path: ['unitAmount'],
    error: (issue) => offStep((issue.input as { currency: string }).currency),
  })
  // Stripe takes twelve digits in IDR and eight in any other currency
  // (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
  .refine((p) => p.unitAmount <= stripeMaxAmount(p.currency), {
    path: ['unitAmount'],
    error: (issue) => overMaximum((issue.input as { currency: string }).currency),
  })
  .openapi('ProductUpsert');

export const CartItem = z
  .object({
    productId: ProductId,
    name: z.string(),
    unitAmount: MinorUnits,
    quantity: z.number().int().min(1).max(CART_LIMITS.quantity),
    lineTotal: z.number().int(),
  })
  .openapi('CartItem');

export const Checkout = z
  .object({
    cartId: CartId,
    sessionId: z.string(),
    url: z.url(),
    expiresAt: z.iso.datetime({ offset: true }),
  })
  .openapi('Checkout');

// The shapes the payment event publishes (one definition, in @edge-checkout/pubsub), as
// components of this document.
export const CartAmounts = z.object(Amounts.shape).openapi('CartAmounts', {
  description: "Stripe's amounts at completion: the items (subtotal), discount, shipping, tax and the total charged",
});
export const ShippingDetails = z.object(Shipping.shape).openapi('ShippingDetails');
export const CartDispute = z.object(Dispute.shape).openapi('CartDispute', {
  description: "A dispute of the payment; `status` is Stripe's (won, lost, … once closed)",
});

export const Cart = z
  .object({
    id: CartId,
    status: CartStatus,
    currency: Currency.nullable().openapi({ description: 'null while the cart is empty' }),
    items: z.array(CartItem),
    itemCount: z.number().int(),
    totalAmount: z.number().int().openapi({
      description: "The items' sum in minor units (before discount, shipping and tax: see amounts)",
    }),
    // Not Checkout.nullable(): that made the shared Checkout component itself nullable in the
    // OpenAPI document, so the checkout route's answer read as `Checkout | null` to clients.
    checkout: z.union([Checkout, z.null()]).openapi({
      description: "The cart's Checkout Session; null before checkout, and while the cart can be edited",
    }),
    amounts: z.union([CartAmounts, z.null()]).openapi({
      description:
        'What Stripe reported when the checkout completed; null until then, and while the cart can be edited again (its delayed payment failed: the next checkout makes its own)',
    }),
    shipping: z.union([ShippingDetails, z.null()]).openapi({ description: 'null when no address was collected' }),
    refundedAmount: z.number().int().openapi({ description: 'Refunded so far, in minor units' }),
    oversold: z
      .boolean()
      .openapi({ description: 'The payment landed for stock that was gone: for a person to resolve' }),
    amountMismatch: z.boolean().openapi({
      description:
        "Stripe's subtotal or currency at completion differed from the cart at checkout (logged as amount_mismatch): for a person to check",
    }),
    dispute: z.union([CartDispute, z.null()]),
    createdAt: z.iso.datetime({ offset: true }),
    updatedAt: z.iso.datetime({ offset: true }),
  })
  .openapi('Cart');

export const CartList = z
  .object({
    carts: z.array(Cart),
    hasMore: z.boolean().openapi({
      description: 'Whether older carts follow: ask again with `startingAfter` set to the last cart of this page',
    }),
  })
  .openapi('CartList');

export const AdminCart = Cart.extend({ userId: z.string() }).openapi('AdminCart');
export const AdminCartList = z.object({ carts: z.array(AdminCart) }).openapi('AdminCartList');

export const RefundRequest = z
  .object({
    amount: z
      .number()
      .int()
      .min(1)
      .max(STRIPE_MAX_AMOUNT_ANY)
      .optional()
      .openapi({
        description: `Minor units of the cart's currency, at most Stripe's maximum in it (${STRIPE_MAX_AMOUNTS_TEXT}); omitted: what is left of the payment`,
      }),
    reason: z.enum(['duplicate', 'fraudulent', 'requested_by_customer']).optional(),
  })
  .strict()
  .openapi('RefundRequest');

export const Refund = z
  .object({
    id: z.string().openapi({ description: "Stripe's refund id (re_…)" }),
    cartId: CartId,
    amount: z.number().int(),
    currency: Currency,
    status: z.string().openapi({ description: "Stripe's refund status: succeeded, pending, …" }),
    reason: z.string().nullable(),
    createdAt: z.iso.datetime({ offset: true }),
  })
  .openapi('Refund');

/** An outbox row as operators see it (the admin outbox routes). */
export const OutboxEntry = z
  .object({
    id: z.uuid().openapi({ description: 'The eventId published to Pub/Sub' }),
    cartId: CartId,
    eventType: z.enum(PAYMENT_EVENT_TYPES),
    stripeEventId: z.string(),
    createdAt: z.iso.datetime({ offset: true }),
    attempts: z.number().int(),
    nextAttemptAt: z.iso.datetime({ offset: true }),
    lastError: z.string().nullable(),
    publishedAt: z.iso.datetime({ offset: true }).nullable(),
    failedAt: z.iso.datetime({ offset: true }).nullable(),
    discardedAt: z.iso.datetime({ offset: true }).nullable(),
  })
  .openapi('OutboxEntry');

/**
 * A time a client sends, handed on as UTC. An offset of up to ±23:59 (which RFC 3339 allows, and
 * Postgres refuses beyond ±15:59) or year 0000 (which Postgres does not have) reached the
 * database as given and failed there, a 500 on every retry.
 */
const RequestTime = z.iso
  .datetime({ offset: true })
  .refine((time) => {
    const year = new Date(time).getUTCFullYear();
    return year >= 1 && year <= 9999;
  }, 'must fall within the years 0001 to 9999 in UTC')
  .transform((time) => new Date(time).toISOString());

/** Which published payment events to publish again (POST /v1/admin/outbox/republish). */
export const OutboxRepublishRequest = z
  .object({
    publishedSince: RequestTime.openapi({
      description: 'Events Pub/Sub took at or after this time (within RETENTION_DAYS, which keeps them)',
    }),
    publishedBefore: RequestTime.optional().openapi({ description: 'And before this time; omitted: up to now' }),
    cartId: CartId.optional().openapi({ description: "Only this cart's events" }),
  })
  .strict()
  .refine((r) => !r.publishedBefore || Date.parse(r.publishedBefore) > Date.parse(r.publishedSince), {
    message: 'publishedBefore must come after publishedSince',
    path: ['publishedBefore'],
  })
  .openapi('OutboxRepublishRequest');

export type CartOut = z.infer<typeof Cart>;
export type AdminCartOut = z.infer<typeof AdminCart>;
export type RefundRequest = z.infer<typeof RefundRequest>;
export type RefundOut = z.infer<typeof Refund>;
export type OutboxEntryOut = z.infer<typeof OutboxEntry>;
export type CheckoutOut = z.infer<typeof Checkout>;
export type ProductOut = z.infer<typeof Product>;
export type AdminProductOut = z.infer<typeof AdminProduct>;

/** `?limit=` of a list: 1 to 100, 20 when absent. */
export const PageLimit = z.coerce.number().int().min(1).max(100).default(20);

export const Quantity = z
  .object({
    quantity: z.number().int().min(0).max(CART_LIMITS.quantity).openapi({ description: '0 removes the item' }),
    expectedQuantity: z
      .number()
      .int()
      .min(0)
      .max(CART_LIMITS.quantity)
      .optional()
      .openapi({
        description:
          'The quantity the client last saw (0: not in the cart). When the line holds neither this nor `quantity`, it changed ' +
          'elsewhere meanwhile (another device, tab or the app): nothing changes and the answer is 409 `quantity_changed` with what ' +
          'the line holds. A line already at `quantity` answers 200, as the same request did the first time (its answer lost). ' +
          'A client that works `quantity` out from what it showed ("one more") sends it, so that it never overwrites a change it has not seen.',
      }),
  })
  .strict()
  .openapi('Quantity');

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().openapi({ example: 'validation_failed' }),
    requestId: z.string(),
    products: z
      .array(z.object({ id: ProductId, available: z.number().int() }))
      .optional()
      .openapi({ description: 'out_of_stock: the products short, with what is left of each' }),
    productId: ProductId.optional().openapi({
      description:
        "quantity_changed: the line that changed; not_found: the product is what was not found or is no longer sold (an item's edit: not the cart; checkout: the line to remove)",
    }),
    quantity: z
      .number()
      .int()
      .optional()
      .openapi({ description: 'quantity_changed: what the line holds now (0: not in the cart)' }),
  })
  .openapi('Problem');

export const Health = z.object({ status: z.literal('ok'), db: z.literal('ok') }).openapi('Health');

const REQUEST_ID_HEADER = {
  // Not `required`: Cloudflare answers some requests itself (its own body limit, a Worker that
  // exceeded its CPU time), without the Worker's headers.
  'X-Request-Id': { description: "This request's id, as logged (quote it to support)", schema: { type: 'string' } },
} as const;
// A 401 always says which scheme it takes (RFC 9110 §15.5.2); a 429 how long its limit lasts
// (rate-limits.ts); a 503 how long to wait only when it is known.
const STATUS_HEADERS = {
  401: {
    'WWW-Authenticate': {
      description:
        'Bearer, with the RFC 6750 error code for what was sent: invalid_token, or invalid_request for no token',
      required: true,
      schema: { type: 'string' },
    },
  },
  429: {
    'Retry-After': { description: 'Seconds to wait before trying again', required: true, schema: { type: 'string' } },
  },
  503: {
    'Retry-After': { description: 'Seconds to wait before trying again (when known)', schema: { type: 'string' } },
  },
} as const;

type Responses = Record<string, { content?: Record<string, unknown>; headers?: Record<string, unknown> }>;

/**
 * Adds to every operation of the document the answers no route gives itself: 413 from the body
 * limit (any request that is not a GET may carry a body), 400 from the UTF-8 check (where
 * `checksUtf8` says it runs, before the route, a body it does not read included), 415 from the
 * JSON body check (a route that takes a body), 500 (misconfigured, internal), each as the route
 * answers its errors (pages as HTML); and on every answer the headers the middleware sets:
 * X-Request-Id, and Retry-After with 429 and 503, WWW-Authenticate with 401. Run once every
 * route is registered.
 */
export function documentSharedAnswers(
  registry: OpenAPIHono['openAPIRegistry'],
  checksUtf8: (method: string, path: string) => boolean,
): void {
  for (const definition of registry.definitions) {
    if (definition.type !== 'route') continue;
    const { route } = definition;
    const responses = route.responses as Responses;
    const isPage = Object.values(responses).some((r) => r.content && 'text/html' in r.content);
    const error = isPage ? html('Error page') : problems(500)[500]!;
    const shared = [500, ...(route.method === 'get' ? [] : [413]), ...(route.request?.body ? [415] : [])];
    for (const status of shared) responses[status] ??= error;
    if (checksUtf8(route.method, route.path)) responses[400] ??= problems(400)[400]!;
    for (const [status, response] of Object.entries(responses)) {
      const own: Record<string, unknown> = (STATUS_HEADERS as Record<string, Record<string, unknown>>)[status] ?? {};
      responses[status] = { ...response, headers: { ...REQUEST_ID_HEADER, ...own, ...response.headers } };
    }
  }
}

/** Response entries for the problem+json answers a route can give. */
export function problems(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: 'Problem details (RFC 9457)', content: { 'application/problem+json': { schema: Problem } } },
    ]),
  );
}

export function json<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { 'application/json': { schema } } };
}

/** A response entry of the landing pages: a page for people, its errors included. */
export function html(description: string) {
  return { description, content: { 'text/html': { schema: z.string() } } };
}
