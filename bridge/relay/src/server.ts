// Wires the relay for a real process: publisher credentials, push verification, HTTP server.

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { batchingPublisher, createPubSubPublisher } from '@edge-checkout/pubsub';
import { serve } from '@hono/node-server';
import { createRelayApp } from './app.ts';
import type { RelayConfig } from './config.ts';
import { jsonLog, type RelayLog } from './log.ts';
import { acceptEveryPush, createOidcVerifier } from './oidc.ts';
import { pubSubConnection } from './pubsub-connection.ts';

// Cloud Run sends SIGTERM and allows 10 s before SIGKILL.
const SHUTDOWN_GRACE_MS = 8_000;

export type RunningRelay = {
  /** `http://host:port` it listens on. */
  url: string;
  port: number;
  /** Stops accepting requests, lets the ones in flight finish (up to `graceMs`), then resolves. */
  close(graceMs?: number): Promise<void>;
};

export type StartRelayOptions = {
  /** Cloud Run needs 0.0.0.0 (the default); local tools pass 127.0.0.1. */
  hostname?: string;
  log?: RelayLog;
  /** Google's PEM certificates endpoint, for tests with local keys. */
  oidcCertsUrl?: string;
};

export async function startRelay(config: RelayConfig, opts: StartRelayOptions = {}): Promise<RunningRelay> {
  const log = opts.log ?? jsonLog;
  const publisher = createPubSubPublisher({
    projectId: config.projectId,
    topic: config.notificationTopic,
    ...pubSubConnection(config),
  });
  if (config.pushAuth === 'none') {
    log(
      'WARNING',
      'PUSH_AUTH=none: push requests are NOT authenticated; allowed only because PUBSUB_EMULATOR_HOST is set',
      {
        emulatorHost: config.emulatorHost,
      },
    );
  }
  if (config.pushAuth === 'oidc' && !config.pushServiceAccount) {
    // Any Google account can get an OIDC token for any audience: only the push subscription's
    // own service account proves that Pub/Sub sent the request
    // (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions).
    log('WARNING', 'PUSH_SERVICE_ACCOUNT is not set: any Google-signed token for PUSH_AUDIENCE is accepted', {
      pushAudience: config.pushAudience,
    });
  }
  const verifier =
    config.pushAuth === 'none'
      ? acceptEveryPush
      : createOidcVerifier({
          // loadRelayConfig requires PUSH_AUDIENCE with oidc
          audience: config.pushAudience ?? '',
          serviceAccountEmail: config.pushServiceAccount,
          certsUrl: opts.oidcCertsUrl,
        });
  // Concurrent pushes share publish calls (Google's client batching defaults): each push still
  // answers only once the call carrying its notification is through.
  const app = createRelayApp({ publisher: batchingPublisher(publisher), verifier, log });

  const hostname = opts.hostname ?? '0.0.0.0';
  const { server, address } = await new Promise<{ server: ReturnType<typeof serve>; address: AddressInfo }>(
    (resolve, reject) => {
      const server = serve({ fetch: app.fetch, port: config.port, hostname }, (address) =>
        resolve({ server, address }),
      );
      server.once('error', reject);
    },
  );
  const url = `http://${hostname === '0.0.0.0' ? '127.0.0.1' : hostname}:${address.port}`;
  log('INFO', `relay listening on ${hostname}:${address.port}`, {
    notificationTopic: publisher.topicPath,
    pushAuth: config.pushAuth,
    emulatorHost: config.emulatorHost,
  });

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    close: (graceMs = SHUTDOWN_GRACE_MS) =>
      (closing ??= new Promise<void>((resolve) => {
        // serve() without http2/https options makes a node:http server.
        const http = server as Server;
        const force = setTimeout(() => http.closeAllConnections(), graceMs);
        // A keep-alive connection becomes idle once its request is answered; close it then
        // rather than waiting for the client's keep-alive timeout.
        const reapIdle = setInterval(() => http.closeIdleConnections(), 50);
        http.close(() => {
          clearTimeout(force);
          clearInterval(reapIdle);
          resolve();
        });
        http.closeIdleConnections();
      })),
  };
}
