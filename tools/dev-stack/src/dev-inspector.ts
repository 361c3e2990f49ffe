/**
 * `wrangler dev` turns on the DevTools Network domain of the Worker whenever it (re)connects to
 * the runtime (wrangler 4.86, templates/startDevWorker/InspectorProxyWorker.ts), even with no
 * DevTools attached: every subrequest the Worker makes (each database query, each publish)
 * then sends several inspector events, with bodies, through wrangler's proxy workerd to
 * wrangler's Node, which keeps them until DevTools attaches. On the local stack that cost more
 * CPU than the Worker itself. The stack switches the domain off again while nobody is looking;
 * DevTools turns it back on when it attaches, so its Network panel still works.
 */
import WebSocket from 'ws';

/**
 * Sends `Network.disable` through wrangler's inspector on `port`, then disconnects. Quietly
 * does nothing when a DevTools client is attached (wrangler allows one) or nothing answers.
 */
async function quietNetworkEvents(port: number, timeoutMs = 5_000): Promise<boolean> {
  let ws: WebSocket;
  try {
    const targets = (await (
      await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(timeoutMs) })
    ).json()) as {
      webSocketDebuggerUrl?: string;
    }[];
    const url = targets[0]?.webSocketDebuggerUrl;
    if (!url) return false;
    ws = new WebSocket(url);
  } catch {
    return false;
  }
  return new Promise<boolean>((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    const id = 424_242;
    ws.on('open', () => ws.send(JSON.stringify({ id, method: 'Network.disable' })));
    ws.on('message', (data) => {
      // wrangler first replays the runtime's messages kept so far; ours is the answer with our id.
      const message = JSON.parse(String(data)) as { id?: number };
      if (message.id === id) done(true);
    });
    ws.on('error', () => done(false));
    ws.on('close', () => done(false));
  });
}

/**
 * Switches the domain off now and again every `intervalMs`: wrangler switches it on again each
 * time it reloads the Worker, and prints nothing we could wait for when its output goes straight
 * to the terminal. Resolves, once the first attempt is done, to a function that stops it.
 */
export async function keepNetworkEventsQuiet(port: number, intervalMs = 10_000): Promise<() => Promise<void>> {
  await quietNetworkEvents(port);
  let last = Promise.resolve(true);
  const timer = setInterval(() => {
    last = last.then(() => quietNetworkEvents(port));
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await last;
  };
}
