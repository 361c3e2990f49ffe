/**
 * The whole app on this machine, as `npm run dev` runs it and the end-to-end tests use it:
 *
 *   1. LOCAL_SERVICES in order: Postgres, migrations and demo products, the Neon HTTP proxy,
 *      Stripe (the stand-in), Pub/Sub (emulator, topics, relay, notification feed); each may
 *      provide Worker variables to the ones after it and to the Worker.
 *   2. Worker variables: defaults and service values < what the developer configured, written
 *      to an env file (mode 600) passed with --env-file, so no secret is on a command line.
 *   3. `wrangler dev` in its own process group, until GET /healthz answers 200.
 *
 * stop() stops the Worker first, then the services in reverse order. Every child process is
 * recorded in dataDir, so a later start stops what a crashed one left behind.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatEnvFile, loadDevSecrets, REPO_ROOT, type Vars, WORKER_VARIABLES, writePrivateFile } from './dev-env.ts';
import { serveQuietInspector } from './dev-inspector.ts';
import { type ChildGroup, forEachLine, ProcessGroups } from './dev-processes.ts';
import { neonProxyService, postgresService, schemaService } from './local-database.ts';
import { DEFAULT_NOTIFICATION_TOPIC, pubsubService } from './local-pubsub.ts';
import type { LocalPorts, LocalService, PartExit, ServiceContext, WrapHost } from './local-service.ts';
import { stripeService } from './local-stripe.ts';
import { assertPortFree, freePort } from './net.ts';

const LOCAL_SERVICES: LocalService[] = [postgresService, schemaService, neonProxyService, stripeService, pubsubService];

export interface LocalStackOptions {
  /** The Worker's port; 0 picks a free one. */
  port: number;
  /** Where state goes: Postgres data, secrets, the env file, the process registry. */
  dataDir: string;
  /** false: a throwaway database, removed on stop (tests). */
  persistentDatabase: boolean;
  /** The developer's settings (.dev.vars and the environment); they win over everything here. */
  configured: Vars;
  ports: LocalPorts;
  /** Default `notifications`. */
  notificationTopic?: string;
  /** Bank transfers in the Stripe stand-in settle after this long; default 3000 ms. */
  stripeAsyncDelayMs?: number;
  /** Tests only: what the Worker publishes through instead of the emulator (ServiceContext.wrapPubSubEmulatorHost). */
  wrapPubSubEmulatorHost?: WrapHost;
  /** Receives every line the stack prints (`[dev] …`, `[stripe] …`, `[relay] …`, `[notify] …`). */
  print: (line: string) => void;
  /** Port of wrangler's DevTools inspector; 0 or a taken port: a free one. */
  inspectorPort?: number;
  /** wrangler's own output: straight to this terminal (colours, hot reload), or as `[wrangler]` lines to print. */
  wranglerOutput: 'inherit' | 'print';
  /** Aborting stops the start: what was started is stopped and start rejects with the reason. */
  signal?: AbortSignal;
}

export interface LocalStack {
  /** http://127.0.0.1:PORT */
  workerUrl: string;
  /** What the Worker was given (secrets included: for tests and tools on this machine only). */
  workerVars: Vars;
  /** Where DevTools attach (chrome://inspect): the stack's port in front of wrangler's inspector. */
  inspectorPort: number;
  /** Settles when wrangler, Postgres or the Pub/Sub emulator exits before stop(), with the first one. */
  exited: Promise<PartExit>;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const log = (line: string) => options.print(`[dev] ${line}`);
  const port = options.port || (await freePort());
  const workerUrl = `http://127.0.0.1:${port}`;
  const processes = new ProcessGroups(path.join(options.dataDir, 'dev-processes.json'), log);
  await processes.stopLeftovers();
  await assertPortFree(port, 'set PORT to run the Worker on another port');

  const running: Array<{ name: string; stop(): Promise<void> }> = [];
  let stopping = false;
  let reportExit: (exit: PartExit) => void = () => {};
  const exited = new Promise<PartExit>((resolve) => {
    reportExit = resolve;
  });
  const watch = (exit: Promise<PartExit> | undefined) =>
    void exit?.then((part) => {
      if (!stopping) reportExit(part);
    });
  const stopRunning = async () => {
    stopping = true;
    while (running.length > 0) {
      const service = running.pop()!;
      try {
        await service.stop();
      } catch (err) {
        log(`could not stop ${service.name}: ${(err as Error).message}`);
      }
    }
  };
  const checkAborted = () => options.signal?.throwIfAborted();

  try {
    checkAborted();
    const secrets = await loadDevSecrets(path.join(options.dataDir, 'dev-secrets.json'), options.configured);
    const provided: Vars = {};
    const providedBy = new Map<string, string>();
    const ctx: Omit<ServiceContext, 'provided'> = {
      configured: options.configured,
      workerUrl,
      dataDir: options.dataDir,
      secrets,
      persistentDatabase: options.persistentDatabase,
      ports: options.ports,
      notificationTopic: options.notificationTopic ?? DEFAULT_NOTIFICATION_TOPIC,
      stripeAsyncDelayMs: options.stripeAsyncDelayMs ?? 3_000,
      wrapPubSubEmulatorHost: options.wrapPubSubEmulatorHost,
      processes,
      log,
      print: options.print,
    };
    for (const service of LOCAL_SERVICES) {
      const started = await service.start({ ...ctx, provided }).catch((err: unknown) => {
        throw new Error(`${service.name}: ${(err as Error).message}`, { cause: err });
      });
      if (started) running.push({ name: service.name, stop: started.stop });
      watch(started?.exited);
      checkAborted();
      for (const [name, value] of Object.entries(started?.vars ?? {})) {
        provided[name] = value;
        providedBy.set(name, service.name);
      }
    }

    // Defaults: where the Worker is (its landing pages' "Back to the shop" then leads to the
    // storefront it serves) and its own secrets; the stand-in's webhook secret comes with the stand-in.
    const defaults: Vars = {
      PUBLIC_BASE_URL: workerUrl,
      ...(secrets.AUTH_JWT_SECRET && { AUTH_JWT_SECRET: secrets.AUTH_JWT_SECRET }),
      ADMIN_API_KEY: secrets.ADMIN_API_KEY,
    };
    const workerVars: Vars = { ...defaults, ...provided, ...options.configured };
    const sourceOf = (name: string) =>
      name in options.configured
        ? process.env[name]
          ? 'environment'
          : '.dev.vars'
        : (providedBy.get(name) ?? (name === 'PUBLIC_BASE_URL' ? 'default' : 'dev-secrets.json'));
    logVariables(log, workerVars, sourceOf);

    // DevTools are told of inspectorPort, which the stack serves in front of wrangler's (dev-inspector.ts).
    const inspectorPort = await portOrFree(options.inspectorPort ?? 0);
    const wranglerInspectorPort = await freePort();
    const wrangler = await startWrangler(processes, options, port, wranglerInspectorPort, workerVars);
    running.push({ name: 'wrangler', stop: () => wrangler.stop() });
    watch(wrangler.exited.then((exit) => ({ part: 'wrangler', ...exit })));
    await waitForHealth(workerUrl, wrangler, options.signal);
    const inspector = await serveQuietInspector(inspectorPort, wranglerInspectorPort);
    running.push({ name: 'inspector', stop: inspector.stop });
    await inspector.quiet;
    log(`DevTools: chrome://inspect → 127.0.0.1:${inspectorPort}`);
    return {
      workerUrl,
      inspectorPort,
      workerVars,
      exited,
      stop: stopRunning,
    };
  } catch (err) {
    await stopRunning();
    throw err;
  }
}

async function startWrangler(
  processes: ProcessGroups,
  options: LocalStackOptions,
  port: number,
  inspectorPort: number,
  workerVars: Vars,
): Promise<ChildGroup> {
  const envFile = path.join(options.dataDir, 'worker.env');
  await writePrivateFile(envFile, formatEnvFile(workerVars));
  const wrangler = await processes.spawn({
    name: 'wrangler',
    ...wranglerDev({ port, inspectorPort, envFile, testScheduled: true }),
    cwd: REPO_ROOT,
    stdio: options.wranglerOutput === 'inherit' ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
    match: ['wrangler', 'workerd'],
  });
  const show = (line: string) => options.print(`[wrangler] ${line}`);
  forEachLine(wrangler.stdout, show);
  forEachLine(wrangler.stderr, show);
  return wrangler;
}

async function portOrFree(port: number): Promise<number> {
  if (port === 0) return freePort();
  return assertPortFree(port).then(
    () => port,
    () => freePort(),
  );
}

async function waitForHealth(workerUrl: string, wrangler: ChildGroup, signal: AbortSignal | undefined): Promise<void> {
  let exited: string | undefined;
  void wrangler.exited.then(({ code, signal: killedBy }) => {
    exited = killedBy ?? `code ${code}`;
  });
  const deadline = Date.now() + 120_000;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (exited) throw new Error(`wrangler exited (${exited}) before the Worker answered`);
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
function logVariables(log: (line: string) => void, vars: Vars, sourceOf: (name: string) => string): void {
  const set = Object.keys(vars).map((name) => `${name} (${sourceOf(name)})`);
  const unset = WORKER_VARIABLES.filter((name) => !(name in vars));
  log(`Worker variables: ${set.join(', ')}`);
  if (unset.length > 0) log(`not set here (wrangler.toml [vars] may still set some): ${unset.join(', ')}`);
}

/** wrangler's CLI script, run with this Node (`node wrangler.js dev …`). */
function wranglerBin(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
}

/** Wrangler's telemetry and Cloudflare lookups off (they would phone home, TOOLCHAIN.md). */
const WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  // --env-file is read only while this is on, and with only that file's names: a developer's
  // own settings of these must not change what the Worker sees.
  CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV: 'true',
  CLOUDFLARE_INCLUDE_PROCESS_ENV: 'false',
};

/** `node wrangler.js dev` on 127.0.0.1 with the variables of `envFile` and nothing else. */
export function wranglerDev(options: {
  port: number;
  inspectorPort: number;
  envFile: string;
  /** Another Worker's wrangler.toml; the project's by default. */
  config?: string;
  testScheduled?: boolean;
}): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  return {
    command: process.execPath,
    args: [
      wranglerBin(),
      'dev',
      ...(options.config ? ['--config', options.config] : []),
      '--ip',
      '127.0.0.1',
      '--port',
      String(options.port),
      '--inspector-port',
      String(options.inspectorPort),
      ...(options.testScheduled ? ['--test-scheduled'] : []),
      // With --env-file wrangler reads only this file, not .dev.vars.
      '--env-file',
      options.envFile,
      '--show-interactive-dev-session=false',
    ],
    env: { ...process.env, ...WRANGLER_ENV },
  };
}
