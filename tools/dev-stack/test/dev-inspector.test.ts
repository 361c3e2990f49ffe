import { once } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { type InspectorGate, serveQuietInspector } from '../src/dev-inspector.ts';
import { freePort } from '../src/net.ts';

/**
 * wrangler's inspector proxy as it behaves (wrangler 4.86, InspectorProxyWorker.ts): one DevTools
 * client at a time, a second one closed with 1013; commands answered by id; Network events sent
 * while the domain is on, which a reload of the Worker turns on again.
 */
class FakeWranglerInspector {
  readonly server: WebSocketServer;
  connections = 0;
  networkOn = true;
  disables = 0;
  readonly commands: string[] = [];
  private client: WebSocket | undefined;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly port: number) {
    this.server = new WebSocketServer({ host: '127.0.0.1', port });
    this.server.on('connection', (ws) => {
      if (this.client) return ws.close(1013, 'Too many clients; only one can be connected at a time');
      this.connections += 1;
      this.client = ws;
      ws.on('close', () => {
        if (this.client === ws) this.client = undefined;
      });
      ws.on('message', (data) => {
        const { id, method } = JSON.parse(String(data)) as { id: number; method: string };
        this.commands.push(method);
        if (method === 'Network.disable') {
          this.networkOn = false;
          this.disables += 1;
        }
        if (method === 'Network.enable') this.networkOn = true;
        ws.send(JSON.stringify({ id, result: {} }));
        for (const wake of this.waiters.splice(0)) wake();
      });
    });
  }

  /** Resolves at the next command a client sends. */
  nextCommand(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** What the proxy does when the Worker reloads: the domain on again, and the Worker's subrequests reported. */
  reload(): void {
    this.networkOn = true;
    this.client?.send(JSON.stringify({ method: 'Network.requestWillBeSent', params: { requestId: '1' } }));
  }

  /** A `debugger;` statement hit while wrangler had the debugger on (it turns it on at a reload when a client is attached). */
  pauseAtDebuggerStatement(): void {
    this.client?.send(JSON.stringify({ method: 'Debugger.paused', params: { reason: 'other', callFrames: [] } }));
  }

  close(): Promise<void> {
    for (const ws of this.server.clients) ws.terminate();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const done of cleanup.splice(0).reverse()) await done();
});

async function gateInFrontOfWrangler(): Promise<{
  wrangler: FakeWranglerInspector;
  gate: InspectorGate;
  port: number;
}> {
  const wrangler = new FakeWranglerInspector(await freePort());
  await once(wrangler.server, 'listening');
  cleanup.push(() => wrangler.close());
  const port = await freePort();
  const gate = await serveQuietInspector(port, wrangler.port);
  cleanup.push(() => gate.stop());
  return { wrangler, gate, port };
}

describe('the dev stack in front of wrangler inspector', () => {
  it('switches Network off and again after each reload, on the one connection it keeps', async () => {
    const { wrangler, gate } = await gateInFrontOfWrangler();
    expect(await gate.quiet).toBe(true);
    expect(wrangler.networkOn).toBe(false);
    for (let reload = 0; reload < 3; reload++) {
      const disabled = wrangler.nextCommand();
      wrangler.reload();
      await disabled;
      expect(wrangler.networkOn).toBe(false);
    }
    // wrangler's proxy never finishes closing a client that left (each kept a socket): one connection only.
    expect(wrangler.connections).toBe(1);
    expect(wrangler.disables).toBe(4);
  });

  it('steps aside for DevTools on its port, whose commands reach wrangler, and attaches again once it leaves', async () => {
    const { wrangler, gate, port } = await gateInFrontOfWrangler();
    await gate.quiet;
    const devtools = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const closed = new Promise<number>((resolve) => devtools.on('close', (code) => resolve(code)));
    await once(devtools, 'open');
    devtools.send(JSON.stringify({ id: 1, method: 'Network.enable' }));
    const [answer] = (await Promise.race([once(devtools, 'message'), closed.then((code) => [`closed ${code}`])])) as [
      unknown,
    ];
    expect(JSON.parse(String(answer))).toEqual({ id: 1, result: {} });
    expect(wrangler.networkOn).toBe(true);

    const disabledAgain = wrangler.nextCommand();
    devtools.close();
    await disabledAgain;
    expect(wrangler.networkOn).toBe(false);
    expect(wrangler.connections).toBe(3);
  });

  it('lets the Worker run on when a reload turned the debugger on and a `debugger;` statement stopped it', async () => {
    const { wrangler, gate } = await gateInFrontOfWrangler();
    await gate.quiet;
    const resumed = wrangler.nextCommand();
    wrangler.pauseAtDebuggerStatement();
    await resumed;
    await vi.waitFor(() => expect(wrangler.commands).toContain('Debugger.disable'));
    expect(wrangler.commands).toEqual(['Network.disable', 'Debugger.resume', 'Debugger.disable']);
  });

  it('attaches again after a DevTools client that left while the stack was stepping aside for it', async () => {
    const { wrangler, gate, port } = await gateInFrontOfWrangler();
    await gate.quiet;
    const devtools = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    devtools.on('error', () => {});
    // Gone before the handover is over: its upgrade never reaches wrangler.
    await vi.waitFor(() => expect(wrangler.server.clients.size).toBe(0));
    const attachedAgain = wrangler.nextCommand();
    devtools.terminate();
    await attachedAgain;
    expect(wrangler.connections).toBe(2);
    expect(wrangler.networkOn).toBe(false);
  });
});
