import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pubsubEmulatorMissing, skipWithout } from '@edge-checkout/test-support/requirements';
import { TopicReader } from '@edge-checkout/test-support/topics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPubSubAdmin, type PubSubAdmin, setUpLocalPubSub } from '../src/pubsub-admin.ts';
import {
  locatePubSubEmulator,
  PUBSUB_EMULATOR_PROCESS_MATCH,
  type PubSubEmulator,
  startPubSubEmulator,
} from '../src/pubsub-emulator.ts';

const PROJECT = 'demo-project';
const skipped = skipWithout("Google's Pub/Sub emulator", pubsubEmulatorMissing());

describe('when the emulator is missing', () => {
  it('says gcloud is missing and starts nothing', async () => {
    const env = { PATH: '/nonexistent' };
    expect(locatePubSubEmulator(env).ok).toBe(false);
    const lines: string[] = [];
    await expect(startPubSubEmulator({ projectId: PROJECT, env, log: (line) => lines.push(line) })).resolves.toBeNull();
    expect(lines).toEqual([expect.stringMatching(/not started: gcloud is not on the PATH/)]);
  });

  it('says the emulator component is missing from a Cloud SDK without it', () => {
    const sdk = mkdtempSync(join(tmpdir(), 'fake-sdk-'));
    try {
      // a gcloud without platform/pubsub-emulator next to it
      const bin = join(sdk, 'bin');
      mkdirSync(bin);
      writeFileSync(join(bin, 'gcloud'), '#!/bin/sh\nexit 1\n');
      chmodSync(join(bin, 'gcloud'), 0o755);
      const result = locatePubSubEmulator({ PATH: bin });
      expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/Pub\/Sub emulator is not installed/) });
    } finally {
      rmSync(sdk, { recursive: true, force: true });
    }
  });
});

describe.skipIf(skipped)('Java for the emulator', () => {
  it('says so when JAVA_HOME points nowhere', () => {
    expect(locatePubSubEmulator({ PATH: process.env.PATH, JAVA_HOME: '/nonexistent-jdk' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^Java was not found/),
    });
  });
});

describe.skipIf(skipped)('Google Pub/Sub emulator', () => {
  let emulator: PubSubEmulator;
  let admin: PubSubAdmin;
  let startedInMs: number;

  beforeAll(async () => {
    const started = Date.now();
    const lines: string[] = [];
    const maybe = await startPubSubEmulator({ projectId: PROJECT, log: (line) => lines.push(line) });
    if (!maybe) throw new Error(`emulator did not start: ${lines.join('\n')}`);
    emulator = maybe;
    startedInMs = Date.now() - started;
    admin = createPubSubAdmin({ host: emulator.host, projectId: PROJECT });
  });
  afterAll(() => emulator?.stop());

  it('listens on 127.0.0.1 on a free port', async () => {
    expect(emulator.host).toMatch(/^127\.0\.0\.1:\d+$/);
    const response = await fetch(`http://${emulator.host}/`);
    expect(response.status).toBe(200);
    console.info(`Pub/Sub emulator started in ${startedInMs} ms`);
  });

  it("creates topics and subscriptions idempotently: the relay's push subscription ordered, without a dead-letter policy", async () => {
    const layout = {
      paymentTopic: 'payment-events',
      notificationTopic: 'notifications',
      relayPushEndpoint: 'http://127.0.0.1:9/pubsub/push',
    };
    const names = await setUpLocalPubSub(admin, layout);
    await setUpLocalPubSub(admin, layout);
    expect(names).toEqual({
      deadLetterTopic: 'payment-events-dead-letter',
      deadLetterSubscription: 'payment-events-dead-letter-pull',
      relaySubscription: 'payment-events-relay',
      notificationSubscription: 'notifications-pull',
    });
    const subscription = (await (
      await fetch(`http://${emulator.host}/v1/projects/${PROJECT}/subscriptions/payment-events-relay`)
    ).json()) as Record<string, unknown>;
    expect(subscription).toMatchObject({
      topic: `projects/${PROJECT}/topics/payment-events`,
      pushConfig: { pushEndpoint: layout.relayPushEndpoint },
      enableMessageOrdering: true,
    });
    expect(subscription.deadLetterPolicy).toBeUndefined();
    const deadLetters = (await (
      await fetch(`http://${emulator.host}/v1/projects/${PROJECT}/subscriptions/payment-events-dead-letter-pull`)
    ).json()) as Record<string, unknown>;
    expect(deadLetters).toMatchObject({ topic: `projects/${PROJECT}/topics/payment-events-dead-letter` });
  });

  it('pulls and acks what was published', async () => {
    await admin.createTopic('orders');
    await admin.createSubscription('orders-pull', { topic: 'orders' });
    await fetch(`http://${emulator.host}/v1/projects/${PROJECT}/topics/orders:publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ data: Buffer.from('first').toString('base64'), attributes: { k: 'v' } }] }),
    });
    const orders = new TopicReader(admin, 'orders-pull');
    const [first] = await orders.atLeast(1);
    expect(first).toMatchObject({ data: 'first', attributes: { k: 'v' } });
    expect(await orders.arrivingWithin()).toEqual([]);
  });

  it("keeps pushing to the relay's subscription after more refused pushes than Google Cloud's 5 deliveries", async () => {
    // The emulator's dead-lettering on a push subscription kills its push threads: on a layout
    // with the policy, the sixth push never came, nor any later one.
    const refusals = 6;
    const pushes: number[] = [];
    const relay = createHttpServer((request, response) => {
      request.resume();
      request.on('end', () => {
        pushes.push(pushes.length + 1);
        response.writeHead(pushes.length > refusals ? 204 : 503).end();
      });
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = relay.address() as AddressInfo;
      await setUpLocalPubSub(admin, {
        paymentTopic: 'refused-events',
        notificationTopic: 'refused-notifications',
        relayPushEndpoint: `http://127.0.0.1:${port}/pubsub/push`,
      });
      const published = await fetch(`http://${emulator.host}/v1/projects/${PROJECT}/topics/refused-events:publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ data: Buffer.from('event').toString('base64'), orderingKey: 'cart-1' }] }),
      });
      expect(published.status).toBe(200);
      await expect.poll(() => pushes.length, { timeout: 30_000 }).toBe(refusals + 1);
    } finally {
      relay.closeAllConnections();
      await new Promise((resolve) => relay.close(resolve));
    }
  });

  it("starts with a TMPDIR that has a space in it (the emulator's start script evals its options)", async () => {
    const spaced = mkdtempSync(join(tmpdir(), 'tmp with space-'));
    const previous = process.env.TMPDIR;
    process.env.TMPDIR = spaced;
    try {
      const started = await startPubSubEmulator({ projectId: PROJECT });
      expect(started).not.toBeNull();
      try {
        expect((await fetch(`http://${started!.host}/`)).status).toBe(200);
      } finally {
        await started!.stop();
      }
    } finally {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
      rmSync(spaced, { recursive: true, force: true });
    }
  });

  it('fails fast, leaving nothing behind, when the port it was given is taken', async () => {
    // Something else answering HTTP on the port must not pass for the emulator.
    const squatter = createHttpServer((_request, response) => response.end('Ok?'));
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const { port } = squatter.address() as AddressInfo;
    try {
      // The emulator's failure to bind, seen at once: waiting out the start-up timeout ends in another error.
      await expect(startPubSubEmulator({ projectId: PROJECT, port })).rejects.toThrow(
        /could not listen on 127\.0\.0\.1:\d+: address in use/,
      );
      expect(processesMentioning(`--port=${port}`)).toEqual([]);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('stops the whole process tree and frees the port', async () => {
    const port = Number(emulator.host.split(':')[1]);
    expect(processesMentioning(`--port=${port}`).length).toBeGreaterThan(0);
    // What npm run dev records to stop a crashed run's emulator: the group and its command lines.
    const group = processesInGroup(emulator.pgid);
    for (const text of PUBSUB_EMULATOR_PROCESS_MATCH) expect(group.some((line) => line.includes(text))).toBe(true);
    await emulator.stop();
    await emulator.stop();
    expect(processesMentioning(`--port=${port}`)).toEqual([]);
    expect(processesMentioning(`--host-port=127.0.0.1:${port}`)).toEqual([]);
    expect(processesInGroup(emulator.pgid)).toEqual([]);
    await expect(canConnect(port)).resolves.toBe(false);
  });
});

/** `pid: command line` of live processes (Linux /proc), with their process group. */
function liveProcesses(): Array<{ line: string; pgid: number }> {
  const found: Array<{ line: string; pgid: number }> = [];
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // fields after "(comm)": state, ppid, pgrp, …
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z') continue;
      const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      found.push({ line: `${pid}: ${commandLine}`, pgid: Number(pgrp) });
    } catch {
      // the process ended meanwhile
    }
  }
  return found;
}

function processesMentioning(needle: string): string[] {
  return liveProcesses()
    .map((entry) => entry.line)
    .filter((line) => line.includes(needle));
}

function processesInGroup(pgid: number): string[] {
  return liveProcesses()
    .filter((entry) => entry.pgid === pgid)
    .map((entry) => entry.line);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
