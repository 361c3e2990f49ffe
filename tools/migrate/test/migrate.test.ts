import { execFile } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningPostgres, startPostgres } from '@edge-checkout/dev-stack/postgres';
import { queryOnce } from '@edge-checkout/test-support/query-once';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MIGRATIONS_DIR, LOCK_KEY, LOCK_TIMEOUT, migrate } from '../src/migrate.ts';

let postgres: RunningPostgres;
const scratch = mkdtempSync(path.join(tmpdir(), 'migrate-test-'));
let databases = 0;

beforeAll(async () => {
  postgres = await startPostgres({ dataDir: path.join(scratch, 'pg'), persistent: false });
});
afterAll(async () => {
  await postgres?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** A fresh empty database per test, so tests do not see each other's schema. */
async function freshDatabase(): Promise<string> {
  const name = `migrate_${++databases}`;
  await queryOnce(postgres.url, `CREATE DATABASE ${name} STRATEGY FILE_COPY`);
  return postgres.url.replace(/\/edge_checkout$/, `/${name}`);
}

function migrationsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(scratch, 'm-'));
  for (const [name, sql] of Object.entries(files)) writeFileSync(path.join(dir, name), sql);
  return dir;
}

async function tables(url: string): Promise<string[]> {
  const rows = await queryOnce(url, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
  return rows.map((r) => String(r.tablename));
}

const ONE = 'CREATE TABLE one (id int PRIMARY KEY);\n';
const TWO = 'CREATE TABLE two (id int REFERENCES one);\nINSERT INTO one VALUES (1);\n';
const INDEX_ONE = '-- migrate: no-transaction\nCREATE INDEX CONCURRENTLY one_by_id ON one (id);\n';

/** How many of the runner's sessions there are (that match `where`, SQL on pg_stat_activity). */
async function migrateSessions(url: string, where = 'true'): Promise<number> {
  const [row] = await queryOnce(
    url,
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'edge-checkout-migrate' AND ${where}`,
  );
  return Number(row!.n);
}

describe('migrate', () => {
  it('applies pending files in order, records them, and applies nothing the second time', async () => {
    const url = await freshDatabase();
    const dir = migrationsDir({ '0001_one.sql': ONE, '0002_two.sql': TWO, 'README.md': 'not a migration' });
    const lines: string[] = [];

    expect(await migrate(url, { dir, log: (l) => lines.push(l) })).toEqual({
      applied: ['0001_one.sql', '0002_two.sql'],
    });
    expect(await tables(url)).toEqual(['one', 'schema_migrations', 'two']);
    const recorded = await queryOnce(
      url,
      'SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version',
    );
    expect(recorded.map((r) => [r.version, r.name])).toEqual([
      [1, '0001_one.sql'],
      [2, '0002_two.sql'],
    ]);
    expect(recorded[0]!.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(recorded[0]!.applied_at).toBeInstanceOf(Date);
    expect(lines.some((l) => l.startsWith('applied 0002_two.sql'))).toBe(true);

    expect(await migrate(url, { dir })).toEqual({ applied: [] });
    writeFileSync(path.join(dir, '0003_three.sql'), 'ALTER TABLE one ADD COLUMN label text;');
    expect(await migrate(url, { dir })).toEqual({ applied: ['0003_three.sql'] });
  });

  it('applies nothing at all when one pending file fails, and names the file and line', async () => {
    const url = await freshDatabase();
    const dir = migrationsDir({ '0001_one.sql': ONE, '0002_broken.sql': 'SELECT 1;\n\nCREATE TABLE (oops);\n' });

    const err = await migrate(url, { dir }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(
      `${path.join(dir, '0002_broken.sql')} failed, nothing was applied: syntax error`,
    );
    expect((err as Error).message).toContain('SQLSTATE 42601) at line 3');
    expect(await tables(url)).toEqual([]);
  });

  it('refuses gaps, duplicate numbers and badly named files before touching the database', async () => {
    const url = await freshDatabase();
    await expect(migrate(url, { dir: migrationsDir({ '0001_one.sql': ONE, '0003_three.sql': TWO }) })).rejects.toThrow(
      '0003_three.sql follows 0001_one.sql; expected number 0002',
    );
    await expect(migrate(url, { dir: migrationsDir({ '0002_two.sql': TWO }) })).rejects.toThrow(
      '0002_two.sql is the first file; expected number 0001',
    );
    await expect(migrate(url, { dir: migrationsDir({ '0001_one.sql': ONE, '0001_again.sql': TWO }) })).rejects.toThrow(
      '0001_again.sql and 0001_one.sql have the same number 0001',
    );
    await expect(migrate(url, { dir: migrationsDir({ '1_one.sql': ONE }) })).rejects.toThrow(
      /1_one\.sql: a migration is named NNNN_name\.sql/,
    );
    expect(await tables(url)).toEqual([]);
  });

  it('refuses to run when an applied file was edited, renamed or removed', async () => {
    const url = await freshDatabase();
    const dir = migrationsDir({ '0001_one.sql': ONE, '0002_two.sql': TWO });
    await migrate(url, { dir });
    writeFileSync(path.join(dir, '0003_three.sql'), 'CREATE TABLE three (id int);');

    writeFileSync(path.join(dir, '0001_one.sql'), `${ONE}-- a harmless-looking comment\n`);
    await expect(migrate(url, { dir })).rejects.toThrow(
      `${path.join(dir, '0001_one.sql')} was edited after it was applied`,
    );
    writeFileSync(path.join(dir, '0001_one.sql'), ONE.replace('\n', '\r\n')); // CRLF checkout: not an edit
    renameSync(path.join(dir, '0002_two.sql'), path.join(dir, '0002_second.sql'));
    await expect(migrate(url, { dir })).rejects.toThrow('which this database applied as 0002_two.sql');

    unlinkSync(path.join(dir, '0002_second.sql'));
    unlinkSync(path.join(dir, '0003_three.sql'));
    await expect(migrate(url, { dir })).rejects.toThrow(
      `0002_two.sql was applied to this database but is missing from ${dir}`,
    );
    expect(await tables(url)).toEqual(['one', 'schema_migrations', 'two']);
  });

  it('refuses a file that commits on its own, naming it', async () => {
    const url = await freshDatabase();
    const dir = migrationsDir({ '0001_one.sql': 'BEGIN;\nCREATE TABLE one (id int);\nCOMMIT;\n' });
    await expect(migrate(url, { dir })).rejects.toThrow(
      `${path.join(dir, '0001_one.sql')} ends the migration transaction`,
    );
  });

  it('lets only one of two concurrent runs apply each file', async () => {
    const url = await freshDatabase();
    const dir = migrationsDir({
      '0001_one.sql': 'CREATE TABLE counted (n int);\nINSERT INTO counted VALUES (1);\n',
      '0002_more.sql': 'INSERT INTO counted VALUES (2);\n',
    });
    // The runner's lock, held here until both runs are connected and waiting for it: then
    // both have begun before either has read what is applied.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
      const runs = Promise.all([migrate(url, { dir }), migrate(url, { dir })]);
      await expect.poll(() => migrateSessions(url), { timeout: 5_000 }).toBe(2);
      await holder.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]);
      expect((await runs).map((r) => r.applied.length).sort()).toEqual([0, 2]);
    } finally {
      await holder.end();
    }
    expect(await queryOnce(url, 'SELECT n FROM counted ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('runs a no-transaction file on its own, after committing the files before it, so an index can be built concurrently', async () => {
    const url = await freshDatabase();
    const dir = migrationsDir({
      '0001_one.sql': ONE,
      '0002_index.sql': INDEX_ONE,
      '0003_two.sql': TWO,
      '0004_broken.sql': 'CREATE TABLE three (;\n',
    });
    const failed = await migrate(url, { dir }).catch((err: Error) => err);
    expect((failed as Error).message).toContain(`${path.join(dir, '0004_broken.sql')} failed, nothing was applied`);
    expect((failed as Error).message).toContain('applied and kept before it: 0001_one.sql, 0002_index.sql');
    expect(await queryOnce(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'one_by_id'::regclass")).toEqual([
      { indisvalid: true },
    ]);
    // 0003 shared the failed file's transaction.
    expect(await tables(url)).toEqual(['one', 'schema_migrations']);

    unlinkSync(path.join(dir, '0004_broken.sql'));
    expect((await migrate(url, { dir })).applied).toEqual(['0003_two.sql']);
  });

  it('lets a concurrent index build wait for older transactions, however long, as it blocks no writes', async () => {
    const url = await freshDatabase();
    await migrate(url, { dir: migrationsDir({ '0001_one.sql': ONE }) });
    await queryOnce(url, 'CREATE TABLE other (id int)');
    const dir = migrationsDir({
      '0001_one.sql': ONE,
      '0002_index.sql': INDEX_ONE,
    });
    // A report reading another table, in a snapshot older than the build.
    const report = new pg.Client({ connectionString: url });
    await report.connect();
    try {
      await report.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await report.query('SELECT count(*) FROM other');
      const run = migrate(url, { dir });
      await expect.poll(() => migrateSessions(url, `wait_event_type = 'Lock'`)).toBe(1);
      // Longer than the lock timeout that holds for the other files.
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      await report.query('COMMIT');
      expect((await run).applied).toEqual(['0002_index.sql']);
    } finally {
      await report.end();
    }
  }, 30_000);

  it('waits for the lock between statements, so a second run does not deadlock the first one’s concurrent build', async () => {
    const url = await freshDatabase();
    await migrate(url, { dir: migrationsDir({ '0001_one.sql': ONE }) });
    const dir = migrationsDir({
      '0001_one.sql': ONE,
      '0002_index.sql': INDEX_ONE,
    });
    const writer = new pg.Client({ connectionString: url });
    await writer.connect();
    try {
      // The build waits for this write to end…
      await writer.query('BEGIN');
      await writer.query('INSERT INTO one VALUES (1)');
      const first = migrate(url, { dir });
      await expect
        .poll(() => migrateSessions(url, `query LIKE '%CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'`))
        .toBe(1);
      // … while a second deploy's run waits for the first run's lock.
      const second = migrate(url, { dir });
      await expect.poll(() => migrateSessions(url)).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await writer.query('COMMIT');
      expect((await first).applied).toEqual(['0002_index.sql']);
      expect((await second).applied).toEqual([]);
    } finally {
      await writer.end();
    }
  }, 30_000);

  it('names an INVALID index a failed concurrent build left, and records the file only once it is gone', async () => {
    const url = await freshDatabase();
    const dir = migrationsDir({
      '0001_one.sql': 'CREATE TABLE one (n int);\nINSERT INTO one VALUES (1), (1);\n',
      '0002_unique.sql':
        '-- migrate: no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS one_n ON one (n);\n',
    });
    await expect(migrate(url, { dir })).rejects.toThrow(
      /0002_unique.sql failed, it may have left work behind: .*; drop it \(DROP INDEX CONCURRENTLY one_n\)/,
    );
    // Run again as it is, IF NOT EXISTS would take the INVALID index for built: refused first.
    await expect(migrate(url, { dir })).rejects.toThrow(
      '0002_unique.sql not run: an INVALID index exists; drop it (DROP INDEX CONCURRENTLY one_n)',
    );
    expect(await queryOnce(url, 'SELECT version FROM schema_migrations')).toEqual([{ version: 1 }]);
    await queryOnce(url, 'DROP INDEX one_n');
    await queryOnce(url, 'DELETE FROM one WHERE ctid = (SELECT min(ctid) FROM one)');
    expect((await migrate(url, { dir })).applied).toEqual(['0002_unique.sql']);
  });

  it('gives up on a lock a long transaction holds, rather than queue every query on the table behind it', async () => {
    const url = await freshDatabase();
    await migrate(url, { dir: migrationsDir({ '0001_one.sql': ONE }) });
    const dir = migrationsDir({ '0001_one.sql': ONE, '0002_column.sql': 'ALTER TABLE one ADD COLUMN note text;\n' });
    const reader = new pg.Client({ connectionString: url });
    await reader.connect();
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT * FROM one');
      await expect(migrate(url, { dir })).rejects.toThrow(`a lock was not granted within ${LOCK_TIMEOUT}`);
    } finally {
      await reader.end();
    }
    expect((await migrate(url, { dir })).applied).toEqual(['0002_column.sql']);
  }, 20_000);

  it("applies the project's own migrations to an empty database", async () => {
    const url = await freshDatabase();
    const { applied } = await migrate(url);
    expect(applied.length).toBeGreaterThan(0);
    expect(applied[0]).toMatch(/^0001_/);
    expect(await tables(url)).toContain('products');
    expect(DEFAULT_MIGRATIONS_DIR).toBe(path.resolve(import.meta.dirname, '../../../migrations'));
  });
});

describe('migrate CLI', () => {
  const run = promisify(execFile);
  const cli = (env: Record<string, string>, args: string[] = []) =>
    run('npx', ['tsx', path.join(import.meta.dirname, '../src/migrate.ts'), ...args], {
      env: { ...process.env, ...env },
      cwd: path.resolve(import.meta.dirname, '../../..'),
    });

  it('prints what it applied, and exits 1 with the message (and no password) on error', async () => {
    const url = await freshDatabase();
    const dir = migrationsDir({ '0001_one.sql': ONE });
    const ok = await cli({ DATABASE_URL: url }, [dir]);
    expect(ok.stdout).toContain('applied 0001_one.sql');
    expect(ok.stdout).toContain('applied 1 migration(s)');

    writeFileSync(path.join(dir, '0001_one.sql'), 'CREATE TABLE edited (id int);');
    const failed = await cli({ DATABASE_URL: url }, [dir]).catch(
      (e: { code: number; stderr: string; stdout: string }) => e,
    );
    expect('code' in failed && failed.code).toBe(1);
    expect(failed.stderr).toContain('migrate: ');
    expect(failed.stderr).toContain('0001_one.sql was edited after it was applied');
    expect(failed.stderr + failed.stdout).not.toContain('postgres:postgres');
  }, 30_000);
});
