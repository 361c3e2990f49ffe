// A local HTTP server standing in for a Google endpoint (pubsub.googleapis.com, the certs URL).
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export type RecordedRequest = { method: string; path: string; headers: IncomingHttpHeaders; body: string };
export type LocalResponse = { status: number; body?: unknown; headers?: Record<string, string> };
/** `hang` never answers, to exercise timeouts. */
export type LocalHandler = (request: RecordedRequest) => LocalResponse | 'hang' | Promise<LocalResponse | 'hang'>;

export type LocalServer = {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
};

export async function startLocalServer(handler: LocalHandler): Promise<LocalServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const request = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(request);
      const answer = await handler(request);
      if (answer === 'hang') return;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A port for a server a test starts in another process (the relay), or one nothing listens on:
 * reserved for this run, and out of the range the kernel gives to other sockets meanwhile.
 */
export { freePort, freePort as closedPort } from '@edge-checkout/dev-stack/net';
