import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { freePort, reservePortIn } from '../src/net.ts';

// Files another user owns, in a directory of theirs: removing them fails with EACCES, as it does
// for anyone but root (this test may run as root, which may remove anything).
const othersFiles = vi.hoisted(() => new Set<string>());
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const rmSync: typeof fs.rmSync = (file, options) => {
    if (othersFiles.has(String(file))) throw Object.assign(new Error(`EACCES: unlink '${file}'`), { code: 'EACCES' });
    fs.rmSync(file, options);
  };
  return { ...fs, rmSync, default: { ...fs, rmSync } };
});

// Reservations of this test's own, so that it neither sees nor clears another run's.
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'net-test-'));
});

const listening: Server[] = [];
afterEach(async () => {
  rmSync(dir, { recursive: true, force: true });
  await Promise.all(listening.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function listen(port: number): Promise<void> {
  const server = createServer();
  listening.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
}

describe('freePort', () => {
  // The kernel gives ports of this range to outgoing connections: a server started on one seconds
  // after the pick could find it taken.
  it.skipIf(process.platform !== 'linux')('picks below the kernel ephemeral range', async () => {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    for (let i = 0; i < 20; i++) {
      const port = await freePort();
      expect(port).toBeLessThan(low);
      await listen(port);
    }
  });

  it('does not hand a reserved port out again before its server binds it', async () => {
    const first = await reservePortIn(14_001, 14_002, { dir });
    const second = await reservePortIn(14_001, 14_002, { dir });
    expect(new Set([first, second]).size).toBe(2);
    await expect(reservePortIn(14_001, 14_002, { attempts: 20, dir })).rejects.toThrow(
      /no free port between 14001 and 14002/,
    );
  });

  it('takes a port whose expired reservation another user left and cannot be removed: the bind probe decides', async () => {
    const port = await freePort();
    const file = path.join(dir, String(port));
    closeSync(openSync(file, 'wx'));
    const anHourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(file, anHourAgo, anHourAgo);
    othersFiles.add(file);
    try {
      expect(await reservePortIn(port, port, { attempts: 1, dir })).toBe(port);
    } finally {
      othersFiles.delete(file);
    }
  });

  it('skips a port something already listens on', async () => {
    const taken = await freePort();
    await listen(taken);
    expect(await reservePortIn(taken, taken + 1, { attempts: 50, dir })).toBe(taken + 1);
  });
});
