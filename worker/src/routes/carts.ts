import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app.ts';
import { requireUser } from '../auth.ts';
import { getCart, listCarts, openCart, setItemQuantity } from '../carts.ts';
import { limitPerUser } from '../rate-limits.ts';
import { Cart, CartId, CartList, json, PageLimit, ProductId, problems, Quantity } from '../schemas.ts';

const security = [{ bearerAuth: [] }];
const cartParams = z.object({ cartId: CartId });
const itemParams = z.object({ cartId: CartId, productId: ProductId });

const open = createRoute({
  method: 'post',
  path: '/v1/carts',
  operationId: 'openCart',
  tags: ['Carts'],
  summary: "The caller's active cart, created when there is none",
  security,
  middleware: [requireUser, limitPerUser('WRITE_RATE_LIMIT')] as const,
  responses: {
    200: json(Cart, 'The existing active cart'),
    201: {
      ...json(Cart, 'A new open cart'),
      // RFC 9110 §9.3.3: a POST that creates a resource names it in Location.
      headers: { Location: { description: "The new cart's URL", required: true, schema: { type: 'string' } } },
    },
    ...problems(401, 429, 503),
  },
});

const list = createRoute({
  method: 'get',
  path: '/v1/carts',
  operationId: 'listCarts',
  tags: ['Carts'],
  summary: "The caller's carts, newest first (order history)",
  security,
  middleware: [requireUser] as const,
  request: {
    query: z.object({
      limit: PageLimit,
      startingAfter: CartId.optional().openapi({
        description: "The last cart of the page before (a cart of the caller's): the page after it",
      }),
    }),
  },
  responses: { 200: json(CartList, 'Carts, newest first'), ...problems(400, 401, 503) },
});

const get = createRoute({
  method: 'get',
  path: '/v1/carts/{cartId}',
  operationId: 'getCart',
  tags: ['Carts'],
  summary: 'One cart of the caller',
  security,
  middleware: [requireUser] as const,
  request: { params: cartParams },
  responses: { 200: json(Cart, 'The cart'), ...problems(400, 401, 404, 503) },
});

const putItem = createRoute({
  method: 'put',
  path: '/v1/carts/{cartId}/items/{productId}',
  operationId: 'setCartItem',
  tags: ['Carts'],
  summary: "Set an item's quantity (0 removes it)",
  security,
  middleware: [requireUser, limitPerUser('WRITE_RATE_LIMIT')] as const,
  request: { params: itemParams, body: { required: true, content: { 'application/json': { schema: Quantity } } } },
  responses: { 200: json(Cart, 'The cart after the change'), ...problems(400, 401, 404, 409, 415, 429, 503) },
});

const deleteItem = createRoute({
  method: 'delete',
  path: '/v1/carts/{cartId}/items/{productId}',
  operationId: 'removeCartItem',
  tags: ['Carts'],
  summary: 'Remove an item',
  security,
  middleware: [requireUser, limitPerUser('WRITE_RATE_LIMIT')] as const,
  request: { params: itemParams },
  responses: { 200: json(Cart, 'The cart after the change'), ...problems(400, 401, 404, 409, 429, 503) },
});

export function cartRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(open, async (c) => {
    const { cart, created } = await openCart(c.var.services.sql, c.var.userId);
    if (!created) return c.json(cart, 200);
    return c.json(cart, 201, { Location: `/v1/carts/${cart.id}` });
  });
  app.openapi(list, async (c) => {
    return c.json(await listCarts(c.var.services.sql, c.var.userId, c.req.valid('query')), 200);
  });
  app.openapi(get, async (c) =>
    c.json(await getCart(c.var.services.sql, c.var.userId, c.req.valid('param').cartId), 200),
  );
  app.openapi(putItem, async (c) => {
    const { cartId, productId } = c.req.valid('param');
    const { quantity, expectedQuantity } = c.req.valid('json');
    return c.json(
      await setItemQuantity(c.var.services.sql, {
        userId: c.var.userId,
        cartId,
        productId,
        quantity,
        expectedQuantity,
      }),
      200,
    );
  });
  app.openapi(deleteItem, async (c) => {
    const { cartId, productId } = c.req.valid('param');
    return c.json(
      await setItemQuantity(c.var.services.sql, { userId: c.var.userId, cartId, productId, quantity: 0 }),
      200,
    );
  });
}
