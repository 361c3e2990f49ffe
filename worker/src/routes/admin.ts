import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../app.ts';
import { requireAdmin } from '../auth.ts';
import { database } from '../db.ts';
import { notFound } from '../errors.ts';
import { listOutbox, retryOutboxEntry } from '../outbox.ts';
import { upsertProduct } from '../products.ts';
import { json, Product, ProductId, problems, ProductUpsert } from '../schemas.ts';

const AdminProduct = Product.extend({ active: z.boolean() }).openapi('AdminProduct');

const OutboxEntry = z
  .object({
    id: z.uuid().openapi({ description: 'The eventId published to Pub/Sub' }),
    cartId: z.uuid(),
    eventType: z.string(),
    stripeEventId: z.string(),
    createdAt: z.iso.datetime({ offset: true }),
    attempts: z.number().int(),
    nextAttemptAt: z.iso.datetime({ offset: true }),
    lastError: z.string().nullable(),
    publishedAt: z.iso.datetime({ offset: true }).nullable(),
    failedAt: z.iso.datetime({ offset: true }).nullable(),
  })
  .openapi('OutboxEntry');

const listEntries = createRoute({
  method: 'get',
  path: '/v1/admin/outbox',
  tags: ['Admin'],
  summary: 'Payment events not yet on Pub/Sub: waiting (pending) or refused for good (failed)',
  security: [{ adminKey: [] }],
  middleware: [requireAdmin] as const,
  request: {
    query: z.object({
      state: z.enum(['pending', 'failed']).default('failed'),
      limit: z.coerce.number().int().min(1).max(500).default(100),
    }),
  },
  responses: { 200: json(z.object({ entries: z.array(OutboxEntry) }), 'Outbox rows'), ...problems(400, 401, 503) },
});

const retryEntry = createRoute({
  method: 'post',
  path: '/v1/admin/outbox/{eventId}/retry',
  tags: ['Admin'],
  summary: 'Queue an unpublished payment event again (after fixing what made Pub/Sub refuse it)',
  security: [{ adminKey: [] }],
  middleware: [requireAdmin] as const,
  request: { params: z.object({ eventId: z.uuid() }) },
  responses: { 200: json(OutboxEntry, 'Queued for the next relay'), ...problems(400, 401, 404, 503) },
});

const upsert = createRoute({
  method: 'put',
  path: '/v1/admin/products/{productId}',
  tags: ['Admin'],
  summary: 'Create or update a product',
  security: [{ adminKey: [] }],
  middleware: [requireAdmin] as const,
  request: {
    params: z.object({ productId: ProductId }),
    body: { required: true, content: { 'application/json': { schema: ProductUpsert } } },
  },
  responses: {
    200: json(AdminProduct, 'Updated'),
    201: json(AdminProduct, 'Created'),
    ...problems(400, 401, 503),
  },
});

export function adminRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(upsert, async (c) => {
    const { product, active, created } = await upsertProduct(database(c.env), c.req.valid('param').productId, c.req.valid('json'));
    return c.json({ ...product, active }, created ? 201 : 200);
  });
  app.openapi(listEntries, async (c) => {
    const { state, limit } = c.req.valid('query');
    return c.json({ entries: await listOutbox(database(c.env), state, limit) }, 200);
  });
  app.openapi(retryEntry, async (c) => {
    const entry = await retryOutboxEntry(database(c.env), c.req.valid('param').eventId);
    if (!entry) throw notFound('Unpublished event');
    return c.json(entry, 200);
  });
}
