// The local stack for the fault suite: started as `npm run dev` starts it (test/e2e/helpers/stack.ts),
// with the Pub/Sub fault proxy (tools/pubsub-fault-proxy.ts) between the Worker and the emulator,
// and the handles the scenarios switch faults with.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { cronsFromWranglerToml } from '@edge-checkout/dev-stack/dev-cron';
import { REPO_ROOT } from '@edge-checkout/dev-stack/dev-env';
import { locatePubSubEmulator } from '@edge-checkout/dev-stack/pubsub-emulator';
import { type PubSubFaultProxy, startPubSubFaultProxy } from '@edge-checkout/test-support/pubsub-fault-proxy';
import { type E2eStack, useLocalStack } from '@edge-checkout/test-support/stack';
import { StandinControls } from '@edge-checkout/test-support/standin';
import type { OutboxEntryOut } from '@edge-checkout/worker/schemas';

/** What the suite cannot run without, or undefined when this machine has it all. */
export function missingPrerequisite(): string | undefined {
  const emulator = locatePubSubEmulator();
  if (!emulator.ok) return `no Pub/Sub emulator: ${emulator.reason}`;
  // Stalling Postgres finds its processes in /proc and stops them with signals.
  if (process.platform !== 'linux' || !existsSync('/proc/self/stat'))
    return `stalling Postgres needs Linux's /proc (this is ${process.platform})`;
  return undefined;
}

export type OutboxEntry = OutboxEntryOut;

export interface FaultStack {
  readonly stack: E2eStack;
  /** Between the Worker and the emulator: decides what the Worker's `:publish` calls get. */
  readonly proxy: PubSubFaultProxy;
  readonly standin: StandinControls;
  /** The embedded Postgres' data folder (its postmaster.pid names the server). */
  readonly postgresDataDir: string;
  /** Runs the Worker's scheduled job, as the stack's cron ticker does every 5 minutes. */
  runScheduledJob(): Promise<void>;
  /** GET /v1/admin/outbox?state=…, with the admin key the stack generated. */
  outbox(state: 'pending' | 'failed' | 'discarded'): Promise<OutboxEntry[]>;
}

export function useFaultStack(): FaultStack {
  let proxy: PubSubFaultProxy | undefined;
  const stack = useLocalStack({
    wrapPubSubEmulatorHost: async (target) => {
      proxy = await startPubSubFaultProxy({ target });
      return { host: proxy.host, stop: proxy.close };
    },
  });
  const [cron] = cronsFromWranglerToml(path.join(REPO_ROOT, 'wrangler.toml'));
  if (!cron) throw new Error('wrangler.toml declares no cron trigger');
  let standin: StandinControls | undefined;

  return {
    stack,
    get proxy() {
      if (!proxy) throw new Error('the stack started no Pub/Sub fault proxy (no emulator?)');
      return proxy;
    },
    get standin() {
      standin ??= new StandinControls(stack.stripeUrl);
      return standin;
    },
    get postgresDataDir() {
      return path.join(stack.dataDir, 'postgres');
    },
    async runScheduledJob() {
      // wrangler dev --test-scheduled (tools/dev-cron.ts calls the same).
      const res = await fetch(`${stack.workerUrl}/__scheduled?cron=${encodeURIComponent(cron)}`, {
        signal: AbortSignal.timeout(60_000),
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`/__scheduled answered ${res.status}`);
    },
    async outbox(state) {
      const res = await fetch(`${stack.workerUrl}/v1/admin/outbox?state=${state}&limit=500`, {
        headers: { authorization: `Bearer ${stack.vars.ADMIN_API_KEY}` },
      });
      if (res.status !== 200)
        throw new Error(`GET /v1/admin/outbox?state=${state} answered ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { entries: OutboxEntry[] }).entries;
    },
  };
}
