import { NeonDbError, type NeonQueryFunction, type NeonQueryPromise, neon, neonConfig } from '@neondatabase/serverless';
import { config, type Env } from './env.ts';

export type Sql = NeonQueryFunction<false, false>;
/** A statement not sent yet (`sql.query(…)`), to run in a transaction with others: one round trip. */
export type Statement = NeonQueryPromise<false, false>;
export type Rows = Record<string, unknown>[];

/** How long one query or batch may take, from sending it to its answer. */
const QUERY_TIMEOUT_MS = 10_000;

// The driver's fetch has no deadline of its own: a database that stops answering (frozen,
// packets dropped) would hang every request on it, webhooks and /healthz included. The body is
// read here, under the same deadline: the driver turns only a failed fetch into NeonDbError (no
// SQLSTATE: a 503 the client retries), not a body cut off or stalled after the headers
// (@neondatabase/serverless 1.2.0 reads it outside its try), which would otherwise be a 500.
// The body read is handed over as it is, not copied into another Response, a share of a
// webhook's CPU in a profile (README, "What a webhook costs"). The driver reads `ok`, `status`,
// `json()` and `text()` of the answer, nothing else.
neonConfig.fetchFunction = async (input: RequestInfo | URL, init?: RequestInit): Promise<DriverAnswer> => {
  const res = await fetch(input, { ...init, signal: AbortSignal.timeout(QUERY_TIMEOUT_MS) });
  const body = await res.text();
  return { ok: res.ok, status: res.status, json: async () => JSON.parse(body), text: async () => body };
};
type DriverAnswer = Pick<Response, 'ok' | 'status' | 'json' | 'text'>;

/** The query function for each connection string: it holds no connection, only its options. */
const queryFunctions = new Map<string, Sql>();

/**
 * The request's database handle: Neon's SQL-over-HTTP driver, one fetch per query or per
 * batch transaction (atomic, https://neon.com/docs/serverless/serverless-driver) and no
 * connection to keep, so nothing is held across requests. `neon()` only reads its options, so
 * the isolate keeps one per connection string rather than building it for every request.
 */
export function database(env: Env): Sql {
  const cfg = config(env);
  const url = cfg.required('DATABASE_URL');
  // The endpoint is global to the driver; it is the same for every request of an isolate.
  const endpoint = cfg.optional('NEON_HTTP_ENDPOINT');
  if (endpoint) neonConfig.fetchEndpoint = endpoint;
  let sql = queryFunctions.get(url);
  if (!sql) {
    sql = neon(url);
    queryFunctions.set(url, sql);
  }
  return sql;
}

/**
 * Why a query failed, when the same request may succeed on its next try, which callers answer
 * with 503 so clients (and Stripe) retry, as opposed to a bug in a query: `unavailable`, the
 * database could not be reached; `busy`, Postgres gave the statement up while other sessions
 * held what it needed (a deadlock, a serialization failure, a lock or statement timeout).
 * Nothing of a failed transaction is written. Postgres asks for serialization failures and
 * deadlocks to be retried
 * (https://www.postgresql.org/docs/current/mvcc-serialization-failure-handling.html); a timeout
 * passes once the session holding the rows lets go. Null for anything else.
 */
export function databaseFailure(err: unknown): 'unavailable' | 'busy' | null {
  if (!(err instanceof NeonDbError)) return null;
  const code = err.code;
  // No SQLSTATE: the HTTP call itself failed or the server could not reach Postgres.
  if (!code) return 'unavailable';
  // Connection exceptions, insufficient resources, operator intervention (shutdown, restart).
  if (code.startsWith('08') || code.startsWith('53') || code.startsWith('57P')) return 'unavailable';
  // serialization_failure, deadlock_detected, lock_not_available (a lock timeout),
  // query_canceled (a statement timeout). The rest of class 40 (a deferred constraint failing at
  // commit) would fail again.
  if (code === '40001' || code === '40P01' || code === '55P03' || code === '57014') return 'busy';
  return null;
}

/**
 * `base · 2^(failures − 1)`, at most `max`, as SQL. The exponent is capped: a count of a week of
 * failures would reach 2^1024, which power() raises an error for rather than growing.
 */
export function cappedBackoff(base: string, failures: string, max: string): string {
  return `LEAST(${base} * power(2, LEAST(${failures} - 1, 30)), ${max})`;
}

/** Answers once the database does: throws, like any query, when it cannot be reached. */
export async function ping(sql: Sql): Promise<void> {
  await sql.query('SELECT 1');
}

/** SQLSTATE of a Postgres error raised by a statement, if that is what `err` is. */
export function sqlState(err: unknown): string | undefined {
  return err instanceof NeonDbError ? err.code : undefined;
}
