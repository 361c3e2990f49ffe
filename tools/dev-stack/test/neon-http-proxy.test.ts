import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { reusedAfterWorkerdIdle } from '@edge-checkout/test-support/idle-connection';
import { NeonDbError, type NeonQueryFunction, neon, neonConfig } from '@neondatabase/serverless';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { neonProxyService } from '../src/local-database.ts';
import type { ServiceContext } from '../src/local-service.ts';
import { type NeonHttpProxy, startNeonHttpProxy } from '../src/neon-http-proxy.ts';
import { freePort } from '../src/net.ts';
import { type RunningPostgres, startPostgres } from '../src/postgres.ts';

let postgres: RunningPostgres;
let proxy: NeonHttpProxy;
let sql: NeonQueryFunction<false, false>;

beforeAll(async () => {
  postgres = await startPostgres({ dataDir: mkdtempSync(path.join(tmpdir(), 'neon-proxy-test-')), persistent: false });
  proxy = await startNeonHttpProxy({ databaseUrl: postgres.url });
  // Exactly how the Worker configures the driver.
  neonConfig.fetchEndpoint = proxy.endpoint;
  sql = neon(postgres.url);
  await sql`CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL CONSTRAINT accounts_email_key UNIQUE)`;
});

afterAll(async () => {
  await proxy?.close();
  await postgres?.stop();
});

async function caught(promise: Promise<unknown>): Promise<NeonDbError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NeonDbError);
  return err as NeonDbError;
}

describe('neon HTTP proxy', () => {
  it('listens on loopback at /sql', () => {
    expect(proxy.endpoint).toBe(`http://127.0.0.1:${proxy.port}/sql`);
  });

  it('round-trips Postgres types through the driver', async () => {
    const when = new Date('2024-02-29T12:34:56.789Z');
    const [row] = await sql`
      SELECT 42::int AS int, 9007199254740993::bigint AS big, 12.50::numeric(10,2) AS num,
             true AS yes, ${when}::timestamptz AS at, '{"a":[1,{"b":null}]}'::json AS j,
             ${JSON.stringify({ k: 'v' })}::jsonb AS jb, ${['x', 'y,z', 'q"uote', null]}::text[] AS arr,
             NULL::text AS nothing, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id,
             ${Buffer.from([0, 255])}::bytea AS bytes, ${'ünïcødé ✓'} AS txt`;
    expect(row).toEqual({
      int: 42,
      big: '9007199254740993', // int8 stays a string so no precision is lost
      num: '12.50',
      yes: true,
      at: when,
      j: { a: [1, { b: null }] },
      jb: { k: 'v' },
      arr: ['x', 'y,z', 'q"uote', null],
      nothing: null,
      id: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      bytes: Buffer.from([0, 255]),
      txt: 'ünïcødé ✓',
    });
  });

  it('binds parameters as values, never as SQL', async () => {
    const hostile = "x'); DROP TABLE accounts; --";
    const [row] = await sql.query('SELECT $1::text AS v, $2::int + 1 AS n', [hostile, 41]);
    expect(row).toEqual({ v: hostile, n: 42 });
    expect(await sql`SELECT count(*)::int AS c FROM accounts`).toEqual([{ c: 0 }]);
  });

  it('reports command and row count with fullResults', async () => {
    await sql`INSERT INTO accounts VALUES (100, 'a@x'), (101, 'b@x')`;
    const result = await sql.query('UPDATE accounts SET email = email || $1 WHERE id >= 100', ['.y'], {
      fullResults: true,
    });
    expect(result.command).toBe('UPDATE');
    expect(result.rowCount).toBe(2);
    await sql`DELETE FROM accounts WHERE id >= 100`;
  });

  it('commits a batch as one transaction', async () => {
    const [, , [count]] = await sql.transaction([
      sql`INSERT INTO accounts VALUES (1, 'one@example.com')`,
      sql`INSERT INTO accounts VALUES (2, 'two@example.com')`,
      sql`SELECT count(*)::int AS c FROM accounts WHERE id IN (1, 2)`,
    ]);
    expect(count).toEqual({ c: 2 });
    expect(await sql`SELECT id FROM accounts WHERE id IN (1, 2) ORDER BY id`).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('rolls a batch back when one statement fails, and reports the unique violation', async () => {
    const err = await caught(
      sql.transaction([
        sql`INSERT INTO accounts VALUES (3, 'three@example.com')`,
        sql`INSERT INTO accounts VALUES (4, 'one@example.com')`,
      ]),
    );
    expect(err.code).toBe('23505');
    expect(err.constraint).toBe('accounts_email_key');
    expect(err.table).toBe('accounts');
    expect(err.schema).toBe('public');
    expect(err.severity).toBe('ERROR');
    expect(err.detail).toBe('Key (email)=(one@example.com) already exists.');
    expect(await sql`SELECT id FROM accounts WHERE id = 3`).toEqual([]);
  });

  it('applies the batch isolation level, read-only and deferrable options', async () => {
    const [[level], [readOnly], [deferrable]] = await sql.transaction(
      [sql`SHOW transaction_isolation`, sql`SHOW transaction_read_only`, sql`SHOW transaction_deferrable`],
      { isolationLevel: 'Serializable', readOnly: true, deferrable: true },
    );
    expect([level, readOnly, deferrable]).toEqual([
      { transaction_isolation: 'serializable' },
      { transaction_read_only: 'on' },
      { transaction_deferrable: 'on' },
    ]);
    const err = await caught(sql.transaction([sql`INSERT INTO accounts VALUES (9, 'ro@x')`], { readOnly: true }));
    expect(err.code).toBe('25006');
  });

  it('answers statement errors with the Postgres fields, syntax position included', async () => {
    const err = await caught(sql.query('SELECT * FROM nowhere_table'));
    expect(err.code).toBe('42P01');
    expect(err.message).toBe('relation "nowhere_table" does not exist');
    expect(err.position).toBe('15');
  });

  it('refuses an answer over 10 MiB with 507, as Neon does, and serves one just under it', async () => {
    const mib = 1024 * 1024;
    const err = await caught(sql.query('SELECT repeat($1, $2::int) AS big', ['x', 10 * mib + 1]));
    expect(err.message).toContain('HTTP status 507');
    expect(err.message).toContain('response is too large (max is 10485760 bytes)');
    expect(err.code).toBeFalsy();
    const [row] = await sql.query('SELECT repeat($1, $2::int) AS big', ['x', 10 * mib - 4096]);
    expect(String(row!.big)).toHaveLength(10 * mib - 4096);
  });

  it('refuses text holding a lone surrogate with 400 and no SQLSTATE, as Neon does, and takes a pair', async () => {
    const err = await caught(sql.query('SELECT $1::text AS t', ['a\ud83db']));
    expect(err.message).toContain('could not parse the HTTP request body');
    expect(err.code).toBeFalsy();
    const [row] = await sql.query('SELECT $1::text AS t', ['a\ud83d\ude00b']);
    expect(row!.t).toBe('a😀b');
  });

  it('finds a lone surrogate in any escape a client writes, and takes a backslash before a u as text', async () => {
    const post = (body: string) =>
      fetch(proxy.endpoint, { method: 'POST', headers: { 'Neon-Connection-String': postgres.url }, body });
    const upper = await post('{"query":"SELECT $1::text AS t","params":["a\\uDC00"]}');
    expect(upper.status).toBe(400);
    expect(((await upper.json()) as { message: string }).message).toContain('could not parse the HTTP request body');
    const text = await post('{"query":"SELECT $1::text AS t","params":["\\\\ud800"]}');
    expect(text.status).toBe(200);
    expect(((await text.json()) as { rows: Array<{ t: string }> }).rows).toEqual([{ t: '\\ud800' }]);
  });

  it('runs one statement per request, as Neon does', async () => {
    const err = await caught(sql.query('SELECT 1; SELECT 2'));
    expect(err.code).toBe('42601');
  });

  it('serves concurrent requests on separate connections', async () => {
    // A request waiting for a lock held elsewhere must not hold up the others.
    const holder = new pg.Client({ connectionString: postgres.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(4242)');
      // The driver sends a query once it is awaited: then() starts it.
      const waiting = sql`SELECT pg_advisory_xact_lock(4242)::text AS locked`.then((rows) => rows);
      await vi.waitFor(async () => {
        const { rows } = await holder.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'",
        );
        expect(rows[0].n).toBe(1);
      }, 5_000);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => sql`SELECT ${i}::int AS i`));
      expect(results.map(([row]) => row?.i)).toEqual([...Array(10).keys()]);
      await holder.query('COMMIT');
      expect(await waiting).toEqual([{ locked: '' }]);
    } finally {
      await holder.end();
    }
  });

  it('keeps concurrent batch transactions apart', async () => {
    // Each batch waits, after its insert, for a lock held here until all eight wait: then all
    // eight transactions are open at once when half of them fail.
    const holder = new pg.Client({ connectionString: postgres.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(4243)');
      const batches = Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          sql
            .transaction([
              sql`INSERT INTO accounts VALUES (${1000 + i}, ${`c${i}@x`})`,
              sql`SELECT pg_advisory_xact_lock_shared(4243)::text`,
              i % 2 === 0 ? sql`SELECT 1` : sql`SELECT 1/0`,
            ])
            .catch((err: unknown) => err),
        ),
      );
      await vi.waitFor(async () => {
        const { rows } = await holder.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'",
        );
        expect(rows[0].n).toBe(8);
      }, 5_000);
      await holder.query('SELECT pg_advisory_unlock(4243)');
      await batches;
    } finally {
      await holder.end();
    }
    const rows = await sql`SELECT id FROM accounts WHERE id >= 1000 ORDER BY id`;
    expect(rows).toEqual([{ id: 1000 }, { id: 1002 }, { id: 1004 }, { id: 1006 }]);
  });

  it('keeps an idle connection open longer than workerd does (5 s), so the client is always the one to close it', async () => {
    const request = {
      method: 'POST',
      headers: { 'Neon-Connection-String': postgres.url, 'Content-Type': 'application/json' },
      body: JSON.stringify({ query: 'SELECT 1', params: [] }),
    };
    expect(await reusedAfterWorkerdIdle(proxy.endpoint, request)).toEqual([
      { status: 200, reused: false },
      { status: 200, reused: true },
    ]);
  });

  it('rejects requests without a connection string or with an unknown isolation level', async () => {
    const bare = await fetch(proxy.endpoint, { method: 'POST', body: JSON.stringify({ query: 'SELECT 1' }) });
    expect(bare.status).toBe(400);
    const level = await fetch(proxy.endpoint, {
      method: 'POST',
      headers: { 'Neon-Connection-String': postgres.url, 'Neon-Batch-Isolation-Level': 'Chaos' },
      body: JSON.stringify({ queries: [{ query: 'SELECT 1', params: [] }] }),
    });
    expect(level.status).toBe(400);
    expect(((await level.json()) as { message: string }).message).toBe('invalid isolation level');
  });
});

describe('neon HTTP proxy without a reachable Postgres', () => {
  it('answers with an error the driver throws, and no SQLSTATE', async () => {
    // Reserved and never bound: nothing listens there.
    const closedPort = await freePort();
    const url = `postgres://postgres:postgres@127.0.0.1:${closedPort}/edge_checkout`;
    const down = await startNeonHttpProxy({ databaseUrl: url });
    neonConfig.fetchEndpoint = down.endpoint;
    try {
      const err = await caught(neon(url)`SELECT 1`);
      expect(err.message).toMatch(/HTTP status 500.*Couldn't connect to compute node/);
      expect(err.message).not.toContain('postgres:postgres');
      expect(err.code).toBeUndefined();
    } finally {
      neonConfig.fetchEndpoint = proxy.endpoint;
      await down.close();
    }
  });

  it('survives a Postgres restart: errors while it is down, serves again once it is back', async () => {
    const dataDir = path.join(mkdtempSync(path.join(tmpdir(), 'neon-proxy-restart-')), 'data');
    let server = await startPostgres({ dataDir, persistent: true });
    const restartProxy = await startNeonHttpProxy({ databaseUrl: server.url });
    neonConfig.fetchEndpoint = restartProxy.endpoint;
    const query = neon(server.url);
    try {
      expect(await query`SELECT 1 AS one`).toEqual([{ one: 1 }]);
      await server.stop(); // the pooled idle connection is terminated under the proxy
      const err = await caught(query`SELECT 1 AS one`);
      expect(err.code ?? '').toBe('');
      server = await startPostgres({ dataDir, port: server.port, persistent: true });
      expect(await query`SELECT 2 AS two`).toEqual([{ two: 2 }]);
    } finally {
      neonConfig.fetchEndpoint = proxy.endpoint;
      await restartProxy.close();
      await server.stop();
      rmSync(path.dirname(dataDir), { recursive: true, force: true });
    }
  });
});

describe('the stack’s proxy service', () => {
  const started = (DATABASE_URL: string) =>
    neonProxyService.start({ configured: { DATABASE_URL }, provided: {}, log: () => {} } as unknown as ServiceContext);

  it('stands in front of any Postgres but Neon’s, so the driver never sends it to api.<host>', async () => {
    const elsewhere = await started('postgres://shop:secret@db.example.com/shop');
    expect(elsewhere?.vars?.NEON_HTTP_ENDPOINT).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/sql$/);
    await elsewhere?.stop();
    expect(
      await started('postgres://shop:secret@ep-cool-darkness-123456.us-east-2.aws.neon.tech/shop'),
    ).toBeUndefined();
  });
});
