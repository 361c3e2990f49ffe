/**
 * `npm run dev` (docs/contract.md §7): the local stack (local-stack.ts: Postgres, Stripe
 * stand-in, Pub/Sub emulator and notification relay, the Worker under `wrangler dev`), then the
 * cron ticker, "ready: URL" once the Worker answers, and "shop: URL" to open the storefront
 * signed in as a demo shopper.
 *
 * Ctrl-C / SIGTERM / SIGHUP stop the Worker first, then the services in reverse order; so does
 * wrangler, Postgres or the Pub/Sub emulator exiting, with exit code 1 (the relay is started again
 * in place, local-pubsub.ts). A crashed run's leftovers (Postgres, wrangler, the emulator, the
 * relay) are stopped by the next run.
 *
 * Environment: PORT (Worker, default 8787), PG_PORT (embedded Postgres, 54329),
 * STRIPE_STANDIN_PORT (12111), PUBSUB_EMULATOR_PORT (8085), INSPECTOR_PORT (wrangler's DevTools, 9229), RELAY_PORT (notification relay,
 * 8090), NOTIFICATION_TOPIC (notifications), and every Worker variable of docs/contract.md §1.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { cronsFromWranglerToml, startCronTicker } from './dev-cron.ts';
import { configuredVars, DEV_DATA_DIR, REPO_ROOT, readDevVars } from './dev-env.ts';
import { claimSingleRun, howItEnded } from './dev-processes.ts';
import { type LocalStack, startLocalStack } from './local-stack.ts';
import { shopSignInLink } from './token.ts';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const log = (line: string) => console.log(`[dev] ${line}`);
const RUN_LOCK_FILE = path.join(DEV_DATA_DIR, 'dev.pid');

class StopRequested extends Error {}

const startup = new AbortController();
let stack: LocalStack | undefined;
let ticker: { stop(): void } | undefined;
let finishing: Promise<never> | undefined;
let ownsRunLock = false;

function finish(code: number): Promise<never> {
  finishing ??= (async () => {
    // A stuck stop must not keep the terminal hostage.
    setTimeout(() => {
      log('could not stop everything in 30 s; exiting');
      process.exit(1);
    }, 30_000).unref();
    ticker?.stop();
    await stack?.stop();
    if (ownsRunLock) rmSync(RUN_LOCK_FILE, { force: true });
    process.exit(code);
  })();
  return finishing;
}

for (const signal of SIGNALS) {
  process.on(signal, () => {
    if (startup.signal.aborted || finishing) return log(`${signal}: already stopping`);
    log(`${signal}: stopping`);
    // During startup the stack notices at its next step and stops what it started.
    if (stack) void finish(0);
    else startup.abort(new StopRequested(signal));
  });
}

async function main(): Promise<void> {
  const port = portFromEnv('PORT', 8787);
  await claimSingleRun(RUN_LOCK_FILE, 'tools/dev-stack/src/dev.ts');
  ownsRunLock = true;
  const configured = configuredVars(await readDevVars(), process.env);
  stack = await startLocalStack({
    port,
    dataDir: DEV_DATA_DIR,
    persistentDatabase: true,
    configured,
    ports: {
      postgres: portFromEnv('PG_PORT', 54329),
      stripeStandin: portFromEnv('STRIPE_STANDIN_PORT', 12111),
      pubsubEmulator: portFromEnv('PUBSUB_EMULATOR_PORT', 8085),
      relay: portFromEnv('RELAY_PORT', 8090),
    },
    inspectorPort: portFromEnv('INSPECTOR_PORT', 9229),
    notificationTopic: process.env.NOTIFICATION_TOPIC || undefined,
    print: (line) => console.log(line),
    wranglerOutput: 'inherit',
    signal: startup.signal,
  });
  // A signal that came after the stack's last look at it.
  if (startup.signal.aborted) throw startup.signal.reason;
  // Without any one of them every request fails, or every publish: the developer restarts.
  void stack.exited.then((exit) => {
    if (finishing) return;
    log(`${exit.part} exited (${howItEnded(exit)}); stopping`);
    void finish(1);
  });
  ticker = startCronTicker(stack.workerUrl, cronsFromWranglerToml(path.join(REPO_ROOT, 'wrangler.toml')), log);
  console.log(`ready: ${stack.workerUrl}`);
  if (stack.workerVars.AUTH_JWT_SECRET) console.log(`shop: ${await shopSignInLink(stack.workerUrl, stack.workerVars)}`);
  else console.log(`shop: ${stack.workerUrl}/#token=… with a token from the provider of AUTH_JWKS_URL`);
}

function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (!raw) return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`${name} must be a port number, not ${JSON.stringify(raw)}`);
  return port;
}

main().catch(async (err: unknown) => {
  const stopped = err instanceof StopRequested;
  if (!stopped) log(`error: ${err instanceof Error ? err.message : String(err)}`);
  await finish(stopped ? 0 : 1);
});
