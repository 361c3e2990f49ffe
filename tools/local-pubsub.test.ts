import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Vars } from './dev-env.ts';
import { pubsubService } from './local-pubsub.ts';
import { locatePubSubEmulator } from './pubsub-emulator.ts';
import { serviceContext } from './test-support.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'local-pubsub-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const located = locatePubSubEmulator();
if (!located.ok) console.warn(`SKIPPING the local Pub/Sub start test: ${located.reason}`);

const context = (configured: Vars, lines: string[]) => serviceContext({ configured, scratch, lines });

describe('Pub/Sub in the local stack', () => {
  it('without the emulator, says that events wait in the outbox and gives the Worker no Pub/Sub variables', async () => {
    vi.stubEnv('JAVA_HOME', '/nonexistent-jdk');
    try {
      const lines: string[] = [];
      expect(await pubsubService.start(context({}, lines))).toBeUndefined();
      expect(lines).toEqual([expect.stringMatching(/^pubsub: NOT AVAILABLE: Java was not found.*Payment events wait in the outbox/)]);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('leaves an emulator the developer configured alone', async () => {
    const lines: string[] = [];
    expect(await pubsubService.start(context({ PUBSUB_EMULATOR_HOST: '127.0.0.1:9999' }, lines))).toBeUndefined();
    expect(lines[0]).toContain('PUBSUB_EMULATOR_HOST is configured (127.0.0.1:9999)');
  });

  it.skipIf(!located.ok)('runs emulator, topics and relay: a paid cart on the payment topic shows as a [notify] line; stop ends them all', async () => {
    const lines: string[] = [];
    const started = await pubsubService.start(context({ GCP_PROJECT_ID: 'local-pubsub-test' }, lines));
    try {
      expect(started?.vars).toEqual({ GCP_PROJECT_ID: 'local-pubsub-test', PUBSUB_TOPIC: 'payment-events', PUBSUB_EMULATOR_HOST: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
      const host = started!.vars!.PUBSUB_EMULATOR_HOST!;
      const event = {
        id: '5b1f1a6e-0000-4000-8000-000000000001',
        type: 'cart.paid',
        occurredAt: new Date().toISOString(),
        cart: { id: 'cart-7', userId: 'u7', status: 'paid', currency: 'usd', totalAmount: 4500, items: [] },
        customer: { email: 'grace@example.com', name: null },
        stripe: { eventId: 'evt_1', sessionId: 'cs_test_1', paymentIntentId: 'pi_1' },
        amountMismatch: false,
      };
      const published = await fetch(`http://${host}/v1/projects/local-pubsub-test/topics/payment-events:publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ data: Buffer.from(JSON.stringify(event)).toString('base64'), orderingKey: 'cart-7' }] }),
      });
      expect(published.status).toBe(200);
      await expect.poll(() => lines, { timeout: 15_000 }).toContain('[notify] email to grace@example.com cart cart-7 cart.paid 45.00 usd');
      // Recorded for crash recovery while running.
      expect(Object.keys(JSON.parse(readFileSync(path.join(scratch, 'processes.json'), 'utf8')))).toEqual(['pubsub-emulator', 'relay']);
    } finally {
      await started?.stop();
    }
    expect(JSON.parse(readFileSync(path.join(scratch, 'processes.json'), 'utf8'))).toEqual({});
    const host = started!.vars!.PUBSUB_EMULATOR_HOST!;
    await expect(fetch(`http://${host}/`)).rejects.toThrow();
  });
});
