import { CART_LIMITS, type CartStatus, EDITABLE_STATUSES, isEditable } from './cart-state.ts';
import { type Rows, type Sql, type Statement, sqlState } from './db.ts';
import { ApiError, notFound } from './errors.ts';
import { available } from './products.ts';
import type { AdminCartOut, CartOut, CheckoutOut } from './schemas.ts';
import { STRIPE_MAX_AMOUNT_SQL } from './stripe-limits.ts';

/** A cart's line at today's price, as liveLines(true) selects it for checkout. */
export interface LiveLine {
  productId: string;
  name: string;
  description: string;
  imageUrl: string | null;
  unitAmount: number;
  quantity: number;
  /** The currency the line was added in, which is the cart's. */
  currency: string;
  /** The product's currency today (an admin may have changed it). */
  productCurrency: string;
  active: boolean;
  /** Units left to buy, null when not counted. */
  available: number | null;
  taxCode: string | null;
}

/**
 * The lines of cart `c` at today's prices, oldest first, as a JSON array of LiveLine: what an
 * editable cart shows and, with the texts Stripe's page shows (`forCheckout`), what checkout
 * charges. A cart answer leaves those out: a list of 100 carts of 100 lines with every text
 * would pass the 10 MiB Neon answers a query with.
 */
export function liveLines(forCheckout: boolean): string {
  const texts = forCheckout ? `'description', p.description, 'imageUrl', p.image_url, 'taxCode', p.tax_code,` : '';
  return `COALESCE((
  SELECT json_agg(json_build_object(
           'productId', p.id, 'name', p.name, ${texts}
           'unitAmount', p.unit_amount, 'quantity', i.quantity, 'currency', i.currency,
           'productCurrency', p.currency, 'active', p.active, 'available', ${available('p')})
         ORDER BY i.created_at, i.product_id)
  FROM cart_items i JOIN products p ON p.id = i.product_id WHERE i.cart_id = c.id
), '[]'::json)`;
}

interface CartRow {
  id: string;
  userId: string;
  status: CartStatus;
  createdAt: Date;
  updatedAt: Date;
  items: { productId: string; name: string; unitAmount: number; currency: string; quantity: number }[];
  checkout: { sessionId: string; url: string; expiresAt: string } | null;
  payment: Pick<CartOut, 'amounts' | 'shipping' | 'refundedAmount' | 'oversold' | 'amountMismatch' | 'dispute'>;
}

// Every cart answer comes from this one query shape, so a mutation and the read-back of its
// result travel together in a single batch transaction (one HTTP round trip to Neon).
// Editable carts show today's prices; once checked out, a cart shows what is being paid: the
// snapshot taken at checkout. An editable cart shows nothing of a checkout either: after a
// failed payment its lines may have changed since, and that session's amounts, shipping and
// page no longer describe them (the next checkout makes its own).
const cartSelect = `
  SELECT c.id, c.user_id AS "userId", c.status, c.created_at AS "createdAt", c.updated_at AS "updatedAt",
         CASE WHEN k.session_id IS NULL
              THEN ${liveLines(false)}
              ELSE (SELECT json_agg(i || jsonb_build_object('currency', k.currency)) FROM jsonb_array_elements(k.items) i)
         END AS items,
         CASE WHEN k.session_id IS NULL THEN NULL
              ELSE json_build_object('sessionId', k.session_id, 'url', k.url, 'expiresAt', k.expires_at)
         END AS checkout,
         json_build_object('amounts', k.amounts, 'shipping', k.shipping, 'refundedAmount', COALESCE(k.refunded_amount, 0),
                           'oversold', COALESCE(k.oversold, false),
                           'amountMismatch', COALESCE(k.amount_mismatch, false), 'dispute', k.dispute) AS payment
  FROM carts c
  LEFT JOIN checkouts k ON k.session_id = c.checkout_session_id
    AND NOT (c.active AND c.status = ANY('{${EDITABLE_STATUSES.join(',')}}'::cart_status[]))`;

/** A cart's live Checkout Session as the API shows it. */
export function checkoutOut(cartId: string, session: { id: string; url: string; expiresAt: Date }): CheckoutOut {
  return { cartId, sessionId: session.id, url: session.url, expiresAt: session.expiresAt.toISOString() };
}

/** A cart line as clients see it, and as it is snapshotted at checkout. */
export function cartItem(i: {
  productId: string;
  name: string;
  unitAmount: number;
  quantity: number;
}): CartOut['items'][number] {
  return {
    productId: i.productId,
    name: i.name,
    unitAmount: i.unitAmount,
    quantity: i.quantity,
    lineTotal: i.unitAmount * i.quantity,
  };
}

function renderCart(row: CartRow): CartOut {
  const items = row.items.map(cartItem);
  return {
    id: row.id,
    status: row.status,
    currency: row.items[0]?.currency ?? null,
    items,
    itemCount: items.reduce((n, i) => n + i.quantity, 0),
    totalAmount: items.reduce((n, i) => n + i.lineTotal, 0),
    checkout:
      row.checkout &&
      checkoutOut(row.id, {
        id: row.checkout.sessionId,
        url: row.checkout.url,
        expiresAt: new Date(row.checkout.expiresAt),
      }),
    ...row.payment,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/**
 * Locks one shopper's carts for the transaction (a SQL expression; `userId` is SQL too): opening
 * a cart and a webhook moving an older cart of theirs back into an active status take it.
 */
export function shopperLock(userId: string): string {
  return `pg_advisory_xact_lock(hashtextextended('shopper:' || ${userId}, 0))`;
}

/** The caller's active cart, created when there is none; safe under concurrent calls. */
export async function openCart(sql: Sql, userId: string): Promise<{ cart: CartOut; created: boolean }> {
  // The shopper lock orders this with a webhook that may be moving an older cart of theirs back
  // into an active status (a delayed payment failing): it then sees the cart made here. A
  // concurrent call's insert makes ours do nothing once it commits; the read that follows runs
  // with a fresh snapshot (read committed), so both calls answer with the one cart.
  const [, inserted, carts] = await sql.transaction(
    [
      sql.query(`SELECT ${shopperLock('$1')}`, [userId]),
      sql.query(`INSERT INTO carts (user_id) VALUES ($1) ON CONFLICT (user_id) WHERE active DO NOTHING RETURNING id`, [
        userId,
      ]),
      sql.query(`${cartSelect} WHERE c.user_id = $1 AND c.active`, [userId]),
    ],
    { isolationLevel: 'ReadCommitted' },
  );
  return { cart: renderCart(carts[0] as CartRow), created: inserted.length > 0 };
}

export async function getCart(sql: Sql, userId: string, cartId: string): Promise<CartOut> {
  const cart = cartOf(await selectCart(sql, userId, cartId));
  if (!cart) throw notFound('Cart');
  return cart;
}

/** The caller's cart, as a statement to send (alone, or last in a transaction); read with cartOf. */
export function selectCart(sql: Sql, userId: string, cartId: string): Statement {
  return sql.query(`${cartSelect} WHERE c.id = $1 AND c.user_id = $2`, [cartId, userId]);
}

/** The cart a Checkout Session of ours was made for (the success page, reached without a user). */
export function selectCartOfSession(sql: Sql, sessionId: string): Statement {
  return sql.query(`${cartSelect} WHERE c.id = (SELECT cart_id FROM checkouts WHERE session_id = $1)`, [sessionId]);
}

/** A cart by its id alone, for the landing pages, which are reached without a user. */
export async function findCartById(sql: Sql, cartId: string): Promise<CartOut | null> {
  return cartOf(await sql.query(`${cartSelect} WHERE c.id = $1`, [cartId]));
}

/** The cart a select of it found, as the API shows it; null when there is none. */
export function cartOf([row]: Rows): CartOut | null {
  return row ? renderCart(row as unknown as CartRow) : null;
}

/**
 * A page of the shopper's carts, newest first, after the cart `startingAfter` names (Stripe's
 * way of paging lists: https://docs.stripe.com/api/pagination). Keyset, not offset: the page
 * starts from that cart's place in carts_by_user_newest, however many carts come before it,
 * and a cart opened meanwhile does not shift the pages. One more row than asked tells whether
 * more follow. A cart id that is not one of the shopper's is bad input.
 */
export async function listCarts(
  sql: Sql,
  userId: string,
  page: { limit: number; startingAfter?: string },
): Promise<{ carts: CartOut[]; hasMore: boolean }> {
  const { limit, startingAfter } = page;
  // Two texts, so that each keeps carts_by_user_newest under a generic plan too (the local proxy prepares them).
  const [anchor = [], rows] = startingAfter
    ? await sql.transaction([
        sql.query('SELECT 1 FROM carts WHERE id = $1 AND user_id = $2', [startingAfter, userId]),
        sql.query(
          // The anchor's time as a value (not a joined row), so that the index scan starts at it.
          `WITH a AS (SELECT created_at FROM carts WHERE id = $3 AND user_id = $1)
           ${cartSelect}
           WHERE c.user_id = $1 AND c.created_at <= (SELECT created_at FROM a)
             AND (c.created_at < (SELECT created_at FROM a) OR c.id > $3)
           ORDER BY c.created_at DESC, c.id LIMIT $2`,
          [userId, limit + 1, startingAfter],
        ),
      ])
    : [
        undefined,
        await sql.query(`${cartSelect} WHERE c.user_id = $1 ORDER BY c.created_at DESC, c.id LIMIT $2`, [
          userId,
          limit + 1,
        ]),
      ];
  if (startingAfter && anchor.length === 0) {
    throw new ApiError('validation_failed', 'startingAfter: not a cart of yours');
  }
  return { carts: (rows as CartRow[]).slice(0, limit).map(renderCart), hasMore: rows.length > limit };
}

/** For operators: every shopper's carts, optionally in one status, most recently changed first. */
export async function listAllCarts(sql: Sql, status: CartStatus | undefined, limit: number): Promise<AdminCartOut[]> {
  // Two texts, so that each keeps its index (carts_by_status, carts_by_updated) under a generic plan too.
  const rows = await (status
    ? sql.query(`${cartSelect} WHERE c.status = $1 ORDER BY c.updated_at DESC, c.id LIMIT $2`, [status, limit])
    : sql.query(`${cartSelect} ORDER BY c.updated_at DESC, c.id LIMIT $1`, [limit]));
  return (rows as CartRow[]).map((row) => ({ ...renderCart(row), userId: row.userId }));
}

interface ItemChangeOutcome {
  cart_status: CartStatus | null;
  cart_editable: boolean;
  product_found: boolean;
  /** The product's name (null: no such product), for a refusal the shopper can read. */
  product_name: string | null;
  /** On sale, or not asked to grow (a line of a product taken off sale can be lowered). */
  product_sold: boolean;
  currency_conflict: boolean;
  over_limit: boolean;
  /** The product's currency, which an added line's cart is in (null: no such product). */
  product_currency: string | null;
  /** Units left when the change asks for more than that, else null. */
  short_of: number | null;
  /** The line's quantity when it is neither the one expected nor the one asked for, else null. */
  changed_to: number | null;
}

/**
 * Sets an item's quantity (0 removes it) and answers the cart, in one round trip. The checks
 * run under the cart's row lock, so a concurrent checkout or edit cannot slip between check and
 * write; what failed is reported back as flags and turned into errors. The lock is taken by a
 * statement of its own: a statement reads the rows as they were when it began, so checks in the
 * statement that waited for the lock would count the cart's lines without those of the edit it
 * waited for, and two additions could together cross the cart's limits.
 */
export async function setItemQuantity(
  sql: Sql,
  change: { userId: string; cartId: string; productId: string; quantity: number; expectedQuantity?: number },
): Promise<CartOut> {
  const { userId, cartId, productId, quantity, expectedQuantity } = change;
  let outcome: ItemChangeOutcome;
  let carts: Rows;
  try {
    [, [outcome], carts] = (await sql.transaction([
      sql.query('SELECT FROM carts WHERE id = $1 AND user_id = $2 FOR UPDATE', [cartId, userId]),
      sql.query(
        `WITH cart AS (
           SELECT id, status, active AND status = ANY($5::cart_status[]) AS editable
           FROM carts WHERE id = $1 AND user_id = $2 FOR UPDATE
         ), product AS (
           -- Held until the edit commits: an admin changing its currency meanwhile waits, then
           -- sees this line (products.ts); one that changed it first is read here as it is now.
           SELECT id, name, currency, active, unit_amount, ${available('products')} AS available FROM products WHERE id = $3
           FOR KEY SHARE
         ), conflict AS (
           -- Only adding can mix currencies; removing is always allowed.
           SELECT 1 FROM cart_items i, cart, product
           WHERE $4 > 0 AND i.cart_id = cart.id AND i.product_id <> product.id AND i.currency <> product.currency
           LIMIT 1
         ), others AS (
           SELECT count(*) AS lines, COALESCE(sum(p.unit_amount * i.quantity), 0) AS total
           FROM cart_items i JOIN products p ON p.id = i.product_id, cart, product
           WHERE i.cart_id = cart.id AND i.product_id <> product.id
         ), line AS (
           SELECT COALESCE(
             (SELECT i.quantity FROM cart_items i, cart WHERE i.cart_id = cart.id AND i.product_id = $3), 0) AS quantity
         ), changed AS (
           -- A line already at the quantity asked for is no conflict (RFC 9110 §13.1.1: the change
           -- appears made): the same request again, its answer lost or resent by the browser
           -- itself, changes nothing and answers as the first did. Refused, a request was not made.
           SELECT line.quantity FROM line WHERE $9::int IS NOT NULL AND line.quantity NOT IN ($9, $4)
         ), grown AS (
           -- Only a line added or grown can cross a limit or run out of stock; lowering or
           -- removing is always allowed, even in a cart a price rise has put over the limit.
           SELECT $4 > line.quantity AS yes FROM product, line
         ), sold AS (
           -- A product taken off sale can still be lowered and removed, only not added or grown.
           SELECT product.active OR NOT grown.yes AS yes FROM product, grown
         ), over_limit AS (
           -- The total's limit is Stripe's maximum in the product's currency, the cart's once
           -- the line is in (conflict above): $7, or $8's for the currencies it names.
           SELECT grown.yes AND (others.lines + 1 > $6
                                 OR others.total + product.unit_amount * $4 > COALESCE(($8::jsonb ->> product.currency)::bigint, $7)) AS yes
           FROM others, product, grown
         ), short AS (
           -- Checkout checks the stock again.
           SELECT product.available FROM product, grown WHERE grown.yes AND $4 > product.available
         ), allowed AS (
           SELECT cart.id AS cart_id, product.id AS product_id, product.currency
           FROM cart, product
           WHERE cart.editable AND NOT EXISTS (SELECT 1 FROM changed)
             AND ($4 = 0 OR ((SELECT yes FROM sold)
                             AND NOT EXISTS (SELECT 1 FROM conflict) AND NOT (SELECT yes FROM over_limit)
                             AND NOT EXISTS (SELECT 1 FROM short)))
         ), upserted AS (
           INSERT INTO cart_items (cart_id, product_id, currency, quantity)
           SELECT cart_id, product_id, currency, $4 FROM allowed WHERE $4 > 0
           ON CONFLICT (cart_id, product_id) DO UPDATE
             SET quantity = EXCLUDED.quantity, currency = EXCLUDED.currency, updated_at = now()
             WHERE (cart_items.quantity, cart_items.currency) IS DISTINCT FROM (EXCLUDED.quantity, EXCLUDED.currency)
           RETURNING 1
         ), removed AS (
           DELETE FROM cart_items i USING allowed a
           WHERE $4 = 0 AND i.cart_id = a.cart_id AND i.product_id = a.product_id
           RETURNING 1
         ), touched AS (
           -- Only a change moves the cart on: an edit that changes nothing (a retry whose answer
           -- was lost, a line removed twice) leaves its updatedAt as a client last saw it, and
           -- a checkout running meanwhile keeps its session. A change ends the checkout attempt:
           -- the new version's key is sent with a whole CHECKOUT_TTL_MINUTES of its own.
           UPDATE carts SET updated_at = now(), version = version + 1, checkout_attempt_expires_at = NULL FROM allowed
           WHERE carts.id = allowed.cart_id AND (EXISTS (SELECT 1 FROM upserted) OR EXISTS (SELECT 1 FROM removed))
           RETURNING 1
         )
         SELECT (SELECT status FROM cart) AS cart_status,
                COALESCE((SELECT editable FROM cart), false) AS cart_editable,
                EXISTS (SELECT 1 FROM product) AS product_found,
                (SELECT name FROM product) AS product_name,
                COALESCE((SELECT yes FROM sold), false) AS product_sold,
                EXISTS (SELECT 1 FROM conflict) AS currency_conflict,
                COALESCE((SELECT yes FROM over_limit), false) AS over_limit,
                (SELECT currency FROM product) AS product_currency,
                (SELECT available FROM short) AS short_of,
                (SELECT quantity FROM changed) AS changed_to`,
        [
          cartId,
          userId,
          productId,
          quantity,
          EDITABLE_STATUSES,
          CART_LIMITS.lines,
          ...STRIPE_MAX_AMOUNT_SQL,
          expectedQuantity ?? null,
        ],
      ),
      selectCart(sql, userId, cartId),
    ])) as [unknown, [ItemChangeOutcome], Rows];
  } catch (err) {
    // Two first items in different currencies racing into one empty cart: the exclusion
    // constraint lets one in and stops the other.
    if (sqlState(err) === '23P01') throw currencyMismatch();
    throw err;
  }
  if (!outcome.cart_status) throw notFound('Cart');
  if (!outcome.product_found) throw notFound('Product', { productId });
  if (quantity > 0 && !outcome.product_sold)
    throw noLongerSold(
      { productId, name: outcome.product_name! },
      'a line of it can be lowered or removed, not added or grown',
    );
  if (!outcome.cart_editable) throw notEditable(outcome.cart_status);
  if (outcome.changed_to !== null) throw quantityChanged(productId, expectedQuantity!, outcome.changed_to);
  if (outcome.currency_conflict) throw currencyMismatch();
  if (outcome.over_limit) throw limitExceeded(outcome.product_currency!);
  if (outcome.short_of !== null) throw outOfStock([{ id: productId, available: outcome.short_of }]);
  return renderCart(carts[0] as unknown as CartRow);
}

/**
 * 404 not_found for a product taken off sale since it was added: named as the shopper knows it,
 * and by id (`productId`) for a client to point at the line, which can still be lowered or removed.
 */
export function noLongerSold(product: { productId: string; name: string }, then: string): ApiError {
  return new ApiError('not_found', `${product.name} (${product.productId}) is no longer sold: ${then}`, {
    extensions: { productId: product.productId },
  });
}

/** Why a cart cannot be edited or checked out. */
export function notEditable(status: CartStatus): ApiError {
  return new ApiError(
    'cart_not_editable',
    isEditable(status)
      ? `The cart is ${status} but no longer the active cart: a newer cart took its place`
      : `The cart is ${status}; only the active open or payment_failed cart can be changed`,
  );
}

export function limitExceeded(currency: string): ApiError {
  return new ApiError(
    'cart_limit_exceeded',
    `A cart holds at most ${CART_LIMITS.lines} different products and a total of at most ${CART_LIMITS.totalAmount(currency)} in minor units of ${currency}`,
  );
}

/** 409 out_of_stock naming each product short and what is left of it. */
export function outOfStock(products: { id: string; available: number }[]): ApiError {
  const list = products.map((p) => `${p.id} (${p.available} left)`).join(', ');
  return new ApiError('out_of_stock', `Not enough in stock: ${list}`, { extensions: { products } });
}

function quantityChanged(productId: string, expected: number, quantity: number): ApiError {
  return new ApiError(
    'quantity_changed',
    `The cart holds ${quantity} of ${productId}, not ${expected}: it changed since you read it. Read the cart and decide again`,
    { extensions: { productId, quantity } },
  );
}

function currencyMismatch(): ApiError {
  return new ApiError(
    'currency_mismatch',
    'The product is priced in another currency than the items already in the cart',
  );
}
