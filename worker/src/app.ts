import { OpenAPIHono } from '@hono/zod-openapi';
import { createMiddleware } from 'hono/factory';
import { type RequestIdVariables, requestId } from 'hono/request-id';
import type { AuthVariables } from './auth.ts';
import type { Env } from './env.ts';
import { ApiError } from './errors.ts';
import { withLogContext } from './log.ts';
import { problemResponse } from './problem.ts';
import type { RateLimitBindings } from './rate-limits.ts';
import { documentSharedAnswers } from './schemas.ts';
import { cors, noSniff } from './security-headers.ts';
import { requestServices, type Services } from './services.ts';

export type AppEnv = {
  Bindings: Env & RateLimitBindings;
  Variables: RequestIdVariables & Partial<AuthVariables> & { services: Services };
};

/** A router whose request validation failures become `validation_failed` problems. */
export function router(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const detail = result.error.issues
          .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
          .join('; ');
        throw new ApiError('validation_failed', detail);
      }
    },
  });
}

/**
 * For a route whose body is optional: an empty body sent as JSON (`curl -X POST -H 'Content-Type:
 * application/json'`, or a client that always sends the header) is no body, not malformed JSON.
 */
export const emptyBodyIsNone = createMiddleware(async (c, next) => {
  if (c.req.raw.body && (await c.req.raw.clone().text()) === '') {
    const headers = new Headers(c.req.raw.headers);
    headers.delete('Content-Type');
    headers.delete('Content-Length');
    c.req.raw = new Request(c.req.url, { method: c.req.method, headers });
  }
  await next();
});

const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Refuses a body over MAX_BODY_BYTES with 413, never holding more than that: one declared longer
 * (Content-Length) unread, one of unknown length (chunked) once reading it passes the limit; a
 * chunked body that fits is kept for the routes.
 *
 * A chunked body over the limit is read to its end, discarded, before the 413. Left half-read (as
 * hono's bodyLimit left it), it costs the connection it came on, and a client that reuses its
 * connections then loses the next request it sends on that one: `wrangler dev` sends every request
 * to the Worker through a proxy in workerd that does, and the request after an oversized chunked
 * one was answered 503 "Your worker restarted mid-request" (test/e2e/limits.test.ts). Cancelling
 * the stream (`reader.cancel()`) does not help; draining it does, as the workerd issue on this
 * says (https://github.com/cloudflare/workerd/issues/1741). A body never read costs nothing, hence
 * the unread refusal by Content-Length. What is drained is bounded on Cloudflare by the plan's
 * request body limit, 100 MB or more (https://developers.cloudflare.com/workers/platform/limits/).
 */
const limitBody = createMiddleware<AppEnv>(async (c, next) => {
  const request = c.req.raw;
  if (!request.body) return next();
  const tooLarge = () => new ApiError('payload_too_large', `Request bodies are limited to ${MAX_BODY_BYTES} bytes`);
  const length = request.headers.get('Content-Length');
  if (length !== null && !request.headers.has('Transfer-Encoding')) {
    if (Number.parseInt(length, 10) > MAX_BODY_BYTES) throw tooLarge();
    return next();
  }
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    size += read.value.byteLength;
    if (size > MAX_BODY_BYTES) {
      while (!(await reader.read()).done) {}
      throw tooLarge();
    }
    chunks.push(read.value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  c.req.raw = new Request(request, { body });
  await next();
});

/** Where Stripe delivers events. */
export const STRIPE_WEBHOOK_PATH = '/v1/webhooks/stripe';

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Whether a request's body must be UTF-8: what utf8Bodies checks, and what the document says. */
function checksUtf8(method: string, path: string): boolean {
  return (
    method.toUpperCase() !== 'GET' &&
    method.toUpperCase() !== 'HEAD' &&
    path.startsWith('/v1/') &&
    path !== STRIPE_WEBHOOK_PATH
  );
}

/**
 * JSON is UTF-8 (RFC 8259 §8.1), and a `charset` parameter has no effect (§11): bytes that are not
 * UTF-8 would reach the database as U+FFFD, so they are a 400. (The webhook needs no check:
 * Stripe signed the bytes, and text read from others does not verify.)
 */
const utf8Bodies = createMiddleware(async (c, next) => {
  if (c.req.raw.body && checksUtf8(c.req.method, c.req.path)) {
    try {
      UTF8.decode(await c.req.raw.clone().arrayBuffer());
    } catch {
      throw new ApiError('validation_failed', 'The body is not UTF-8 text (RFC 8259 §8.1)');
    }
  }
  await next();
});

/** The methods the routes take at `path` (HEAD wherever GET is: Hono answers it with GET's handler). */
function allowedMethods(routes: readonly { method: string; path: string }[], path: string): string[] {
  const methods = new Set<string>();
  for (const route of routes) {
    if (route.method === 'ALL' || route.path.includes('*')) continue;
    const pattern = route.path
      .split('/')
      .map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('/');
    if (new RegExp(`^${pattern}$`).test(path)) methods.add(route.method);
  }
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}

/** The one place that assembles the app: middleware, error handling and every route module. */
export function createApp(routes: ((app: OpenAPIHono<AppEnv>) => void)[]): OpenAPIHono<AppEnv> {
  const app = router();
  app.use(requestId());
  app.use((c, next) => withLogContext({ requestId: c.var.requestId }, next));
  app.use(noSniff);
  app.use('/v1/*', cors);
  app.use(async (c, next) => {
    c.set(
      'services',
      requestServices(c.env, () => c.executionCtx),
    );
    await next();
  });
  // A GET's body has no meaning (RFC 9110 §9.3.1) and no route reads one: it is not refused, as
  // the document says (documentSharedAnswers).
  app.use((c, next) => (c.req.method === 'GET' || c.req.method === 'HEAD' ? next() : limitBody(c, next)));
  app.use(utf8Bodies);
  for (const register of routes) register(app);
  documentSharedAnswers(app.openAPIRegistry, checksUtf8);
  app.notFound((c) => {
    const allowed = allowedMethods(app.routes, c.req.path);
    if (allowed.length === 0) return problemResponse(c, new ApiError('not_found', 'No such route'));
    // A resource that exists, asked with a method it does not take: 405 with the methods it does
    // (RFC 9110 §15.5.6: the Allow header is required), not a 404 that says it is not there.
    c.header('Allow', allowed.join(', '));
    return problemResponse(
      c,
      new ApiError('method_not_allowed', `${c.req.method} is not allowed here; allowed: ${allowed.join(', ')}`),
    );
  });
  app.onError((err, c) => problemResponse(c, err));
  return app;
}
