import type { z } from '@hono/zod-openapi';
import { type CartStatus, PAYMENT_PENDING_STATUSES } from './cart-state.ts';
import type { Sql } from './db.ts';
import { ApiError } from './errors.ts';
import type { AdminProductOut, ProductOut, ProductUpsert } from './schemas.ts';

/**
 * Units of product `p` that can still be bought, null when its stock is not counted. What
 * checkouts hold is not available to others; more held than on hand (the stock was set lower
 * meanwhile) shows as none left.
 */
export const available = (p: string) =>
  `CASE WHEN ${p}.stock IS NULL THEN NULL ELSE GREATEST(${p}.stock - ${p}.reserved, 0) END`;

// The price as a float8, which the driver reads as a number (a bigint comes back as a string),
// exact for every amount Stripe takes; an int would overflow above 2,147,483,647, which an IDR
// price may be (twelve digits: https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
const columns = `id, name, description, image_url AS "imageUrl", unit_amount::float8 AS "unitAmount", currency,
  ${available('products')} AS available`;

// Neon answers a query with at most 10 MiB (its proxy refuses more with 507, which no retry
// mends: https://neon.com/docs/changelog/2023-08-16). A product's texts take at most about
// 13 KB (4,200 characters of up to 3 bytes), so a page of 500 stays well under it, and a
// catalogue of any size is read in pages: one round trip up to 500 products. The pages are not
// one snapshot: a product renamed across a page's end while they are read shows once (or, moved
// back past it, on the next read).
const PRODUCTS_PAGE = 500;

export async function listActiveProducts(sql: Sql): Promise<ProductOut[]> {
  const products = new Map<string, ProductOut>();
  for (let after: ProductOut | undefined; ; ) {
    const page = (await sql.query(
      `SELECT ${columns} FROM products
       WHERE active AND ($1::text IS NULL OR (name, id) > ($1, $2))
       ORDER BY name, id LIMIT ${PRODUCTS_PAGE}`,
      [after?.name ?? null, after?.id ?? null],
    )) as ProductOut[];
    for (const product of page) if (!products.has(product.id)) products.set(product.id, product);
    if (page.length < PRODUCTS_PAGE) return [...products.values()];
    after = page.at(-1);
  }
}

/**
 * Creates or replaces a product in one statement; `created` tells which happened. Stock and tax
 * code are left as they are when the request leaves them out: sales count stock down, so an
 * update of the catalogue must not put it back. A stock given while checkouts of the product
 * are under way (it was not counted when they began) gets their holds, so their payments count
 * it down, or are flagged oversold, as a checkout started now would be.
 */
export async function upsertProduct(
  sql: Sql,
  id: string,
  p: z.infer<typeof ProductUpsert>,
): Promise<{ product: AdminProductOut; created: boolean }> {
  if (p.id !== undefined && p.id !== id)
    throw new ApiError('validation_failed', `id: not the product id of the path (${id})`);
  const counted = p.stock !== undefined && p.stock !== null;
  const [, rows, [heldNow]] = (await sql.transaction([
    // The product's row, in a statement of its own: an edit adding it to a cart holds it
    // (carts.ts) until it commits, so the check below, reading afresh, sees that edit's line.
    sql.query('SELECT FROM products WHERE id = $1 FOR UPDATE', [id]),
    sql.query(
      `INSERT INTO products (id, name, description, image_url, unit_amount, currency, active, stock, tax_code)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $11)
     ON CONFLICT (id) DO UPDATE SET
       name = EXCLUDED.name, description = EXCLUDED.description, image_url = EXCLUDED.image_url,
       unit_amount = EXCLUDED.unit_amount, currency = EXCLUDED.currency, active = EXCLUDED.active,
       stock = CASE WHEN $8 THEN EXCLUDED.stock ELSE products.stock END,
       tax_code = CASE WHEN $10 THEN EXCLUDED.tax_code ELSE products.tax_code END,
       updated_at = now()
     -- An active cart shows today's price, and so may one awaiting a delayed payment, once it fails.
     WHERE products.currency = EXCLUDED.currency OR NOT EXISTS (
       SELECT 1 FROM cart_items i JOIN carts c ON c.id = i.cart_id
       WHERE i.product_id = products.id AND (c.active OR c.status = $12))
     RETURNING ${columns}, active, stock, reserved, tax_code AS "taxCode", (xmax = 0) AS created`,
      [
        id,
        p.name,
        p.description,
        p.imageUrl,
        p.unitAmount,
        p.currency,
        p.active,
        p.stock !== undefined,
        p.stock ?? null,
        p.taxCode !== undefined,
        p.taxCode ?? null,
        'awaiting_payment' satisfies CartStatus,
      ],
    ),
    // Given a stock ($2), once the upsert above took (its currency is the product's): holds for
    // the checkouts under way that hold none of it (begun while it was not counted). Their carts
    // are locked here, after the product, and re-read: a checkout that committed while this
    // waited for the product is seen, and one paid meanwhile is seen paid and gets no hold. A
    // webhook or cancel of such a checkout locks only the products it holds, so it never waits
    // for this product while holding its cart; once this locked the cart, it waits, then sees
    // the hold and ends it.
    sql.query(
      `WITH pending AS (
         SELECT k.session_id, (i ->> 'quantity')::int AS quantity
         FROM carts c JOIN checkouts k ON k.session_id = c.checkout_session_id, jsonb_array_elements(k.items) i
         WHERE $2::boolean AND c.status = ANY('{${PAYMENT_PENDING_STATUSES.join(',')}}'::cart_status[])
           AND k.items @> jsonb_build_array(jsonb_build_object('productId', $1::text)) AND i ->> 'productId' = $1
           AND NOT EXISTS (SELECT 1 FROM stock_holds h WHERE h.session_id = k.session_id AND h.product_id = $1)
           AND EXISTS (SELECT 1 FROM products p WHERE p.id = $1 AND p.currency = $3 AND p.stock IS NOT NULL)
         ORDER BY c.id
         FOR UPDATE OF c
       ), held AS (
         INSERT INTO stock_holds (session_id, product_id, quantity)
         SELECT session_id, $1, quantity FROM pending
         ON CONFLICT (session_id, product_id) DO NOTHING
         RETURNING quantity
       )
       UPDATE products SET reserved = reserved + (SELECT sum(quantity) FROM held)
       WHERE id = $1 AND EXISTS (SELECT 1 FROM held)
       RETURNING ${columns}, active, stock, reserved, tax_code AS "taxCode"`,
      [id, counted, p.currency],
    ),
  ])) as [unknown, (AdminProductOut & { created: boolean })[], AdminProductOut[]];
  // A cart is in one currency: a line whose product went over to another could be neither
  // totalled nor checked out. Stripe, too, never changes a Price's currency: a new Price is made
  // (https://docs.stripe.com/api/prices/update takes no currency).
  if (!rows[0]) {
    throw new ApiError(
      'currency_mismatch',
      `The product is in shoppers' carts in its current currency: make a product of its own for ${p.currency}`,
    );
  }
  const { created, ...product } = rows[0];
  return { product: heldNow ?? product, created };
}
