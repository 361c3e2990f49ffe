import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startStripeStandin } from '@edge-checkout/stripe-standin';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Vars } from '../src/dev-env.ts';
import type { ServiceContext, StartedService } from '../src/local-service.ts';
import { LOCAL_STRIPE_KEY, stripeService } from '../src/local-stripe.ts';
import { freePort } from '../src/net.ts';
import { serviceContext } from './helpers.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'local-stripe-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const SECRETS = {
  AUTH_JWT_SECRET: 'jwt-secret-for-tests-0123456789',
  ADMIN_API_KEY: 'admin-key-for-tests',
  STRIPE_WEBHOOK_SECRET: 'whsec_local_for_tests',
};

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const context = (configured: Vars, workerUrl: string, lines: string[]) =>
  serviceContext({ configured, workerUrl, scratch, lines, secrets: SECRETS });

async function start(ctx: ServiceContext): Promise<StartedService | undefined> {
  const started = await stripeService.start(ctx);
  if (started) cleanups.push(started.stop);
  return started;
}

/** A stand-in for the Worker's webhook endpoint that answers 200 to everything. */
async function listen(port: number, received: string[]): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(`${req.method} ${req.url}`);
      res.end('{"received":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return server;
}

describe('Stripe in the local stack', () => {
  it('without a key, runs the stand-in and gives the Worker a local key, its URL and the local webhook secret', async () => {
    const lines: string[] = [];
    const started = await start(context({}, 'http://127.0.0.1:8787', lines));
    expect(started?.vars).toEqual({
      STRIPE_SECRET_KEY: LOCAL_STRIPE_KEY,
      STRIPE_WEBHOOK_SECRET: SECRETS.STRIPE_WEBHOOK_SECRET,
      STRIPE_API_BASE: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
    });
    const webhooks = await fetch(`${started!.vars!.STRIPE_API_BASE}/_standin/webhooks`).then((res) => res.json());
    expect(webhooks).toEqual({
      url: 'http://127.0.0.1:8787/v1/webhooks/stripe',
      enabled: true,
      payload_style: 'snapshot',
    });
  });

  it("signs with the developer's first webhook secret, read as the Worker reads the list", async () => {
    const started = await start(
      context({ STRIPE_WEBHOOK_SECRET: ' , whsec_dev_own ,whsec_old' }, 'http://127.0.0.1:8787', []),
    );
    expect(started?.vars?.STRIPE_WEBHOOK_SECRET).toBe('whsec_dev_own');
  });

  it('keeps retrying a webhook until the Worker is up (the stand-in starts before wrangler)', async () => {
    const workerPort = await freePort();
    const started = await start(context({}, `http://127.0.0.1:${workerPort}`, []));
    const api = started!.vars!.STRIPE_API_BASE!;
    const stripe = (path: string, body: Record<string, string>) =>
      fetch(`${api}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${LOCAL_STRIPE_KEY}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body),
      }).then((res) => res.json() as Promise<{ id: string }>);
    const session = await stripe('/v1/checkout/sessions', {
      mode: 'payment',
      success_url: 'http://127.0.0.1/ok',
      'line_items[0][quantity]': '1',
      'line_items[0][price_data][currency]': 'usd',
      'line_items[0][price_data][unit_amount]': '2500',
      'line_items[0][price_data][product_data][name]': 'Tee',
    });
    await fetch(`${api}/_standin/sessions/${session.id}/pay`, { method: 'POST', body: '{"outcome":"paid"}' });
    type Events = { data: Array<{ delivery: { status: string; attempts: unknown[] } }> };
    const delivery = async () =>
      ((await fetch(`${api}/_standin/events`).then((res) => res.json())) as Events).data[0]?.delivery;
    await expect.poll(async () => (await delivery())?.attempts.length ?? 0).toBeGreaterThanOrEqual(2);
    expect((await delivery())?.status).toBe('retrying');

    const received: string[] = [];
    await listen(workerPort, received);
    await expect.poll(async () => (await delivery())?.status, { timeout: 8_000 }).toBe('delivered');
    expect(received).toEqual(['POST /v1/webhooks/stripe']);
  });

  it('with a real key and no STRIPE_API_BASE, starts nothing and says how webhooks reach this machine', async () => {
    const lines: string[] = [];
    expect(
      await start(context({ STRIPE_SECRET_KEY: 'sk_test_51RealAccountKey' }, 'http://127.0.0.1:8787', lines)),
    ).toBeUndefined();
    expect(lines.join('\n')).toContain('stripe listen --forward-to 127.0.0.1:8787/v1/webhooks/stripe');
    expect(lines.join('\n')).toContain('STRIPE_WEBHOOK_SECRET (not set yet');
  });

  it('with STRIPE_API_BASE, uses that server, fills in a key and secret, and says where its webhooks go', async () => {
    const other = await startStripeStandin({ port: 0, webhookSecret: 'whsec_other' });
    cleanups.push(other.close);
    const lines: string[] = [];
    const started = await start(context({ STRIPE_API_BASE: other.url }, 'http://127.0.0.1:8787', lines));
    expect(started?.vars).toEqual({
      STRIPE_SECRET_KEY: LOCAL_STRIPE_KEY,
      STRIPE_WEBHOOK_SECRET: SECRETS.STRIPE_WEBHOOK_SECRET,
    });
    expect(lines.join('\n')).toContain(`not starting the stand-in`);
    expect(lines.join('\n')).toContain(
      'sends webhooks to nowhere; for this Worker start it with STRIPE_WEBHOOK_URL=http://127.0.0.1:8787/v1/webhooks/stripe',
    );
  });

  it('names the way out when its port is taken', async () => {
    const port = await freePort();
    await listen(port, []);
    const ctx = context({}, 'http://127.0.0.1:8787', []);
    await expect(start({ ...ctx, ports: { ...ctx.ports, stripeStandin: port } })).rejects.toThrow(
      `port ${port} on 127.0.0.1 is already in use by another process; if it is a stand-in you started (npm run stripe:standin), run with STRIPE_API_BASE=http://127.0.0.1:${port}`,
    );
  });
});
