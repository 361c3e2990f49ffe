import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort, reservePortIn } from '../src/net.ts';

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

  it('skips a port something already listens on', async () => {
    const taken = await freePort();
    await listen(taken);
    expect(await reservePortIn(taken, taken + 1, { attempts: 50, dir })).toBe(taken + 1);
  });
});
