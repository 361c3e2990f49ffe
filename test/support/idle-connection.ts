// Whether a server keeps an idle keep-alive connection open past workerd's own idle limit.
import http from 'node:http';

/**
 * workerd's fetch closes a pooled connection after 5 s idle (kj HttpClientSettings idleTimeout,
 * capnproto kj/compat/http.h). A local server that closes first can lose a request sent as it
 * closes, so it must keep the connection longer: sends the request, waits past 5 s, sends it
 * again on the same agent, and reports whether the second went out on the first's socket.
 */
export async function reusedAfterWorkerdIdle(
  url: string,
  request: { method: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number | undefined; reused: boolean }[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const send = () =>
    new Promise<{ status: number | undefined; reused: boolean }>((resolve, reject) => {
      const req = http.request(url, { method: request.method, headers: request.headers, agent });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, reused: req.reusedSocket }));
      });
      req.on('error', reject);
      req.end(request.body);
    });
  try {
    const first = await send();
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    return [first, await send()];
  } finally {
    agent.destroy();
  }
}
