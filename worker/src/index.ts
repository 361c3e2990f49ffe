import { createApp } from './app.ts';
import type { Env } from './env.ts';
import { adminRoutes } from './routes/admin.ts';
import { cartRoutes } from './routes/carts.ts';
import { docsRoutes } from './routes/docs.ts';
import { healthRoutes } from './routes/health.ts';
import { productRoutes } from './routes/products.ts';

// Docs register first: they declare the security schemes the other routes refer to.
export const app = createApp([docsRoutes, healthRoutes, productRoutes, cartRoutes, adminRoutes]);

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
