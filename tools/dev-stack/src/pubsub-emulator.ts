// Starts Google's Pub/Sub emulator (`gcloud beta emulators pubsub start`) for tests and
// `npm run dev`. The emulator ships with the Google Cloud CLI, not with npm, so every caller
// must cope with it being absent: startPubSubEmulator then resolves to null.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import type { ProcessExit } from './dev-processes.ts';
import { freePort } from './net.ts';

export type PubSubEmulator = {
  /** `127.0.0.1:PORT`, the value for PUBSUB_EMULATOR_HOST. */
  host: string;
  /**
   * Process group of gcloud and its Java server, for callers that record it so that a later
   * run can stop an emulator left behind by a crash (dev-processes.ts).
   */
  pgid: number;
  /** Settles when gcloud, which runs the Java server, exits (or could not be started), stop() included. */
  exited: Promise<ProcessExit>;
  /** Stops the emulator and its Java child; resolves once both are gone. Safe to call twice. */
  stop(): Promise<void>;
};

export type StartPubSubEmulatorOptions = {
  projectId: string;
  /** 0 or absent: a free port. */
  port?: number;
  log?: (line: string) => void;
  /** Environment used to find gcloud and java and given to the emulator; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the emulator to answer; default 60 s. */
  readyTimeoutMs?: number;
};

type Located = { ok: true; gcloud: string } | { ok: false; reason: string };

const EMULATOR_SCRIPT = join('platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');
const STOP_GRACE_MS = 5_000;

/** Finds gcloud with the Pub/Sub emulator component and Java, or says what is missing. */
export function locatePubSubEmulator(env: NodeJS.ProcessEnv = process.env): Located {
  const gcloud = findOnPath('gcloud', env);
  if (!gcloud) {
    return {
      ok: false,
      reason:
        'gcloud is not on the PATH (install the Google Cloud CLI, then `gcloud components install pubsub-emulator beta`)',
    };
  }
  // gcloud lives in <sdk>/bin; apt and brew installs reach it through a symlink.
  const sdkRoot = dirname(dirname(realpathSync(gcloud)));
  if (!existsSync(join(sdkRoot, EMULATOR_SCRIPT))) {
    return {
      ok: false,
      reason: `the Pub/Sub emulator is not installed in ${sdkRoot} (\`gcloud components install pubsub-emulator beta\`, or apt package google-cloud-cli-pubsub-emulator)`,
    };
  }
  // The emulator's start script uses $JAVA_HOME/bin/java when JAVA_HOME is set, else java on the PATH.
  const java = env.JAVA_HOME ? existsSync(join(env.JAVA_HOME, 'bin', 'java')) : findOnPath('java', env);
  if (!java) {
    return {
      ok: false,
      reason: 'Java was not found (JAVA_HOME or the PATH); the Pub/Sub emulator needs Java 11 or newer',
    };
  }
  return { ok: true, gcloud };
}

export async function startPubSubEmulator(opts: StartPubSubEmulatorOptions): Promise<PubSubEmulator | null> {
  const log = opts.log ?? (() => {});
  const env = opts.env ?? process.env;
  const located = locatePubSubEmulator(env);
  if (!located.ok) {
    log(`pubsub emulator: not started: ${located.reason}`);
    return null;
  }
  // A port we picked can be taken by someone else before the emulator binds it; try again then.
  const attempts = opts.port ? 1 : 3;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port || (await freePort());
    try {
      return await launch(located.gcloud, port, opts, env, log);
    } catch (error) {
      if (attempt >= attempts || !(error instanceof PortInUseError)) throw error;
      log(`pubsub emulator: failed on port ${port}, trying another port`);
    }
  }
}

class PortInUseError extends Error {}

async function launch(
  gcloud: string,
  port: number,
  opts: StartPubSubEmulatorOptions,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<PubSubEmulator> {
  const started = Date.now();
  // gcloud writes an env.yaml into the data dir; keep it out of the user's ~/.config.
  const dataDir = mkdtempSync(join(tmpdir(), 'pubsub-emulator-'));
  const command = emulatorCommand({ gcloud, projectId: opts.projectId, port, dataDir, env });
  const { host } = command;
  const child = spawn(command.command, command.args, {
    env: command.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: stop() signals gcloud's Python and the Java server it spawns together.
    detached: true,
  });
  const output: string[] = [];
  // The Java server does not exit when its port is taken: it prints a BindException and hangs.
  let portTaken = false;
  const keep = (chunk: Buffer) => {
    const lines = chunk.toString().split('\n').filter(Boolean);
    if (lines.some((line) => /BindException|Address already in use/.test(line))) portTaken = true;
    output.push(...lines);
    output.splice(0, Math.max(0, output.length - 40));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    // A failed spawn (EACCES…) emits 'error' and possibly no 'exit'.
    child.once('error', (error) => {
      output.push(error.message);
      resolve({ code: null, signal: null });
    });
  });
  // If our process dies without calling stop(), do not leave a Java server behind.
  const killOnExit = () => signalGroup(child, 'SIGKILL');
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      await terminateGroup(child, exited);
      rmSync(dataDir, { recursive: true, force: true });
    })());

  log(`pubsub emulator: starting on ${host} (project ${opts.projectId})`);
  try {
    await waitForPubSubEmulator(host, { exited, portTaken: () => portTaken, timeoutMs: opts.readyTimeoutMs });
  } catch (error) {
    await stop();
    const tail = output.slice(-15).join('\n');
    if (error instanceof PortInUseError) throw error;
    throw new Error(`${(error as Error).message}:\n${tail}`);
  }
  log(`pubsub emulator: ready on ${host} after ${Date.now() - started} ms`);
  return { host, pgid: child.pid!, exited, stop };
}

/**
 * Texts in the command lines of the emulator's processes (gcloud's Python, the Java server): how
 * a later run can tell a leftover emulator group from unrelated processes that reused its id.
 */
export const PUBSUB_EMULATOR_PROCESS_MATCH = ['emulators pubsub start', 'cloud-pubsub-emulator'];

type EmulatorCommand = { command: string; args: string[]; env: NodeJS.ProcessEnv; host: string };

/** A java.util.logging configuration in `dir` that lets warnings and errors through, and its path. */
function warningsOnlyLogging(dir: string): string {
  const file = join(dir, 'logging.properties');
  writeFileSync(
    file,
    [
      'handlers=java.util.logging.ConsoleHandler',
      '.level=WARNING',
      'java.util.logging.ConsoleHandler.level=WARNING',
      '',
    ].join('\n'),
  );
  return file;
}

// gcloud does not pass SIGTERM on to the Java server: run this in its own process group and
// signal the group.
function emulatorCommand(opts: {
  gcloud: string;
  projectId: string;
  port: number;
  dataDir: string;
  env: NodeJS.ProcessEnv;
}): EmulatorCommand {
  const host = `127.0.0.1:${opts.port}`;
  return {
    command: opts.gcloud,
    args: [
      'beta',
      'emulators',
      'pubsub',
      'start',
      `--project=${opts.projectId}`,
      `--host-port=${host}`,
      `--data-dir=${opts.dataDir}`,
    ],
    env: {
      ...opts.env,
      CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
      CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
      CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
      // The emulator's start script passes this to the JVM after JAVA_OPTS. A value of the
      // user's own wins. Measured on 2 cores (OpenJDK 17), publishing after a warm-up:
      // - only the client compiler (C1): the server compiler's profiling and compiling cost more
      //   CPU than a short dev or test run ever wins back (1.0–1.15 ms of the JVM's CPU per
      //   message in calls of 10 with the defaults, 0.5–0.7 ms with this);
      // - warnings only: at INFO the emulator logs every header of every HTTP call, about 20
      //   lines a call, which gcloud's Python reads and prints again. One message a call cost
      //   1.35 ms of Java and 0.65 ms of Python with them, 0.95 ms of Java alone without.
      //   Start-up failures (a port in use) are uncaught exceptions, printed all the same.
      // - the serial collector: the emulator's heap is small, and G1's barriers and concurrent
      //   threads cost more than they save there. Calls of one message (one ordering key a
      //   request, as the outbox sends them), 8 at a time, after a warm-up: 0.90–0.94 ms of the
      //   JVM's CPU a call with G1 (the JVM's choice on 2 cores), 0.73–0.79 ms with this.
      // - methods compiled after a tenth of the usual calls: an emulator started for a dev
      //   session or a test run is otherwise still interpreting much of its publish path after
      //   hundreds of calls. In `npm run bench` without the relay (200 warm-up payments, then
      //   1,200 webhooks), the emulator spent 1.15 and 1.18 ms of CPU per webhook without this,
      //   0.68 and 0.77 ms with it, runs taken in turn; start-up is unchanged (about 1.2 s).
      CLOUD_PUBSUB_EMULATOR_OPTS:
        opts.env.CLOUD_PUBSUB_EMULATOR_OPTS ??
        `-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:CompileThresholdScaling=0.1 ${shellQuoted(`-Djava.util.logging.config.file=${warningsOnlyLogging(opts.dataDir)}`)}`,
    },
    host,
  };
}

/**
 * One word for a shell: the emulator's start script `eval`s CLOUD_PUBSUB_EMULATOR_OPTS, so a
 * path with a space in it (a TMPDIR of `/tmp/x y`) would otherwise be cut in two.
 */
function shellQuoted(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Resolves once the emulator at `host` answers; rejects if it exits or cannot bind first, or after the timeout (default 60 s). */
async function waitForPubSubEmulator(
  host: string,
  opts: { exited: Promise<unknown>; portTaken: () => boolean; timeoutMs?: number },
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let hasExited = false;
  void opts.exited.then(() => {
    hasExited = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (hasExited) throw new Error('Pub/Sub emulator exited before it was ready');
    if (opts.portTaken()) throw new PortInUseError(`Pub/Sub emulator could not listen on ${host}: address in use`);
    try {
      // The emulator answers "Ok" on its root once its HTTP server is up; anything else on
      // the port is not our emulator.
      const response = await fetch(`http://${host}/`, { signal: AbortSignal.timeout(1_000) });
      if (response.ok && (await response.text()).trim() === 'Ok') return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Pub/Sub emulator did not answer on ${host} within ${timeoutMs} ms`);
}

async function terminateGroup(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (!signalGroup(child, 'SIGTERM')) return;
  if (await groupGoneWithin(child, exited, STOP_GRACE_MS)) return;
  signalGroup(child, 'SIGKILL');
  // Bounded: a zombie that nobody reaps still "exists" for kill(pid, 0).
  await groupGoneWithin(child, exited, STOP_GRACE_MS);
}

/** True once gcloud has exited and no process of its group (the Java server) is left. */
async function groupGoneWithin(child: ChildProcess, exited: Promise<unknown>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref());
  if (!(await Promise.race([exited.then(() => true), timedOut]))) return false;
  while (signalGroup(child, 0)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** Signals the child's process group; false when the group no longer exists. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals | 0): boolean {
  if (child.pid === undefined) return false;
  try {
    process.kill(-child.pid, signal);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(command: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}
