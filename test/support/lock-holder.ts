// Test support for race tests that must force their race, not hope for it. The Worker's tests
// run inside workerd and reach Postgres only through one-shot HTTP transactions, so they cannot
// keep a lock while other requests arrive. This small server on 127.0.0.1 can: a test takes
// locks in an open transaction, starts the requests that must collide, waits until Postgres
// shows them all blocked on those locks, then releases them at once.
//
//   POST /hold     { "statements": ["SELECT … FOR UPDATE"] } → { "id" } once they have run
//   POST /waiting  { "id", "count": 2, "query"?: "%FROM carts%" } → { "waiting" } once at least
//                  `count` sessions wait behind that transaction, directly or behind another
//                  waiter (and run a query that matches, ILIKE); other tests' locks do not count
//   POST /then     { "id", "statements": [...] } → {} at once; runs them next in that transaction,
//                  where they may wait (to close a deadlock's cycle: the other session then fails)
//   POST /release  { "id", "commit"?: true } → ends the transaction: rolled back, as it mostly only
//                  holds locks; with commit, committed, for a test whose holder also wrote (a change
//                  that lands while others wait on it). A commit that could not happen (a statement
//                  of /then failed) answers 500.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

export interface LockHolder {
  /** http://127.0.0.1:PORT */
  url: string;
  close(): Promise<void>;
}

const WAIT_LIMIT_MS = 15_000;

export async function startLockHolder(databaseUrl: string): Promise<LockHolder> {
  const held = new Map<string, { client: pg.Client; pid: number; next: Promise<unknown> }>();
  const observer = newClient('lock-holder-observer');
  await observer.connect();

  /**
   * A client whose lost connection does not crash the process: Postgres shutting down (a test
   * run stopped with Ctrl-C: 57P01) or dropping the session emits 'error', unhandled an uncaught
   * exception that skips teardown. Nothing more is needed here: a query in flight or sent later
   * fails with it, so a call that needed the connection answers 500.
   */
  function newClient(applicationName: string): pg.Client {
    const client = new pg.Client({ connectionString: databaseUrl, application_name: applicationName });
    client.on('error', () => {});
    return client;
  }

  async function hold(statements: string[]): Promise<{ id: string }> {
    const client = newClient('lock-holder');
    await client.connect();
    let pid: number;
    try {
      pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await client.query('BEGIN');
      for (const statement of statements) await client.query(statement);
    } catch (err) {
      await client.end();
      throw err;
    }
    const id = crypto.randomUUID();
    held.set(id, { client, pid, next: Promise.resolve() });
    return { id };
  }

  function then(id: string, statements: string[]): Record<string, never> {
    const holder = held.get(id);
    if (!holder) throw new Error(`no held transaction ${id}`);
    // Not awaited: they may wait behind the very session the test is waiting for. Their own
    // failure (the deadlock detector may pick this side) ends nothing: release rolls back.
    holder.next = holder.next
      .then(async () => {
        for (const statement of statements) await holder.client.query(statement);
      })
      .catch(() => {});
    return {};
  }

  async function waiting(id: string, count: number, query: string): Promise<{ waiting: number }> {
    const holder = held.get(id);
    if (!holder) throw new Error(`no held transaction ${id}`);
    const deadline = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const { rows } = await observer.query<{ n: number }>(
        `WITH RECURSIVE behind(pid) AS (
           SELECT a.pid FROM pg_stat_activity a WHERE $1 = ANY(pg_blocking_pids(a.pid))
           UNION
           SELECT a.pid FROM pg_stat_activity a, behind b WHERE b.pid = ANY(pg_blocking_pids(a.pid))
         )
         SELECT count(*)::int AS n FROM behind JOIN pg_stat_activity a USING (pid) WHERE a.query ILIKE $2`,
        [holder.pid, query],
      );
      const n = rows[0]!.n;
      if (n >= count) return { waiting: n };
      if (Date.now() > deadline) {
        const { rows: sessions } = await observer.query(
          `SELECT pid, state, wait_event_type, wait_event, pg_blocking_pids(pid) AS blocked_by, left(query, 80) AS query
           FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
        );
        throw new Error(
          `only ${n} of ${count} sessions came to wait behind pid ${holder.pid}: ${JSON.stringify(sessions)}`,
        );
      }
      await sleep(10);
    }
  }

  async function release(id: string, commit = false): Promise<Record<string, never>> {
    const { client, next } = held.get(id) ?? {};
    if (!client) throw new Error(`no held transaction ${id}`);
    held.delete(id);
    try {
      await next;
      if (!commit) await client.query('ROLLBACK');
      // Postgres answers COMMIT of a failed transaction with ROLLBACK, without an error.
      else if ((await client.query('COMMIT')).command !== 'COMMIT') throw new Error(`transaction ${id} rolled back`);
    } finally {
      await client.end();
    }
    return {};
  }

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => answer(res, 500, { error: String(err) }));
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse((await readBody(req)) || '{}') as {
      statements?: string[];
      count?: number;
      query?: string;
      id?: string;
      commit?: boolean;
    };
    if (req.method !== 'POST') return answer(res, 405, { error: 'POST only' });
    if (req.url === '/hold') return answer(res, 200, await hold(body.statements ?? []));
    if (req.url === '/waiting')
      return answer(res, 200, await waiting(body.id ?? '', body.count ?? 1, body.query ?? '%'));
    if (req.url === '/then') return answer(res, 200, then(body.id ?? '', body.statements ?? []));
    if (req.url === '/release') return answer(res, 200, await release(body.id ?? '', body.commit === true));
    answer(res, 404, { error: 'no such route' });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      for (const id of [...held.keys()]) await release(id).catch(() => {});
      await observer.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}
