import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { apiRoutes } from './api.ts';
import { controlRoutes } from './controls.ts';
import { unrecognizedUrl } from './errors.ts';
import { EventLog } from './events.ts';
import { Faults } from './faults.ts';
import { hostedPageRoutes } from './hosted-page.ts';
import { IdempotencyStore } from './idempotency.ts';
import { Payments } from './payments.ts';
import { WebhookDelivery } from './webhooks.ts';

// The local Stripe stand-in: Stripe's API for Checkout (/v1, and /v2 for thin events), the hosted payment page (/c/pay)
// and test controls (/_standin), on 127.0.0.1 only, with all state in memory. See README.md.

export interface StripeStandinOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Where events are POSTed; without it events are only recorded (GET /v1/events). */
  webhookUrl?: string;
  /** The `whsec_…` secret webhooks are signed with. */
  webhookSecret: string;
  /** When set, the only API key accepted; otherwise any `sk_test_…` / `rk_test_…` key is. */
  apiKey?: string;
  /** How long a delayed (bank transfer) payment takes to succeed or fail; default 3000 ms.
   * `Infinity` waits for POST /_standin/sessions/:id/async/{succeed|fail}. */
  asyncDelayMs?: number;
  /** Waits between webhook attempts to a failing endpoint; the last repeats until delivered.
   * Default 0.5 s, 1 s, 2 s, 5 s, 10 s, then every 30 s. */
  webhookRetryDelaysMs?: readonly number[];
  log?: (line: string) => void;
}

export interface StripeStandin {
  /** http://127.0.0.1:PORT, the value for STRIPE_API_BASE. */
  url: string;
  port: number;
  /** Stops timers, webhook retries and requests held by faults, then the server. */
  close(): Promise<void>;
}

const DEFAULT_RETRY_DELAYS_MS = [500, 1_000, 2_000, 5_000, 10_000, 30_000];

export async function startStripeStandin(options: StripeStandinOptions): Promise<StripeStandin> {
  const log = options.log ?? (() => {});
  let origin = '';
  const events = new EventLog();
  const webhooks = new WebhookDelivery({
    url: options.webhookUrl ?? null,
    enabled: true,
    payloadStyle: 'snapshot',
    secret: options.webhookSecret,
    retryDelaysMs: options.webhookRetryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS,
    log,
  });
  const payments = new Payments({
    pageUrl: (id) => `${origin}/c/pay/${id}`,
    asyncDelayMs: options.asyncDelayMs ?? 3_000,
    emit: (event, sessionId) => {
      webhooks.send(events.add(event, sessionId));
    },
    log,
  });

  const faults = new Faults();

  const app = new Hono();
  app.route(
    '/',
    apiRoutes({
      payments,
      events,
      delivered: (eventId) => ['delivered', 'no_endpoint'].includes(webhooks.delivery(eventId).status),
      idempotency: new IdempotencyStore(),
      faults,
      apiKey: options.apiKey,
      log,
    }),
  );
  app.route('/c/pay', hostedPageRoutes(payments));
  app.route('/_standin', controlRoutes({ payments, events, webhooks, faults }));
  app.notFound((c) => {
    if (!/^\/v[12]\//.test(c.req.path)) return c.text('Not found', 404);
    const error = unrecognizedUrl(c.req.method, c.req.path);
    return c.json(error.toJSON(), error.status);
  });

  const server = createServer(getRequestListener(app.fetch));
  // Longer than workerd's 5 s idle limit, as the local SQL proxy does (neon-http-proxy.ts): the
  // Worker's refunds go out without retries, so a request lost on a closing connection would fail.
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;
  log(`listening on ${origin}`);

  return {
    url: origin,
    port,
    close: async () => {
      payments.close();
      webhooks.close();
      faults.close();
      await new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive connections of clients would hold close() open.
        server.closeAllConnections();
      });
    },
  };
}
