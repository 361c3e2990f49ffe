import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { claimSingleRun, forEachLine, ProcessGroups } from '../src/dev-processes.ts';

// Lets a test hold the registry write (which ProcessGroups awaits) until something has happened.
const registryWrites = vi.hoisted(() => ({ before: undefined as ((content: string) => Promise<void>) | undefined }));
vi.mock('../src/dev-env.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../src/dev-env.ts')>();
  return {
    ...original,
    async writePrivateFile(file: string, content: string) {
      await registryWrites.before?.(content);
      await original.writePrivateFile(file, content);
    },
  };
});

const scratch = mkdtempSync(path.join(tmpdir(), 'dev-processes-test-'));
const strays: number[] = [];
afterAll(() => {
  for (const pgid of strays) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(scratch, { recursive: true, force: true });
});

/** Live members of a process group, from ps (zombies excluded). */
function liveInGroup(pgid: number): number[] {
  const out = spawnSync('ps', ['-eo', 'pid=,pgid=,stat='], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([, group, stat]) => Number(group) === pgid && !stat?.startsWith('Z'))
    .map(([pid]) => Number(pid));
}

function isRunningOrZombie(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

// A tree of two processes, as wrangler and its workerd are; the marker makes them recognisable.
const TREE = ['-c', 'sleep 301 & sleep 301; wait'];

describe('ProcessGroups', () => {
  it('stops the whole process tree and forgets it', async () => {
    const registry = path.join(scratch, 'stop.json');
    const groups = new ProcessGroups(registry, () => {});
    const child = await groups.spawn({ name: 'tree', command: 'sh', args: TREE, match: ['sleep 301'] });
    strays.push(child.pid);
    await expect.poll(() => liveInGroup(child.pid).length).toBeGreaterThanOrEqual(2);
    expect(JSON.parse(readFileSync(registry, 'utf8'))).toEqual({ tree: { pgid: child.pid, match: ['sleep 301'] } });

    await child.stop();
    expect(liveInGroup(child.pid)).toEqual([]);
    expect(JSON.parse(readFileSync(registry, 'utf8'))).toEqual({});
    expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('kills a group that ignores SIGTERM once the grace period is over', async () => {
    const groups = new ProcessGroups(path.join(scratch, 'stubborn.json'), () => {});
    const termed = path.join(scratch, 'stubborn.termed');
    // The trap notes the SIGTERM and carries on; the loop restarts the sleep that SIGTERM ended.
    const child = await groups.spawn({
      name: 'stubborn',
      command: 'sh',
      args: ['-c', `trap 'echo term > "${termed}"' TERM; sleep 302 & while :; do sleep 302; done`],
      stdio: 'ignore', // sh would report the sleep that SIGTERM ended
      match: ['sleep 302'],
    });
    strays.push(child.pid);
    await expect.poll(() => liveInGroup(child.pid).length).toBeGreaterThanOrEqual(2);
    // Time enough for sh to run its trap; it never exits, so SIGKILL ends it.
    await child.stop(1_000);
    expect(liveInGroup(child.pid)).toEqual([]);
    expect(readFileSync(termed, 'utf8')).toBe('term\n');
    expect(await child.exited).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('on the next run, stops what a crashed run left behind', async () => {
    const registry = path.join(scratch, 'crash.json');
    const crashed = new ProcessGroups(registry, () => {});
    const left = await crashed.spawn({
      name: 'worker',
      command: 'sh',
      args: ['-c', 'sleep 303 & sleep 303; wait'],
      match: ['sleep 303'],
    });
    strays.push(left.pid);
    await expect.poll(() => liveInGroup(left.pid).length).toBeGreaterThanOrEqual(2);

    const lines: string[] = [];
    await new ProcessGroups(registry, (l) => lines.push(l)).stopLeftovers();
    expect(liveInGroup(left.pid)).toEqual([]);
    expect(lines).toEqual([`stopping worker (process group ${left.pid}) left running by an earlier run`]);
    expect(JSON.parse(readFileSync(registry, 'utf8'))).toEqual({});
  });

  it('leaves alone a recorded group id that now belongs to something else', async () => {
    const other = spawn('sleep', ['304'], { detached: true, stdio: 'ignore' });
    strays.push(other.pid!);
    const registry = path.join(scratch, 'reused.json');
    writeFileSync(registry, JSON.stringify({ worker: { pgid: other.pid, match: ['wrangler', 'workerd'] } }));

    await new ProcessGroups(registry, () => {}).stopLeftovers();
    expect(liveInGroup(other.pid!)).toEqual([other.pid]);
  });

  it('stops a recorded group it did not start (the Pub/Sub emulator starts itself) after a crash, and forgets it on request', async () => {
    const registry = path.join(scratch, 'tracked.json');
    const elsewhere = spawn('sh', ['-c', 'sleep 306 & sleep 306; wait'], { detached: true, stdio: 'ignore' });
    strays.push(elsewhere.pid!);
    const crashed = new ProcessGroups(registry, () => {});
    const forget = await crashed.track('emulator', elsewhere.pid!, ['sleep 306']);
    await forget();
    expect(JSON.parse(readFileSync(registry, 'utf8'))).toEqual({});

    await crashed.track('emulator', elsewhere.pid!, ['sleep 306']);
    await new ProcessGroups(registry, () => {}).stopLeftovers();
    expect(liveInGroup(elsewhere.pid!)).toEqual([]);
  });

  it('hands piped output over line by line, a last line without newline included', async () => {
    const groups = new ProcessGroups(path.join(scratch, 'output.json'), () => {});
    const child = await groups.spawn({
      name: 'talker',
      command: 'sh',
      args: ['-c', 'printf "one\\ntw"; sleep 0.1; printf "o\\n\\n"; printf "oops" >&2; printf "three"'],
      stdio: ['ignore', 'pipe', 'pipe'],
      match: ['printf'],
    });
    const lines: string[] = [];
    forEachLine(child.stdout, (line) => lines.push(`out: ${line}`));
    forEachLine(child.stderr, (line) => lines.push(`err: ${line}`));
    await child.exited;
    await expect.poll(() => lines.length).toBe(4);
    expect(lines.sort()).toEqual(['err: oops', 'out: one', 'out: three', 'out: two']);
  });

  it('settles exited for a child that ends while its group is being recorded', async () => {
    const groups = new ProcessGroups(path.join(scratch, 'quick.json'), () => {});
    // The write that records the child waits until the child is gone even as a zombie: Node has
    // reaped it, which is when it emits 'exit', so the race is lost every time it can be.
    registryWrites.before = async (content) => {
      const { quick } = JSON.parse(content) as Record<string, { pgid: number }>;
      if (quick) await expect.poll(() => isRunningOrZombie(quick.pgid)).toBe(false);
    };
    try {
      const child = await groups.spawn({ name: 'quick', command: 'sh', args: ['-c', 'exit 3'], match: ['exit 3'] });
      expect(await child.exited).toEqual({ code: 3, signal: null });
    } finally {
      registryWrites.before = undefined;
    }
  });

  it('says which command could not be started', async () => {
    const groups = new ProcessGroups(path.join(scratch, 'missing.json'), () => {});
    await expect(
      groups.spawn({ name: 'ghost', command: '/nonexistent/ghost', args: [], match: ['ghost'] }),
    ).rejects.toThrow('cannot start ghost (/nonexistent/ghost)');
  });
});

describe('claimSingleRun', () => {
  it('refuses while another run is alive, and takes over from a dead or unrelated PID', async () => {
    const lock = path.join(scratch, 'dev.pid');
    const owner = spawn('sleep', ['305'], { stdio: 'ignore', detached: true });
    strays.push(owner.pid!);
    writeFileSync(lock, `${owner.pid}\n`);
    await expect(claimSingleRun(lock, 'sleep 305')).rejects.toThrow(
      `npm run dev is already running in this checkout (pid ${owner.pid})`,
    );

    await claimSingleRun(lock, 'tools/dev.ts'); // same PID, other program: a reused PID
    expect(readFileSync(lock, 'utf8')).toBe(`${process.pid}\n`);
  });
});
