/**
 * A local stand-in for Neon's SQL-over-HTTP endpoint, so the Worker's `neon()` driver (HTTP
 * mode, `neonConfig.fetchEndpoint = endpoint`) runs unchanged against a local Postgres.
 *
 * Protocol, as Neon's proxy implements it (neondatabase/neon proxy/src/serverless/sql_over_http.rs)
 * and @neondatabase/serverless 1.2 uses it:
 * - POST with headers Neon-Connection-String, Neon-Raw-Text-Output: true, Neon-Array-Mode: true
 *   and, for batches, Neon-Batch-Isolation-Level / -Read-Only / -Deferrable;
 * - body { query, params } or { queries: [{ query, params }] }, a batch being one transaction;
 * - 200 { command, rowCount, rows, fields, rowAsArray } (batches: { results: [...] }), values as
 *   Postgres text which the driver parses by each field's dataTypeID;
 * - errors: JSON with Postgres' error fields; 400 for anything a statement raised (the driver
 *   then throws NeonDbError with .code, .constraint, ...), 500 when Postgres cannot be reached.
 *
 * Like Neon's, an answer over 10 MiB is refused with 507; a batch's only after its COMMIT, as the
 * batch is pipelined, where Neon rolls it back (no write of the Worker answers that much).
 * Differences, on purpose: the target is fixed (the connection string header is required but
 * not used to connect: the driver drops the port from it in some modes, and no credentials are
 * checked), and values are always returned as text (the driver always asks for that). For speed,
 * a batch is pipelined and statements are prepared per connection by name; Neon's proxy runs a
 * batch's statements one after another (query_batch), each as the unnamed statement
 * (libs/proxy/tokio-postgres2/src/query.rs), so Postgres plans each of them afresh there and the
 * local Postgres' timings are a floor for Neon's. Listens on 127.0.0.1 only.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pg from 'pg';

export interface NeonHttpProxy {
  /** http://127.0.0.1:PORT/sql, for neonConfig.fetchEndpoint */
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 10 * 1024 * 1024;
// Neon answers no more than this (its proxy's default, `sql_over_http.rs`: 507 "response is too
// large"), so a query whose answer would be larger fails here as it would there.
const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

const ISOLATION_LEVELS: Record<string, string> = {
  Serializable: 'SERIALIZABLE',
  RepeatableRead: 'REPEATABLE READ',
  ReadCommitted: 'READ COMMITTED',
  ReadUncommitted: 'READ UNCOMMITTED',
};

// Postgres error fields, named as pg's DatabaseError and Neon's JSON both name them.
const ERROR_FIELDS = [
  'severity',
  'code',
  'detail',
  'hint',
  'position',
  'internalPosition',
  'internalQuery',
  'where',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'file',
  'line',
  'routine',
] as const;

// Every value stays the text Postgres sent; the driver on the other side parses it.
const rawText: pg.CustomTypesConfig = {
  getTypeParser: (() => (value: string) => value) as unknown as pg.CustomTypesConfig['getTypeParser'],
};

interface QueryData {
  query: string;
  params: Array<string | null>;
  arrayMode?: boolean;
}

interface RequestOptions {
  arrayMode: boolean;
  isolationLevel?: string;
  readOnly: boolean;
  deferrable: boolean;
}

/** An answer that is not a result: HTTP status plus Neon's error body. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly pgError?: unknown,
  ) {
    super(message);
  }
}

/** `maxConnections`: how many transactions may be open at once (default 10); more wait for a connection. */
export async function startNeonHttpProxy(opts: {
  databaseUrl: string;
  port?: number;
  maxConnections?: number;
}): Promise<NeonHttpProxy> {
  const pool = new pg.Pool({
    connectionString: opts.databaseUrl,
    max: opts.maxConnections ?? 10,
    // Fail a request (500, like Neon's "Couldn't connect to compute node") rather than hang it.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 10_000,
  });
  // An idle connection dropped by the server (restart, shutdown) must not crash the process;
  // the pool discards it and the next request connects afresh.
  pool.on('error', () => {});

  const server = createServer((req, res) => {
    handle(pool, req, res).catch((err: unknown) => send(res, 500, errorBody(String(err))));
  });
  // workerd's fetch pools connections and closes one idle for 5 s (kj HttpClientSettings
  // idleTimeout, capnproto kj/compat/http.h); Node's server closes it after the same 5 s
  // (server.keepAliveTimeout). With both at 5 s, a query sent on a connection the server is
  // closing fails with "Network connection lost". Longer here, the client always closes first.
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('neon HTTP proxy: no TCP address');

  return {
    endpoint: `http://127.0.0.1:${address.port}/sql`,
    port: address.port,
    async close() {
      // Keep-alive sockets from fetch() would otherwise hold close() open.
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.end();
    },
  };
}

async function handle(pool: pg.Pool, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/sql') {
    return send(res, 404, errorBody('not found: POST /sql'));
  }
  if (req.method !== 'POST') return send(res, 405, errorBody('method not allowed: POST /sql'));
  try {
    const options = parseHeaders(req);
    const payload = parsePayload(await readBody(req));
    const client = await connect(pool);
    const result = await runWithClient(client, payload, options);
    const json = JSON.stringify(result);
    if (Buffer.byteLength(json) > MAX_RESPONSE_BYTES) {
      throw new HttpError(507, `response is too large (max is ${MAX_RESPONSE_BYTES} bytes)`);
    }
    send(res, 200, json);
  } catch (err) {
    if (err instanceof HttpError) return send(res, err.status, errorBody(err.message, err.pgError));
    throw err;
  }
}

function parseHeaders(req: IncomingMessage): RequestOptions {
  if (!req.headers['neon-connection-string']) {
    throw new HttpError(400, 'connection string is missing: send it in the Neon-Connection-String header');
  }
  const level = header(req, 'neon-batch-isolation-level');
  if (level !== undefined && !(level in ISOLATION_LEVELS)) throw new HttpError(400, 'invalid isolation level');
  return {
    arrayMode: header(req, 'neon-array-mode') === 'true',
    isolationLevel: level === undefined ? undefined : ISOLATION_LEVELS[level],
    readOnly: header(req, 'neon-batch-read-only') === 'true',
    deferrable: header(req, 'neon-batch-deferrable') === 'true',
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request is too large (max is ${MAX_BODY_BYTES} bytes)`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

type Payload = { single: QueryData } | { batch: QueryData[] };

// Neon reads the body with serde_json, which refuses a string holding a lone surrogate (a
// `\ud800` escape without its pair): 400 "could not parse the HTTP request body", no SQLSTATE.
// Node's JSON.parse takes it, and Postgres would store U+FFFD: refused here as Neon refuses it.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Text decoded from UTF-8 holds only paired surrogates, so a lone one can only come from an
// escape; without one, every string is checked for nothing (a reviver parses a batch 3× slower).
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

function parsePayload(text: string): Payload {
  let body: unknown;
  try {
    body = SURROGATE_ESCAPE.test(text)
      ? JSON.parse(text, (_, value: unknown) => {
          if (typeof value === 'string' && LONE_SURROGATE.test(value)) throw new Error('lone surrogate in hex escape');
          return value;
        })
      : JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `could not parse the HTTP request body: ${(err as Error).message}`);
  }
  if (isRecord(body) && Array.isArray(body.queries)) return { batch: body.queries.map(parseQuery) };
  return { single: parseQuery(body) };
}

function parseQuery(value: unknown): QueryData {
  if (!isRecord(value) || typeof value.query !== 'string') {
    throw new HttpError(400, 'request body must be { query, params } or { queries: [{ query, params }] }');
  }
  const params = value.params ?? [];
  if (!Array.isArray(params)) throw new HttpError(400, 'params must be an array');
  return {
    query: value.query,
    params: params.map(paramToText),
    arrayMode: typeof value.arrayMode === 'boolean' ? value.arrayMode : undefined,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parameters go to Postgres as text, converted as Neon converts JSON: strings as they are,
 * numbers, booleans and objects as their JSON text, arrays as Postgres array literals.
 * (The driver already sends strings and nulls; this is for other clients, e.g. curl.)
 */
function paramToText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return arrayLiteral(value);
  return JSON.stringify(value);
}

function arrayLiteral(items: unknown[]): string {
  const element = (item: unknown): string => {
    if (item === null || item === undefined) return 'NULL';
    if (Array.isArray(item)) return arrayLiteral(item);
    const text = typeof item === 'object' ? JSON.stringify(item) : item;
    return typeof text === 'string' ? JSON.stringify(text) : String(text);
  };
  return `{${items.map(element).join(',')}}`;
}

async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (err) {
    // A refusal from Postgres itself (bad password, unknown database) carries its SQLSTATE;
    // a network failure has none and is Neon's 500.
    if (err instanceof pg.DatabaseError) throw new HttpError(400, err.message, err);
    throw new HttpError(500, `Couldn't connect to compute node: ${(err as Error).message}`);
  }
}

async function runWithClient(client: pg.PoolClient, payload: Payload, options: RequestOptions): Promise<unknown> {
  // A connection that breaks while checked out emits 'error' with no pool listener attached.
  let broken: Error | undefined;
  const onError = (err: Error) => (broken = err);
  client.on('error', onError);
  try {
    if ('single' in payload) return await runQuery(client, payload.single, options);
    return { results: await runBatch(client, payload.batch, options) };
  } catch (err) {
    if (err instanceof pg.DatabaseError) throw new HttpError(400, err.message, err);
    if (!broken) broken = err as Error;
    if (err instanceof PipelineError) throw new HttpError(400, err.message, err.pgError);
    throw new HttpError(400, (err as Error).message);
  } finally {
    client.off('error', onError);
    // Destroy rather than reuse a connection that failed outside Postgres' own error handling.
    client.release(broken);
  }
}

/**
 * A batch is one transaction sent in one go: BEGIN, every statement and COMMIT are pipelined
 * (extended protocol, one Sync at the end) and answered together, one round trip to Postgres
 * (Neon's proxy, next to the database, sends them one at a time). A statement that fails makes
 * Postgres skip the rest up to the Sync; the transaction is then rolled back, as on Neon.
 */
async function runBatch(client: pg.PoolClient, queries: QueryData[], options: RequestOptions): Promise<unknown[]> {
  const modes = [
    options.isolationLevel && `ISOLATION LEVEL ${options.isolationLevel}`,
    options.readOnly && 'READ ONLY',
    options.deferrable && 'DEFERRABLE',
  ].filter(Boolean);
  const statements = [
    { query: ['BEGIN', ...modes].join(' '), params: [] },
    ...queries,
    { query: 'COMMIT', params: [] },
  ];
  try {
    const pipeline = new PipelinedStatements(statements);
    void client.query(pipeline);
    const results = await pipeline.done;
    return results.slice(1, -1).map((result, i) => queryResult(result, queries[i]!.arrayMode ?? options.arrayMode));
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

interface StatementResult {
  command: string;
  rowCount: number | null;
  rows: Array<Array<string | null>>;
  fields: pg.FieldDef[];
}

/**
 * node-postgres' extension point for its own query kinds (pg-cursor and pg-query-stream use it):
 * `submit` writes the messages, the client hands the answers to the handle* methods.
 */
class PipelinedStatements implements pg.Submittable {
  private readonly results: StatementResult[] = [];
  private current: StatementResult = { command: '', rowCount: null, rows: [], fields: [] };
  private settle: { resolve(results: StatementResult[]): void; reject(err: unknown): void } | undefined;
  readonly done: Promise<StatementResult[]>;

  constructor(private readonly statements: QueryData[]) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
  }

  submit(pgConnection: pg.Connection): void {
    const connection = pgConnection as unknown as PgConnection;
    connection.stream.cork?.();
    try {
      for (const statement of this.statements) {
        const name = statementName(statement.query);
        if (!name || connection.parsedStatements[name] !== statement.query) {
          connection.parse({ text: statement.query, name, types: [] });
          if (name) connection.parsedStatements[name] = statement.query;
        }
        connection.bind({ statement: name, values: statement.params });
        connection.describe({ type: 'P', name: '' });
        connection.execute({ portal: '' });
      }
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
  }

  handleRowDescription(msg: { fields: pg.FieldDef[] }): void {
    this.current.fields = msg.fields;
  }

  handleDataRow(msg: { fields: Array<string | null> }): void {
    this.current.rows.push(msg.fields);
  }

  handleCommandComplete(msg: { text: string }): void {
    // "INSERT 0 3", "UPDATE 2", "SELECT 1", "BEGIN": the command, and the count when there is one.
    const words = msg.text.split(' ');
    const count = Number(words.at(-1));
    this.current.command = words[0]!;
    this.current.rowCount = words.length > 1 && Number.isInteger(count) ? count : null;
    this.results.push(this.current);
    this.current = { command: '', rowCount: null, rows: [], fields: [] };
  }

  handleEmptyQuery(): void {
    this.results.push(this.current);
    this.current = { command: '', rowCount: null, rows: [], fields: [] };
  }

  handleError(err: Error): void {
    this.settle?.reject(new PipelineError(err));
  }

  handleReadyForQuery(): void {
    this.settle?.resolve(this.results);
  }

  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}

/** The statement's own error, marked so the connection is not reused: which statements were prepared on it is then unknown. */
class PipelineError extends Error {
  constructor(readonly pgError: Error) {
    super(pgError.message);
  }
}

interface PgConnection {
  stream: { cork?(): void; uncork?(): void };
  parsedStatements: Record<string, string>;
  parse(query: { text: string; name?: string; types: unknown[] }): void;
  bind(config: { statement?: string; values: Array<string | null> }): void;
  describe(msg: { type: 'P'; name: string }): void;
  execute(config: { portal: string }): void;
  sync(): void;
}

const statementNames = new Map<string, string>();

/** A name for the statement, or none (run unprepared) once many texts were seen: statements built per request would grow without bound. */
function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < 1000) {
    name = `s${createHash('sha1').update(text).digest('hex')}`;
    statementNames.set(text, name);
  }
  return name;
}

async function runQuery(client: pg.PoolClient, data: QueryData, options: RequestOptions): Promise<unknown> {
  // The extended protocol, as Neon uses, so one request is one statement even without params.
  // Named after their text, statements are parsed once per connection and then only bound and
  // run: the Worker sends the same few statements over and over.
  const config: pg.QueryArrayConfig & { queryMode: 'extended' } = {
    name: statementName(data.query),
    text: data.query,
    values: data.params,
    rowMode: 'array',
    types: rawText,
    queryMode: 'extended',
  };
  const result = await client.query(config);
  return queryResult(
    {
      command: result.command,
      rowCount: result.rowCount,
      rows: result.rows as Array<Array<string | null>>,
      fields: result.fields,
    },
    data.arrayMode ?? options.arrayMode,
  );
}

/** One statement's answer as Neon sends it. */
function queryResult(result: StatementResult, arrayMode: boolean): unknown {
  const { rows } = result;
  return {
    command: result.command,
    rowCount: result.rowCount,
    rows: arrayMode ? rows : rows.map((row) => Object.fromEntries(result.fields.map((f, i) => [f.name, row[i]]))),
    fields: result.fields.map((f) => ({
      name: f.name,
      dataTypeID: f.dataTypeID,
      tableID: f.tableID,
      columnID: f.columnID,
      dataTypeSize: f.dataTypeSize,
      dataTypeModifier: f.dataTypeModifier,
      format: 'text',
    })),
    rowAsArray: arrayMode,
  };
}

/** Neon's error body: every field present, null when Postgres did not set it, code '' when none. */
function errorBody(message: string, pgError?: unknown): Record<string, unknown> {
  const source = (pgError ?? {}) as Record<string, unknown>;
  const body: Record<string, unknown> = { message };
  for (const field of ERROR_FIELDS) body[field] = source[field] ?? null;
  body.code ??= '';
  return body;
}

/** `body` as JSON, or already serialized. */
function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const json = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}
