/**
 * Migration runner behind `npm run db:migrate`: applies `migrations/NNNN_name.sql` files to any
 * Postgres (Neon over TLS in production, embedded Postgres locally).
 *
 * - Pending files run in ONE transaction, with their bookkeeping rows: a failure anywhere
 *   leaves the database exactly as it was. A file whose first line is `-- migrate: no-transaction`
 *   runs on its own instead, outside any transaction, after the files before it are committed:
 *   what Postgres cannot do in one (`CREATE INDEX CONCURRENTLY`, which builds an index on a large
 *   table without blocking its writes). Such a file holds one statement.
 * - An advisory lock, held for the whole run, serialises concurrent runs (two deploys at once):
 *   the second waits, then finds nothing left to apply.
 * - A statement waits at most LOCK_TIMEOUT for a lock on a table: an `ALTER TABLE` queued behind a
 *   long transaction would otherwise hold up every query on that table while it waits
 *   (https://www.postgresql.org/docs/current/sql-altertable.html, lock_timeout). The run fails
 *   instead, and is run again later.
 * - Applied files are immutable: an edited (checksum) or deleted applied file stops the run.
 * - Numbering is strict (0001, 0002, … no gaps, no duplicates), so two branches that both add
 *   "the next" migration conflict loudly instead of applying in a surprising order.
 *
 * CLI: `DATABASE_URL=… npm run db:migrate -- [dir]`.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

export interface MigrateOptions {
  dir?: string;
  log?: (line: string) => void;
}

export interface MigrationFile {
  version: number;
  /** File name, e.g. 0001_products_and_carts.sql */
  file: string;
  sql: string;
  checksum: string;
  /** Runs alone, outside a transaction (its first line is NO_TRANSACTION). */
  noTransaction: boolean;
}

const NO_TRANSACTION = '-- migrate: no-transaction';
export const LOCK_TIMEOUT = '5s';
const LOCK_POLL_MS = 250;

export const DEFAULT_MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../../../migrations');
const FILE_PATTERN = /^(\d{4})_([A-Za-z0-9][A-Za-z0-9_-]*)\.sql$/;
// Any fixed 64-bit number works; this one is only ours within this database.
export const LOCK_KEY = '4729311042187605313';

export async function migrate(databaseUrl: string, opts: MigrateOptions = {}): Promise<{ applied: string[] }> {
  const dir = opts.dir ?? DEFAULT_MIGRATIONS_DIR;
  const log = opts.log ?? (() => {});
  const files = await readMigrationFiles(dir);

  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'edge-checkout-migrate' });
  // A connection lost while idle is reported by the query that next fails, not as a crash.
  client.on('error', () => {});
  await client.connect();
  const applied: string[] = [];
  try {
    await takeRunLock(client);
    await client.query(`SET lock_timeout = '${LOCK_TIMEOUT}'`);
    const pending = await inTransaction(client, async () => {
      await client.query(`
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version    integer PRIMARY KEY,
          name       text NOT NULL,
          checksum   text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`);
      const { rows: done } = await client.query<{ version: number; name: string; checksum: string }>(
        'SELECT version, name, checksum FROM schema_migrations ORDER BY version',
      );
      const [first = [], ...rest] = batches(pendingFiles(files, done, dir));
      // Files up to the first no-transaction one share this transaction: a failure leaves nothing.
      if (first[0]?.noTransaction) return [first, ...rest];
      await applyFiles(client, first, dir, log);
      applied.push(...first.map((m) => m.file));
      return rest;
    });
    for (const batch of pending) {
      try {
        if (batch[0]!.noTransaction) await applyAlone(client, batch[0]!, dir, log);
        else await inTransaction(client, () => applyFiles(client, batch, dir, log));
      } catch (err) {
        const kept = applied.length ? ` (applied and kept before it: ${applied.join(', ')})` : '';
        throw new Error(`${(err as Error).message}${kept}`, {
          cause: err,
        });
      }
      applied.push(...batch.map((m) => m.file));
    }
    if (applied.length === 0) log(`database is up to date (${files.length} migrations)`);
    return { applied };
  } finally {
    await client.end();
  }
}

/**
 * A session lock: it outlives the transactions of this run, and goes with the connection. Waited
 * for between statements, not inside one: a run waiting in a statement holds a snapshot, and a
 * concurrent index build of the run holding the lock waits for every older snapshot, a deadlock
 * Postgres ends by cancelling the build.
 */
async function takeRunLock(client: pg.Client): Promise<void> {
  for (;;) {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LOCK_KEY]);
    if (rows[0]!.ok) return;
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}

async function inTransaction<T>(client: pg.Client, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** Consecutive files that share a transaction; a no-transaction file alone. */
function batches(pending: MigrationFile[]): MigrationFile[][] {
  const out: MigrationFile[][] = [];
  for (const migration of pending) {
    const last = out.at(-1);
    if (migration.noTransaction || !last || last[0]!.noTransaction) out.push([migration]);
    else last.push(migration);
  }
  return out;
}

/** Applies files in the open transaction, each with its bookkeeping row. */
async function applyFiles(
  client: pg.Client,
  files: MigrationFile[],
  dir: string,
  log: (line: string) => void,
): Promise<void> {
  const {
    rows: [txn],
  } = await client.query<{ id: string }>('SELECT pg_current_xact_id()::text AS id');
  for (const migration of files) {
    const started = Date.now();
    await applyFile(client, migration, dir, txn!.id);
    log(`applied ${migration.file} (${Date.now() - started} ms)`);
  }
}

/**
 * Runs a no-transaction file. Without the lock timeout: `CREATE INDEX CONCURRENTLY` waits for
 * every transaction older than it to end, whatever table that one uses, and blocks no writes
 * meanwhile. A concurrent build that failed leaves its index INVALID, to be dropped by hand:
 * that is checked before the file is recorded as applied.
 */
async function applyAlone(
  client: pg.Client,
  migration: MigrationFile,
  dir: string,
  log: (line: string) => void,
): Promise<void> {
  const where = path.join(dir, migration.file);
  const dropFirst = (names: string[]) => `drop it (DROP INDEX CONCURRENTLY ${names.join(', ')}) and run again`;
  // One left by an earlier failure would be taken for built by IF NOT EXISTS, and blamed on this file.
  const before = await invalidIndexes(client);
  if (before.length > 0) throw new Error(`${where} not run: an INVALID index exists; ${dropFirst(before)}`);
  const started = Date.now();
  await client.query('SET lock_timeout = 0');
  try {
    await run(client, migration, dir, 'it may have left work behind');
  } catch (err) {
    const left = await invalidIndexes(client).catch(() => []);
    throw left.length > 0 ? new Error(`${(err as Error).message}; ${dropFirst(left)}`, { cause: err }) : err;
  }
  await client.query(`SET lock_timeout = '${LOCK_TIMEOUT}'`);
  const left = await invalidIndexes(client);
  if (left.length > 0) throw new Error(`${where} left an INVALID index: ${dropFirst(left)}`);
  await record(client, migration);
  log(`applied ${migration.file} (${Date.now() - started} ms, no transaction)`);
}

/** Indexes a failed concurrent build (or reindex) left INVALID, in every schema of ours, qualified. */
async function invalidIndexes(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT i.indexrelid::regclass::text AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
     ORDER BY 1`,
  );
  return rows.map((row) => row.name);
}

/** Reads and checks the folder: names, strict 0001.. numbering, no duplicates. */
async function readMigrationFiles(dir: string): Promise<MigrationFile[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.endsWith('.sql')).sort();
  } catch (err) {
    throw new Error(`cannot read the migrations folder ${dir}: ${(err as Error).message}`);
  }
  const files: MigrationFile[] = [];
  for (const file of names) {
    const match = FILE_PATTERN.exec(file);
    if (!match)
      throw new Error(
        `${path.join(dir, file)}: a migration is named NNNN_name.sql (four digits, underscore, letters/digits/_/-)`,
      );
    const text = await readFile(path.join(dir, file), 'utf8');
    files.push({
      version: Number(match[1]),
      file,
      sql: text,
      checksum: checksumOf(text),
      noTransaction: text.split('\n', 1)[0]!.trim() === NO_TRANSACTION,
    });
  }
  for (let i = 0; i < files.length; i++) {
    const { version, file } = files[i]!;
    const previous = files[i - 1];
    if (previous && previous.version === version) {
      throw new Error(`${dir}: ${previous.file} and ${file} have the same number ${file.slice(0, 4)}; renumber one`);
    }
    if (version !== i + 1) {
      const expected = String(i + 1).padStart(4, '0');
      throw new Error(
        `${dir}: ${file} ${previous ? `follows ${previous.file}` : 'is the first file'}; ` +
          `expected number ${expected} (no gaps, starting at 0001)`,
      );
    }
  }
  return files;
}

/** sha256 of the text with line endings normalised, so a CRLF checkout is not an "edit". */
function checksumOf(text: string): string {
  return createHash('sha256').update(text.replace(/\r\n/g, '\n')).digest('hex');
}

function pendingFiles(
  files: MigrationFile[],
  done: Array<{ version: number; name: string; checksum: string }>,
  dir: string,
): MigrationFile[] {
  const byVersion = new Map(files.map((f) => [f.version, f]));
  for (const [index, row] of done.entries()) {
    if (row.version !== index + 1) {
      throw new Error(`schema_migrations has ${row.name} but not every migration before it; it was edited by hand`);
    }
    const file = byVersion.get(row.version);
    if (!file) {
      throw new Error(
        `${row.name} was applied to this database but is missing from ${dir}; restore it (applied files are never removed)`,
      );
    }
    if (file.file !== row.name) {
      throw new Error(
        `${path.join(dir, file.file)} has number ${file.file.slice(0, 4)}, which this database applied as ${row.name}; applied files are never renamed`,
      );
    }
    if (file.checksum !== row.checksum) {
      throw new Error(
        `${path.join(dir, file.file)} was edited after it was applied (checksum differs); revert it and add a new migration instead`,
      );
    }
  }
  // With strict numbering and every applied file present, the applied ones are a prefix.
  return files.slice(done.length);
}

async function applyFile(client: pg.Client, migration: MigrationFile, dir: string, txn: string): Promise<void> {
  await run(client, migration, dir, 'nothing was applied');
  // A COMMIT or ROLLBACK inside the file would end our transaction early.
  const {
    rows: [now],
  } = await client.query<{ id: string }>('SELECT pg_current_xact_id()::text AS id');
  if (now!.id !== txn) {
    throw new Error(
      `${path.join(dir, migration.file)} ends the migration transaction (COMMIT/ROLLBACK in the file); remove transaction statements from it. Check the database: part of this run may be committed.`,
    );
  }
  await record(client, migration);
}

/** Runs the file's text; on failure, says which file, where, and what that left (`outcome`). */
async function run(client: pg.Client, migration: MigrationFile, dir: string, outcome: string): Promise<void> {
  try {
    // Simple protocol: a file may hold many statements.
    await client.query(migration.sql);
  } catch (err) {
    const hint =
      err instanceof pg.DatabaseError && err.code === '55P03'
        ? `; a lock was not granted within ${LOCK_TIMEOUT} (a long transaction holds the table): run again later`
        : '';
    throw new Error(
      `${path.join(dir, migration.file)} failed, ${outcome}: ${describeError(err, migration.sql)}${hint}`,
      {
        cause: err,
      },
    );
  }
}

async function record(client: pg.Client, migration: MigrationFile): Promise<void> {
  await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
    migration.version,
    migration.file,
    migration.checksum,
  ]);
}

/** Postgres' message, SQLSTATE and, when it gives a position, the line in the file. */
function describeError(err: unknown, sql: string): string {
  if (!(err instanceof pg.DatabaseError)) return (err as Error).message;
  let text = `${err.message} (SQLSTATE ${err.code})`;
  if (err.position) {
    const before = sql.slice(0, Number(err.position) - 1).split('\n');
    text += ` at line ${before.length}, column ${before.at(-1)!.length + 1}`;
  }
  return text;
}

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error('DATABASE_URL is not set');
  const { applied } = await migrate(databaseUrl, { dir: process.argv[2], log: (line) => console.log(line) });
  console.log(applied.length ? `applied ${applied.length} migration(s)` : 'nothing to apply');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(`migrate: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
