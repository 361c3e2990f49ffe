/**
 * Pub/Sub in the local stack (CONTRACT §7): when PUBSUB_EMULATOR_HOST is not configured and
 * gcloud with the Pub/Sub emulator is installed, the emulator, the topics and subscriptions,
 * the notification relay (`bridge/relay/src/main.ts` as a child process, as Cloud Run runs it)
 * and a feed printing each notification. Without the emulator it says so and the Worker gets
 * no Pub/Sub variables: payment events then wait in the outbox.
 */
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { PAYMENT_EVENTS_TOPIC } from '@edge-checkout/pubsub/names';
import { REPO_ROOT } from './dev-env.ts';
import { type ChildGroup, forEachLine, howItEnded } from './dev-processes.ts';
import type { LocalService, ServiceContext } from './local-service.ts';
import { assertPortFree, freePort } from './net.ts';
import { watchNotifications } from './notification-feed.ts';
import { createPubSubAdmin, setUpLocalPubSub } from './pubsub-admin.ts';
import { locatePubSubEmulator, PUBSUB_EMULATOR_PROCESS_MATCH, startPubSubEmulator } from './pubsub-emulator.ts';

export const DEFAULT_GCP_PROJECT_ID = 'edge-checkout-local';
export const DEFAULT_NOTIFICATION_TOPIC = 'notifications';

const RELAY_ENTRY = createRequire(import.meta.url).resolve('@edge-checkout/relay/main');
/** How often in a minute a relay that dies is started again. */
const RELAY_RESTARTS_PER_MINUTE = 3;
const RELAY_DOWN =
  'no notifications until npm run dev restarts, and payment events published meanwhile are lost with the emulator then';

export const pubsubService: LocalService = {
  name: 'pub/sub',
  async start(ctx) {
    const projectId = ctx.configured.GCP_PROJECT_ID ?? DEFAULT_GCP_PROJECT_ID;
    const paymentTopic = ctx.configured.PUBSUB_TOPIC ?? PAYMENT_EVENTS_TOPIC;
    // Pub/Sub of the developer's own: payment events go to the topic configured, or to the one
    // this stack would have made, which they may have made too.
    const theirs = { vars: { GCP_PROJECT_ID: projectId, PUBSUB_TOPIC: paymentTopic }, stop: async () => {} };
    if (ctx.configured.PUBSUB_EMULATOR_HOST) {
      ctx.log(
        `pubsub: PUBSUB_EMULATOR_HOST is configured; payment events go to projects/${projectId}/topics/${paymentTopic} on the emulator at ${ctx.configured.PUBSUB_EMULATOR_HOST} (no emulator, topics or relay started here)`,
      );
      return theirs;
    }
    if (ctx.configured.GCP_SERVICE_ACCOUNT_KEY) {
      ctx.log(
        `pubsub: GCP_SERVICE_ACCOUNT_KEY is configured; payment events go to Google Cloud (projects/${projectId}/topics/${paymentTopic}), no emulator started`,
      );
      return theirs;
    }
    const located = locatePubSubEmulator();
    if (!located.ok) {
      ctx.log(
        `pubsub: NOT AVAILABLE: ${located.reason}. Payment events wait in the outbox (table outbox) until Pub/Sub is configured; ` +
          'no notification relay runs. Or set PUBSUB_EMULATOR_HOST to an emulator you run.',
      );
      return undefined;
    }
    return startLocalPubSub(ctx, projectId, paymentTopic);
  },
};

async function startLocalPubSub(ctx: ServiceContext, projectId: string, paymentTopic: string) {
  // Stopped newest first; one that fails does not keep the others running.
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (let stop = stops.pop(); stop; stop = stops.pop()) {
      await stop().catch((err: unknown) => ctx.log(`pubsub: could not stop part of it: ${(err as Error).message}`));
    }
  };
  try {
    if (ctx.ports.pubsubEmulator !== 0) {
      await assertPortFree(
        ctx.ports.pubsubEmulator,
        'set PUBSUB_EMULATOR_PORT, or PUBSUB_EMULATOR_HOST to use an emulator you run',
      );
    }
    const emulator = await startPubSubEmulator({ projectId, port: ctx.ports.pubsubEmulator, log: ctx.log });
    if (!emulator) throw new Error('the Pub/Sub emulator did not start');
    // The emulator starts its own process group; recorded so the next run stops it after a crash.
    const forget = await ctx.processes.track('pubsub-emulator', emulator.pgid, PUBSUB_EMULATOR_PROCESS_MATCH);
    stops.push(async () => {
      await emulator.stop();
      await forget();
    });

    const relayPort = ctx.ports.relay || (await freePort());
    await assertPortFree(relayPort, 'set RELAY_PORT to run the notification relay on another port');
    const relayOptions = { port: relayPort, projectId, emulatorHost: emulator.host };
    let relay = await startRelayProcess(ctx, relayOptions);
    stops.push(() => relay.stop());
    const relayUrl = `http://127.0.0.1:${relayPort}`;
    await waitForRelay(relayUrl, relay);

    const admin = createPubSubAdmin({ host: emulator.host, projectId });
    const layout = await setUpLocalPubSub(admin, {
      paymentTopic,
      notificationTopic: ctx.notificationTopic,
      relayPushEndpoint: `${relayUrl}/pubsub/push`,
    });
    const feed = watchNotifications({ admin, subscription: layout.notificationSubscription, print: ctx.print });
    stops.push(feed.stop);

    let workerHost = emulator.host;
    if (ctx.wrapPubSubEmulatorHost) {
      const wrapper = await ctx.wrapPubSubEmulatorHost(emulator.host);
      stops.push(wrapper.stop);
      workerHost = wrapper.host;
      ctx.log(`pubsub: the Worker publishes through ${workerHost}, in front of the emulator`);
    }

    let stopping = false;
    let restarting: Promise<void> | undefined;
    const restarts: number[] = [];
    // The relay is started again in place: the emulator keeps pushing what it holds to the same
    // endpoint, while restarting npm run dev would start an emulator without it. Not without end:
    // a relay that dies on what it is pushed would die again each second, the emulator pushing
    // again each second.
    const restartWhenItExits = (running: ChildGroup) => {
      void running.exited.then((exit) => {
        if (stopping) return;
        const now = Date.now();
        while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
        if (restarts.length >= RELAY_RESTARTS_PER_MINUTE) {
          ctx.log(
            `pubsub: the notification relay exited (${howItEnded(exit)}), its ${RELAY_RESTARTS_PER_MINUTE + 1}th ` +
              `time within a minute; not started again: ${RELAY_DOWN}`,
          );
          return;
        }
        restarts.push(now);
        ctx.log(`pubsub: the notification relay exited (${howItEnded(exit)}); starting it again on ${relayUrl}`);
        restarting = (async () => {
          try {
            relay = await startRelayProcess(ctx, relayOptions);
            await waitForRelay(relayUrl, relay);
          } catch (err) {
            ctx.log(`pubsub: the notification relay did not start again (${(err as Error).message}); ${RELAY_DOWN}`);
            return;
          }
          if (stopping) return;
          ctx.log('pubsub: the notification relay runs again; the emulator pushes it the payment events that waited');
          restartWhenItExits(relay);
        })();
      });
    };
    restartWhenItExits(relay);
    ctx.log(
      `pubsub: emulator on ${emulator.host} (project ${projectId}): ${paymentTopic} → relay ${relayUrl}/pubsub/push → ` +
        `${ctx.notificationTopic}; notifications appear as [notify] lines`,
    );
    return {
      vars: { GCP_PROJECT_ID: projectId, PUBSUB_TOPIC: paymentTopic, PUBSUB_EMULATOR_HOST: workerHost },
      exited: emulator.exited.then((exit) => ({ part: 'the Pub/Sub emulator', ...exit })),
      stop: async () => {
        stopping = true;
        // A relay being started again is stopped with the rest, not left behind.
        await restarting;
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function startRelayProcess(
  ctx: ServiceContext,
  opts: { port: number; projectId: string; emulatorHost: string },
): Promise<ChildGroup> {
  // tsx's loader in this Node process: one process per relay, not tsx's CLI and its child.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return ctx.processes
    .spawn({
      name: 'relay',
      command: process.execPath,
      args: ['--import', tsx, RELAY_ENTRY],
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        PORT: String(opts.port),
        GCP_PROJECT_ID: opts.projectId,
        NOTIFICATION_TOPIC: ctx.notificationTopic,
        // The emulator pushes without an OIDC token; the relay accepts that only with an emulator.
        PUSH_AUTH: 'none',
        PUBSUB_EMULATOR_HOST: opts.emulatorHost,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      match: [RELAY_ENTRY],
    })
    .then((relay) => {
      const show = (line: string) => ctx.print(`[relay] ${readableRelayLine(line)}`);
      forEachLine(relay.stdout, show);
      forEachLine(relay.stderr, show);
      return relay;
    });
}

/** The relay logs JSON for Cloud Logging; a terminal reads `INFO message key=value` better. */
function readableRelayLine(line: string): string {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof entry !== 'object' || entry === null) return line;
  const { severity, message, ...fields } = entry as Record<string, unknown>;
  const details = Object.entries(fields)
    .filter(([, value]) => value !== undefined && value !== null)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return [severity, message, ...details].filter((part) => part !== undefined).join(' ');
}

async function waitForRelay(relayUrl: string, relay: ChildGroup): Promise<void> {
  let exited = false;
  void relay.exited.then(() => {
    exited = true;
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error('the notification relay exited during start (its [relay] lines above say why)');
    const healthy = await fetch(`${relayUrl}/healthz`, { signal: AbortSignal.timeout(1_000) })
      .then((res) => res.ok)
      .catch(() => false);
    if (healthy) return;
    await sleep(100);
  }
  throw new Error(`the notification relay did not answer ${relayUrl}/healthz within 30 s`);
}
