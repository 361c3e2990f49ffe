// A switchable HTTP proxy in front of the Pub/Sub emulator, so tests can make `:publish` fail
// the way Google's service does (auth, permission, missing topic, quota, outages, a refused
// message, no answer at all). Everything else (topic and subscription admin, pull, ack) always
// passes through untouched, so a test can still set up and read back through the same host.
//
// A publish without an answer has two outcomes a caller cannot tell apart, one mode each:
// `hang` holds the request before Pub/Sub (nothing is published unless the caller still waits
// when the mode changes), `answer_lost` publishes it and withholds the answer. After the
// second, the caller's retry publishes the message again: Pub/Sub does not deduplicate
// publishes, and copies "published multiple times by a publisher client ... are considered
// distinct by Pub/Sub and have distinct message_id values" (Subscription.enableExactlyOnceDelivery,
// https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions; exactly-once
// delivery is only about redelivery to subscribers:
// https://cloud.google.com/pubsub/docs/exactly-once-delivery).
//
// It is switched from Node (setMode/reset) or over HTTP on the same port under /_proxy/, for
// code that cannot call into this process (the Worker's tests run inside workerd):
//   POST /_proxy/mode   {"mode": "throttled"} or {"mode": "invalid_argument", "match": {"attribute": "cartId", "value": "c1"}}
//                       (a match goes with any mode but pass: {"mode": "hang", "match": …} holds one cart's publishes)
//                       (and "otherwise": "unavailable" for the publishes it does not match: they pass by default)
//   POST /_proxy/reset  mode back to pass, held requests released, counters zeroed
//   GET  /_proxy/stats  {"mode", "match"?, "publishCalls": {"received", "forwarded", "held"}}
// Listens on 127.0.0.1 only.
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Google's JSON error body for REST calls is `{"error": {"code": <HTTP status>, "message",
 * "status": <google.rpc.Code name>}}`, with the HTTP status each code maps to:
 * https://cloud.google.com/apis/design/errors (sections "HTTP mapping" and "Error codes").
 * The messages are the ones Pub/Sub is known to send; callers should rely on code and status only.
 */
const GOOGLE_ERRORS = {
  unauthenticated: {
    code: 401,
    status: 'UNAUTHENTICATED',
    message:
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
  },
  forbidden: { code: 403, status: 'PERMISSION_DENIED', message: 'User not authorized to perform this action.' },
  not_found: { code: 404, status: 'NOT_FOUND', message: 'Resource not found (resource={topic}).' },
  throttled: { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'Quota exceeded for quota metric Publish requests.' },
  unavailable: {
    code: 503,
    status: 'UNAVAILABLE',
    message: 'The service was unable to fulfill your request. Please try again.',
  },
  internal: { code: 500, status: 'INTERNAL', message: 'Internal error encountered.' },
  invalid_argument: { code: 400, status: 'INVALID_ARGUMENT', message: 'Invalid message in publish request.' },
} as const;

export const FAULT_MODES = [
  'pass',
  'hang',
  'answer_lost',
  ...(Object.keys(GOOGLE_ERRORS) as Array<keyof typeof GOOGLE_ERRORS>),
] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

/** Which publishes the mode is for (by a message's attribute); without one, every publish. */
export type FaultMatch = { attribute: string; value: string };
/** With a match, `otherwise` is what the publishes it does not match meet (`pass` by default). */
export type FaultSetting = { mode: FaultMode; match?: FaultMatch; otherwise?: FaultMode };

export type PublishCalls = {
  /** `:publish` requests that reached the proxy. */
  received: number;
  /** Of those, the ones sent on to the emulator (released `hang` requests and `answer_lost` ones included). */
  forwarded: number;
  /** Requests held unanswered right now, by `hang` or `answer_lost`. */
  held: number;
};

export type PubSubFaultProxy = {
  /** `127.0.0.1:PORT`, usable as PUBSUB_EMULATOR_HOST. */
  host: string;
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Throws on an unknown mode, or a `match` given with `pass`. */
  setMode(setting: FaultMode | FaultSetting): void;
  /** A snapshot of the counters. */
  readonly publishCalls: PublishCalls;
  /** Mode back to `pass`, held requests let go (as leaving their mode does), counters zeroed. */
  reset(): void;
  /** Stops listening; held requests are dropped without an answer (the caller sees a network error). */
  close(): Promise<void>;
};

/** A request held unanswered, and what leaving its mode does with it. */
type Held = { mode: 'hang' | 'answer_lost'; release(): void };

const PUBLISH_PATH = /^\/v1\/projects\/[^/]+\/topics\/([^/]+):publish$/;

export async function startPubSubFaultProxy(opts: { target: string; port?: number }): Promise<PubSubFaultProxy> {
  const [targetHost, targetPort] = splitHost(opts.target);
  let setting: FaultSetting = { mode: 'pass' };
  let counts = { received: 0, forwarded: 0 };
  let held: Held[] = [];

  function setMode(next: FaultMode | FaultSetting): void {
    setting = checkSetting(typeof next === 'string' ? { mode: next } : next);
    // Leaving `hang` forwards what it held: the outage is over, the requests go through late.
    // Leaving `answer_lost` cuts its callers' connections: their answers never come.
    const releasing = held.filter((request) => request.mode !== setting.mode);
    held = held.filter((request) => request.mode === setting.mode);
    for (const request of releasing) request.release();
  }

  function stats() {
    return { ...setting, publishCalls: { ...counts, held: held.length } };
  }

  function reset(): void {
    setMode('pass');
    counts = { received: 0, forwarded: 0 };
  }

  /** Sends the request on to the emulator; `res` null: its answer is thrown away. */
  function forward(req: IncomingMessage, body: Buffer, res: ServerResponse | null): void {
    const upstream = request(
      {
        host: targetHost,
        port: targetPort,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: opts.target },
      },
      (answer) => {
        if (!res) {
          answer.resume();
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.once('error', (error) => {
      if (!res) return;
      if (res.headersSent) res.destroy(error);
      else
        sendJson(res, 502, {
          error: {
            code: 502,
            message: `fault proxy: ${opts.target} did not answer: ${error.message}`,
            status: 'UNAVAILABLE',
          },
        });
    });
    upstream.end(body);
  }

  function handlePublish(req: IncomingMessage, body: Buffer, res: ServerResponse, topic: string): void {
    counts.received++;
    const { match } = setting;
    const mode = match && !requestMatches(body, match) ? (setting.otherwise ?? 'pass') : setting.mode;
    const pass = () => {
      counts.forwarded++;
      forward(req, body, res);
    };
    if (mode === 'pass') {
      pass();
      return;
    }
    if (mode === 'hang' || mode === 'answer_lost') {
      if (mode === 'answer_lost') {
        counts.forwarded++;
        forward(req, body, null);
      }
      const entry: Held = mode === 'hang' ? { mode, release: pass } : { mode, release: () => res.destroy() };
      held.push(entry);
      // `hang` drops a caller that gave up (timeout, abort) rather than publishing it later: that
      // request never reached Pub/Sub, and a test knows exactly what reached the emulator.
      res.once('close', () => {
        if (!res.writableFinished) held = held.filter((other) => other !== entry);
      });
      return;
    }
    const { code, message, status } = GOOGLE_ERRORS[mode];
    sendJson(res, code, { error: { code, message: message.replace('{topic}', decodeURIComponent(topic)), status } });
  }

  function handleControl(req: IncomingMessage, body: Buffer, res: ServerResponse, path: string): void {
    try {
      if (req.method === 'POST' && path === '/_proxy/reset') reset();
      else if (req.method === 'POST' && path === '/_proxy/mode')
        setMode(JSON.parse(body.toString('utf8') || '{}') as FaultSetting);
      else if (!(req.method === 'GET' && path === '/_proxy/stats')) {
        sendJson(res, 404, { error: `no control route ${req.method} ${path}` });
        return;
      }
      sendJson(res, 200, stats());
    } catch (error) {
      sendJson(res, 400, { error: (error as Error).message });
    }
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      const body = Buffer.concat(chunks);
      const path = new URL(req.url ?? '/', 'http://proxy').pathname;
      if (path.startsWith('/_proxy/')) return handleControl(req, body, res, path);
      const publish = req.method === 'POST' ? PUBLISH_PATH.exec(path) : null;
      if (publish) return handlePublish(req, body, res, publish[1]);
      forward(req, body, res);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;

  let closing: Promise<void> | undefined;
  return {
    host,
    url: `http://${host}`,
    setMode,
    get publishCalls() {
      return stats().publishCalls;
    },
    reset,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        held = [];
        server.close(() => resolve());
        // Held and keep-alive connections would keep close() waiting forever.
        server.closeAllConnections();
      })),
  };
}

function checkSetting(value: unknown): FaultSetting {
  const { mode, match, otherwise } = (value ?? {}) as { mode?: unknown; match?: unknown; otherwise?: unknown };
  for (const given of [mode, otherwise ?? 'pass']) {
    if (!FAULT_MODES.includes(given as FaultMode)) {
      throw new Error(`unknown mode ${JSON.stringify(given)}; one of ${FAULT_MODES.join(', ')}`);
    }
  }
  if (match === undefined) {
    if (otherwise !== undefined) throw new Error('otherwise is only for a setting with a match');
    return { mode: mode as FaultMode };
  }
  // Held requests are let go when the mode changes: only the mode itself may hold them.
  if (otherwise === 'hang' || otherwise === 'answer_lost') throw new Error('otherwise answers: it cannot hold');
  const { attribute, value: wanted } = (match ?? {}) as { attribute?: unknown; value?: unknown };
  if (mode === 'pass' || typeof attribute !== 'string' || typeof wanted !== 'string') {
    throw new Error('match is { attribute, value } (strings), for a mode other than pass');
  }
  return {
    mode: mode as FaultMode,
    match: { attribute, value: wanted },
    otherwise: (otherwise ?? 'pass') as FaultMode,
  };
}

/** True when any message of the publish request carries the attribute with that value. */
function requestMatches(body: Buffer, match: FaultMatch): boolean {
  try {
    const { messages } = JSON.parse(body.toString('utf8')) as {
      messages?: Array<{ attributes?: Record<string, string> }>;
    };
    return (messages ?? []).some((message) => message.attributes?.[match.attribute] === match.value);
  } catch {
    // Not JSON: the emulator refuses it on its own.
    return false;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function splitHost(target: string): [string, number] {
  const match = /^([^:/]+|\[[^\]]+\]):(\d+)$/.exec(target);
  if (!match) throw new Error(`target must be host:port, got "${target}"`);
  return [match[1].replace(/^\[|\]$/g, ''), Number(match[2])];
}
