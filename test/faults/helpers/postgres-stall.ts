// Stalls the stack's Postgres as a frozen VM or a stuck disk would: SIGSTOP to the postmaster and
// to every process it started (backends, checkpointer, WAL writer, …); resume() sends SIGCONT.
// Connections stay open and the port still accepts them; nothing answers until resume().
import { readdirSync, readFileSync } from 'node:fs';
import { postmasterPid } from '@edge-checkout/dev-stack/postgres';
import { expect, vi } from 'vitest';

export interface StalledPostgres {
  /** The postmaster first, then its children. */
  readonly pids: readonly number[];
  /** SIGCONT to all of them; safe to call twice. */
  resume(): void;
}

/** The server's pid, from postmaster.pid in its data folder. */
function serverPid(dataDir: string): number {
  const pid = postmasterPid(dataDir);
  if (pid === null) throw new Error(`no postmaster pid in ${dataDir}/postmaster.pid`);
  return pid;
}

export async function stallPostgres(dataDir: string): Promise<StalledPostgres> {
  const postmaster = serverPid(dataDir);
  // The postmaster first: stopped, it starts no backend that the list below would miss.
  process.kill(postmaster, 'SIGSTOP');
  const pids = [postmaster, ...childrenOf(postmaster)];
  for (const pid of pids.slice(1)) signal(pid, 'SIGSTOP');
  let resumed = false;
  const stalled: StalledPostgres = {
    pids,
    resume() {
      if (resumed) return;
      resumed = true;
      for (const pid of pids) signal(pid, 'SIGCONT');
    },
  };
  // Signals are delivered asynchronously: wait until each process is in the stopped state.
  const running = () => pids.filter((pid) => !['T', 'Z', '-'].includes(processState(pid)));
  try {
    await vi.waitFor(
      () =>
        expect(
          running().map((pid) => `${pid}=${processState(pid)}`),
          'Postgres processes not stopped',
        ).toEqual([]),
      { timeout: 5_000, interval: 10 },
    );
  } catch (error) {
    stalled.resume();
    throw error;
  }
  return stalled;
}

/** Processes whose parent is `pid`, from /proc/<pid>/stat (field 4, after the command in parentheses). */
function childrenOf(parent: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.ppid === parent) children.push(Number(entry));
  }
  return children;
}

/** One-letter state of /proc/<pid>/stat (R running, S sleeping, T stopped, …); '-' once gone. */
function processState(pid: number): string {
  return readStat(pid)?.state ?? '-';
}

function readStat(pid: number): { state: string; ppid: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited meanwhile
  }
  const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: state!, ppid: Number(ppid) };
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
