import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startNeonHttpProxy } from '@edge-checkout/dev-stack/neon-http-proxy';
import { startPostgres } from '@edge-checkout/dev-stack/postgres';
import { createPubSubAdmin } from '@edge-checkout/dev-stack/pubsub-admin';
import { startPubSubEmulator } from '@edge-checkout/dev-stack/pubsub-emulator';
import { migrate } from '@edge-checkout/migrate';
import { buildStorefront } from '@edge-checkout/storefront/build';
import { startStripeStandin } from '@edge-checkout/stripe-standin';
import { startLockHolder } from '@edge-checkout/test-support/lock-holder';
import { startPubSubFaultProxy } from '@edge-checkout/test-support/pubsub-fault-proxy';
import { pubsubEmulatorMissing, skipWithout } from '@edge-checkout/test-support/requirements';
import type { TestProject } from 'vitest/node';
import { TEST_BINDINGS } from './test-bindings.ts';

const { STRIPE_WEBHOOK_SECRET, GCP_PROJECT_ID: PUBSUB_PROJECT, PUBSUB_TOPIC } = TEST_BINDINGS;

// Runs in Node, once for the Worker test project: a throwaway Postgres with every migration,
// and the local Stripe stand-in. The stand-in sends no webhooks here: tests deliver signed
// events themselves, in the orders they want. Google's Pub/Sub emulator, where the machine has
// it, with the payment-events topic.
export default async function setup({ provide }: TestProject) {
  // Fails the run under CI=true; elsewhere the tests that publish skip, and say so.
  skipWithout("Google's Pub/Sub emulator (the Worker tests that publish)", pubsubEmulatorMissing());
  // The Workers test pool reads wrangler.toml, whose [assets] directory must exist: build the
  // storefront as `wrangler dev` would (a fresh clone has none).
  await buildStorefront();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'edge-checkout-test-pg-'));
  // The emulator (a JVM) takes seconds to start: it boots while Postgres is set up.
  const pubsubStarting = startPubSubEmulator({ projectId: PUBSUB_PROJECT });
  const postgres = await startPostgres({ dataDir, persistent: false });
  await migrate(postgres.url, { dir: path.resolve(import.meta.dirname, '../../migrations') });
  // Race tests hold a lock while 20 requests pile up behind it: each needs its own connection.
  const proxy = await startNeonHttpProxy({ databaseUrl: postgres.url, maxConnections: 32 });
  const lockHolder = await startLockHolder(postgres.url);
  const stripe = await startStripeStandin({ port: 0, webhookSecret: STRIPE_WEBHOOK_SECRET });
  // Faults on endpoints every test uses (creating sessions) go to a stand-in of their own, so
  // they cannot hit another test file's requests.
  const faultyStripe = await startStripeStandin({ port: 0, webhookSecret: STRIPE_WEBHOOK_SECRET });
  // An account whose webhook endpoint receives nothing: every event it makes is undelivered,
  // for the scheduled job to recover (GET /v1/events?delivery_success=false).
  const lostEventsStripe = await startStripeStandin({
    port: 0,
    webhookSecret: STRIPE_WEBHOOK_SECRET,
    webhookUrl: 'http://127.0.0.1:9/unreachable',
  });
  await fetch(`${lostEventsStripe.url}/_standin/webhooks`, {
    method: 'POST',
    body: JSON.stringify({ enabled: false }),
  });
  const pubsub = await pubsubStarting;
  if (pubsub) await createPubSubAdmin({ host: pubsub.host, projectId: PUBSUB_PROJECT }).createTopic(PUBSUB_TOPIC);
  const faultProxy = pubsub ? await startPubSubFaultProxy({ target: pubsub.host }) : null;
  provide('pubsubEmulatorHost', pubsub?.host ?? '');
  provide('pubsubFaultProxyHost', faultProxy?.host ?? '');
  provide('databaseUrl', postgres.url);
  provide('stripeApiBase', stripe.url);
  provide('faultyStripeApiBase', faultyStripe.url);
  provide('lostEventsStripeApiBase', lostEventsStripe.url);
  provide('neonHttpEndpoint', proxy.endpoint);
  provide('lockHolderUrl', lockHolder.url);
  provide('fuzz', {
    requests: Number(process.env.FUZZ_REQUESTS) || 3000,
    seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined,
  });
  return async () => {
    await faultProxy?.close();
    await pubsub?.stop();
    await lostEventsStripe.close();
    await faultyStripe.close();
    await stripe.close();
    await lockHolder.close();
    await proxy.close();
    await postgres.stop();
  };
}
