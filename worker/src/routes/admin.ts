import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { type AppEnv, emptyBodyIsNone } from '../app.ts';
import { requireAdmin } from '../auth.ts';
import { listAllCarts } from '../carts.ts';
import { notFound } from '../errors.ts';
import { discardOutboxEntry, listOutbox, OUTBOX_STATES, republishOutbox, requeueOutbox } from '../outbox-admin.ts';
import { upsertProduct } from '../products.ts';
import { refundCart } from '../refunds.ts';
import {
  AdminCartList,
  AdminProduct,
  CartId,
  CartStatus,
  json,
  OutboxEntry,
  OutboxRepublishRequest,
  PageLimit,
  ProductId,
  ProductUpsert,
  problems,
  Refund,
  RefundRequest,
} from '../schemas.ts';

const OutboxEntries = z.object({ entries: z.array(OutboxEntry) }).openapi('OutboxEntries');

/** What every admin route has: the admin key, documented and checked. */
const ADMIN_ONLY = { security: [{ adminKey: [] }], middleware: [requireAdmin] as [typeof requireAdmin] };

const listEntries = createRoute({
  method: 'get',
  path: '/v1/admin/outbox',
  operationId: 'listOutboxEvents',
  tags: ['Admin'],
  summary: 'Payment events not on Pub/Sub: waiting (pending), refused for good (failed) or given up (discarded)',
  ...ADMIN_ONLY,
  request: {
    query: z.object({
      state: z.enum(OUTBOX_STATES).default('failed'),
      limit: z.coerce.number().int().min(1).max(500).default(100),
    }),
  },
  responses: { 200: json(OutboxEntries, 'Outbox rows, oldest first'), ...problems(400, 401, 503) },
});

const retryEntry = createRoute({
  method: 'post',
  path: '/v1/admin/outbox/{eventId}/retry',
  operationId: 'retryOutboxEvent',
  tags: ['Admin'],
  summary: 'Queue an unpublished payment event again (after fixing what made Pub/Sub refuse it)',
  description:
    "It keeps its place in its cart's order: the cart's later events go out after it. An event being published " +
    'at that moment is answered as it is, unchanged.',
  ...ADMIN_ONLY,
  request: { params: z.object({ eventId: z.uuid() }) },
  responses: {
    200: json(OutboxEntry, 'Queued for the next relay, or as it is when it is being published now'),
    ...problems(400, 401, 404, 503),
  },
});

const retryAllFailed = createRoute({
  method: 'post',
  path: '/v1/admin/outbox/retry',
  operationId: 'retryFailedOutboxEvents',
  tags: ['Admin'],
  summary: "Queue every failed payment event again, each in its place in its cart's order",
  ...ADMIN_ONLY,
  responses: { 200: json(OutboxEntries, 'The rows queued again, oldest first'), ...problems(401, 503) },
});

const discardEntry = createRoute({
  method: 'post',
  path: '/v1/admin/outbox/{eventId}/discard',
  operationId: 'discardOutboxEvent',
  tags: ['Admin'],
  summary: "Give up on an unpublished payment event; its cart's later events no longer wait for it",
  ...ADMIN_ONLY,
  request: { params: z.object({ eventId: z.uuid() }) },
  responses: {
    200: json(OutboxEntry, 'Discarded'),
    ...problems(400, 401, 404, 503),
    409: {
      ...problems(409)[409]!,
      headers: {
        'Retry-After': {
          description: 'With event_being_published: seconds until its publisher is done with the row',
          schema: { type: 'string' },
        },
      },
    },
  },
});

const republish = createRoute({
  method: 'post',
  path: '/v1/admin/outbox/republish',
  operationId: 'republishOutboxEvents',
  tags: ['Admin'],
  summary: 'Publish again the payment events Pub/Sub took in a time range (a topic made again, messages lost)',
  description:
    "They go out with their eventIds, in each cart's order (a cart's later published events go again with them), " +
    "with the cron's relay (every 5 minutes, up to 1,000 a run). " +
    'Only events published within RETENTION_DAYS are kept to publish again; discarded ones stay discarded.',
  ...ADMIN_ONLY,
  request: { body: { required: true, content: { 'application/json': { schema: OutboxRepublishRequest } } } },
  responses: {
    200: json(z.object({ requeued: z.number().int() }).openapi('OutboxRepublished'), 'How many were queued again'),
    ...problems(400, 401, 503),
  },
});

const upsert = createRoute({
  method: 'put',
  path: '/v1/admin/products/{productId}',
  operationId: 'upsertProduct',
  tags: ['Admin'],
  summary: 'Create or update a product',
  ...ADMIN_ONLY,
  request: {
    params: z.object({ productId: ProductId }),
    body: { required: true, content: { 'application/json': { schema: ProductUpsert } } },
  },
  responses: {
    200: json(AdminProduct, 'Updated'),
    201: json(AdminProduct, 'Created'),
    ...problems(400, 401, 409, 503),
  },
});

const listCarts = createRoute({
  method: 'get',
  path: '/v1/admin/carts',
  operationId: 'listAllCarts',
  tags: ['Admin'],
  summary: "Every shopper's carts, most recently changed first; optionally in one status",
  ...ADMIN_ONLY,
  request: {
    query: z.object({
      status: CartStatus.optional(),
      limit: PageLimit,
    }),
  },
  responses: { 200: json(AdminCartList, 'Carts'), ...problems(400, 401, 503) },
});

const refund = createRoute({
  method: 'post',
  path: '/v1/admin/carts/{cartId}/refunds',
  operationId: 'refundCart',
  tags: ['Admin'],
  summary: 'Refund a paid cart (all that is left, or `amount`) through Stripe',
  description:
    'With an Idempotency-Key, a retried request (after a timeout, say) refunds once and answers the same refund; ' +
    'the key with other parameters is refused (400). A partial refund publishes cart.partially_refunded and the ' +
    'cart stays paid; refunding the whole amount makes it refunded.',
  security: ADMIN_ONLY.security,
  middleware: [requireAdmin, emptyBodyIsNone] as const,
  request: {
    params: z.object({ cartId: CartId }),
    headers: z.object({
      'idempotency-key': z
        .string()
        .regex(/^[\x21-\x7e]{1,200}$/, 'at most 200 visible ASCII characters')
        .optional()
        .openapi({ description: 'Makes retries of this request refund once (kept 24 hours, as Stripe keeps keys)' }),
    }),
    body: { required: false, content: { 'application/json': { schema: RefundRequest } } },
  },
  responses: {
    201: json(Refund, 'Refunded (or the same refund again, for a retried request)'),
    ...problems(400, 401, 404, 409, 422, 502, 503),
  },
});

export function adminRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(listCarts, async (c) => {
    const { status, limit } = c.req.valid('query');
    return c.json({ carts: await listAllCarts(c.var.services.sql, status, limit) }, 200);
  });
  app.openapi(refund, async (c) => {
    const done = await refundCart(
      c.var.services,
      c.req.valid('param').cartId,
      c.req.valid('json') ?? {},
      c.req.valid('header')['idempotency-key'],
    );
    return c.json(done, 201);
  });
  app.openapi(upsert, async (c) => {
    const { product, created } = await upsertProduct(
      c.var.services.sql,
      c.req.valid('param').productId,
      c.req.valid('json'),
    );
    return c.json(product, created ? 201 : 200);
  });
  app.openapi(listEntries, async (c) => {
    const { state, limit } = c.req.valid('query');
    return c.json({ entries: await listOutbox(c.var.services.sql, state, limit) }, 200);
  });
  app.openapi(republish, async (c) =>
    c.json({ requeued: await republishOutbox(c.var.services.sql, c.req.valid('json')) }, 200),
  );
  app.openapi(retryAllFailed, async (c) => c.json({ entries: await requeueOutbox(c.var.services.sql, null) }, 200));
  app.openapi(retryEntry, async (c) => {
    const [entry] = await requeueOutbox(c.var.services.sql, c.req.valid('param').eventId);
    if (!entry) throw notFound('Unpublished event');
    return c.json(entry, 200);
  });
  app.openapi(discardEntry, async (c) => {
    const entry = await discardOutboxEntry(c.var.services.sql, c.req.valid('param').eventId);
    if (!entry) throw notFound('Unpublished event');
    return c.json(entry, 200);
  });
}
