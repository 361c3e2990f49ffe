import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { type AppEnv, router } from '../app.ts';
import { findCartById } from '../carts.ts';
import { cartOfReturningSession, confirmedWithStripe } from '../checkout.ts';
import type { Config } from '../env.ts';
import { notFound } from '../errors.ts';
import { log } from '../log.ts';
import { cartPage, errorPage, PAGE_STYLE, replacedCheckoutPage } from '../pages.ts';
import { problemOf } from '../problem.ts';
import { takeToken } from '../rate-limits.ts';
import { CartId, html } from '../schemas.ts';
import { htmlPageHeaders, privateResponse } from '../security-headers.ts';
import { STRIPE_ID } from '../stripe-event-shape.ts';

const htmlPage = html('HTML page');
const htmlError = html('Error page');

const success = createRoute({
  method: 'get',
  path: '/checkout/success',
  operationId: 'checkoutSuccessPage',
  tags: ['Pages'],
  summary: "Stripe's success_url: fulfils from the session and shows the cart",
  request: {
    query: z.object({
      // An id as Stripe forms them (opaque, as the webhook takes them): anything else, such as
      // an unfilled {CHECKOUT_SESSION_ID}, is refused before the database or Stripe is asked;
      // an id that is not in our checkouts is answered 404 without asking Stripe.
      session_id: z.string().regex(STRIPE_ID, 'a Checkout Session id'),
    }),
  },
  responses: { 200: htmlPage, 400: htmlError, 404: htmlError, 422: htmlError, 503: htmlError },
});

const cancel = createRoute({
  method: 'get',
  path: '/checkout/cancel',
  operationId: 'checkoutCancelPage',
  tags: ['Pages'],
  summary: "Stripe's cancel_url: the cart is kept",
  request: { query: z.object({ cart_id: CartId }) },
  responses: { 200: htmlPage, 400: htmlError, 404: htmlError, 503: htmlError },
});

/**
 * Stripe's landing pages, read by people in an in-app browser: a sub-app whose errors are
 * pages too (same status, the request id to quote), whatever its paths.
 */
export function pageRoutes(app: OpenAPIHono<AppEnv>): void {
  const pages = router();
  pages.use(htmlPageHeaders({ styles: [PAGE_STYLE] }));
  // A cart's contents and status, as they were: not for a browser's or a proxy's cache.
  pages.use(privateResponse);
  pages.onError((err, c) => {
    const { status, error, requestId, headers } = problemOf(c, err);
    // Every page leads back to the app: an in-app browser (ASWebAuthenticationSession, Custom
    // Tabs) is left only by a link.
    const back = c.var.services && appReturnUrl(c.var.services.config);
    return c.html(errorPage({ code: error.code, requestId, appReturnUrl: back }), status as 400, headers);
  });

  pages.openapi(success, async (c) => {
    const sessionId = c.req.valid('query').session_id;
    const { cart, replaced } = await cartOfReturningSession(
      c.var.services,
      sessionId,
      stripeReadAllowance(c, sessionId),
    );
    const back = appReturnUrl(c.var.services.config);
    if (replaced) return c.html(replacedCheckoutPage({ cart, appReturnUrl: back }), 200);
    return c.html(cartPage({ cart, appReturnUrl: back, checkAgain: cart.status === 'checkout_pending' }), 200);
  });

  pages.openapi(cancel, async (c) => {
    const { sql, config } = c.var.services;
    const found = await findCartById(sql, c.req.valid('query').cart_id);
    if (!found) throw notFound('Cart');
    // Stripe's page may have been paid in another tab before this one was cancelled, its webhook
    // not here yet: "nothing was charged" is said only once Stripe says so, as on the success page.
    const sessionId = found.checkout?.sessionId;
    const cart = sessionId
      ? await confirmedWithStripe(c.var.services, found, sessionId, stripeReadAllowance(c, sessionId))
      : found;
    return c.html(cartPage({ cancelled: true, cart, appReturnUrl: appReturnUrl(config) }), 200);
  });

  app.route('/', pages);
}

/**
 * Takes one of the Stripe reads a landing page may make, counted per Checkout Session. No login
 * here, but a page calls Stripe only for a session of ours whose payment is pending, and each
 * was made by a signed-in checkout (CHECKOUT_RATE_LIMIT): the session bounds how often it can
 * make us call Stripe. Not the client's address: shoppers on one mobile network share one
 * (carrier-grade NAT), and would share one budget coming back from Stripe at the same time.
 */
function stripeReadAllowance(c: Context<AppEnv>, sessionId: string): () => Promise<void> {
  return () => takeToken(c.env, 'STRIPE_PAGE_RATE_LIMIT', `session:${sessionId}`);
}

/**
 * The link back to the app: APP_RETURN_URL, or else the storefront this Worker serves at `/`.
 * An invalid setting costs the link (and is logged), never the page.
 */
function appReturnUrl(config: Config): string | undefined {
  try {
    const configured = config.optional('APP_RETURN_URL');
    if (configured) return configured;
    const storefront = config.optional('PUBLIC_BASE_URL');
    return storefront && `${storefront}/`;
  } catch (err) {
    log.error('landing_page_without_app_link', { error: err });
    return undefined;
  }
}
