// The hardening as `npm run dev` serves it: the Worker under `wrangler dev`, with wrangler.toml's
// `[[ratelimits]]` (which wrangler dev simulates, as Cloudflare counts them) and `[assets]` in
// front of it. The Worker tests check each limit and header in the test pool; this checks that
// wrangler dev counts the bindings too, and that the Worker's own paths keep their headers
// behind the assets.
import { request } from 'node:http';
import { createDevToken } from '@edge-checkout/dev-stack/token';
import { inOneWindow } from '@edge-checkout/test-support/rate-limit-window';
import { useLocalStack } from '@edge-checkout/test-support/stack';
import { describe, expect, it, vi } from 'vitest';

const stack = useLocalStack();
// The count may first wait up to half a minute for a window of its own.
vi.setConfig({ testTimeout: 90_000 });
// wrangler.toml's WRITE_RATE_LIMIT (README, "Rate limits").
const WRITES_PER_MINUTE = 300;

describe('under wrangler dev', () => {
  it(`counts a user's writes: ${WRITES_PER_MINUTE} a minute, then 429 rate_limited with Retry-After`, async () => {
    const token = await createDevToken({
      userId: `e2e-limits-${crypto.randomUUID().slice(0, 8)}`,
      secret: stack.vars.AUTH_JWT_SECRET!,
      ttlSeconds: 600,
    });
    // A change the Worker refuses (a fractional quantity) still counts: the ceiling is on what
    // a client sends, and these need no cart.
    const put = () =>
      fetch(`${stack.workerUrl}/v1/carts/${crypto.randomUUID()}/items/tshirt-classic`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: '{"quantity":0.5}',
      });
    await inOneWindow(async () => {
      const statuses: number[] = [];
      for (let i = 0; i < WRITES_PER_MINUTE; i++) statuses.push((await put()).status);
      expect(new Set(statuses)).toEqual(new Set([400]));

      const limited = await put();
      expect(limited.status).toBe(429);
      expect(limited.headers.get('Retry-After')).toBe('60');
      expect(limited.headers.get('Content-Type')).toBe('application/problem+json');
      expect(((await limited.json()) as { code: string }).code).toBe('rate_limited');
    });
    // Time for a second count from a fresh minute, on a machine so slow that the minute cut the first.
  }, 200_000);

  it('does not refuse a GET for a large body, which no route reads (fetch cannot send one, so the Worker tests cannot)', async () => {
    const body = Buffer.alloc(2 * 1024 * 1024, 'x');
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(`${stack.workerUrl}/v1/products`, {
        method: 'GET',
        headers: { 'Content-Length': body.length },
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(status, text).toBe(200);
    expect((JSON.parse(text) as { products: unknown[] }).products.length).toBeGreaterThan(0);
  });

  it('answers 413 to a body over 1 MiB, chunked or not, and the next request is served (wrangler dev reuses its connection to the Worker)', async () => {
    const token = await createDevToken({
      userId: `e2e-big-${crypto.randomUUID().slice(0, 8)}`,
      secret: stack.vars.AUTH_JWT_SECRET!,
      ttlSeconds: 600,
    });
    const body = Buffer.alloc(1024 * 1024 + 64 * 1024, 'a');
    const targets: { method: string; path: string; headers: Record<string, string> }[] = [
      { method: 'POST', path: '/v1/webhooks/stripe', headers: { 'Stripe-Signature': 't=1,v1=00' } },
      {
        method: 'PUT',
        path: `/v1/carts/${crypto.randomUUID()}/items/tshirt-classic`,
        headers: { Authorization: `Bearer ${token}` },
      },
    ];
    for (const { method, path, headers } of targets) {
      for (const chunked of [true, false]) {
        const what = `${method} ${path} ${chunked ? 'chunked' : 'with Content-Length'}`;
        const refused = await sendBody(`${stack.workerUrl}${path}`, method, headers, body, chunked);
        expect(refused.status, `${what}: ${refused.text}`).toBe(413);
        expect(JSON.parse(refused.text), what).toMatchObject({ code: 'payload_too_large' });
        // Another request, on another connection to wrangler dev: its proxy sent it to the Worker on
        // the connection the half-read body had cost, and answered 503 "Your worker restarted
        // mid-request".
        const next = await fetch(`${stack.workerUrl}/v1/carts`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}` },
        });
        expect([200, 201], `after ${what}: ${next.status} ${await next.text()}`).toContain(next.status);
      }
    }
  });

  it('takes a bearer token with whitespace after it, which is not part of the header value (fetch trims it, so the Worker tests cannot send it)', async () => {
    const token = await createDevToken({
      userId: `e2e-space-${crypto.randomUUID().slice(0, 8)}`,
      secret: stack.vars.AUTH_JWT_SECRET!,
      ttlSeconds: 600,
    });
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${stack.workerUrl}/v1/carts`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}   ` },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(201);
  });

  it("keeps the Worker's headers on /docs and a landing page, behind the static assets", async () => {
    for (const path of ['/docs', `/checkout/cancel?cart_id=${crypto.randomUUID()}`]) {
      const res = await fetch(`${stack.workerUrl}${path}`);
      expect(res.headers.get('Content-Type'), path).toMatch(/^text\/html/);
      expect(res.headers.get('Content-Security-Policy'), path).toContain("frame-ancestors 'none'");
      expect(res.headers.get('Content-Security-Policy'), path).not.toContain("'unsafe-inline'");
      expect(res.headers.get('X-Content-Type-Options'), path).toBe('nosniff');
      expect(res.headers.get('Referrer-Policy'), path).toBe('no-referrer');
    }
  });
});

/**
 * Sends `body` with Node's own client, so that the test chooses the framing: in 64 KiB writes without a
 * length (Transfer-Encoding: chunked), or with its Content-Length. The answer may come before all
 * of it is sent; a write refused after that is not the test's concern.
 */
function sendBody(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer,
  chunked: boolean,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method,
      headers: {
        ...headers,
        'Content-Type': 'application/json',
        Connection: 'close',
        ...(chunked ? {} : { 'Content-Length': body.length }),
      },
    });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (!chunked) return void req.end(body);
    for (let at = 0; at < body.length; at += 64 * 1024) req.write(body.subarray(at, at + 64 * 1024));
    req.end();
  });
}
