import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../tools/migrate.ts';
import { startNeonHttpProxy } from '../../tools/neon-http-proxy.ts';
import { startPostgres } from '../../tools/postgres.ts';
import { startStripeStandin } from '../../tools/stripe-standin/server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    neonHttpEndpoint: string;
    stripeApiBase: string;
  }
}

const STRIPE_WEBHOOK_SECRET = 'whsec_worker_tests_0123456789';

// Runs in Node, once for the Worker test project: a throwaway Postgres with every migration,
// and the local Stripe stand-in. The stand-in sends no webhooks here: tests deliver signed
// events themselves, in the orders they want.
export default async function setup({ provide }: TestProject) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'edge-checkout-test-pg-'));
  const postgres = await startPostgres({ dataDir, persistent: false });
  await migrate(postgres.url, { dir: path.resolve(import.meta.dirname, '../../migrations') });
  const proxy = await startNeonHttpProxy({ databaseUrl: postgres.url });
  const stripe = await startStripeStandin({ port: 0, webhookSecret: STRIPE_WEBHOOK_SECRET });
  provide('databaseUrl', postgres.url);
  provide('stripeApiBase', stripe.url);
  provide('neonHttpEndpoint', proxy.endpoint);
  return async () => {
    await stripe.close();
    await proxy.close();
    await postgres.stop();
  };
}
