/**
 * `wrangler dev` turns on the DevTools Network domain of the Worker whenever it (re)connects to
 * the runtime (wrangler 4.86, templates/startDevWorker/InspectorProxyWorker.ts), even with no
 * DevTools attached: every subrequest the Worker makes (each database query, each publish)
 * then sends several inspector events, with bodies, through wrangler's proxy workerd, which
 * keeps every runtime message in a buffer until a DevTools client takes them. On the local
 * stack that cost more CPU than the Worker itself.
 *
 * So the stack stays attached as wrangler's one DevTools client: it switches the domain off, and
 * again whenever a Network event shows a reload switched it back on, and it takes the buffered
 * messages as they come. It stays attached because wrangler's proxy never finishes closing a
 * client that leaves (with its 2023 compatibility date workerd does not answer a WebSocket's
 * close for it): each client that came and went kept a socket and about 400 KB in that workerd.
 *
 * wrangler admits one client, so the stack serves the inspector port itself: a DevTools
 * connection (a WebSocket upgrade) makes the stack step aside and is passed through to wrangler,
 * whose Network panel then works as usual; once it leaves, the stack attaches again.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';

/** How long wrangler's proxy may take to let go of a client that left, before the next is let in. */
const HANDOVER_MS = 500;
/** How soon to attach again after wrangler was not there (starting, or reloading). */
const RETRY_MS = 2_000;

export interface InspectorGate {
  /** Resolves once the stack is attached with the domain off, or gave up for now (false). */
  quiet: Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Listens on `port` (the one DevTools is told about) and passes every connection through to
 * wrangler's inspector on `wranglerPort`, attached meanwhile as described above.
 */
export async function serveQuietInspector(port: number, wranglerPort: number): Promise<InspectorGate> {
  let holder: WebSocket | undefined;
  let devtoolsClients = 0;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;

  const attach = () =>
    new Promise<boolean>((resolve) => {
      if (stopped || devtoolsClients > 0 || holder) return resolve(false);
      const ws = new WebSocket(`ws://127.0.0.1:${wranglerPort}/ws`);
      holder = ws;
      // Domains switched off and not yet answered, by command id; one command per domain at a time.
      let nextId = 1;
      const pending = new Map<number, string>();
      const send = (method: string) => ws.send(JSON.stringify({ id: nextId++, method }));
      const disable = (domain: 'Network' | 'Debugger') => {
        if ([...pending.values()].includes(domain)) return;
        pending.set(nextId, domain);
        send(`${domain}.disable`);
      };
      ws.on('open', () => disable('Network'));
      ws.on('message', (data) => {
        // Every console line of the Worker comes this way too: looked at, not parsed.
        const text = String(data);
        const answered = /^\{"id":(\d+),/.exec(text);
        if (answered && pending.delete(Number(answered[1]))) resolve(true);
        // A reload: an answer the old runtime never gave is not waited for.
        else if (text.includes('"method":"Runtime.executionContextCreated"')) pending.clear();
        else if (text.includes('"method":"Network.')) disable('Network');
        // wrangler enables the debugger on a reload for the client it takes us for: a `debugger;`
        // statement would then stop the isolate, every request with it, as plain wrangler dev never does.
        else if (text.includes('"method":"Debugger.')) {
          if (text.includes('"method":"Debugger.paused"')) send('Debugger.resume');
          disable('Debugger');
        }
      });
      ws.on('error', () => {});
      ws.on('close', () => {
        if (holder === ws) holder = undefined;
        resolve(false);
        // wrangler went away (a reload of its proxy) or refused us (someone attached to its own port).
        if (!stopped && devtoolsClients === 0) retry = setTimeout(attach, RETRY_MS).unref();
      });
    });

  const detach = () => {
    clearTimeout(retry);
    holder?.terminate();
    holder = undefined;
  };

  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => {});
    client.once('data', async (first) => {
      client.pause();
      const devtools = /^upgrade:\s*websocket\s*$/im.test(first.toString('latin1'));
      let upstream: net.Socket | undefined;
      // Registered before the handover's wait: a client gone during it must still give the place back.
      client.once('close', () => {
        upstream?.destroy();
        if (devtools && --devtoolsClients === 0 && !stopped) retry = setTimeout(attach, HANDOVER_MS).unref();
      });
      if (devtools) {
        devtoolsClients += 1;
        detach();
        await sleep(HANDOVER_MS);
        if (client.destroyed) return;
      }
      upstream = net.connect(wranglerPort, '127.0.0.1');
      upstream.on('error', () => client.destroy());
      upstream.write(first);
      client.pipe(upstream).pipe(client);
      client.resume();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  return {
    quiet: Promise.race([attach(), sleep(5_000, false, { ref: false })]),
    async stop() {
      stopped = true;
      detach();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
