import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { type AppEnv, router } from '../app.ts';
import { findCart } from '../carts.ts';
import { reconcileSession } from '../checkout.ts';
import { ApiError, notFound } from '../errors.ts';
import { cartPage, messagePage } from '../pages.ts';
import { problemOf } from '../problem.ts';

const htmlPage = { description: 'HTML page', content: { 'text/html': { schema: z.string() } } };

const success = createRoute({
  method: 'get',
  path: '/checkout/success',
  tags: ['Pages'],
  summary: "Stripe's success_url: fulfils from the session and shows the cart",
  request: { query: z.object({ session_id: z.string().regex(/^cs_[A-Za-z0-9_]+$/, 'a Checkout Session id') }) },
  responses: { 200: htmlPage },
});

const cancel = createRoute({
  method: 'get',
  path: '/checkout/cancel',
  tags: ['Pages'],
  summary: "Stripe's cancel_url: the cart is kept",
  request: { query: z.object({ cart_id: z.uuid() }) },
  responses: { 200: htmlPage },
});

/**
 * Stripe's landing pages, read by people in an in-app browser: a sub-app whose errors are
 * pages too (same status, the request id to quote), whatever its paths.
 */
export function pageRoutes(app: OpenAPIHono<AppEnv>): void {
  const pages = router();
  pages.onError((err, c) => {
    const { status, title, error, requestId } = problemOf(c, err);
    return c.html(messagePage({ title, message: error.message, requestId }), status as 400);
  });

  pages.openapi(success, async (c) => {
    const sessionId = c.req.valid('query').session_id;
    const { sql, fulfilment, config } = c.var.services;
    const read = () => findCart(sql, 'c.id = (SELECT cart_id FROM checkouts WHERE session_id = $1)', [sessionId]);
    // Only sessions we made reach Stripe, and only while their cart waits for the payment.
    let cart = await read();
    if (!cart) throw notFound('Checkout');
    if (cart.status === 'checkout_pending' || cart.status === 'awaiting_payment') {
      try {
        // The same fulfilment as the webhook, so a late or lost webhook cannot leave a paid cart pending.
        await reconcileSession(fulfilment, c.var.services.stripe, sessionId);
        cart = (await read())!;
      } catch (err) {
        // Stripe being slow must not hide the order: show what we know; the webhook or the
        // scheduled job completes it.
        if (!(err instanceof ApiError && err.code === 'service_unavailable')) throw err;
        console.warn(
          JSON.stringify({ level: 'warn', msg: 'success_page_reconcile_failed', sessionId, error: err.message }),
        );
      }
    }
    return c.html(
      cartPage({ cart, appReturnUrl: config.optional('APP_RETURN_URL'), refresh: cart.status === 'checkout_pending' }),
      200,
    );
  });

  pages.openapi(cancel, async (c) => {
    const { sql, config } = c.var.services;
    const cart = await findCart(sql, 'c.id = $1', [c.req.valid('query').cart_id]);
    if (!cart) throw notFound('Cart');
    return c.html(cartPage({ cancelled: true, cart, appReturnUrl: config.optional('APP_RETURN_URL') }), 200);
  });

  app.route('/', pages);
}
