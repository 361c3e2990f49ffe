import { env, exports } from 'cloudflare:workers';
import { neon, neonConfig } from '@neondatabase/serverless';
import { SignJWT } from 'jose';
import { inject, vi } from 'vitest';
import { database } from '../src/db.ts';
import type { Env } from '../src/env.ts';
import { relayOutbox } from '../src/outbox.ts';

export const testEnv = env as Env &
  Required<Pick<Env, 'DATABASE_URL' | 'NEON_HTTP_ENDPOINT' | 'AUTH_JWT_SECRET' | 'ADMIN_API_KEY'>>;

/**
 * A request through the Worker's real entry point, as a client would send it. With `env`,
 * through the app with those bindings instead, waiting for its waitUntil work: tests that make
 * thousands of requests use it, as every request through the entry point nests one more proxy
 * in the test pool (@cloudflare/vitest-pool-workers createProxyPrototypeClass) until the
 * isolate's stack overflows.
 */
export function call(
  path: string,
  init: RequestInit & { token?: string; json?: unknown; env?: Env } = {},
): Promise<Response> {
  const { token, json, env: bindings, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (token) headers.set('Authorization', `Bearer ${token}`);
  if (json !== undefined) headers.set('Content-Type', 'application/json');
  const request = { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body };
  if (bindings) return callWithEnv(bindings, path, request);
  return exports.default.fetch(new Request(`http://127.0.0.1${path}`, request));
}

export async function tokenFor(
  sub: string,
  opts: { secret?: string; expiresIn?: string | number; claims?: Record<string, unknown> } = {},
): Promise<string> {
  const jwt = new SignJWT({ ...opts.claims }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt();
  if (opts.expiresIn !== null) jwt.setExpirationTime(opts.expiresIn ?? '1h');
  return jwt.sign(new TextEncoder().encode(opts.secret ?? testEnv.AUTH_JWT_SECRET));
}

/** Ids unique to one test (48 random bits), so tests never share rows and can run in any order. */
export function unique(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

/** A fresh user with a token. */
export async function newUser(): Promise<{ id: string; token: string }> {
  const id = unique('user');
  return { id, token: await tokenFor(id) };
}

/** Direct SQL for arranging and asserting database state, outside the code under test. */
export function db() {
  neonConfig.fetchEndpoint = testEnv.NEON_HTTP_ENDPOINT;
  return neon(testEnv.DATABASE_URL);
}

/**
 * Publishes what earlier test files left due in the outbox (the fuzz test requeues every failed
 * row; a file that leaves hundreds unpublished on purpose discards them, as stripe-webhook.test.ts
 * does). Files whose tests run the relay over the whole outbox (runScheduled) call it first, so
 * that no test relays a backlog within its own time (608 rows once took a test past its timeout
 * on a busy machine), or finds its own rows behind it.
 */
export async function publishOutboxBacklog(): Promise<void> {
  // Each pass claims new rows: those it could not publish wait for their backoff, or are failed.
  while ((await relayOutbox(testEnv, database(testEnv))).claimed > 0);
}

export async function createProduct(
  over: { unitAmount?: number; currency?: string; active?: boolean; name?: string } = {},
) {
  const id = unique('prod');
  const product = {
    name: over.name ?? `Product ${id}`,
    unitAmount: over.unitAmount ?? 1500,
    currency: over.currency ?? 'usd',
    active: over.active ?? true,
  };
  await db().query(
    'INSERT INTO products (id, name, description, unit_amount, currency, active) VALUES ($1, $2, $3, $4, $5, $6)',
    [id, product.name, '', product.unitAmount, product.currency, product.active],
  );
  return { id, ...product };
}

/**
 * A user's new cart holding `quantity` of each product: POST /v1/carts, then a PUT per item,
 * each of which must succeed. `env` as for `call`.
 */
export async function openCart(token: string, items: { id: string; quantity: number }[], env?: Env): Promise<string> {
  const created = await call('/v1/carts', { method: 'POST', token, env });
  if (!created.ok) throw new Error(`POST /v1/carts answered ${created.status}: ${await created.text()}`);
  const { id } = (await created.json()) as { id: string };
  for (const item of items) {
    const res = await call(`/v1/carts/${id}/items/${item.id}`, {
      method: 'PUT',
      token,
      json: { quantity: item.quantity },
      env,
    });
    if (res.status !== 200) throw new Error(`PUT item ${item.id} answered ${res.status}: ${await res.text()}`);
  }
  return id;
}

export async function problem(
  res: Response,
): Promise<{ code: string; status: number; detail: string; requestId: string }> {
  if (res.headers.get('Content-Type') !== 'application/problem+json') {
    throw new Error(
      `expected a problem+json answer, got ${res.status} ${res.headers.get('Content-Type')}: ${await res.text()}`,
    );
  }
  return res.json();
}

/** A request through the app with other bindings, e.g. an unreachable database or Stripe; waits for its waitUntil work. */
export async function callWithEnv(env: Env, path: string, init: RequestInit = {}): Promise<Response> {
  const { res, settled } = await dispatch(env, path, init);
  await settled;
  return res;
}

/** Like callWithEnv, but answers as soon as the response is there; `settled` is its waitUntil work. */
export async function dispatch(
  env: Env,
  path: string,
  init: RequestInit = {},
): Promise<{ res: Response; settled: Promise<unknown> }> {
  const { app } = await import('../src/index.ts');
  const { createExecutionContext, waitOnExecutionContext } = await import('cloudflare:test');
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`http://127.0.0.1${path}`, init), env, ctx);
  return { res, settled: waitOnExecutionContext(ctx) };
}

/**
 * Holds locks in an open transaction (tools/lock-holder.ts), so a race test can make requests
 * pile up behind them and then let them go at the same moment: the race happens every time.
 */
export async function holdLocks(statements: string[]) {
  const url = inject('lockHolderUrl');
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${url}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`lock holder ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const { id } = (await post('/hold', { statements })) as { id: string };
  return {
    /** Resolves once `count` sessions (running a query that matches `query`, ILIKE) wait behind these locks. */
    waitForWaiters: (count: number, query = '%') => post('/waiting', { id, count, query }),
    /** Runs `statements` next in the held transaction, without waiting for them: they may wait too. */
    thenRun: (more: string[]) => post('/then', { id, statements: more }),
    /** Ends the held transaction: rolled back, or with `commit`, committed (what its statements wrote lands). */
    release: (opts: { commit?: boolean } = {}) => post('/release', { id, commit: opts.commit === true }),
  };
}

/** Every JSON line the Worker writes to the console while `work` runs. */
export async function linesOf(work: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const spies = (['log', 'warn', 'error'] as const).map((method) =>
    vi.spyOn(console, method).mockImplementation((line: unknown) => void lines.push(String(line))),
  );
  try {
    await work();
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Records the URL of every fetch made from now on (the Worker's too), letting each through; `stop` ends it. */
export function recordFetches(): { urls: string[]; stop(): void } {
  const realFetch = globalThis.fetch;
  const urls: string[] = [];
  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
    urls.push(input instanceof Request ? input.url : String(input));
    return realFetch(input, init);
  });
  return { urls, stop: () => spy.mockRestore() };
}
