import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { queryOnce } from '@edge-checkout/test-support/query-once';
import { afterEach, describe, expect, it } from 'vitest';
import { postmasterPid, type RunningPostgres, startPostgres } from '../src/postgres.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fresh mode-700 folder, like `mktemp -d` in CI. */
function scratchDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pg-test-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function start(opts: Parameters<typeof startPostgres>[0]): Promise<RunningPostgres> {
  const server = await startPostgres(opts);
  cleanups.push(() => server.stop());
  return server;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startPostgres', () => {
  it('starts a throwaway cluster on a free port with the edge_checkout database and removes it on stop', async () => {
    const dataDir = path.join(scratchDir(), 'nested', 'data');
    const lines: string[] = [];
    const server = await start({ dataDir, persistent: false, log: (l) => lines.push(l) });

    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`postgres://postgres:postgres@127.0.0.1:${server.port}/edge_checkout`);
    const [row] = await queryOnce(server.url, 'SELECT current_database() AS db, current_setting($$TimeZone$$) AS tz');
    expect(row).toEqual({ db: 'edge_checkout', tz: 'UTC' });
    expect(lines.some((l) => l.includes(`Postgres ready on 127.0.0.1:${server.port}`))).toBe(true);
    expect(lines.join('\n')).not.toContain(':postgres@');

    await server.stop();
    expect(existsSync(dataDir)).toBe(false);
    await expect(queryOnce(server.url, 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
    await server.stop(); // a second stop is harmless
  });

  it("makes a UTF-8 database, as Neon's, on a machine with no locale set", async () => {
    const locale = { LANG: process.env.LANG, LC_ALL: process.env.LC_ALL, LC_CTYPE: process.env.LC_CTYPE };
    for (const name of Object.keys(locale)) delete process.env[name];
    try {
      const server = await start({ dataDir: path.join(scratchDir(), 'data'), persistent: false, log: () => {} });
      const [row] = await queryOnce(
        server.url,
        "SELECT current_setting('server_encoding') AS encoding, length('é') AS n",
      );
      expect(row).toEqual({ encoding: 'UTF8', n: 1 });
    } finally {
      for (const [name, value] of Object.entries(locale)) if (value !== undefined) process.env[name] = value;
    }
  });

  it('says how to mend a database made SQL_ASCII before clusters were made UTF-8', async () => {
    const dataDir = path.join(scratchDir(), 'data');
    const first = await start({ dataDir, persistent: true, log: () => {} });
    const admin = first.url.replace(/\/edge_checkout$/, '/postgres');
    await queryOnce(admin, 'DROP DATABASE edge_checkout');
    await queryOnce(
      admin,
      "CREATE DATABASE edge_checkout ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'",
    );
    await first.stop();

    const lines: string[] = [];
    await start({ dataDir, persistent: true, log: (l) => lines.push(l) });
    expect(lines).toContainEqual(
      `Postgres: the edge_checkout database is SQL_ASCII, not UTF-8 as Neon's: text limits count bytes there. Delete ${dataDir} to make a UTF-8 cluster.`,
    );
  });

  // As root the server runs as another user, which needs to pass through the folders above its
  // data; as anyone else it runs as that user, and the folders are left as they are.
  it('makes mode-700 ancestors traversable for the postgres user when run as root, and says so', async () => {
    const asRoot = process.getuid?.() === 0;
    const root = scratchDir();
    expect(statSync(root).mode & 0o777).toBe(0o700);
    const lines: string[] = [];
    await start({ dataDir: path.join(root, 'data'), persistent: false, log: (l) => lines.push(l) });

    expect(statSync(root).mode & 0o001).toBe(asRoot ? 0o001 : 0);
    const said = lines.find((l) => l.includes('traverse permission'));
    if (asRoot) expect(said).toContain(root);
    else expect(said).toBeUndefined();
  });

  it('keeps data across restarts of a persistent cluster without re-running initdb', async () => {
    const dataDir = path.join(scratchDir(), 'data');
    const first = await start({ dataDir, persistent: true });
    await queryOnce(first.url, 'CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$survives$$)');
    await first.stop();
    expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);

    const lines: string[] = [];
    const second = await start({ dataDir, persistent: true, log: (l) => lines.push(l) });
    expect(await queryOnce(second.url, 'SELECT v FROM kept')).toEqual([{ v: 'survives' }]);
    expect(lines.some((l) => l.includes('existing cluster'))).toBe(true);
    expect(lines.some((l) => l.includes('initdb') || l.includes('Success. You can now start'))).toBe(false);
  });

  it('stops a server left running on the data folder by a crashed run, then starts', async () => {
    const dataDir = path.join(scratchDir(), 'data');
    // The first handle is never stopped by its owner: that is what a killed parent leaves behind.
    const orphan = await startPostgres({ dataDir, persistent: true });
    cleanups.push(() => orphan.stop());
    const orphanPid = postmasterPid(dataDir)!;
    await queryOnce(orphan.url, 'CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)');

    const lines: string[] = [];
    const fresh = await start({ dataDir, persistent: true, log: (l) => lines.push(l) });
    expect(isAlive(orphanPid)).toBe(false);
    expect(lines.some((l) => l.includes(`stopping a Postgres server (pid ${orphanPid})`))).toBe(true);
    expect(await queryOnce(fresh.url, 'SELECT v FROM kept')).toEqual([{ v: 1 }]);
    await orphan.stop(); // its server was stopped by the recovery: must not hang
  });

  it('ignores a stale postmaster.pid whose PID now belongs to another process', async () => {
    const dataDir = path.join(scratchDir(), 'data');
    const first = await start({ dataDir, persistent: true });
    await first.stop();
    // This test process is alive and is not Postgres: a reused PID.
    writeFileSync(path.join(dataDir, 'postmaster.pid'), `${process.pid}\n${dataDir}\n`);

    const lines: string[] = [];
    const second = await start({ dataDir, persistent: true, log: (l) => lines.push(l) });
    expect(await queryOnce(second.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(lines.some((l) => l.includes('removing stale'))).toBe(true);
  });

  it('makes a new cluster where a crash cut the first initdb short, rather than failing every start', async () => {
    // What a kill during the first `npm run dev` leaves: initdb had written PG_VERSION and begun
    // the folders, not yet pg_control.
    const dataDir = path.join(scratchDir(), 'data');
    mkdirSync(path.join(dataDir, 'base'), { recursive: true });
    writeFileSync(path.join(dataDir, 'PG_VERSION'), '17\n');

    const lines: string[] = [];
    const server = await start({ dataDir, persistent: true, log: (l) => lines.push(l) });
    expect(await queryOnce(server.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(lines.some((l) => l.includes('initdb was cut short'))).toBe(true);
    expect(lines.some((l) => l.includes('new cluster'))).toBe(true);
  });

  it('leaves a cluster that lost pg_control but holds databases for its owner to repair', async () => {
    const dataDir = path.join(scratchDir(), 'data');
    mkdirSync(path.join(dataDir, 'base', '1'), { recursive: true });
    writeFileSync(path.join(dataDir, 'PG_VERSION'), '17\n');
    writeFileSync(path.join(dataDir, 'base', '1', 'PG_VERSION'), '17\n');
    await expect(start({ dataDir, persistent: true })).rejects.toThrow(/If its data is not needed, delete/);
    expect(existsSync(path.join(dataDir, 'base', '1', 'PG_VERSION'))).toBe(true);
  });

  it('refuses a port that is already taken, naming it', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const address = blocker.address();
    const port = typeof address === 'object' && address ? address.port : 0;

    await expect(
      start({ dataDir: path.join(scratchDir(), 'data'), port, persistent: false, portHint: 'set PG_PORT' }),
    ).rejects.toThrow(`port ${port} on 127.0.0.1 is already in use by another process; set PG_PORT`);
  });

  it('refuses a non-empty folder that is not a Postgres data folder', async () => {
    const dataDir = path.join(scratchDir(), 'data');
    mkdirSync(dataDir);
    writeFileSync(path.join(dataDir, 'notes.txt'), 'mine');
    await expect(start({ dataDir, persistent: true })).rejects.toThrow(/is not a Postgres data folder/);
    expect(readFileSync(path.join(dataDir, 'notes.txt'), 'utf8')).toBe('mine');
  });
});

describe('importing embedded Postgres', () => {
  it("keeps the process's exit code: a test run that failed exits non-zero", async () => {
    // As vitest ends a run with failures: it sets process.exitCode and lets the event loop empty.
    const script = path.join(scratchDir(), 'exit-code.mts');
    const module = path.join(import.meta.dirname, '../src/embedded-postgres.ts');
    writeFileSync(script, `await import(${JSON.stringify(module)});\nprocess.exitCode = 3;\n`);
    const child = spawnSync('npx', ['tsx', script], { encoding: 'utf8' });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(3);
  }, 30_000);
});
