import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../app.ts';
import { requireAdmin } from '../auth.ts';
import { database } from '../db.ts';
import { upsertProduct } from '../products.ts';
import { json, Product, ProductId, problems, ProductUpsert } from '../schemas.ts';

const AdminProduct = Product.extend({ active: z.boolean() }).openapi('AdminProduct');

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
}
