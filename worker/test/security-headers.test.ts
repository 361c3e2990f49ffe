import { describe, expect, it } from 'vitest';
import { app } from '../src/index.ts';
import { call, newUser, problem, testEnv } from './helpers.ts';
import { checkedOutCart } from './stripe-helpers.ts';

const WEB_APP = 'https://shop.example';
const corsEnv = { ...testEnv, CORS_ORIGINS: `${WEB_APP}, http://127.0.0.1:5173` };

function fromBrowser(path: string, origin: string, init: RequestInit = {}) {
  const headers = new Headers(init.headers);
  headers.set('Origin', origin);
  return app.request(path, { ...init, headers }, corsEnv);
}

function corsHeaders(res: Response): string[] {
  return [...res.headers.keys()].filter((name) => name.startsWith('access-control-'));
}

describe('CORS', () => {
  it('answers a preflight from an allowed origin, allowing bearer tokens, JSON bodies and idempotency keys', async () => {
    // An admin page refunding with Idempotency-Key (contract §9): the browser sends it only if
    // the preflight allows it, as it is not a CORS-safelisted header.
    const res = await fromBrowser(`/v1/admin/carts/${crypto.randomUUID()}/refunds`, WEB_APP, {
      method: 'OPTIONS',
      headers: {
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization,content-type,idempotency-key',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe(WEB_APP);
    expect(res.headers.get('Access-Control-Allow-Methods')).toContain('POST');
    const allowed = res.headers.get('Access-Control-Allow-Headers')!.toLowerCase().split(/,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key']));
    expect(res.headers.get('Access-Control-Allow-Credentials')).toBeNull();
  });

  it("serves a hybrid app's iOS web view, whose origin is the app's own scheme, next to a web origin", async () => {
    const env = { ...testEnv, CORS_ORIGINS: `${WEB_APP}, capacitor://localhost` };
    for (const origin of [WEB_APP, 'capacitor://localhost']) {
      const res = await app.request('/v1/products', { headers: { Origin: origin } }, env);
      expect(res.status).toBe(200);
      expect(res.headers.get('Access-Control-Allow-Origin')).toBe(origin);
    }
  });

  it('lets an allowed origin read answers and errors, with the request id and Retry-After', async () => {
    const user = await newUser();
    const ok = await fromBrowser('/v1/carts', WEB_APP, {
      method: 'POST',
      headers: { Authorization: `Bearer ${user.token}` },
    });
    expect(ok.status).toBe(201);
    expect(ok.headers.get('Access-Control-Allow-Origin')).toBe(WEB_APP);
    expect(ok.headers.get('Access-Control-Expose-Headers')).toContain('X-Request-Id');
    expect(ok.headers.get('Vary')).toBe('Origin');

    const refused = await fromBrowser('/v1/carts', 'http://127.0.0.1:5173', { method: 'POST' });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('Access-Control-Allow-Origin')).toBe('http://127.0.0.1:5173');
  });

  it('gives other origins no CORS header at all, preflight or not', async () => {
    for (const origin of ['https://evil.example', 'https://shop.example.evil.example', 'null', `${WEB_APP}/`]) {
      const preflight = await fromBrowser('/v1/carts', origin, {
        method: 'OPTIONS',
        headers: { 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' },
      });
      expect(preflight.status).toBeGreaterThanOrEqual(400);
      expect(corsHeaders(preflight)).toEqual([]);
      const get = await fromBrowser('/v1/products', origin);
      expect(get.status).toBe(200);
      expect(corsHeaders(get)).toEqual([]);
    }
  });

  it('allows no origin by default', async () => {
    const res = await app.request('/v1/products', { headers: { Origin: WEB_APP } }, testEnv);
    expect(res.status).toBe(200);
    expect(corsHeaders(res)).toEqual([]);
  });

  it('says Vary: Origin on answers without CORS headers too, so no cache hands them to an allowed page', async () => {
    for (const headers of [{}, { Origin: 'https://evil.example' }] as Record<string, string>[]) {
      const res = await app.request('/v1/products', { headers }, corsEnv);
      expect(res.status).toBe(200);
      expect(corsHeaders(res)).toEqual([]);
      expect(res.headers.get('Vary')).toBe('Origin');
    }
  });

  it('keeps serving apps (no Origin) when CORS_ORIGINS is invalid, and names it to browsers', async () => {
    const env = { ...testEnv, CORS_ORIGINS: 'https://shop.example/app' };
    expect((await app.request('/v1/products', {}, env)).status).toBe(200);
    const res = await app.request('/v1/products', { headers: { Origin: 'http://shop.example' } }, env);
    expect(res.status).toBe(500);
    expect(res.headers.get('Vary')).toBe('Origin');
    expect((await problem(res)).detail).toContain('CORS_ORIGINS');
  });

  it('keeps serving its own storefront when CORS_ORIGINS is invalid: a same-origin POST carries Origin too', async () => {
    const env = { ...testEnv, CORS_ORIGINS: 'https://shop.example/app' };
    const user = await newUser();
    const res = await app.request(
      'https://checkout.example/v1/carts',
      { method: 'POST', headers: { Origin: 'https://checkout.example', Authorization: `Bearer ${user.token}` } },
      env,
    );
    expect(res.status).toBe(201);
    expect(corsHeaders(res)).toEqual([]);
  });
});

describe('headers of private answers', () => {
  it('marks carts and admin answers no-store, errors included, and public ones not', async () => {
    const user = await newUser();
    const cart = await call('/v1/carts', { method: 'POST', token: user.token });
    expect(cart.headers.get('Cache-Control')).toBe('no-store');
    const list = await call('/v1/carts', { token: user.token });
    expect(list.headers.get('Cache-Control')).toBe('no-store');
    const missing = await call(`/v1/carts/${crypto.randomUUID()}`, { token: user.token });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('Cache-Control')).toBe('no-store');
    const admin = await call('/v1/admin/outbox', { token: testEnv.ADMIN_API_KEY });
    expect(admin.status).toBe(200);
    expect(admin.headers.get('Cache-Control')).toBe('no-store');
    // Refused before anyone is known: still an answer about who asked.
    const anonymous = await call('/v1/carts');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('Cache-Control')).toBe('no-store');
    const wrongKey = await call('/v1/admin/outbox', { token: 'not-the-admin-key' });
    expect(wrongKey.status).toBe(401);
    expect(wrongKey.headers.get('Cache-Control')).toBe('no-store');

    expect((await call('/v1/products')).headers.get('Cache-Control')).toBeNull();
  });

  it('tells browsers not to sniff any answer', async () => {
    for (const path of ['/v1/products', '/openapi.json', '/v1/nothing-here', '/docs']) {
      expect((await call(path)).headers.get('X-Content-Type-Options')).toBe('nosniff');
    }
  });
});

/** The inline blocks of a page, and the hash sources its CSP names for them. */
async function inlineBlocks(html: string, tag: 'script' | 'style'): Promise<string[]> {
  const blocks = [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]!);
  return Promise.all(
    blocks.map(async (block) => {
      const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(block));
      return `'sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}'`;
    }),
  );
}

function directives(csp: string): Record<string, string[]> {
  return Object.fromEntries(
    csp.split(';').map((d) => {
      const [name, ...values] = d.trim().split(/\s+/);
      return [name!, values];
    }),
  );
}

describe('HTML pages', () => {
  it('/docs: a CSP without inline script (its script comes from /docs.js), exactly its own style, no framing, no referrer', async () => {
    const res = await call('/docs');
    const html = await res.text();
    const csp = directives(res.headers.get('Content-Security-Policy')!);
    expect(await inlineBlocks(html, 'script')).toEqual([]);
    expect(html).toContain('<script src="/docs.js"></script>');
    expect(csp['script-src']).toEqual(["'self'"]);
    expect(csp['style-src']).toEqual(await inlineBlocks(html, 'style'));
    expect(csp['script-src']).not.toContain("'unsafe-inline'");
    expect(csp['default-src']).toEqual(["'none'"]);
    expect(csp['connect-src']).toEqual(["'self'"]); // it fetches /openapi.json
    expect(csp['frame-ancestors']).toEqual(["'none'"]);
    expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
    expect(res.headers.get('Referrer-Policy')).toBe('no-referrer');
  });

  it('landing pages and their error pages: no script at all, their own style, no framing', async () => {
    const state = await checkedOutCart();
    const pages = [
      await call(`/checkout/success?session_id=${state.sessionId}`),
      await call(`/checkout/cancel?cart_id=${state.cartId}`),
      await call(`/checkout/cancel?cart_id=${crypto.randomUUID()}`),
      await call('/checkout/success?session_id={CHECKOUT_SESSION_ID}'),
    ];
    expect(pages.map((p) => p.status)).toEqual([200, 200, 404, 400]);
    for (const res of pages) {
      const html = await res.text();
      expect(html).not.toContain('<script');
      const csp = directives(res.headers.get('Content-Security-Policy')!);
      expect(csp['script-src']).toEqual(["'none'"]);
      expect(csp['style-src']).toEqual(await inlineBlocks(html, 'style'));
      expect(csp['frame-ancestors']).toEqual(["'none'"]);
      expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
      expect(res.headers.get('Referrer-Policy')).toBe('no-referrer');
    }
  });
});
