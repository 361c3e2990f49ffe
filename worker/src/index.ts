import { createApp } from './app.ts';
import type { Env } from './env.ts';
import { withLogContext } from './log.ts';
import { adminRoutes } from './routes/admin.ts';
import { cartRoutes } from './routes/carts.ts';
import { checkoutRoutes } from './routes/checkout.ts';
import { docsRoutes } from './routes/docs.ts';
import { healthRoutes } from './routes/health.ts';
import { pageRoutes } from './routes/pages.ts';
import { productRoutes } from './routes/products.ts';
import { stripeWebhookRoutes } from './routes/stripe-webhook.ts';
import { runScheduled } from './scheduled.ts';

// Docs register first: they declare the security schemes the other routes refer to.
export const app = createApp([
  docsRoutes,
  healthRoutes,
  productRoutes,
  cartRoutes,
  checkoutRoutes,
  stripeWebhookRoutes,
  pageRoutes,
  adminRoutes,
]);

export default {
  fetch: app.fetch,
  scheduled(_controller, env, ctx) {
    // Its log lines carry an id of the run, as a request's carry the request's.
    ctx.waitUntil(withLogContext({ cronRun: crypto.randomUUID() }, () => runScheduled(env)));
  },
} satisfies ExportedHandler<Env>;
