/**
 * `npm run bench:emulator`: what a push subscription with message ordering costs Google's Pub/Sub
 * emulator as ordering keys accumulate. The payment topic's ordering key is the cart id, so every
 * paid cart is a new key, and the local stack's relay subscription is ordered, as in production.
 *
 * One emulator (started as `npm run dev` starts it), one local push endpoint that acknowledges
 * at once (204), and three topics, each with a push subscription to it: two rounds on an
 * unordered one to warm the JVM up (not measured), then `--rounds` rounds on another unordered
 * one (the baseline) and as many on an ordered one. A round is `--per-round` messages, every one
 * with a new ordering key, published through bridge/pubsub (the Worker's publisher) in calls of
 * 20 as the Worker's queue sends them under load, and ends once every message was pushed. Per
 * round it prints the emulator's CPU per message (its process group, from /proc), its Java
 * thread count, and the ratio ordered / unordered.
 *
 *   npm run -s bench:emulator -- [--rounds 4] [--per-round 1200]
 */

import { createServer } from 'node:http';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createPubSubAdmin } from '@edge-checkout/dev-stack/pubsub-admin';
import { startPubSubEmulator } from '@edge-checkout/dev-stack/pubsub-emulator';
import { createPubSubPublisher } from '@edge-checkout/pubsub';
import { cpuWindow, javaThreads, processGroup, snapshot } from './lib/proc-cpu.ts';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '4' }, 'per-round': { type: 'string', default: '1200' } },
});
const rounds = Number(args.rounds);
const perRound = Number(args['per-round']);
if (!(Number.isInteger(rounds) && rounds > 0 && Number.isInteger(perRound) && perRound > 0)) {
  throw new Error('--rounds and --per-round must be positive integers');
}

const PROJECT = 'bench-emulator';
const CALL_SIZE = 20;
// A round whose messages are not all pushed by then is a stuck emulator, not a slow one.
const ROUND_TIMEOUT_MS = 300_000;
const progress = (line: string) => process.stderr.write(`[bench:emulator] ${line}\n`);

let pushed = 0;
const endpoint = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    pushed++;
    res.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
const pushPort = (endpoint.address() as { port: number }).port;

const emulator = await startPubSubEmulator({ projectId: PROJECT, log: progress });
if (!emulator)
  throw new Error('no Pub/Sub emulator on this machine (gcloud with the pubsub-emulator component and Java)');
const units = { emulator: processGroup(emulator.pgid) };
const admin = createPubSubAdmin({ host: emulator.host, projectId: PROJECT });

type Round = { round: number; keysBefore: number; cpuMsPerMessage: number; threads: number };
const data = 'x'.repeat(1500);
let key = 0;

async function measure(name: 'warm-up' | 'unordered' | 'ordered', count = rounds): Promise<Round[]> {
  await admin.createTopic(name);
  await admin.createSubscription(`${name}-push`, {
    topic: name,
    pushEndpoint: `http://127.0.0.1:${pushPort}/push`,
    enableMessageOrdering: name === 'ordered',
  });
  const publisher = createPubSubPublisher({ projectId: PROJECT, topic: name, emulatorHost: emulator!.host });
  const results: Round[] = [];
  for (let round = 0; round < count; round++) {
    pushed = 0;
    const before = snapshot(units);
    for (let sent = 0; sent < perRound; sent += CALL_SIZE) {
      await publisher.publish(
        Array.from({ length: Math.min(CALL_SIZE, perRound - sent) }, () => ({
          data,
          orderingKey: `cart-${key++}`,
          attributes: { eventType: 'cart.paid' },
        })),
      );
    }
    const deadline = Date.now() + ROUND_TIMEOUT_MS;
    while (pushed < perRound) {
      if (Date.now() > deadline) throw new Error(`${name} round ${round}: ${pushed} of ${perRound} messages pushed`);
      await sleep(20);
    }
    const window = cpuWindow(before, snapshot(units), perRound);
    const result = {
      round,
      keysBefore: round * perRound,
      cpuMsPerMessage: window.msPerRequest.emulator!,
      threads: javaThreads(units.emulator),
    };
    progress(`${name} round ${round}: ${result.cpuMsPerMessage.toFixed(2)} ms per message, ${result.threads} threads`);
    results.push(result);
  }
  return results;
}

try {
  // The JVM compiles for its first few thousand messages: not measured.
  await measure('warm-up', 2);
  const unordered = await measure('unordered');
  const ordered = await measure('ordered');
  const ratios = ordered.map((o, i) => Math.round((o.cpuMsPerMessage / unordered[i]!.cpuMsPerMessage) * 100) / 100);
  console.log(
    JSON.stringify({ bench: 'emulator-ordering', cores: cpus().length, rounds, perRound, unordered, ordered, ratios }),
  );
  for (const [i, o] of ordered.entries()) {
    console.log(
      `keys already seen ${o.keysBefore}: ordered ${o.cpuMsPerMessage.toFixed(2)} ms/message (${o.threads} threads), ` +
        `unordered ${unordered[i]!.cpuMsPerMessage.toFixed(2)} ms/message (${unordered[i]!.threads} threads): ${ratios[i]}×`,
    );
  }
} finally {
  await emulator.stop();
  endpoint.close();
}
