import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app.ts';
import { requireUser } from '../auth.ts';
import { cancelCheckout, startCheckout } from '../checkout.ts';
import { limitPerUser } from '../rate-limits.ts';
import { Cart, CartId, Checkout, json, problems } from '../schemas.ts';

const security = [{ bearerAuth: [] }];
const params = z.object({ cartId: CartId });

const start = createRoute({
  method: 'post',
  path: '/v1/carts/{cartId}/checkout',
  operationId: 'startCheckout',
  tags: ['Checkout'],
  summary: 'Start Stripe Checkout for the cart, or get its live session',
  description:
    'Moves the cart to checkout_pending with a snapshot of what is being paid. Repeated or concurrent calls ' +
    'return the same live session (200). Open the returned url in a web view.',
  security,
  // Each checkout or cancellation costs Stripe calls, and Stripe's rate limit is the whole shop's.
  middleware: [requireUser, limitPerUser('WRITE_RATE_LIMIT'), limitPerUser('CHECKOUT_RATE_LIMIT')] as const,
  request: { params },
  responses: {
    201: json(Checkout, 'A new Checkout Session'),
    200: json(Checkout, 'The live session of this cart, unchanged'),
    ...problems(400, 401, 404, 409, 422, 429, 503),
  },
});

const cancel = createRoute({
  method: 'delete',
  path: '/v1/carts/{cartId}/checkout',
  operationId: 'cancelCheckout',
  tags: ['Checkout'],
  summary: 'Expire the live Checkout Session; the cart is open again',
  security,
  // Each checkout or cancellation costs Stripe calls, and Stripe's rate limit is the whole shop's.
  middleware: [requireUser, limitPerUser('WRITE_RATE_LIMIT'), limitPerUser('CHECKOUT_RATE_LIMIT')] as const,
  request: {
    params,
    query: z.object({
      sessionId: z
        .string()
        .regex(/^cs_[A-Za-z0-9_]{1,250}$/, 'a Checkout Session id (cs_…)')
        .optional()
        .openapi({
          description:
            'The session the client means, as its Checkout answered it (back from its cancel page, say). When the ' +
            "cart's live session is another (a checkout started again elsewhere), nothing is cancelled: 409 cart_not_editable.",
        }),
    }),
  },
  responses: { 200: json(Cart, 'The cart, back in open'), ...problems(400, 401, 404, 409, 422, 429, 503) },
});

export function checkoutRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(start, async (c) => {
    const { checkout, created } = await startCheckout(c.var.services, c.var.userId, c.req.valid('param').cartId);
    return c.json(checkout, created ? 201 : 200);
  });
  app.openapi(cancel, async (c) => {
    const { cartId } = c.req.valid('param');
    return c.json(await cancelCheckout(c.var.services, c.var.userId, cartId, c.req.valid('query').sessionId), 200);
  });
}
