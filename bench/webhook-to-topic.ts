/**
 * How long a cart.paid takes from the Stripe webhook's POST until the Worker answers, until the
 * message is on the payment-events topic, and until a subscriber has it, on the local stack
 * (`npm run dev`'s, in a temp folder). All three count from the POST: the publish runs in
 * `waitUntil` and can end before the 200 has crossed wrangler's proxy, so counting from the 200
 * gave negative times.
 *
 *   npx tsx bench/webhook-to-topic.ts [ROUNDS=20]
 *
 * Each round pays a fresh cart with the stand-in's webhooks switched off, then POSTs the
 * signed checkout.session.completed itself: so the 200's arrival is timed here, not guessed
 * from the stand-in's log. The emulator's publishTime says when the message was published;
 * a subscriber pulling every few milliseconds says when a consumer could have it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startLocalStack } from '@edge-checkout/dev-stack/local-stack';
import { createPubSubAdmin } from '@edge-checkout/dev-stack/pubsub-admin';
import { Shopper } from '@edge-checkout/test-support/shopper';
import { StandinControls } from '@edge-checkout/test-support/standin';
import { aboutCarts, TopicReader } from '@edge-checkout/test-support/topics';
import Stripe from 'stripe';

const rounds = Number(process.argv[2] ?? 20);
const dataDir = mkdtempSync(path.join(tmpdir(), 'edge-checkout-bench-'));
const output: string[] = [];
const stack = await startLocalStack({
  port: 0,
  dataDir,
  persistentDatabase: false,
  configured: {},
  ports: { postgres: 0, stripeStandin: 0, pubsubEmulator: 0, relay: 0 },
  print: (line) => output.push(line),
  wranglerOutput: 'print',
}).catch((err: unknown) => {
  console.error(`${(err as Error).message}\n${output.slice(-40).join('\n')}`);
  process.exit(1);
});

try {
  const vars = stack.workerVars;
  if (!vars.PUBSUB_EMULATOR_HOST) throw new Error('no Pub/Sub emulator on this machine: nothing to measure');
  const standin = new StandinControls(vars.STRIPE_API_BASE!);
  const topic = await TopicReader.subscribe(
    createPubSubAdmin({ host: vars.PUBSUB_EMULATOR_HOST, projectId: vars.GCP_PROJECT_ID! }),
    vars.PUBSUB_TOPIC!,
  );
  const toPublished: number[] = [];
  const toReceived: number[] = [];
  const answers: number[] = [];

  for (let round = 0; round < rounds; round++) {
    const shopper = await Shopper.signIn(stack.workerUrl, vars.AUTH_JWT_SECRET!, 'bench');
    const cart = await shopper.fillCart({ 'tshirt-classic': 1 });
    const checkout = await shopper.checkout(cart.id);
    await standin.webhooksEnabled(false);
    await standin.pay(checkout.sessionId, 'paid');
    await standin.webhooksEnabled(true);
    const [completed] = await standin.events(checkout.sessionId);
    const payload = JSON.stringify(completed!.event, null, 2);

    const sentAt = Date.now();
    const res = await fetch(`${stack.workerUrl}/v1/webhooks/stripe`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: vars.STRIPE_WEBHOOK_SECRET! }),
      },
      body: payload,
    });
    const answeredAt = Date.now();
    await res.body?.cancel();
    if (res.status !== 200) throw new Error(`the webhook answered ${res.status}`);
    const [message] = await topic.atLeast(1, aboutCarts(cart.id));
    const receivedAt = Date.now();
    answers.push(answeredAt - sentAt);
    toPublished.push(Date.parse(message!.publishTime) - sentAt);
    toReceived.push(receivedAt - sentAt);
  }
  await topic.close();

  const summary = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return `min ${sorted[0]} · median ${at(0.5)} · p95 ${at(0.95)} · max ${sorted.at(-1)} ms`;
  };
  console.log(`${rounds} cart.paid webhooks on the local stack (wrangler dev, Neon HTTP proxy, Pub/Sub emulator):`);
  console.log(`  webhook POST → 200 answer:                       ${summary(answers)}`);
  console.log(`  webhook POST → published (emulator publishTime): ${summary(toPublished)}`);
  console.log(`  webhook POST → pulled by a subscriber:           ${summary(toReceived)}`);
} finally {
  await stack.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
