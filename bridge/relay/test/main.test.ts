// `npm run relay` as a process: configuration errors and Cloud Run's SIGTERM.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, type LocalServer, startLocalServer } from '@edge-checkout/test-support/local-server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { paymentEvent, pushEnvelope } from './helpers/payment-event.ts';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

type Relay = { child: ChildProcess; lines: () => Array<Record<string, unknown>>; exited: Promise<number | null> };

/** The relay's process, or with `viaNpm` the `npm run relay` in front of it (`child` is then npm's). */
function startMain(env: Record<string, string>, opts: { viaNpm?: boolean } = {}): Relay {
  const [command, args] = opts.viaNpm
    ? ['npm', ['run', '--silent', 'relay']]
    : [process.execPath, ['--import', 'tsx', MAIN]];
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // A group of its own, so that cleanup reaches a process npm left behind.
    detached: true,
  });
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = () =>
    stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { child, lines, exited };
}

async function waitForLine(relay: Relay, pattern: RegExp): Promise<void> {
  await vi.waitFor(
    () => expect(relay.lines().map((line) => String(line.message))).toContainEqual(expect.stringMatching(pattern)),
    // A process start through tsx (or npm): seconds on a busy machine.
    20_000,
  );
}

const running: Relay[] = [];
const servers: LocalServer[] = [];
afterEach(async () => {
  for (const relay of running.splice(0)) {
    try {
      process.kill(-relay.child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

describe('npm run relay', () => {
  it('exits 1 naming a missing variable', async () => {
    const relay = startMain({
      NOTIFICATION_TOPIC: 'notifications',
      PUSH_AUDIENCE: 'https://relay.example/pubsub/push',
    });
    running.push(relay);
    expect(await relay.exited).toBe(1);
    expect(relay.lines()).toEqual([
      expect.objectContaining({
        severity: 'ERROR',
        message: 'relay not started: GCP_PROJECT_ID is required',
        variable: 'GCP_PROJECT_ID',
      }),
    ]);
  });

  it('refuses PUSH_AUTH=none outside the emulator', async () => {
    const relay = startMain({ GCP_PROJECT_ID: 'demo-project', NOTIFICATION_TOPIC: 'notifications', PUSH_AUTH: 'none' });
    running.push(relay);
    expect(await relay.exited).toBe(1);
    expect(String(relay.lines()[0].message)).toMatch(/PUSH_AUTH "none" is only allowed with PUBSUB_EMULATOR_HOST/);
  });

  it('on SIGTERM finishes the push in flight, then exits 0', async () => {
    // A Pub/Sub stand-in that holds the publish until the relay has had its SIGTERM.
    let arrive!: () => void;
    const publishArrived = new Promise<void>((resolve) => (arrive = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const pubsub = await startLocalServer(async () => {
      arrive();
      await released;
      return { status: 200, body: { messageIds: ['n-1'] } };
    });
    servers.push(pubsub);
    const port = await freePort();
    const relay = startMain({
      PORT: String(port),
      GCP_PROJECT_ID: 'demo-project',
      NOTIFICATION_TOPIC: 'notifications',
      PUSH_AUTH: 'none',
      PUBSUB_EMULATOR_HOST: new URL(pubsub.url).host,
    });
    running.push(relay);
    // Without authentication it listens on loopback only.
    await waitForLine(relay, /^relay listening on 127\.0\.0\.1:/);
    expect(
      relay.lines().some((line) => line.severity === 'WARNING' && /NOT authenticated/.test(String(line.message))),
    ).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    const inFlight = fetch(`http://127.0.0.1:${port}/pubsub/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(pushEnvelope(paymentEvent())),
    });
    await publishArrived;
    relay.child.kill('SIGTERM');
    await waitForLine(relay, /^SIGTERM: finishing requests in flight/);
    // Ctrl-C under npm signals twice (the terminal's and npm's): more signals must not cut it short.
    relay.child.kill('SIGINT');
    relay.child.kill('SIGINT');
    release();

    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'published', messageId: 'n-1' });
    expect(await relay.exited).toBe(0);
    expect(relay.lines().map((line) => line.message)).toContain('relay stopped');
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('stops when the SIGTERM goes to npm itself, as a process manager sends it', async () => {
    const port = await freePort();
    const relay = startMain(
      {
        PORT: String(port),
        GCP_PROJECT_ID: 'demo-project',
        NOTIFICATION_TOPIC: 'notifications',
        PUSH_AUTH: 'none',
        PUBSUB_EMULATOR_HOST: '127.0.0.1:9',
      },
      { viaNpm: true },
    );
    running.push(relay);
    await waitForLine(relay, /^relay listening on 127\.0\.0\.1:/);
    // npm's process only, not its group: npm must pass it on to the relay.
    relay.child.kill('SIGTERM');
    await waitForLine(relay, /^relay stopped$/);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
