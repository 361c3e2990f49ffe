/**
 * What the local stack (`npm run dev`, the end-to-end tests) is made of: services started in
 * order before the Worker, each of which may provide Worker variables to the ones after it and
 * to the Worker. To add one: write a LocalService and put it in LOCAL_SERVICES
 * (local-stack.ts); child processes go through ctx.processes so that stopping the stack
 * and the next run after a crash cover them.
 */
import type { DevSecrets, Vars } from './dev-env.ts';
import type { ProcessExit, ProcessGroups } from './dev-processes.ts';

/** Ports of the local services; 0 picks a free one (tests), `npm run dev` uses fixed ones. */
export interface LocalPorts {
  postgres: number;
  stripeStandin: number;
  pubsubEmulator: number;
  relay: number;
}

export interface ServiceContext {
  /** What the developer set: .dev.vars overridden by the environment (empty values dropped). */
  configured: Vars;
  /** Variables provided by the services started before this one. */
  provided: Vars;
  /** The Worker's origin, http://127.0.0.1:PORT (it is not up yet while services start). */
  workerUrl: string;
  /** Git-ignored state of this stack: Postgres data, secrets, logs. */
  dataDir: string;
  /** The stack's generated-once local secrets (dev-secrets.json in dataDir). */
  secrets: DevSecrets;
  /** false: a throwaway database (tests). */
  persistentDatabase: boolean;
  ports: LocalPorts;
  /** Notification topic of the relay (not a Worker variable: the Worker never writes to it). */
  notificationTopic: string;
  /** How long the Stripe stand-in's bank transfers take to settle; Infinity: only its test control settles them. */
  stripeAsyncDelayMs: number;
  /**
   * Tests only: puts something (a fault proxy) between the Worker and the Pub/Sub emulator this
   * stack starts. Gets the emulator's host:port and returns the host:port the Worker publishes to;
   * the relay and the topic set-up keep the emulator's own. Its stop runs before the emulator's.
   */
  wrapPubSubEmulatorHost?: WrapHost;
  processes: ProcessGroups;
  /** `[dev]` lines. */
  log: (line: string) => void;
  /** Whole lines with their own prefix (`[relay] …`, `[notify] …`). */
  print: (line: string) => void;
}

export type WrapHost = (host: string) => Promise<{ host: string; stop(): Promise<void> }>;

/** A process of the stack that ended: its name as a line shows it ("Postgres exited (SIGKILL)"), and how. */
export type PartExit = ProcessExit & { part: string };

export interface StartedService {
  /** Worker variables this service provides (defaults: .dev.vars and the environment win). */
  vars?: Vars;
  /** Settles when the process the service depends on exits, stop() included. */
  exited?: Promise<PartExit>;
  stop(): Promise<void>;
}

export interface LocalService {
  name: string;
  /** Returns undefined when there is nothing to run (e.g. the developer configured their own). */
  start(ctx: ServiceContext): Promise<StartedService | undefined>;
}

/** The value a service should use: the developer's, else an earlier service's. */
export function effective(ctx: ServiceContext, name: string): string | undefined {
  return ctx.configured[name] ?? ctx.provided[name];
}
