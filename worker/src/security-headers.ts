import { createMiddleware } from 'hono/factory';
import { config, type Env } from './env.ts';

// Response headers that keep browsers from misusing our answers: who may call the API from a
// page (CORS), what an HTML page may load and who may frame it (CSP), and that private answers
// are never stored.

const CORS_METHODS = 'GET, POST, PUT, DELETE';
// Idempotency-Key is not CORS-safelisted (Fetch standard, "CORS-safelisted request-header"): a page
// retrying a refund must be allowed to send it.
const CORS_REQUEST_HEADERS = 'Authorization, Content-Type, Idempotency-Key';
// Readable by the calling page: the id to quote to support, how long to wait after a 429, and
// what a 401 asks for.
const CORS_EXPOSED_HEADERS = 'X-Request-Id, Retry-After, WWW-Authenticate';
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * CORS for the origins of `CORS_ORIGINS` (none by default): a preflight from one of them is
 * answered here, 204 allowing bearer tokens, JSON bodies and idempotency keys; its other requests
 * get `Access-Control-Allow-Origin`. Any other origin gets no CORS header, so its pages cannot read
 * our answers. No cookies are involved (tokens travel in `Authorization`), so no credentials mode.
 * Every answer says `Vary: Origin`, those without CORS headers too: a cache must not hand the
 * answer to a request without Origin to a page that needs the header (Fetch standard, "CORS
 * protocol and HTTP caches").
 */
export const cors = createMiddleware<{ Bindings: Env }>(async (c, next) => {
  const origin = c.req.header('Origin');
  // Requests without Origin (apps, servers, Stripe) and those of our own pages (the storefront;
  // browsers send Origin on a same-origin POST too) need no CORS and never read the setting: a
  // bad value cannot affect them.
  const crossOrigin = origin !== undefined && origin !== new URL(c.req.url).origin;
  // Said before the setting is read: a misconfigured CORS_ORIGINS answers 500, with it too.
  c.header('Vary', 'Origin', { append: true });
  const allowed = crossOrigin && (config(c.env).optional('CORS_ORIGINS') ?? []).includes(origin);
  if (allowed && c.req.method === 'OPTIONS' && c.req.header('Access-Control-Request-Method')) {
    return c.body(null, 204, {
      'Access-Control-Allow-Origin': origin,
      'Access-Control-Allow-Methods': CORS_METHODS,
      'Access-Control-Allow-Headers': CORS_REQUEST_HEADERS,
      'Access-Control-Max-Age': String(PREFLIGHT_MAX_AGE_S),
    });
  }
  await next();
  if (!allowed) return;
  c.header('Access-Control-Allow-Origin', origin);
  c.header('Access-Control-Expose-Headers', CORS_EXPOSED_HEADERS);
});

/** Every answer: browsers must not sniff a type other than the one we declare. */
export const noSniff = createMiddleware(async (c, next) => {
  await next();
  c.header('X-Content-Type-Options', 'nosniff');
});

/** An answer that depends on who asked (a cart, an admin listing): no cache may keep it. */
export const privateResponse = createMiddleware(async (c, next) => {
  await next();
  c.header('Cache-Control', 'no-store');
});

/**
 * Headers of an HTML page: a Content-Security-Policy with no inline script (scripts, if the page
 * has any, only from this origin), exactly the page's own inline `<style>` blocks (by their
 * SHA-256, CSP Level 2 hash sources), nothing from elsewhere but `connect-src` to this origin;
 * that no page may frame it; and that the browser sends none of our URLs (they hold session and
 * cart ids) as a referrer.
 */
export function htmlPageHeaders(inline: { ownScripts?: boolean; styles?: readonly string[] }) {
  let policy: Promise<string> | undefined;
  return createMiddleware(async (c, next) => {
    await next();
    policy ??= contentSecurityPolicy(inline);
    c.header('Content-Security-Policy', await policy);
    c.header('Referrer-Policy', 'no-referrer');
  });
}

async function contentSecurityPolicy(inline: { ownScripts?: boolean; styles?: readonly string[] }): Promise<string> {
  const sources = async (blocks: readonly string[] | undefined) =>
    blocks?.length ? (await Promise.all(blocks.map(hashSource))).join(' ') : "'none'";
  return [
    "default-src 'none'",
    `script-src ${inline.ownScripts ? "'self'" : "'none'"}`,
    `style-src ${await sources(inline.styles)}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

async function hashSource(block: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(block));
  return `'sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}'`;
}
