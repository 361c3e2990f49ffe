import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../app.ts';
import { listActiveProducts } from '../products.ts';
import { json, ProductList, problems } from '../schemas.ts';

const list = createRoute({
  method: 'get',
  path: '/v1/products',
  operationId: 'listProducts',
  tags: ['Products'],
  summary: 'List active products',
  responses: { 200: json(ProductList, 'Active products'), ...problems(503) },
});

export function productRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(list, async (c) => c.json({ products: await listActiveProducts(c.var.services.sql) }, 200));
}
