/**
 * CPU time of processes from /proc (Linux only), for `npm run bench`: per "unit" (a set of
 * processes found afresh at each snapshot, e.g. a process tree or group), over a window.
 *
 * A process's time is utime + stime of /proc/<pid>/stat, in clock ticks (`getconf CLK_TCK`,
 * usually 100 per second: 10 ms resolution). A unit may also count the cutime + cstime of some
 * of its processes: the time of children they reaped (Postgres backends that exit during the
 * window end up in the postmaster's). That is not done for other processes, whose reaped
 * children may have run long before the window (init reaping orphans, for one).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

export interface Proc {
  pid: number;
  ppid: number;
  pgrp: number;
  comm: string;
  /** utime + stime, in clock ticks. */
  ticks: number;
  /** cutime + cstime: children that exited and were waited for. */
  reapedTicks: number;
}

export function readProcs(): Map<number, Proc> {
  const procs = new Map<number, Proc>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // comm is in parentheses and may itself hold spaces or parentheses.
    const close = text.lastIndexOf(')');
    const rest = text.slice(close + 2).split(' ');
    const field = (n: number) => Number(rest[n - 3]); // fields numbered as in proc(5)
    procs.set(Number(name), {
      pid: Number(name),
      ppid: field(4),
      pgrp: field(5),
      comm: text.slice(text.indexOf('(') + 1, close),
      ticks: field(14) + field(15),
      reapedTicks: field(16) + field(17),
    });
  }
  return procs;
}

/** The roots (those still running) and every process below them. */
export function descendantsOf(procs: Map<number, Proc>, roots: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const p of procs.values()) {
    const siblings = children.get(p.ppid);
    if (siblings) siblings.push(p.pid);
    else children.set(p.ppid, [p.pid]);
  }
  const found = new Set<number>();
  const queue = roots.filter((pid) => procs.has(pid));
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (found.has(pid)) continue;
    found.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return [...found];
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** Which processes make up a unit right now, and whose reaped children count too. */
export type Unit = (procs: Map<number, Proc>) => { pids: number[]; reapedOf?: number[] };

export const processTree =
  (root: number, opts: { withReaped?: boolean } = {}): Unit =>
  (procs) => ({
    pids: descendantsOf(procs, [root]),
    reapedOf: opts.withReaped ? [root] : undefined,
  });

export const processGroup =
  (pgid: number): Unit =>
  (procs) => ({
    pids: descendantsOf(
      procs,
      [...procs.values()].filter((p) => p.pgrp === pgid).map((p) => p.pid),
    ),
  });

/**
 * Threads of the unit's Java process (Google's Pub/Sub emulator): its ordered subscriptions keep
 * one per ordering key ever seen (bench/README.md, `npm run bench:emulator`). 0 without Java.
 */
export function javaThreads(unit: Unit): number {
  const procs = readProcs();
  const java = unit(procs).pids.filter((pid) => procs.get(pid)?.comm === 'java');
  return Math.max(0, ...java.map((pid) => readdirSync(`/proc/${pid}/task`).length));
}

export const singleProcess =
  (pid: number): Unit =>
  (procs) => ({ pids: procs.has(pid) ? [pid] : [] });

/**
 * `wrangler dev` (4.x) is a tree: node bin/wrangler.js → node wrangler-dist/cli.js → esbuild and
 * two workerd processes: the one running the Worker (started with --inspector-addr) and wrangler's
 * own proxy (ProxyWorker and InspectorProxyWorker), which owns the public port, forwards every
 * request to the first, and relays the inspector (console.log, exceptions) to wrangler.
 */
export function wranglerUnits(leaderPid: number, publicPort: number): { workerd: Unit; proxy: Unit; wrangler: Unit } {
  const tree = (procs: Map<number, Proc>) => descendantsOf(procs, [leaderPid]);
  return {
    workerd: (procs) => ({
      pids: tree(procs).filter((pid) => procs.get(pid)!.comm === 'workerd' && !isWranglerProxy(pid, publicPort)),
    }),
    proxy: (procs) => ({
      pids: tree(procs).filter((pid) => procs.get(pid)!.comm === 'workerd' && isWranglerProxy(pid, publicPort)),
    }),
    wrangler: (procs) => ({ pids: tree(procs).filter((pid) => procs.get(pid)!.comm !== 'workerd') }),
  };
}

export function isWranglerProxy(pid: number, publicPort: number): boolean {
  return cmdline(pid).includes(`--socket-addr=entry=127.0.0.1:${publicPort} `);
}

export interface CpuSnapshot {
  at: number;
  units: Record<string, number>;
  /** The processes of each unit at that moment. */
  unitPids: Record<string, number[]>;
  /** Every process's own ticks and name, to name the busiest processes outside the units. */
  all: Map<number, { comm: string; ticks: number; counted: boolean }>;
  /** Busy ticks of the whole machine (all cores), from /proc/stat. */
  machineBusy: number;
  /** irq + softirq ticks (loopback TCP is processed there and may be charged to no process). */
  machineIrq: number;
}

function machineTicks(): { busy: number; irq: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  return { busy: cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]! + (cpu[7] ?? 0), irq: cpu[5]! + cpu[6]! };
}

export function snapshot(units: Record<string, Unit>): CpuSnapshot {
  const procs = readProcs();
  const result: Record<string, number> = {};
  const unitPids: Record<string, number[]> = {};
  const counted = new Set<number>();
  for (const [name, unit] of Object.entries(units)) {
    const { pids, reapedOf = [] } = unit(procs);
    unitPids[name] = pids;
    for (const pid of pids) counted.add(pid);
    result[name] =
      pids.reduce((sum, pid) => sum + procs.get(pid)!.ticks, 0) +
      reapedOf.reduce((sum, pid) => sum + (procs.get(pid)?.reapedTicks ?? 0), 0);
  }
  const all = new Map(
    [...procs.values()].map((p) => [p.pid, { comm: p.comm, ticks: p.ticks, counted: counted.has(p.pid) }]),
  );
  const machine = machineTicks();
  return { at: performance.now(), units: result, unitPids, all, machineBusy: machine.busy, machineIrq: machine.irq };
}

export interface CpuWindow {
  /** CPU ms per unit over the window; null where a process of the unit was replaced meanwhile. */
  ms: Record<string, number | null>;
  /** CPU ms per completed request (null likewise). */
  msPerRequest: Record<string, number | null>;
  /**
   * Units that lost a process during the window that nobody counted as reaped (e.g. wrangler
   * restarting workerd on a reload): their figure is missing that process's last share, or null.
   */
  processesGone: string[];
  /** The whole machine: cores busy on average; CPU ms of everything outside the units (other people's processes, irq). */
  machine: {
    busyCores: number;
    otherMs: number;
    otherMsPerRequest: number;
    irqMs: number;
    topOthers: Array<{ pid: number; comm: string; ms: number }>;
  };
}

const toMs = (ticks: number) => (ticks * 1000) / CLK_TCK;
const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

export function cpuWindow(before: CpuSnapshot, after: CpuSnapshot, requests: number): CpuWindow {
  const ms: Record<string, number | null> = {};
  const msPerRequest: Record<string, number | null> = {};
  const processesGone: string[] = [];
  for (const name of Object.keys(after.units)) {
    const delta = toMs(after.units[name]! - (before.units[name] ?? 0));
    const gone = (before.unitPids[name] ?? []).some((pid) => !after.unitPids[name]!.includes(pid));
    if (gone) processesGone.push(name);
    ms[name] = delta < 0 ? null : round(delta, 0);
    msPerRequest[name] = delta < 0 ? null : round(delta / Math.max(1, requests), 3);
  }
  const wallMs = after.at - before.at;
  const busyMs = toMs(after.machineBusy - before.machineBusy);
  const counted = Object.values(ms).reduce<number>((a, b) => a + (b ?? 0), 0);
  const topOthers = [...after.all.entries()]
    .filter(([, p]) => !p.counted)
    .map(([pid, p]) => ({ pid, comm: p.comm, ms: round(toMs(p.ticks - (before.all.get(pid)?.ticks ?? 0)), 0) }))
    .filter((p) => p.ms > 0)
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 5);
  return {
    ms,
    msPerRequest,
    processesGone,
    machine: {
      busyCores: round(busyMs / wallMs, 2),
      otherMs: round(Math.max(0, busyMs - counted), 0),
      otherMsPerRequest: round(Math.max(0, busyMs - counted) / Math.max(1, requests), 3),
      irqMs: round(toMs(after.machineIrq - before.machineIrq), 0),
      topOthers,
    },
  };
}

/**
 * The machine may be shared (other people's tests): waits until processes outside the units use
 * less than `belowCores` over a second, at most maxS. Says what it saw.
 */
export async function waitForQuiet(
  units: Record<string, Unit>,
  opts: { maxS: number; belowCores?: number; log: (line: string) => void },
): Promise<{ waitedS: number; othersCores: number }> {
  const below = opts.belowCores ?? 0.25;
  const started = performance.now();
  let said = false;
  for (;;) {
    const a = snapshot(units);
    await sleep(1_000);
    const b = snapshot(units);
    const othersCores = round(cpuWindow(a, b, 1).machine.otherMs / (b.at - a.at), 2);
    const waitedS = round((performance.now() - started) / 1000, 0);
    if (othersCores < below) return { waitedS, othersCores };
    if (waitedS >= opts.maxS) {
      opts.log(
        `WARNING other processes still use ${othersCores} cores after ${waitedS} s: measuring anyway (see machine.otherMs)`,
      );
      return { waitedS, othersCores };
    }
    if (!said)
      opts.log(`waiting (at most ${opts.maxS} s) for other processes to quieten: they use ${othersCores} cores`);
    said = true;
  }
}
