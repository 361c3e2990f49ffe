import { describe, expect, it, vi } from 'vitest';
import { app } from '../src/index.ts';
import { call, createProduct, newUser, openCart, problem, testEnv } from './helpers.ts';

describe('every answer', () => {
  it('carries an X-Request-Id, also on errors, matching the problem body', async () => {
    const ok = await call('/v1/products');
    expect(ok.headers.get('X-Request-Id')).toMatch(/^[\w-]{8,}$/);
    const bad = await call('/v1/carts', { method: 'POST' });
    const id = bad.headers.get('X-Request-Id');
    expect(id).toBeTruthy();
    expect((await problem(bad)).requestId).toBe(id);
  });

  it('answers unknown routes with a 404 problem', async () => {
    const res = await call('/v1/nothing-here');
    expect(res.status).toBe(404);
    expect((await problem(res)).code).toBe('not_found');
  });

  it.each([
    ['PATCH', '/v1/carts/7b0c2c1e-0000-4000-8000-000000000000', 'GET, HEAD'],
    ['GET', '/v1/carts/7b0c2c1e-0000-4000-8000-000000000000/checkout', 'DELETE, POST'],
    ['DELETE', '/v1/products', 'GET, HEAD'],
    ['GET', '/v1/webhooks/stripe', 'POST'],
    ['POST', '/checkout/success?session_id=cs_test_1', 'GET, HEAD'],
    ['GET', '/v1/admin/outbox/retry', 'POST'],
  ])('answers %s %s, a route that takes other methods, with 405 and Allow: %s', async (method, path, allow) => {
    const res = await call(path, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('Allow')).toBe(allow);
    expect(await problem(res)).toMatchObject({ code: 'method_not_allowed', status: 405 });
  });

  it('refuses bodies over 1 MiB with 413 payload_too_large', async () => {
    const user = await newUser();
    const res = await call(`/v1/carts/${crypto.randomUUID()}/items/x`, {
      method: 'PUT',
      token: user.token,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ quantity: 1, pad: 'x'.repeat(1024 * 1024) }),
    });
    expect(res.status).toBe(413);
    expect((await problem(res)).code).toBe('payload_too_large');
  });

  it('reads a body of unknown length to its end before refusing it over 1 MiB, and keeps one that fits', async () => {
    const user = await newUser();
    const product = await createProduct();
    const cartId = await openCart(user.token, []);
    // A body without Content-Length (chunked on the wire), handed out 64 KiB per pull: 2.5 MiB.
    const stream = (bytes: Uint8Array, pulls: { count: number }, chunkSize = 64 * 1024) =>
      new ReadableStream<Uint8Array>({
        pull(controller) {
          const at = pulls.count++ * chunkSize;
          if (at >= bytes.length) controller.close();
          else controller.enqueue(bytes.subarray(at, at + chunkSize));
        },
      });
    const big = new Uint8Array(40 * 64 * 1024).fill(0x61);
    const pulls = { count: 0 };
    const refused = await call(`/v1/carts/${cartId}/items/${product.id}`, {
      method: 'PUT',
      token: user.token,
      headers: { 'Content-Type': 'application/json' },
      body: stream(big, pulls),
    });
    expect(refused.status).toBe(413);
    expect((await problem(refused)).code).toBe('payload_too_large');
    // Left half-read, it cost wrangler dev's proxy its connection to the Worker, and the next
    // request sent on it a 503 (test/e2e/limits.test.ts): every chunk was asked for, and the end.
    expect(pulls.count).toBe(41);

    const fits = await call(`/v1/carts/${cartId}/items/${product.id}`, {
      method: 'PUT',
      token: user.token,
      headers: { 'Content-Type': 'application/json' },
      body: stream(new TextEncoder().encode(`${' '.repeat(1000)}{"quantity":2}`), { count: 0 }, 100),
    });
    expect(fits.status, await fits.clone().text()).toBe(200);
    expect(((await fits.json()) as { items: { productId: string; quantity: number }[] }).items).toEqual([
      expect.objectContaining({ productId: product.id, quantity: 2 }),
    ]);
  });

  it('names a missing required variable, never a value', async () => {
    const res = await app.request('/v1/products', {}, { ...testEnv, DATABASE_URL: undefined });
    expect(res.status).toBe(500);
    const body = await problem(res);
    expect(body).toMatchObject({ code: 'misconfigured', detail: 'DATABASE_URL is not set' });
  });

  it('names an invalid variable without echoing it', async () => {
    const res = await app.request('/v1/products', {}, { ...testEnv, DATABASE_URL: 'mysql://secret-password@db' });
    const body = await problem(res);
    expect(body.code).toBe('misconfigured');
    expect(body.detail).toContain('DATABASE_URL');
    expect(JSON.stringify(body)).not.toContain('secret-password');
  });
});

describe('GET /healthz', () => {
  it('reports the database as reachable', async () => {
    const res = await call('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', db: 'ok' });
  });

  it('answers 503 when the database is unreachable', async () => {
    const res = await app.request('/healthz', {}, { ...testEnv, NEON_HTTP_ENDPOINT: 'http://127.0.0.1:9/sql' });
    expect(res.status).toBe(503);
    expect((await problem(res)).code).toBe('service_unavailable');
  });

  it('answers 503, not 500, when the database’s answer is cut off after its headers', async () => {
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const res = await realFetch(input, init);
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"fields":['));
          controller.error(new TypeError('Network connection lost.'));
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    });
    const res = await call('/healthz');
    vi.restoreAllMocks();
    expect(res.status).toBe(503);
    expect((await problem(res)).code).toBe('service_unavailable');
  });
});

describe('OpenAPI', () => {
  it('documents every /v1 route from the validation schemas', async () => {
    const res = await call('/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/products',
        '/v1/carts',
        '/v1/carts/{cartId}',
        '/v1/carts/{cartId}/items/{productId}',
        '/v1/admin/products/{productId}',
      ]),
    );
    expect(Object.keys(doc.paths['/v1/carts/{cartId}/items/{productId}']!)).toEqual(
      expect.arrayContaining(['put', 'delete']),
    );
    const quantity = doc.components.schemas.Quantity as {
      properties: { quantity: { maximum: number; minimum: number } };
    };
    expect(quantity.properties.quantity).toMatchObject({ minimum: 0, maximum: 99 });
  });

  it('documents each pattern as a pattern a client validator compiles as it is (ECMA-262, no flags)', async () => {
    const doc = await (await call('/openapi.json')).json();
    const patterns: string[] = [];
    JSON.stringify(doc, (key, value) => {
      if (key === 'pattern' && typeof value === 'string') patterns.push(value);
      return value;
    });
    expect(patterns.length).toBeGreaterThan(0);
    for (const pattern of patterns) {
      // JSON Schema 2020-12 "pattern": a regular expression, not a /literal/ with flags after it.
      expect(pattern).not.toMatch(/^\/|\/[a-z]*$/);
      expect(() => new RegExp(pattern, 'u')).not.toThrow();
    }
    const upsert = (
      doc as { components: { schemas: Record<string, { properties: Record<string, { pattern: string }> }> } }
    ).components.schemas.ProductUpsert!.properties;
    const name = new RegExp(upsert.name!.pattern, 'u');
    expect(['Mug', 'Donaudampfschiff 🍵', 'é'].map((n) => name.test(n))).toEqual([true, true, true]);
    expect(['two\nlines', 'esc\u001b[31m'].map((n) => name.test(n))).toEqual([false, false]);
    const description = new RegExp(upsert.description!.pattern, 'u');
    expect(['two\nlines\tand a tab', 'esc\u001b'].map((d) => description.test(d))).toEqual([true, false]);
  });

  it('names every operation with an operationId of its own, which generated clients take for method names', async () => {
    const doc = (await (await call('/openapi.json')).json()) as {
      paths: Record<string, Record<string, { operationId?: string }>>;
    };
    const operations = Object.values(doc.paths).flatMap((item) => Object.values(item));
    const ids = operations.map((op) => op.operationId);
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(operations.length);
    expect(doc.paths['/v1/carts/{cartId}/checkout']).toMatchObject({
      post: { operationId: 'startCheckout' },
      delete: { operationId: 'cancelCheckout' },
    });
  });

  it('builds the document once for the isolate, not on every request, and serves the same one', async () => {
    const first = await call('/openapi.json');
    const build = vi.spyOn(app, 'getOpenAPI31Document');
    const again = await Promise.all([call('/openapi.json'), call('/openapi.json')]);
    vi.restoreAllMocks();
    // Built from every route's schemas, it cost 13 to 22 ms of CPU a request.
    expect(build).not.toHaveBeenCalled();
    expect(first.headers.get('Content-Type')).toMatch(/^application\/json/);
    const body = await first.text();
    for (const res of again) {
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(body);
    }
  });

  it('serves a docs page that renders the document', async () => {
    const res = await call('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('/openapi.json');
    expect(html).toContain('id="error-cart_not_editable"');
  });
});
