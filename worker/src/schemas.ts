import { z } from '@hono/zod-openapi';
import { CART_STATUSES } from './cart-state.ts';

// One source for validation and for the OpenAPI document: every request is checked against
// these, and /openapi.json is generated from them.

export const Currency = z
  .string()
  .regex(/^[a-z]{3}$/, 'an ISO 4217 code in lower case, as Stripe writes it (usd)')
  .openapi({ example: 'usd' });

export const MinorUnits = z
  .number()
  .int()
  .min(0)
  .max(99_999_999)
  .openapi({ description: "Integer amount in the currency's minor unit (cents for usd)", example: 2500 });

export const ProductId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'letters, digits, _ and -, at most 64')
  .openapi({ example: 'tshirt-classic' });

export const CartId = z.uuid().openapi({ example: '0b9e4a1c-2f7e-4c55-9a43-1d2b3c4d5e6f' });

export const CartStatus = z.enum(CART_STATUSES).openapi('CartStatus');

export const Product = z
  .object({
    id: ProductId,
    name: z.string(),
    description: z.string(),
    imageUrl: z.string().nullable(),
    unitAmount: MinorUnits,
    currency: Currency,
  })
  .openapi('Product');

export const ProductList = z.object({ products: z.array(Product) }).openapi('ProductList');

export const ProductUpsert = z
  .object({
    name: z.string().trim().min(1).max(200),
    description: z.string().max(2000).default(''),
    imageUrl: z.url().max(2000).nullable().default(null),
    unitAmount: MinorUnits,
    currency: Currency,
    active: z.boolean().default(true),
  })
  .strict()
  .openapi('ProductUpsert');

export const CartItem = z
  .object({
    productId: ProductId,
    name: z.string(),
    unitAmount: MinorUnits,
    quantity: z.number().int().min(1).max(99),
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

export const Cart = z
  .object({
    id: CartId,
    status: CartStatus,
    currency: Currency.nullable().openapi({ description: 'null while the cart is empty' }),
    items: z.array(CartItem),
    itemCount: z.number().int(),
    totalAmount: z.number().int(),
    checkout: Checkout.nullable(),
    createdAt: z.iso.datetime({ offset: true }),
    updatedAt: z.iso.datetime({ offset: true }),
  })
  .openapi('Cart');

export const CartList = z.object({ carts: z.array(Cart) }).openapi('CartList');

export type CartOut = z.infer<typeof Cart>;
export type CheckoutOut = z.infer<typeof Checkout>;
export type ProductOut = z.infer<typeof Product>;

export const Quantity = z
  .object({ quantity: z.number().int().min(0).max(99).openapi({ description: '0 removes the item' }) })
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
  })
  .openapi('Problem');

export const Health = z.object({ status: z.literal('ok'), db: z.literal('ok') }).openapi('Health');

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
