import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The Worker's log lines: one JSON object per line, which Workers Logs indexes by field
 * (https://developers.cloudflare.com/workers/observability/logs/workers-logs/). Every line
 * written while a request is handled (its waitUntil work included) carries that request's
 * `requestId`, the id its answer carries in `X-Request-Id`; a scheduled run's lines carry its
 * `cronRun`. No line ever holds an email address or a credential: they are masked in the text
 * of the whole line, wherever they come from (an error message, a library's cause).
 */

type Context = { requestId: string } | { cronRun: string };

const context = new AsyncLocalStorage<Context>();

/** Runs `work` with every log line it writes, now or later in its promises, tagged with `tags`. */
export function withLogContext<T>(tags: Context, work: () => T): T {
  return context.run(tags, work);
}

type Level = 'info' | 'warn' | 'error';

function write(level: Level, msg: string, fields: Record<string, unknown>): void {
  const line = redact(JSON.stringify({ level, msg, ...context.getStore(), ...fields }, errorsAsText));
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

export const log = {
  info: (msg: string, fields: Record<string, unknown> = {}) => write('info', msg, fields),
  warn: (msg: string, fields: Record<string, unknown> = {}) => write('warn', msg, fields),
  error: (msg: string, fields: Record<string, unknown> = {}) => write('error', msg, fields),
};

function errorsAsText(_key: string, value: unknown): unknown {
  return value instanceof Error ? `${value.name}: ${value.message}` : value;
}

// What must never reach a log line, and what stands in its place. JSON escapes keep these
// patterns intact (none of their characters is escaped).
const SECRETS: [RegExp, string][] = [
  // A connection string holds the database's password (a driver's error may quote it); before
  // the email pattern, which would take only its `password@host` part.
  [/\bpostgres(ql)?:\/\/[^\s"'\\]+/g, '[database-url]'],
  // Letters of any script on either side (RFC 6531: bob@bücher.de, jörg@example.com), and the
  // apostrophe of o'brien@example.com. Each part is bounded as RFC 5321 §4.5.3.1 bounds it (64
  // for the local part, 63 a label): unbounded, a long run of letters cost time quadratic in it.
  [
    /[\p{L}\p{M}\p{N}_+-][\p{L}\p{M}\p{N}_.+'-]{0,63}@[\p{L}\p{M}\p{N}_-]{1,63}(\.[\p{L}\p{M}\p{N}_-]{1,63})+/gu,
    '[email]',
  ],
  // JWTs (a bearer token, a service-account assertion) and any bearer credential.
  [/eyJ[\w-]*\.[\w-]+\.[\w-]*/g, '[token]'],
  [/(Bearer\s+)[\w.~+/=-]+/gi, '$1[token]'],
  // Stripe keys and webhook secrets, a PEM private key.
  [/\b(sk|rk|pk)_(test|live)_\w+/g, '[stripe-key]'],
  [/\bwhsec_\w+/g, '[webhook-secret]'],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, '[private-key]'],
];

/** The line with every email address and credential masked. */
export function redact(line: string): string {
  return SECRETS.reduce((text, [pattern, replacement]) => text.replace(pattern, replacement), line);
}
