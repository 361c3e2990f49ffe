/**
 * Child processes of `npm run dev` (wrangler and its workerd, later emulators), each started in
 * its own process group so one signal stops the whole tree, and recorded in a small file so
 * that the next run can stop what a crashed run (kill -9, closed terminal) left behind.
 */
import { type ChildProcess, type StdioOptions, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { writePrivateFile } from './dev-env.ts';

export interface SpawnGroupOptions {
  /** Unique name, for logs and the registry. */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  stdio?: StdioOptions;
  /**
   * Texts found in the command lines of this group's processes (e.g. 'wrangler', 'workerd'):
   * how a later run tells a leftover group from unrelated processes that reused its id.
   */
  match: string[];
}

/** How a process ended: its exit code, or the signal that ended it. */
export type ProcessExit = { code: number | null; signal: NodeJS.Signals | null };

/** "SIGKILL", or "code 1": how a line says a process ended. */
export const howItEnded = ({ code, signal }: ProcessExit): string => signal ?? `code ${code}`;

/** Settles when `child` exits, at once if it has: listened for now, as 'exit' is emitted once. */
export function exitOf(child: ChildProcess): Promise<ProcessExit> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

export interface ChildGroup {
  name: string;
  pid: number;
  /** The leader's output when `stdio` asked for pipes; null when it was inherited or ignored. */
  stdout: Readable | null;
  stderr: Readable | null;
  /** Settles when the group leader exits. */
  exited: Promise<ProcessExit>;
  /** SIGTERM to the group, SIGKILL after graceMs; resolves when none of it runs. */
  stop(graceMs?: number): Promise<void>;
}

interface RegistryEntry {
  pgid: number;
  match: string[];
}

export class ProcessGroups {
  constructor(
    private readonly registryFile: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Stops every recorded group still running (a crashed run's), then forgets them. */
  async stopLeftovers(): Promise<void> {
    for (const [name, entry] of Object.entries(this.read())) {
      if (groupMembers(entry).length === 0) continue;
      this.log(`stopping ${name} (process group ${entry.pgid}) left running by an earlier run`);
      await stopGroup(entry, 3_000);
    }
    await this.write({});
  }

  async spawn(opts: SpawnGroupOptions): Promise<ChildGroup> {
    // detached: a new session and process group led by the child; -pid then signals all of it.
    const child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: opts.stdio ?? ['ignore', 'inherit', 'inherit'],
      detached: true,
    });
    // Listened for before anything is awaited: 'exit' is emitted once, and a child that dies
    // while the registry is written (a wrangler that cannot start) would otherwise never settle.
    const exited = exitOf(child);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new Error(`cannot start ${opts.name} (${opts.command}): ${err.message}`)));
    });
    const pid = child.pid!;
    const entry: RegistryEntry = { pgid: pid, match: opts.match };
    await this.write({ ...this.read(), [opts.name]: entry });

    let stopping: Promise<void> | undefined;
    const stop = (graceMs = 5_000) =>
      (stopping ??= (async () => {
        await stopGroup(entry, graceMs);
        const { [opts.name]: _removed, ...rest } = this.read();
        await this.write(rest);
      })());
    return { name: opts.name, pid, stdout: child.stdout, stderr: child.stderr, exited, stop };
  }

  /**
   * Records a process group started elsewhere (e.g. the Pub/Sub emulator, which starts itself)
   * so that a crashed run's leftover is stopped by the next run like our own children. The
   * returned function forgets it once its owner has stopped it.
   */
  async track(name: string, pgid: number, match: string[]): Promise<() => Promise<void>> {
    await this.write({ ...this.read(), [name]: { pgid, match } });
    return async () => {
      const { [name]: _removed, ...rest } = this.read();
      await this.write(rest);
    };
  }

  private read(): Record<string, RegistryEntry> {
    if (!existsSync(this.registryFile)) return {};
    try {
      return JSON.parse(readFileSync(this.registryFile, 'utf8')) as Record<string, RegistryEntry>;
    } catch {
      return {}; // half-written by a crash: nothing trustworthy to stop
    }
  }

  private async write(entries: Record<string, RegistryEntry>): Promise<void> {
    await writePrivateFile(this.registryFile, `${JSON.stringify(entries, null, 2)}\n`);
  }
}

async function stopGroup(entry: RegistryEntry, graceMs: number): Promise<void> {
  for (const [signal, waitMs] of [
    ['SIGTERM', graceMs],
    ['SIGKILL', 3_000],
  ] as const) {
    if (groupMembers(entry).length === 0) return;
    try {
      process.kill(-entry.pgid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return;
      throw err;
    }
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      if (groupMembers(entry).length === 0) return;
      await sleep(100);
    }
  }
  const left = groupMembers(entry);
  if (left.length > 0) throw new Error(`processes ${left.join(', ')} of group ${entry.pgid} did not stop`);
}

/**
 * Live (not zombie) processes of the group. A group is only ours while one of its processes
 * still shows the expected command; otherwise the id was reused and we leave it alone.
 */
function groupMembers(entry: RegistryEntry): number[] {
  const ps = spawnSync('ps', ['-eo', 'pid=,pgid=,stat=,args='], { encoding: 'utf8' });
  if (ps.error || ps.status !== 0) throw new Error(`cannot list processes with ps: ${ps.error?.message ?? ps.stderr}`);
  const members: Array<{ pid: number; args: string }> = [];
  for (const line of ps.stdout.split('\n')) {
    const match = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (!match || Number(match[2]) !== entry.pgid || match[3]!.startsWith('Z')) continue;
    members.push({ pid: Number(match[1]), args: match[4]! });
  }
  const ours = members.some((m) => entry.match.some((text) => m.args.includes(text)));
  return ours ? members.map((m) => m.pid) : [];
}

/**
 * One `npm run dev` per checkout: a second one would take the first one's Postgres and wrangler
 * for a crashed run's leftovers and stop them. `match` is text of the owner's command line
 * (e.g. 'tools/dev-stack/src/dev.ts'), so a reused PID does not count as a running owner.
 */
export async function claimSingleRun(file: string, match: string): Promise<void> {
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
      const ps = spawnSync('ps', ['-o', 'stat=,args=', '-p', String(pid)], { encoding: 'utf8' });
      const line = ps.stdout.trim();
      if (line && !line.startsWith('Z') && line.includes(match)) {
        throw new Error(`npm run dev is already running in this checkout (pid ${pid}); stop it first`);
      }
    }
  }
  await writePrivateFile(file, `${process.pid}\n`);
}

/** Calls `onLine` for each line a child writes to a piped stream (nothing for null). */
export function forEachLine(stream: Readable | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) onLine(line.trimEnd());
  });
  stream.on('end', () => {
    if (partial.trim()) onLine(partial.trimEnd());
  });
}
