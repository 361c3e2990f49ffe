import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type PubSubFaultProxy, startPubSubFaultProxy } from '@edge-checkout/test-support/pubsub-fault-proxy';
import { pubsubEmulatorMissing, skipWithout } from '@edge-checkout/test-support/requirements';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Vars } from '../src/dev-env.ts';
import { pubsubService } from '../src/local-pubsub.ts';
import { serviceContext } from './helpers.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'local-pubsub-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const skipped = skipWithout("Google's Pub/Sub emulator", pubsubEmulatorMissing());

const context = (configured: Vars, lines: string[]) => serviceContext({ configured, scratch, lines });

/** The process groups the stack has recorded (what stop and the next run after a crash stop), by name. */
const recordedGroups = () =>
  JSON.parse(readFileSync(path.join(scratch, 'processes.json'), 'utf8')) as Record<string, { pgid: number }>;
const relayGroup = () => recordedGroups().relay!.pgid;

/** Publishes a cart.paid event for grace@example.com (45.00 usd) as the Worker would. */
function publishPaidCart(host: string, projectId: string, cartId: string): Promise<Response> {
  const event = {
    id: '5b1f1a6e-0000-4000-8000-000000000001',
    type: 'cart.paid',
    occurredAt: new Date().toISOString(),
    cart: { id: cartId, userId: 'u7', status: 'paid', currency: 'usd', totalAmount: 4500, items: [] },
    customer: { email: 'grace@example.com', name: null },
    stripe: { eventId: 'evt_1', sessionId: 'cs_test_1', paymentIntentId: 'pi_1' },
    amountMismatch: false,
  };
  return fetch(`http://${host}/v1/projects/${projectId}/topics/payment-events:publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      messages: [{ data: Buffer.from(JSON.stringify(event)).toString('base64'), orderingKey: cartId }],
    }),
  });
}

describe('Pub/Sub in the local stack', () => {
  it('without the emulator, says that events wait in the outbox and gives the Worker no Pub/Sub variables', async () => {
    vi.stubEnv('JAVA_HOME', '/nonexistent-jdk');
    try {
      const lines: string[] = [];
      expect(await pubsubService.start(context({}, lines))).toBeUndefined();
      expect(lines).toEqual([
        expect.stringMatching(/^pubsub: NOT AVAILABLE: Java was not found.*Payment events wait in the outbox/),
      ]);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("leaves an emulator the developer configured alone, and has the Worker publish there to this stack's topic", async () => {
    const lines: string[] = [];
    const started = await pubsubService.start(context({ PUBSUB_EMULATOR_HOST: '127.0.0.1:9999' }, lines));
    // The developer's own values win over these (local-stack.ts).
    expect(started?.vars).toEqual({ GCP_PROJECT_ID: 'edge-checkout-local', PUBSUB_TOPIC: 'payment-events' });
    expect(lines).toEqual([
      'pubsub: PUBSUB_EMULATOR_HOST is configured; payment events go to projects/edge-checkout-local/topics/payment-events on the emulator at 127.0.0.1:9999 (no emulator, topics or relay started here)',
    ]);
    const named = await pubsubService.start(
      context({ PUBSUB_EMULATOR_HOST: '127.0.0.1:9999', GCP_PROJECT_ID: 'mine', PUBSUB_TOPIC: 'payments' }, []),
    );
    expect(named?.vars).toEqual({ GCP_PROJECT_ID: 'mine', PUBSUB_TOPIC: 'payments' });
  });

  it.skipIf(skipped)(
    'runs emulator, topics and relay: a paid cart on the payment topic shows as a [notify] line; stop ends them all',
    async () => {
      const lines: string[] = [];
      const started = await pubsubService.start(context({ GCP_PROJECT_ID: 'local-pubsub-test' }, lines));
      try {
        expect(started?.vars).toEqual({
          GCP_PROJECT_ID: 'local-pubsub-test',
          PUBSUB_TOPIC: 'payment-events',
          PUBSUB_EMULATOR_HOST: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
        });
        const host = started!.vars!.PUBSUB_EMULATOR_HOST!;
        const published = await publishPaidCart(host, 'local-pubsub-test', 'cart-7');
        expect(published.status).toBe(200);
        await expect
          .poll(() => lines, { timeout: 15_000 })
          .toContain('[notify] email to grace@example.com cart cart-7 cart.paid 45.00 usd');
        // Recorded for crash recovery while running.
        expect(Object.keys(recordedGroups())).toEqual(['pubsub-emulator', 'relay']);
      } finally {
        await started?.stop();
      }
      expect(recordedGroups()).toEqual({});
      const host = started!.vars!.PUBSUB_EMULATOR_HOST!;
      await expect(fetch(`http://${host}/`)).rejects.toThrow();
    },
  );

  it.skipIf(skipped)(
    'starts the relay again in place when it dies: what was published while it could not answer, and later, shows as [notify] lines',
    async () => {
      const lines: string[] = [];
      const started = await pubsubService.start(context({ GCP_PROJECT_ID: 'local-pubsub-restart-test' }, lines));
      try {
        const host = started!.vars!.PUBSUB_EMULATOR_HOST!;
        const killed = relayGroup();
        // Frozen first, so that this payment event is certainly published while the relay cannot
        // take it: only a relay started after the kill can.
        process.kill(-killed, 'SIGSTOP');
        expect((await publishPaidCart(host, 'local-pubsub-restart-test', 'cart-9')).status).toBe(200);
        process.kill(-killed, 'SIGKILL');
        await expect
          .poll(() => lines)
          .toContain(
            'pubsub: the notification relay runs again; the emulator pushes it the payment events that waited',
          );
        expect(lines).toContainEqual(
          expect.stringMatching(
            /^pubsub: the notification relay exited \(SIGKILL\); starting it again on http:\/\/127\.0\.0\.1:\d+$/,
          ),
        );
        // Recorded, so that stop and the next run after a crash stop the new one.
        expect(relayGroup()).not.toBe(killed);
        await expect
          .poll(() => lines, { timeout: 15_000 })
          .toContain('[notify] email to grace@example.com cart cart-9 cart.paid 45.00 usd');
        expect((await publishPaidCart(host, 'local-pubsub-restart-test', 'cart-10')).status).toBe(200);
        await expect
          .poll(() => lines, { timeout: 15_000 })
          .toContain('[notify] email to grace@example.com cart cart-10 cart.paid 45.00 usd');
      } finally {
        await started?.stop();
      }
      expect(recordedGroups()).toEqual({});
    },
  );

  it.skipIf(skipped)(
    'does not start again a relay that keeps dying: the fourth death within a minute is the last',
    async () => {
      const lines: string[] = [];
      const started = await pubsubService.start(context({ GCP_PROJECT_ID: 'local-pubsub-crash-loop-test' }, lines));
      const ranAgain = () =>
        lines.filter((line) => line.startsWith('pubsub: the notification relay runs again')).length;
      try {
        for (let restart = 1; restart <= 3; restart++) {
          process.kill(-relayGroup(), 'SIGKILL');
          await expect.poll(ranAgain, { timeout: 15_000 }).toBe(restart);
        }
        process.kill(-relayGroup(), 'SIGKILL');
        await expect
          .poll(() => lines)
          .toContainEqual(
            expect.stringMatching(
              /^pubsub: the notification relay exited \(SIGKILL\), its 4th time within a minute; not started again/,
            ),
          );
        expect(ranAgain()).toBe(3);
      } finally {
        await started?.stop();
      }
    },
  );

  it.skipIf(skipped)(
    'says when the emulator exits while it runs, naming it, so that npm run dev can stop',
    async () => {
      const started = await pubsubService.start(context({ GCP_PROJECT_ID: 'local-pubsub-exit-test' }, []));
      try {
        const { pgid } = recordedGroups()['pubsub-emulator']!;
        process.kill(-pgid, 'SIGKILL');
        expect(await started?.exited).toEqual({ part: 'the Pub/Sub emulator', code: null, signal: 'SIGKILL' });
      } finally {
        await started?.stop();
      }
    },
  );

  it.skipIf(skipped)(
    'tests can put a proxy between the Worker and the emulator: the Worker gets its host, the relay keeps the emulator, stop stops it too',
    async () => {
      const lines: string[] = [];
      const stopped: string[] = [];
      let proxy: PubSubFaultProxy | undefined;
      const started = await pubsubService.start({
        ...context({ GCP_PROJECT_ID: 'local-pubsub-wrap-test' }, lines),
        wrapPubSubEmulatorHost: async (target) => {
          proxy = await startPubSubFaultProxy({ target });
          return {
            host: proxy.host,
            stop: async () => {
              stopped.push('proxy');
              await proxy!.close();
            },
          };
        },
      });
      try {
        expect(started?.vars?.PUBSUB_EMULATOR_HOST).toBe(proxy!.host);
        proxy!.setMode('forbidden');
        expect((await publishPaidCart(proxy!.host, 'local-pubsub-wrap-test', 'cart-8')).status).toBe(403);
        proxy!.setMode('pass');
        expect((await publishPaidCart(proxy!.host, 'local-pubsub-wrap-test', 'cart-8')).status).toBe(200);
        // The relay reads the emulator itself, not through the proxy.
        await expect
          .poll(() => lines, { timeout: 15_000 })
          .toContain('[notify] email to grace@example.com cart cart-8 cart.paid 45.00 usd');
      } finally {
        await started?.stop();
      }
      expect(stopped).toEqual(['proxy']);
      await expect(fetch(`${proxy!.url}/_proxy/stats`)).rejects.toThrow();
    },
  );
});
