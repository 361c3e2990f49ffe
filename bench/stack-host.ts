/**
 * The local stack of `npm run bench`, in a Node process of its own (forked by bench/load.ts with
 * an IPC channel), so that the CPU time of what the stack runs in Node — the Neon SQL-over-HTTP
 * proxy, the Stripe stand-in, the notification feed — is measured apart from the load generator.
 *
 * It starts tools/dev-stack/src/local-stack.ts as `npm run dev` does (wrangler dev, Postgres, proxy, stand-in,
 * Pub/Sub emulator and relay), in the given data folder, with throwaway ports and database, and
 * sends { type: 'ready', workerUrl, workerVars, inspectorPort } or { type: 'failed', message }; { type: 'counts' }
 * asks what kinds of lines the stack printed so far (LineCounts). It stops the stack on
 * { type: 'stop' }, on SIGTERM/SIGINT, or when the parent goes away. Problem lines (the first 20;
 * all lines with BENCH_VERBOSE=1) are passed on as { type: 'line' }.
 *
 * Options come as one JSON argument: { dataDir, configured }.
 */
import { howItEnded } from '@edge-checkout/dev-stack/dev-processes';
import { type LocalStack, startLocalStack } from '@edge-checkout/dev-stack/local-stack';

interface HostOptions {
  dataDir: string;
  /** Worker variables that win over the stack's (e.g. an unreachable PUBSUB_EMULATOR_HOST). */
  configured: Record<string, string>;
}

export type HostMessage =
  | { type: 'ready'; workerUrl: string; workerVars: Record<string, string>; inspectorPort: number; pid: number }
  | { type: 'failed'; message: string }
  | { type: 'line'; line: string }
  | { type: 'counts'; counts: LineCounts }
  | { type: 'stopped' };

/** What the stack printed so far, by kind: how the bench tells a noisy or failing Worker. */
export interface LineCounts {
  /** Every line of wrangler's output (request logs, console.log, errors). */
  wranglerLines: number;
  /** wrangler's ERROR lines (uncaught errors, console.error). */
  wranglerErrors: number;
  /** "The Workers runtime canceled this request because it detected that your Worker's code had hung". */
  hungRequests: number;
  /** "A promise was resolved or rejected from a different request context". */
  crossRequestPromises: number;
  /** wrangler reloading the Worker (a file under worker/ changed on disk). */
  reloads: number;
}

const send = (message: HostMessage) =>
  new Promise<void>((resolve) => (process.send ? process.send(message, undefined, {}, () => resolve()) : resolve()));

const options = JSON.parse(process.argv[2] ?? '{}') as HostOptions;
const output: string[] = [];
let stack: LocalStack | undefined;
// Problem lines go to the bench (the first 20: unreachable Pub/Sub logs one per webhook); all with BENCH_VERBOSE=1.
const verbose = process.env.BENCH_VERBOSE === '1';
let forwarded = 0;
const counts: LineCounts = {
  wranglerLines: 0,
  wranglerErrors: 0,
  hungRequests: 0,
  crossRequestPromises: 0,
  reloads: 0,
};
let stopping: Promise<void> | undefined;

const stop = (code: number) =>
  (stopping ??= (async () => {
    try {
      await stack?.stop();
    } finally {
      await send({ type: 'stopped' }).catch(() => {});
      process.disconnect?.();
      process.exit(code);
    }
  })());

process.on('message', (message: { type?: string }) => {
  if (message?.type === 'stop') void stop(0);
  if (message?.type === 'counts') void send({ type: 'counts', counts: { ...counts } });
});
process.on('disconnect', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));

try {
  stack = await startLocalStack({
    port: 0,
    dataDir: options.dataDir,
    persistentDatabase: false,
    configured: options.configured,
    ports: { postgres: 0, stripeStandin: 0, pubsubEmulator: 0, relay: 0 },
    print: (line) => {
      if (line.startsWith('[wrangler]')) {
        counts.wranglerLines++;
        if (line.includes('ERROR')) counts.wranglerErrors++;
        if (line.includes('code had hung')) counts.hungRequests++;
        if (line.includes('from a different request context')) counts.crossRequestPromises++;
        if (/Reloading local server/i.test(line)) counts.reloads++;
      }
      output.push(line);
      if (output.length > 200) output.shift();
      const problem = /error|warn|fail|exited|reloading/i.test(line) && !line.startsWith('[notify]');
      if (verbose || (problem && forwarded++ < 20)) void send({ type: 'line', line });
    },
    wranglerOutput: 'print',
  });
  void stack.exited.then((exit) => {
    if (!stopping)
      void send({ type: 'line', line: `[bench] ${exit.part} exited (${howItEnded(exit)}) during the run` });
  });
  await send({
    type: 'ready',
    workerUrl: stack.workerUrl,
    workerVars: stack.workerVars,
    inspectorPort: stack.inspectorPort,
    pid: process.pid,
  });
} catch (err) {
  await send({
    type: 'failed',
    message: `${(err as Error).message}\n--- last output of the stack ---\n${output.slice(-40).join('\n')}`,
  });
  await stop(1);
}
