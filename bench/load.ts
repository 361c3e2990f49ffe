/**
 * `npm run bench`: Stripe webhooks under load (issue 8, "at least half the speed of a verify-only
 * Worker"), on the local stack as `npm run dev` runs it, against a verify-only Worker measured in
 * the same run.
 *
 *   npm run bench -- [--n 1000] [--duplicates 0.2] [--connections 20] [--pubsub on|off|none]
 *                    [--baseline on|off] [--baseline-log on|off] [--relay on|off] [--profile FILE.cpuprofile]
 *                    [--profile-target ours|baseline] [--plans local|neon]
 *                    [--seed N] [--quiet-wait 120] [--save on|off]
 *
 * 1. Starts the local stack (tools/dev-stack/src/local-stack.ts, in a temp folder, free ports, throwaway
 *    database) in a child Node process (bench/stack-host.ts), and the verify-only Worker
 *    (bench/verify-only/) under its own `wrangler dev`.
 * 2. Prepares N pending checkouts through the public API (POST /v1/carts, PUT an item, POST
 *    checkout), pays each at the Stripe stand-in with its webhooks switched off, and takes the
 *    stand-in's own checkout.session.completed events: the bench sends them itself, signed with
 *    Stripe's library and the Worker's secret, plus `duplicates` × N re-sent ones, shuffled.
 * 3. Fires that list with autocannon over C connections at POST /v1/webhooks/stripe: first at
 *    the verify-only Worker (while the stack is idle), then at ours; the same events (each run
 *    signs them afresh), the same connections, each request once.
 * 4. Checks: every cart paid (SQL), each payment published exactly once (a pull subscription made
 *    before the load; counted per cart and per eventId attribute), the outbox.
 * 5. Prints one line of JSON and one line for people on stdout (progress goes to stderr), and
 *    writes the JSON to bench/results/<date>-<commit>-<pubsub>[-norelay][-neonplans].json.
 *
 * CPU time per process comes from /proc/<pid>/stat (utime+stime, plus the cutime+cstime of
 * children that exited and were reaped), read just before and just after each load window.
 *
 * --pubsub on:   Google's emulator, topics and the notification relay, as `npm run dev` starts them.
 * --pubsub off:  Pub/Sub configured but unreachable (PUBSUB_EMULATOR_HOST is a closed port on
 *                127.0.0.1): every webhook writes its outbox row, then the publish fails (connection
 *                refused) and the row waits for the cron. This is the "unreachable" case of the issue.
 * --pubsub none: no Pub/Sub settings for the Worker (no GCP_PROJECT_ID/PUBSUB_TOPIC): rows just wait.
 * --relay off:   with --pubsub on, the notification relay's push subscription is deleted before
 *                the load, so the emulator only takes the Worker's publishes (as the issue measured
 *                its CPU: "the emulator without the push relay").
 * --plans neon:  Postgres plans every statement afresh with its values, as it does behind Neon's
 *                proxy, which sends each statement unnamed; the local proxy prepares them by name,
 *                and Postgres then runs most on a generic plan made once (`--plans local`, the
 *                default, as `npm run dev` runs). The Postgres figure then includes the planning
 *                Neon's compute pays for every webhook.
 */

import { execFileSync, fork, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_GCP_PROJECT_ID } from '@edge-checkout/dev-stack/local-pubsub';
import { wranglerDev } from '@edge-checkout/dev-stack/local-stack';
import { freePort } from '@edge-checkout/dev-stack/net';
import { postmasterPid } from '@edge-checkout/dev-stack/postgres';
import { createPubSubAdmin, type PubSubAdmin, type ReceivedMessage } from '@edge-checkout/dev-stack/pubsub-admin';
import { createDevToken } from '@edge-checkout/dev-stack/token';
import { PAYMENT_EVENTS_TOPIC } from '@edge-checkout/pubsub/names';
import { StandinControls } from '@edge-checkout/test-support/standin';
import autocannon, { type AutocannonResult } from 'autocannon';
import pg from 'pg';
import Stripe from 'stripe';
import { debuggerUrlAt, findInspector, Profiler, type ProfileSummary, summariseProfile } from './lib/cpu-profile.ts';
import {
  CLK_TCK,
  type CpuWindow,
  cpuWindow,
  javaThreads,
  processGroup,
  processTree,
  singleProcess,
  snapshot,
  type Unit,
  waitForQuiet,
  wranglerUnits,
} from './lib/proc-cpu.ts';
import type { HostMessage, LineCounts } from './stack-host.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Options

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    duplicates: { type: 'string', default: '0.2' },
    connections: { type: 'string', default: '20' },
    pubsub: { type: 'string', default: 'on' },
    baseline: { type: 'string', default: 'on' },
    'baseline-log': { type: 'string', default: 'off' },
    relay: { type: 'string', default: 'on' },
    warmup: { type: 'string', default: '200' },
    profile: { type: 'string' },
    'profile-target': { type: 'string', default: 'ours' },
    'profile-interval-us': { type: 'string', default: '250' },
    seed: { type: 'string' },
    timeout: { type: 'string', default: '30' },
    'prepare-concurrency': { type: 'string', default: '8' },
    'quiet-wait': { type: 'string', default: '120' },
    save: { type: 'string', default: 'on' },
    plans: { type: 'string', default: 'local' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (args.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]);
  process.exit(0);
}

const options = {
  n: positiveInt('n', args.n!),
  duplicates: fraction('duplicates', args.duplicates!),
  connections: positiveInt('connections', args.connections!),
  pubsub: oneOf('pubsub', args.pubsub!, ['on', 'off', 'none'] as const),
  baseline: oneOf('baseline', args.baseline!, ['on', 'off'] as const),
  baselineLog: oneOf('baseline-log', args['baseline-log']!, ['on', 'off'] as const) === 'on',
  relay: oneOf('relay', args.relay!, ['on', 'off'] as const),
  warmup: positiveInt('warmup', args.warmup!, { zeroAllowed: true }),
  profile: args.profile ? path.resolve(args.profile) : null,
  profileTarget: oneOf('profile-target', args['profile-target']!, ['ours', 'baseline'] as const),
  profileIntervalUs: positiveInt('profile-interval-us', args['profile-interval-us']!),
  seed: args.seed === undefined ? randomBytes(4).readUInt32LE() : positiveInt('seed', args.seed, { zeroAllowed: true }),
  timeoutS: positiveInt('timeout', args.timeout!),
  prepareConcurrency: positiveInt('prepare-concurrency', args['prepare-concurrency']!),
  quietWaitS: positiveInt('quiet-wait', args['quiet-wait']!),
  save: oneOf('save', args.save!, ['on', 'off'] as const) === 'on',
  plans: oneOf('plans', args.plans!, ['local', 'neon'] as const),
};

function positiveInt(name: string, text: string, opts: { zeroAllowed?: boolean } = {}): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || (value === 0 && !opts.zeroAllowed))
    fail(`--${name} must be a positive integer${opts.zeroAllowed ? ' or 0' : ''}, not ${text}`);
  return value;
}
function fraction(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || value > 10)
    fail(`--${name} must be a number from 0 to 10 (0.2 = 20 %), not ${text}`);
  return value;
}
function oneOf<const T extends readonly string[]>(name: string, text: string, allowed: T): T[number] {
  if (!allowed.includes(text)) fail(`--${name} must be one of ${allowed.join(', ')}, not ${text}`);
  return text as T[number];
}
function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

const progress = (line: string) => console.error(`[bench] ${line}`);

// ---------------------------------------------------------------------------------------------
// The stack, the baseline Worker

interface Stack {
  workerUrl: string;
  vars: Record<string, string>;
  hostPid: number;
  /** The stack's DevTools port, in front of wrangler's inspector (which the stack holds otherwise). */
  inspectorPort: number;
  /** What the stack printed so far, by kind. */
  counts(): Promise<LineCounts>;
  stop(): Promise<void>;
}

async function startStack(dataDir: string, configured: Record<string, string>): Promise<Stack> {
  const tsx = pathToFileURL(require.resolve('tsx')).href;
  const child = fork(path.join(REPO_ROOT, 'bench', 'stack-host.ts'), [JSON.stringify({ dataDir, configured })], {
    cwd: REPO_ROOT,
    execArgv: ['--import', tsx],
    // Read by node-postgres for each connection it makes (libpq's PGOPTIONS), the SQL proxy's pool
    // among them. plan_cache_mode: https://www.postgresql.org/docs/current/runtime-config-query.html
    env: options.plans === 'neon' ? { ...process.env, PGOPTIONS: '-c plan_cache_mode=force_custom_plan' } : process.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const countWaiters: Array<(counts: LineCounts) => void> = [];
  const ready = await new Promise<Extract<HostMessage, { type: 'ready' }>>((resolve, reject) => {
    child.on('message', (message: HostMessage) => {
      if (message.type === 'ready') resolve(message);
      else if (message.type === 'failed') reject(new Error(message.message));
      else if (message.type === 'line') progress(`stack: ${message.line}`);
      else if (message.type === 'counts') countWaiters.shift()?.(message.counts);
    });
    void exited.then(() => reject(new Error('the stack process exited before the stack was ready')));
  });
  return {
    workerUrl: ready.workerUrl,
    vars: ready.workerVars,
    hostPid: child.pid!,
    inspectorPort: ready.inspectorPort,
    counts: () =>
      new Promise<LineCounts>((resolve) => {
        countWaiters.push(resolve);
        child.send({ type: 'counts' });
      }),
    async stop() {
      if (child.exitCode === null && child.connected) child.send({ type: 'stop' });
      const done = await Promise.race([exited.then(() => true), sleep(60_000).then(() => false)]);
      if (!done) child.kill('SIGKILL');
    },
  };
}

interface Baseline {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

async function startBaseline(dataDir: string, webhookSecret: string, log: boolean): Promise<Baseline> {
  const port = await freePort();
  const inspectorPort = await freePort();
  const envFile = path.join(dataDir, 'verify-only.env');
  writeFileSync(envFile, `STRIPE_WEBHOOK_SECRET=${webhookSecret}\nBENCH_LOG=${log ? '1' : '0'}\n`, { mode: 0o600 });
  const output: string[] = [];
  const wrangler = wranglerDev({
    port,
    inspectorPort,
    envFile,
    config: path.join(REPO_ROOT, 'bench', 'verify-only', 'wrangler.toml'),
  });
  const child = spawn(wrangler.command, wrangler.args, {
    cwd: REPO_ROOT,
    env: wrangler.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      output.push(...chunk.split('\n').filter(Boolean));
      output.splice(0, Math.max(0, output.length - 40));
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      return;
    }
    if (!(await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]))) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the verify-only Worker's wrangler exited:\n${output.join('\n')}`);
    const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })
      .then((res) => res.ok)
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the verify-only Worker did not answer within 120 s:\n${output.join('\n')}`);
    }
    await sleep(250);
  }
  return { url, port, pid: child.pid!, stop };
}

/** compatibility_date and compatibility_flags of a wrangler.toml, as written. */
function compatibilityOf(file: string): { date: string | null; flags: string | null } {
  const text = readFileSync(file, 'utf8');
  return {
    date: /^\s*compatibility_date\s*=\s*"([^"]*)"/m.exec(text)?.[1] ?? null,
    flags: /^\s*compatibility_flags\s*=\s*(\[[^\]]*\])/m.exec(text)?.[1]?.replace(/\s+/g, '') ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Preparing the checkouts

interface Prepared {
  cartId: string;
  sessionId: string;
}

async function prepareCheckouts(stack: Stack, n: number, concurrency: number): Promise<Prepared[]> {
  const jwtSecret = stack.vars.AUTH_JWT_SECRET!;
  const stripeBase = stack.vars.STRIPE_API_BASE!;
  const prepared: Prepared[] = [];
  let next = 0;
  let lastReport = Date.now();

  const call = async (
    url: string,
    init: RequestInit,
    expected: number[],
  ): Promise<{ id: string; sessionId: string }> => {
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(url, init);
      const text = await res.text();
      if (expected.includes(res.status)) return JSON.parse(text || '{}');
      // 503: the Worker says try again (e.g. the stand-in busy); anything else is a failure.
      if (res.status === 503 && attempt < 5) {
        await sleep(200 * attempt);
        continue;
      }
      throw new Error(`${init.method} ${url} answered ${res.status}: ${text.slice(0, 300)}`);
    }
  };

  const one = async (i: number): Promise<Prepared> => {
    const token = await createDevToken({
      userId: `bench-${i}-${randomUUID().slice(0, 8)}`,
      secret: jwtSecret,
      ttlSeconds: 3_600,
    });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const cart = await call(`${stack.workerUrl}/v1/carts`, { method: 'POST', headers }, [201]);
    await call(
      `${stack.workerUrl}/v1/carts/${cart.id}/items/tshirt-classic`,
      { method: 'PUT', headers, body: JSON.stringify({ quantity: 1 }) },
      [200],
    );
    const checkout = await call(`${stack.workerUrl}/v1/carts/${cart.id}/checkout`, { method: 'POST', headers }, [201]);
    await call(
      `${stripeBase}/_standin/sessions/${checkout.sessionId}/pay`,
      { method: 'POST', body: JSON.stringify({ outcome: 'paid' }) },
      [200],
    );
    return { cartId: cart.id, sessionId: checkout.sessionId };
  };

  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        prepared.push(await one(i));
        if (Date.now() - lastReport > 10_000) {
          lastReport = Date.now();
          progress(`prepared ${prepared.length}/${n} checkouts`);
        }
      }
    }),
  );
  return prepared;
}

interface StandinEvent {
  event: { id: string; type: string; data: { object: { id: string } } };
  session: string | null;
}

// ---------------------------------------------------------------------------------------------
// The load

interface SignedEvent {
  body: string;
  signature: string;
}

/** The same bodies, signed now (Stripe's 300 s tolerance: each run signs its own). */
function sign(bodies: string[], secret: string): SignedEvent[] {
  const timestamp = Math.floor(Date.now() / 1000);
  const signatures = new Map<string, string>();
  return bodies.map((body) => {
    let signature = signatures.get(body);
    if (!signature) {
      signature = Stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
      signatures.set(body, signature);
    }
    return { body, signature };
  });
}

interface LoadResult {
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  durationS: number;
  reqPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
}

function fire(baseUrl: string, events: SignedEvent[], connections: number, timeoutS: number): Promise<LoadResult> {
  let next = 0;
  const started = performance.now();
  let lastResponse = started;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${baseUrl}/v1/webhooks/stripe`,
        connections: Math.min(connections, events.length),
        amount: events.length,
        timeout: timeoutS,
        // One request template; each connection takes the next event of the shared list, so
        // every event is sent once (autocannon would otherwise send the list per connection).
        requests: [
          {
            method: 'POST',
            setupRequest: (request) => {
              const event = events[next++ % events.length]!;
              return {
                ...request,
                method: 'POST',
                path: '/v1/webhooks/stripe',
                headers: { 'content-type': 'application/json', 'stripe-signature': event.signature },
                body: event.body,
              };
            },
          },
        ],
      },
      (err, result: AutocannonResult) => {
        if (err) return reject(err);
        // autocannon notices the end on its 1 s tick: time the run from its start to the last answer.
        const durationS = (lastResponse - started) / 1000;
        const statusCodes = Object.fromEntries(
          Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, s.count]),
        );
        const requests = Object.values(statusCodes).reduce((a, b) => a + b, 0);
        resolve({
          requests,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          statusCodes,
          durationS: round(durationS, 3),
          reqPerSec: round(requests / durationS, 1),
          latencyMs: {
            p50: result.latency.p50,
            p90: result.latency.p90,
            p99: result.latency.p99,
            max: result.latency.max,
            mean: round(result.latency.mean, 2),
          },
        });
      },
    );
    instance.on('response', () => {
      lastResponse = performance.now();
    });
  });
}

/** A few signed events the Worker acknowledges and ignores (no database): JIT and connections warm. */
function warmupEvents(secret: string, count: number): SignedEvent[] {
  const bodies = Array.from({ length: count }, (_, i) =>
    JSON.stringify(
      {
        id: `evt_bench_warmup_${i}`,
        object: 'event',
        type: 'bench.warmup',
        created: Math.floor(Date.now() / 1000),
        data: { object: {} },
      },
      null,
      2,
    ),
  );
  return sign(bodies, secret);
}

// ---------------------------------------------------------------------------------------------
// Checks after the load

interface PublishedCheck {
  carts: number;
  once: number;
  lost: number;
  duplicated: number;
  duplicateEventIds: number;
  otherMessages: number;
  lastPublishAfterLoadMs: number | null;
}

async function readPublished(
  admin: PubSubAdmin,
  subscription: string,
  expectedCarts: Set<string>,
  loadEnd: number,
): Promise<PublishedCheck> {
  const messages: ReceivedMessage[] = [];
  const paidCarts = new Map<string, number>();
  const deadline = Date.now() + 60_000;
  let quietSince = Date.now();
  // Until every cart's cart.paid is in and nothing more arrived for 3 s (late duplicates), or 60 s.
  while (Date.now() < deadline) {
    const batch = await admin.pull(subscription, 1000);
    if (batch.length > 0) {
      await admin.ack(
        subscription,
        batch.map((m) => m.ackId),
      );
      messages.push(...batch);
      for (const m of batch) {
        if (m.attributes.eventType === 'cart.paid' && expectedCarts.has(m.attributes.cartId ?? '')) {
          paidCarts.set(m.attributes.cartId!, (paidCarts.get(m.attributes.cartId!) ?? 0) + 1);
        }
      }
      quietSince = Date.now();
      continue;
    }
    if (Date.now() - quietSince > (paidCarts.size >= expectedCarts.size ? 3_000 : 15_000)) break;
    await sleep(100);
  }
  const byEventId = new Map<string, number>();
  for (const m of messages)
    byEventId.set(m.attributes.eventId ?? m.messageId, (byEventId.get(m.attributes.eventId ?? m.messageId) ?? 0) + 1);
  const publishTimes = messages.map((m) => Date.parse(m.publishTime)).filter(Number.isFinite);
  return {
    carts: paidCarts.size,
    once: [...paidCarts.values()].filter((count) => count === 1).length,
    lost: expectedCarts.size - paidCarts.size,
    duplicated: [...paidCarts.values()].reduce((sum, count) => sum + count - 1, 0),
    duplicateEventIds: [...byEventId.values()].reduce((sum, count) => sum + count - 1, 0),
    otherMessages: messages.filter(
      (m) => !(m.attributes.eventType === 'cart.paid' && expectedCarts.has(m.attributes.cartId ?? '')),
    ).length,
    lastPublishAfterLoadMs: publishTimes.length > 0 ? Math.max(...publishTimes) - loadEnd : null,
  };
}

async function databaseChecks(databaseUrl: string, carts: string[], eventIds: string[]) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const statuses = await client.query<{ status: string; count: string }>(
      'SELECT status::text AS status, count(*) AS count FROM carts WHERE id::text = ANY($1::text[]) GROUP BY 1',
      [carts],
    );
    const events = await client.query<{ outcome: string; count: string }>(
      'SELECT outcome::text AS outcome, count(*) AS count FROM payment_events WHERE id = ANY($1::text[]) GROUP BY 1',
      [eventIds],
    );
    const outbox = await client.query<{ published: string; failed: string; pending: string; paid_rows: string }>(
      `SELECT count(*) FILTER (WHERE published_at IS NOT NULL) AS published,
              count(*) FILTER (WHERE failed_at IS NOT NULL) AS failed,
              count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NULL) AS pending,
              count(*) FILTER (WHERE event_type = 'cart.paid') AS paid_rows
       FROM outbox WHERE cart_id::text = ANY($1::text[])`,
      [carts],
    );
    const byStatus = Object.fromEntries(statuses.rows.map((r) => [r.status, Number(r.count)]));
    const o = outbox.rows[0]!;
    return {
      cartsPaid: byStatus.paid ?? 0,
      cartStatuses: byStatus,
      paymentEvents: Object.fromEntries(events.rows.map((r) => [r.outcome, Number(r.count)])),
      outbox: {
        cartPaidRows: Number(o.paid_rows),
        published: Number(o.published),
        pending: Number(o.pending),
        failed: Number(o.failed),
      },
    };
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function cpuBound(cpu: CpuWindow) {
  const cores = cpus().length;
  const total = Object.entries(cpu.msPerRequest)
    .filter(([name]) => name !== 'bench')
    .reduce((sum, [, ms]) => sum + (ms ?? 0), 0);
  const withoutWorker = total - (cpu.msPerRequest.workerd ?? 0);
  return {
    cpuMsPerRequest: round(total, 2),
    maxReqPerSec: round((cores * 1000) / Math.max(1e-9, total), 0),
    maxReqPerSecIfWorkerdFree: round((cores * 1000) / Math.max(1e-9, withoutWorker), 0),
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** mulberry32: a small seeded generator, so a run's event order can be repeated with --seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], rnd: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function git(...gitArgs: string[]): string {
  try {
    return execFileSync('git', gitArgs, {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trimEnd();
  } catch {
    return '';
  }
}

const fmt = (value: number | null | undefined, digits = 1) =>
  value === undefined || value === null || !Number.isFinite(value) ? '?' : value.toFixed(digits);

// ---------------------------------------------------------------------------------------------
// The run

const commit = git('rev-parse', '--short', 'HEAD') || 'unknown';
// The Worker is whatever worker/src holds on disk while wrangler runs, committed or not.
const dirty = git(
  'status',
  '--porcelain',
  '--',
  'worker',
  'bridge',
  'tools',
  'migrations',
  'wrangler.toml',
  'package-lock.json',
)
  .split('\n')
  .filter(Boolean)
  .map((line) => line.slice(3));
const rootCompat = compatibilityOf(path.join(REPO_ROOT, 'wrangler.toml'));
const baselineCompat = compatibilityOf(path.join(REPO_ROOT, 'bench', 'verify-only', 'wrangler.toml'));
const sameCompat = rootCompat.date === baselineCompat.date && rootCompat.flags === baselineCompat.flags;
if (!sameCompat) {
  progress(
    `WARNING bench/verify-only/wrangler.toml has compatibility ${JSON.stringify(baselineCompat)}, the root wrangler.toml ${JSON.stringify(rootCompat)}: ` +
      'update the baseline so the two Workers run on the same runtime settings',
  );
}

const dataDir = mkdtempSync(path.join(tmpdir(), 'edge-checkout-load-'));
const toStop: Array<() => Promise<void>> = [];
let interrupted = false;
const cleanUp = async () => {
  for (let stop = toStop.pop(); stop; stop = toStop.pop())
    await stop().catch((err: unknown) => progress(`stopping: ${(err as Error).message}`));
  rmSync(dataDir, { recursive: true, force: true });
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (interrupted) return;
    interrupted = true;
    progress(`${signal}: stopping everything`);
    void cleanUp().finally(() => process.exit(130));
  });
}

try {
  // Pub/Sub mode → what the developer "configured" for the stack (it wins over the stack's own).
  const configured: Record<string, string> = {};
  if (options.pubsub !== 'on') {
    // A port nothing listens on: the stack then starts no emulator; the Worker's publish is refused.
    configured.PUBSUB_EMULATOR_HOST = `127.0.0.1:${await freePort()}`;
    if (options.pubsub === 'off') {
      configured.GCP_PROJECT_ID = DEFAULT_GCP_PROJECT_ID;
      configured.PUBSUB_TOPIC = PAYMENT_EVENTS_TOPIC;
    }
  }

  progress(`starting the local stack in ${dataDir} (Pub/Sub ${options.pubsub})`);
  const stack = await startStack(dataDir, configured);
  toStop.push(() => stack.stop());
  const registry = JSON.parse(readFileSync(path.join(dataDir, 'dev-processes.json'), 'utf8')) as Record<
    string,
    { pgid: number }
  >;
  const wranglerPid = registry.wrangler?.pgid;
  if (!wranglerPid) throw new Error('the stack recorded no wrangler process');
  const publicPort = Number(new URL(stack.workerUrl).port);
  const postgresPid = postmasterPid(path.join(dataDir, 'postgres'));
  if (postgresPid === null) throw new Error('the stack left no postmaster.pid');
  if (options.pubsub === 'on' && !registry['pubsub-emulator']) {
    throw new Error(
      'no Pub/Sub emulator on this machine (gcloud with the pubsub-emulator component and Java): use --pubsub off or none',
    );
  }
  const webhookSecret = stack.vars.STRIPE_WEBHOOK_SECRET!.split(',')[0]!.trim();
  progress(
    `stack ready: Worker ${stack.workerUrl} (wrangler ${wranglerPid}), postgres ${postgresPid}, stack node ${stack.hostPid}`,
  );
  const countsAtStart = await stack.counts();

  let baseline: Baseline | null = null;
  if (options.baseline === 'on') {
    progress('starting the verify-only Worker (bench/verify-only) under wrangler dev');
    baseline = await startBaseline(dataDir, webhookSecret, options.baselineLog);
    toStop.push(() => baseline!.stop());
    progress(`verify-only Worker ready: ${baseline.url}`);
  }

  // The profiler attaches now, before any load: wrangler's inspector proxy keeps every console
  // message of the Worker until a DevTools client attaches, then replays them all at once (with one
  // request to wrangler per message): after the preparation that exhausts workerd's file descriptors.
  // Our Worker's goes through the stack's inspector port, where the stack steps aside for it.
  let profiler: Profiler | null = null;
  if (options.profile) {
    let url: string | null;
    if (options.profileTarget === 'ours') url = await debuggerUrlAt(stack.inspectorPort);
    else {
      if (!baseline) throw new Error('--profile-target baseline needs --baseline on');
      url = await findInspector(baseline.pid, baseline.port);
    }
    if (!url) throw new Error(`no DevTools endpoint on the stack's inspector port ${stack.inspectorPort}`);
    progress(
      `attaching the profiler to the ${options.profileTarget === 'ours' ? 'Worker' : 'verify-only Worker'} through wrangler's inspector ${url}`,
    );
    profiler = await Profiler.connect(url);
    toStop.push(async () => profiler!.close());
  }

  // ---- prepare
  const stripeBase = stack.vars.STRIPE_API_BASE!;
  await new StandinControls(stripeBase).webhooksEnabled(false);
  const preparedAt = performance.now();
  progress(
    `preparing ${options.n} + ${options.warmup} (warm-up) checkouts (cart, item, checkout, paid at the stand-in without webhook)…`,
  );
  const prepared = await prepareCheckouts(stack, options.n + options.warmup, options.prepareConcurrency);
  const prepareS = round((performance.now() - preparedAt) / 1000, 1);
  progress(`prepared ${prepared.length} checkouts in ${prepareS} s`);

  const standinEvents = (await (await fetch(`${stripeBase}/_standin/events`)).json()) as { data: StandinEvent[] };
  const sessions = new Map(prepared.map((p) => [p.sessionId, p.cartId]));
  const completed = standinEvents.data.filter(
    (e) => e.event.type === 'checkout.session.completed' && sessions.has(e.event.data.object.id),
  );
  if (completed.length !== options.n + options.warmup) {
    throw new Error(
      `expected ${options.n + options.warmup} checkout.session.completed events at the stand-in, found ${completed.length}`,
    );
  }
  // As the stand-in (and Stripe) sends them: indented JSON. The first ones warm every process of
  // the path (JIT of workerd, Node, the emulator's JVM; Postgres' caches) and are not measured.
  const allBodies = completed.map((e) => JSON.stringify(e.event, null, 2));
  const warmupBodies = allBodies.slice(0, options.warmup);
  const uniqueBodies = allBodies.slice(options.warmup);
  const rnd = random(options.seed);
  const duplicateCount = Math.round(options.n * options.duplicates);
  const duplicates =
    duplicateCount <= options.n
      ? shuffle([...uniqueBodies], rnd).slice(0, duplicateCount)
      : Array.from({ length: duplicateCount }, () => uniqueBodies[Math.floor(rnd() * uniqueBodies.length)]!);
  const bodies = shuffle([...uniqueBodies, ...duplicates], rnd);
  progress(
    `${bodies.length} webhook deliveries: ${options.n} events + ${duplicateCount} re-sent, shuffled (seed ${options.seed})`,
  );

  // A pull subscription made before the load sees every message published from now on.
  let admin: PubSubAdmin | null = null;
  const subscription = `bench-${randomUUID().slice(0, 8)}`;
  if (options.pubsub === 'on') {
    admin = createPubSubAdmin({ host: stack.vars.PUBSUB_EMULATOR_HOST!, projectId: stack.vars.GCP_PROJECT_ID! });
    await admin.createSubscription(subscription, { topic: stack.vars.PUBSUB_TOPIC!, ackDeadlineSeconds: 60 });
    // The notification relay is a service of its own (Cloud Run): without its push subscription
    // the emulator's CPU is what the Worker's publishing costs it.
    if (options.relay === 'off') await admin.deleteSubscription(`${stack.vars.PUBSUB_TOPIC!}-relay`);
    // Messages of the preparation (none expected: nothing was paid through the Worker yet).
    for (
      let batch = await admin.pull(subscription, 1000);
      batch.length > 0;
      batch = await admin.pull(subscription, 1000)
    ) {
      await admin.ack(
        subscription,
        batch.map((m) => m.ackId),
      );
    }
  }

  // ---- CPU units
  const ourWrangler = wranglerUnits(wranglerPid, publicPort);
  const ourUnits: Record<string, Unit> = {
    workerd: ourWrangler.workerd,
    wranglerProxyWorkerd: ourWrangler.proxy,
    wranglerNode: ourWrangler.wrangler,
    // Neon SQL-over-HTTP proxy + Stripe stand-in + notification feed + the stack's bookkeeping.
    stackNode: singleProcess(stack.hostPid),
    postgres: processTree(postgresPid, { withReaped: true }),
    ...(registry['pubsub-emulator'] ? { pubsubEmulator: processGroup(registry['pubsub-emulator'].pgid) } : {}),
    ...(registry.relay ? { relay: processGroup(registry.relay.pgid) } : {}),
    // autocannon and this script.
    bench: singleProcess(process.pid),
  };

  // ---- baseline
  const baselineUnits: Record<string, Unit> = {};
  if (baseline) {
    const units = wranglerUnits(baseline.pid, baseline.port);
    Object.assign(baselineUnits, {
      workerd: units.workerd,
      wranglerProxyWorkerd: units.proxy,
      wranglerNode: units.wrangler,
      bench: singleProcess(process.pid),
    });
  }
  // Everything the bench started, for telling other people's load apart.
  const allUnits: Record<string, Unit> = {
    ...ourUnits,
    ...Object.fromEntries(Object.entries(baselineUnits).map(([k, v]) => [`baseline.${k}`, v])),
  };

  let baselineResult:
    | (LoadResult & { cpu: CpuWindow; quiet: { waitedS: number; othersCores: number }; profiled: boolean })
    | null = null;
  let profileSummary: ProfileSummary | null = null;
  const startProfile = async (target: 'ours' | 'baseline') => {
    if (!profiler || options.profileTarget !== target) return null;
    progress(`profiling (sampling every ${options.profileIntervalUs} µs)`);
    await profiler.start(options.profileIntervalUs);
    return profiler;
  };
  const finishProfile = async (profiler: Profiler) => {
    const profile = await profiler.stop();
    writeFileSync(options.profile!, JSON.stringify(profile));
    // Resolve through the bundle's source map now: wrangler removes its temp folder when it stops.
    const summary = summariseProfile(profile, profiler.scripts, 25);
    progress(
      `profile written to ${options.profile} (${summary.samples} samples, isolate busy ${summary.busyPct} % of the sampled time)`,
    );
    return summary;
  };
  if (baseline) {
    await fire(baseline.url, warmupEvents(webhookSecret, 50), options.connections, options.timeoutS);
    const quiet = await waitForQuiet(allUnits, { maxS: options.quietWaitS, log: progress });
    progress(
      `baseline: ${bodies.length} deliveries over ${options.connections} connections at the verify-only Worker…`,
    );
    const profiling = await startProfile('baseline');
    const events = sign(bodies, webhookSecret);
    const before = snapshot(baselineUnits);
    const result = await fire(baseline.url, events, options.connections, options.timeoutS);
    const after = snapshot(baselineUnits);
    baselineResult = { ...result, cpu: cpuWindow(before, after, result.requests), quiet, profiled: profiling !== null };
    if (profiling) profileSummary = await finishProfile(profiling);
    progress(
      `baseline: ${result.reqPerSec} req/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, non-2xx ${result.non2xx}`,
    );
  }

  // ---- ours
  await fire(stack.workerUrl, warmupEvents(webhookSecret, 50), options.connections, options.timeoutS);
  if (warmupBodies.length > 0) {
    progress(`ours: ${warmupBodies.length} payments to warm up (not measured)…`);
    await fire(stack.workerUrl, sign(warmupBodies, webhookSecret), options.connections, options.timeoutS);
  }
  const quiet = await waitForQuiet(allUnits, { maxS: options.quietWaitS, log: progress });
  const profiling = await startProfile('ours');
  progress(
    `ours: ${bodies.length} deliveries over ${options.connections} connections at ${stack.workerUrl}/v1/webhooks/stripe…`,
  );
  const events = sign(bodies, webhookSecret);
  const countsBefore = await stack.counts();
  const before = snapshot(ourUnits);
  const result = await fire(stack.workerUrl, events, options.connections, options.timeoutS);
  const after = snapshot(ourUnits);
  const loadEnd = Date.now();
  // Lines printed during the window and the 2 s after it (waitUntil work finishing).
  await sleep(2_000);
  const countsAfter = await stack.counts();
  const wranglerLog = Object.fromEntries(
    (Object.keys(countsAfter) as (keyof LineCounts)[]).map((key) => [key, countsAfter[key] - countsBefore[key]]),
  ) as unknown as LineCounts;
  const ours = {
    ...result,
    cpu: cpuWindow(before, after, result.requests),
    quiet,
    wranglerLog,
    // Each ordered subscription's cart keys, as threads of the emulator (bench:emulator).
    emulatorThreads: ourUnits.pubsubEmulator ? javaThreads(ourUnits.pubsubEmulator) : null,
  };
  progress(
    `ours: ${result.reqPerSec} req/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, non-2xx ${result.non2xx}`,
  );

  // After the 2 s above: the profile also holds the waitUntil work that outlived the answers.
  if (profiling) profileSummary = await finishProfile(profiling);

  // ---- checks
  const cartIds = new Set(prepared.map((p) => p.cartId));
  const published = admin ? await readPublished(admin, subscription, cartIds, loadEnd) : null;
  if (admin) await admin.deleteSubscription(subscription).catch(() => {});
  const eventIds = completed.map((e) => e.event.id);
  const db = await databaseChecks(stack.vars.DATABASE_URL!, [...cartIds], eventIds);
  // wrangler reloads the Worker when a file under worker/ changes: then the run measured two versions.
  const reloads = (await stack.counts()).reloads - countsAtStart.reloads;
  if (reloads > 0)
    progress(
      `WARNING wrangler reloaded the Worker ${reloads} time(s) during the run (worker/ changed on disk): do not trust this run`,
    );

  // ---- report
  const ratio = baselineResult
    ? {
        throughput: round(ours.reqPerSec / baselineResult.reqPerSec, 3),
        p50: round(ours.latencyMs.p50 / Math.max(1e-9, baselineResult.latencyMs.p50), 2),
        p99: round(ours.latencyMs.p99 / Math.max(1e-9, baselineResult.latencyMs.p99), 2),
        workerdCpu:
          ours.cpu.msPerRequest.workerd == null || baselineResult.cpu.msPerRequest.workerd == null
            ? null
            : round(ours.cpu.msPerRequest.workerd / Math.max(1e-9, baselineResult.cpu.msPerRequest.workerd), 2),
      }
    : null;
  const report = {
    bench: 'webhooks-under-load',
    issue: 8,
    date: new Date().toISOString(),
    commit,
    dirty,
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? null,
    node: process.version,
    clkTck: CLK_TCK,
    options: {
      n: options.n,
      duplicates: options.duplicates,
      connections: options.connections,
      pubsub: options.pubsub,
      // The relay runs only with the emulator.
      relay: options.pubsub === 'on' ? options.relay : null,
      baseline: options.baseline,
      baselineLog: options.baselineLog,
      seed: options.seed,
      timeoutS: options.timeoutS,
      quietWaitS: options.quietWaitS,
      profile: options.profile ? path.relative(REPO_ROOT, options.profile) : null,
      profileTarget: options.profile ? options.profileTarget : null,
      plans: options.plans,
    },
    deliveries: {
      events: options.n,
      resent: duplicateCount,
      total: bodies.length,
      warmupPayments: options.warmup,
      prepareS,
    },
    workerReloadsDuringRun: reloads,
    ours: { ...ours, profiled: profiling !== null },
    baseline: baselineResult,
    baselineCompatibility: { same: sameCompat, root: rootCompat, verifyOnly: baselineCompat },
    ratio,
    // On a machine where every process shares the same cores, throughput cannot exceed
    // cores × 1000 / (CPU ms per request summed over all processes); without the Worker's own share:
    // what the rest of the stack alone allows.
    cpuBound: {
      ours: cpuBound(ours.cpu),
      baseline: baselineResult ? cpuBound(baselineResult.cpu) : null,
    },
    target: ratio ? { throughputAtLeast: 0.5, met: ratio.throughput >= 0.5 } : null,
    checks: {
      ...db,
      published: published ?? {
        mode: options.pubsub,
        note: options.pubsub === 'off' ? 'Pub/Sub unreachable: rows stay pending' : 'no Pub/Sub settings: rows wait',
      },
    },
    whereThingsRun: {
      workerd: "the Worker (wrangler dev's runtime process, started with --inspector-addr)",
      wranglerProxyWorkerd:
        "wrangler dev's proxy workerd: owns the public port and forwards every request to the Worker's workerd",
      wranglerNode:
        "wrangler's two Node processes (bin/wrangler.js, wrangler-dist/cli.js: logs, reload) and its esbuild",
      stackNode: 'bench/stack-host.ts: Neon SQL-over-HTTP proxy (pg pool of 10), Stripe stand-in, notification feed',
      postgres: 'postmaster and all its backends and workers',
      pubsubEmulator: "gcloud's Python and the emulator's Java (process group)",
      relay: 'the notification relay (node, pushed to by the emulator)',
      bench: 'this process: autocannon and the checks',
    },
    profile: profileSummary
      ? { target: options.profileTarget, file: path.relative(REPO_ROOT, options.profile!), ...profileSummary }
      : null,
  };

  const c = ours.cpu.msPerRequest;
  const b = baselineResult?.cpu.msPerRequest;
  const human =
    (reloads > 0 ? `[WORKER RELOADED ${reloads}× DURING THE RUN] ` : '') +
    `ours ${fmt(ours.reqPerSec, 0)} req/s` +
    (baselineResult ? ` (${fmt(ratio!.throughput, 2)}× baseline ${fmt(baselineResult.reqPerSec, 0)})` : '') +
    `, p50 ${ours.latencyMs.p50} ms, p99 ${ours.latencyMs.p99} ms` +
    (baselineResult ? ` (${fmt(ratio!.p99, 1)}× baseline ${baselineResult.latencyMs.p99})` : '') +
    `, worker CPU ${fmt(c.workerd, 2)} ms/req` +
    (b ? ` (baseline ${fmt(b.workerd, 2)})` : '') +
    `, wrangler proxy ${fmt(c.wranglerProxyWorkerd, 2)}, wrangler node ${fmt(c.wranglerNode, 2)}, stack node ${fmt(c.stackNode, 2)}, postgres ${fmt(c.postgres, 2)}${options.plans === 'neon' ? " (Neon's plans)" : ''}` +
    (c.pubsubEmulator !== undefined ? `, emulator ${fmt(c.pubsubEmulator, 2)} (${ours.emulatorThreads} threads)` : '') +
    (c.relay !== undefined ? `, relay ${fmt(c.relay, 2)}` : '') +
    `, autocannon ${fmt(c.bench, 2)} ms/req; machine ${fmt(ours.cpu.machine.busyCores, 2)}/${cpus().length} cores busy (others ${fmt(ours.cpu.machine.otherMsPerRequest, 2)} ms/req)` +
    `; non-2xx ${ours.non2xx + ours.errors + ours.timeouts}, paid ${db.cartsPaid}/${prepared.length}` +
    (ours.wranglerLog.hungRequests + ours.wranglerLog.crossRequestPromises > 0
      ? `, workerd canceled ${ours.wranglerLog.hungRequests} hung request(s) (${ours.wranglerLog.crossRequestPromises} cross-request promise warnings)`
      : '') +
    (published
      ? `, published ${published.carts}/${prepared.length}${published.lost === 0 && published.duplicated === 0 ? ' once' : ` (lost ${published.lost}, duplicated ${published.duplicated})`}`
      : `, Pub/Sub ${options.pubsub === 'off' ? 'unreachable' : 'not configured'}: outbox pending ${db.outbox.pending}`);

  console.log(JSON.stringify(report));
  console.log(human);
  if (profileSummary) {
    const lines = [
      `${options.profileTarget === 'ours' ? 'Worker' : 'verify-only Worker'} isolate CPU profile: ${profileSummary.samples} samples, busy ${profileSummary.busyPct} % of the sampled time (${profileSummary.nonIdleMs} ms); self time by area:`,
      ...profileSummary.byArea
        .slice(0, 12)
        .map((a) => `  ${fmt(a.selfPct, 1).padStart(5)} %  ${fmt(a.selfMs, 0).padStart(6)} ms  ${a.area}`),
      'top 25 functions by self time:',
      ...profileSummary.top.map(
        (r) => `  ${fmt(r.selfPct, 1).padStart(5)} %  ${fmt(r.selfMs, 0).padStart(6)} ms  ${r.function}  ${r.location}`,
      ),
      'our functions by total time (self + callees, between awaits):',
      ...profileSummary.ownTotals
        .slice(0, 15)
        .map(
          (r) =>
            `  ${fmt(r.totalPct, 1).padStart(5)} %  ${fmt(r.totalMs, 0).padStart(6)} ms  ${r.function}  ${r.location}`,
        ),
    ];
    console.error(lines.join('\n'));
  }

  if (options.save) {
    const dir = path.join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    // <date>-<commit>[-dirty]-<pubsub>[-norelay][-neonplans].json; a second run of the day gets -2, -3…: runs are compared, not replaced.
    const relay = options.pubsub === 'on' && options.relay === 'off' ? '-norelay' : '';
    const plans = options.plans === 'neon' ? '-neonplans' : '';
    const stem = `${report.date.slice(0, 10)}-${commit}${dirty.length > 0 ? '-dirty' : ''}-${options.pubsub}${relay}${plans}`;
    let file = path.join(dir, `${stem}.json`);
    for (let i = 2; existsSync(file); i++) file = path.join(dir, `${stem}-${i}.json`);
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    progress(`written to ${path.relative(REPO_ROOT, file)}`);
  }
} catch (err) {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  if (!interrupted) await cleanUp();
}
// Nothing may keep the process alive after the report (an inspector socket, a timer).
if (!interrupted) process.exit();
