import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../app.ts';
import { ping } from '../db.ts';
import { Health, json, problems } from '../schemas.ts';

const health = createRoute({
  method: 'get',
  path: '/healthz',
  operationId: 'getHealth',
  tags: ['Operations'],
  summary: 'Liveness and database reachability',
  responses: { 200: json(Health, 'Serving, database reachable'), ...problems(503) },
});

export function healthRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(health, async (c) => {
    // An unreachable database throws here and onError answers 503 service_unavailable.
    await ping(c.var.services.sql);
    return c.json({ status: 'ok' as const, db: 'ok' as const }, 200);
  });
}
