import { randomId } from './ids.ts';
import { startStripeStandin } from './server.ts';

// `npm run stripe:standin`: the stand-in on its own, configured by the environment.
//   STRIPE_STANDIN_PORT            default 12111 (the port Stripe's own API mock uses)
//   STRIPE_WEBHOOK_URL             where to POST events (e.g. http://127.0.0.1:8787/v1/webhooks/stripe)
//   STRIPE_WEBHOOK_SECRET          signing secret; a fresh one is made and printed when unset,
//                                  as `stripe listen` does
//   STRIPE_STANDIN_ASYNC_DELAY_MS  delay of a bank transfer's outcome, default 3000

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return value;
}

const log = (line: string) => console.log(`[stripe-standin] ${line}`);
// The first of a list (as the Worker's may be, during a rotation), read as the Worker reads it:
// trimmed, blank entries skipped, so that it signs what the Worker checks.
const configuredSecret = process.env.STRIPE_WEBHOOK_SECRET?.split(',')
  .map((secret) => secret.trim())
  .find(Boolean);
const webhookSecret = configuredSecret || randomId('whsec_', 32);
const port = numberFromEnv('STRIPE_STANDIN_PORT', 12111);

try {
  const standin = await startStripeStandin({
    port,
    webhookUrl: process.env.STRIPE_WEBHOOK_URL || undefined,
    webhookSecret,
    asyncDelayMs: numberFromEnv('STRIPE_STANDIN_ASYNC_DELAY_MS', 3_000),
    log,
  });
  if (!configuredSecret) log(`webhook signing secret: ${webhookSecret}`);
  log(
    process.env.STRIPE_WEBHOOK_URL
      ? `webhooks to ${process.env.STRIPE_WEBHOOK_URL}`
      : 'no STRIPE_WEBHOOK_URL: events are recorded, not sent',
  );
  log(`ready: ${standin.url} (STRIPE_API_BASE=${standin.url})`);

  // For every signal, not once: Ctrl-C reaches it twice under npm (the terminal's and npm's).
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      void standin.close().then(() => process.exit(0));
    });
  }
} catch (error) {
  const inUse = error instanceof Error && 'code' in error && error.code === 'EADDRINUSE';
  console.error(
    inUse
      ? `[stripe-standin] port ${port} is in use; set STRIPE_STANDIN_PORT to another port`
      : `[stripe-standin] could not start: ${error instanceof Error ? error.message : String(error)}`,
  );
  process.exit(1);
}
