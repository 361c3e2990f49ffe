// Pub/Sub REST publisher for workerd (Cloudflare Workers) and Node.
// Only fetch, WebCrypto and jose: no Node built-ins, so the Worker bundle stays small and the
// same code runs in the Workers test pool unbundled.
import { importPKCS8, SignJWT } from 'jose';
import { emulatorHostPort, PROJECT_ID, TOPIC_NAME } from './names.ts';

export type PubSubMessage = {
  /** Raw bytes, or text that is sent as UTF-8. The publisher encodes it to base64. */
  data: string | Uint8Array;
  attributes?: Record<string, string>;
  orderingKey?: string;
};

/** A message as the REST API takes it (`data` already base64). */
export type WireMessage = {
  data: string;
  attributes?: Record<string, string>;
  orderingKey?: string;
};

export type PublishLimits = { maxMessages: number; maxRequestBytes: number };

/**
 * Pub/Sub accepts at most 1,000 messages and 10 MB per publish request
 * (https://cloud.google.com/pubsub/quotas#resource_limits). The byte budget is
 * the decimal 10 MB and is counted on the JSON body we send (base64 data included), which is
 * larger than what Google counts, so a full batch is never refused for its size.
 */
const PUBLISH_LIMITS: PublishLimits = { maxMessages: 1000, maxRequestBytes: 10_000_000 };

export type PublishBatch = { maxMessages: number; maxDelayMs: number };

/**
 * When messages published from concurrent work share a call: once `maxMessages` are waiting, or
 * `maxDelayMs` after the first one. Google's own client batches the same way by default
 * (googleapis/nodejs-pubsub src/default-options.ts: publish maxOutstandingMessages 100,
 * maxDelayMillis 10). Used by `batchingPublisher` and by the Worker's outbox queue.
 */
export const PUBLISH_BATCH = { maxMessages: 100, maxDelayMs: 10 } as const satisfies PublishBatch;

export const PUBSUB_API_ENDPOINT = 'https://pubsub.googleapis.com';
/**
 * The OAuth scope of the Pub/Sub API: what ADC tokens are asked for (the relay), and what a
 * self-signed service-account JWT carries (the Worker). A scope, not an audience: a
 * JWT with `aud` https://pubsub.googleapis.com/ is refused by the regional endpoints
 * (googleapis/nodejs-pubsub#2108), which ordering needs (PUBSUB_API_ENDPOINT), and Google's own
 * clients sign with their default scopes and no `aud` (google-auth-library JWTAccess, "If scopes
 * are specified, sign with scopes"; AIP-4111 allows one of the two, never both).
 */
export const PUBSUB_SCOPE = 'https://www.googleapis.com/auth/pubsub';

const TOKEN_LIFETIME_SECONDS = 3600;
const TOKEN_REFRESH_MARGIN_SECONDS = 300;
/** Per-request timeout where PubSubPublisherOptions.timeoutMs does not say otherwise. */
export const DEFAULT_TIMEOUT_MS = 10_000;
// `{"messages":[` + `]}`
const ENVELOPE_BYTES = 15;

/** A publish that did not go through. Never carries credentials in its message. */
export class PubSubPublishError extends Error {
  override readonly name = 'PubSubPublishError';
  /** True when the same request may succeed later: 408/409/429/499/5xx, network errors, timeouts. */
  readonly retryable: boolean;
  /** HTTP status of Pub/Sub's answer; undefined when no answer came (network, timeout, local checks). */
  readonly status: number | undefined;
  /** Message ids of the batches that were published before the failing one, in input order. */
  readonly publishedMessageIds: string[];
  /**
   * Pub/Sub refused what was sent, not who sent it or where (400 INVALID_ARGUMENT, or a message
   * over the size limit): sending the same messages again cannot succeed. Access and
   * configuration errors (401, 403, 404) are not this: they are fixed outside the message.
   */
  readonly messageRejected: boolean;

  constructor(
    message: string,
    details: {
      retryable: boolean;
      status?: number;
      publishedMessageIds?: string[];
      messageRejected?: boolean;
      cause?: unknown;
    },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.retryable = details.retryable;
    this.status = details.status;
    this.publishedMessageIds = details.publishedMessageIds ?? [];
    this.messageRejected = details.messageRejected ?? details.status === 400;
  }
}

/** Options that can never work (bad names, no or unusable credentials). Not worth retrying. */
export class PubSubConfigError extends Error {
  override readonly name = 'PubSubConfigError';
}

export type PubSubPublisherOptions = {
  projectId: string;
  /** Short topic name (`payment-events`), not the full path. */
  topic: string;
  /** Service-account JSON key (the file's text). Used to sign a self-issued JWT. */
  serviceAccountKey?: string;
  /** Alternative to a key: returns an OAuth access token (e.g. google-auth-library's ADC). */
  getAccessToken?: () => Promise<string>;
  /** `host:port` of an emulator (Google's PUBSUB_EMULATOR_HOST): plain HTTP, no auth. */
  emulatorHost?: string;
  /** Base URL of the API, e.g. a locational endpoint `https://europe-west1-pubsub.googleapis.com`. */
  apiEndpoint?: string;
  fetch?: typeof fetch;
  /** Clock in milliseconds, for token expiry. */
  now?: () => number;
  /** Per-request timeout. */
  timeoutMs?: number;
};

export type PubSubPublisher = {
  /** Full topic path, `projects/{project}/topics/{topic}`. */
  readonly topicPath: string;
  /** Publishes in order, in as few requests as the limits allow; resolves to the message ids in input order. */
  publish(messages: PubSubMessage[]): Promise<string[]>;
};

/** `projects/{projectId}/topics/{topic}`, after checking both names against Google's rules. */
export function topicPath(projectId: string, topic: string): string {
  if (!PROJECT_ID.test(projectId)) {
    throw new PubSubConfigError(`invalid GCP project id "${projectId}"`);
  }
  if (!TOPIC_NAME.test(topic)) {
    throw new PubSubConfigError(
      `invalid Pub/Sub topic name "${topic}" (3-255 characters, starting with a letter, not with "goog")`,
    );
  }
  return `projects/${projectId}/topics/${topic}`;
}

/** URL of the `:publish` method, on Google's API or on an emulator. */
export function publishUrl(path: string, base: { emulatorHost?: string; apiEndpoint?: string } = {}): string {
  return methodUrl(path, 'publish', base);
}

/** URL of a custom method (`:publish`, `:pull`, `:acknowledge`…) of a resource, on Google's API or on an emulator. */
export function methodUrl(
  path: string,
  method: string,
  base: { emulatorHost?: string; apiEndpoint?: string } = {},
): string {
  const origin = base.emulatorHost
    ? `http://${emulatorHostPort(base.emulatorHost)}`
    : (base.apiEndpoint ?? PUBSUB_API_ENDPOINT).replace(/\/+$/, '');
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  return `${origin}/v1/${encoded}:${method}`;
}

export function encodeMessage(message: PubSubMessage): WireMessage {
  const wire: WireMessage = { data: base64Of(message.data) };
  if (message.attributes && Object.keys(message.attributes).length > 0) wire.attributes = message.attributes;
  if (message.orderingKey) wire.orderingKey = message.orderingKey;
  return wire;
}

/**
 * Splits messages into publish requests within the limits, keeping their order. A request holds
 * one ordering key (or none): "All PubsubMessages published in a given PublishRequest must specify
 * the same ordering_key value" (PubsubMessage.ordering_key,
 * https://cloud.google.com/pubsub/docs/reference/rest/v1/PubsubMessage), so a change of key
 * starts the next request. Throws a non-retryable PubSubPublishError for a message that alone
 * exceeds the byte budget.
 */
export function splitIntoBatches(messages: WireMessage[], limits: PublishLimits = PUBLISH_LIMITS): WireMessage[][] {
  const batches: WireMessage[][] = [];
  let current: WireMessage[] = [];
  let currentBytes = ENVELOPE_BYTES;
  messages.forEach((message, index) => {
    // +1 for the separating comma
    const size = utf8Length(JSON.stringify(message)) + 1;
    if (ENVELOPE_BYTES + size > limits.maxRequestBytes) {
      throw new PubSubPublishError(
        `message ${index} is ${size} bytes as JSON, over the ${limits.maxRequestBytes}-byte publish request limit`,
        { retryable: false, messageRejected: true },
      );
    }
    const otherKey = current.length > 0 && current[0]!.orderingKey !== message.orderingKey;
    if (otherKey || current.length === limits.maxMessages || currentBytes + size > limits.maxRequestBytes) {
      batches.push(current);
      current = [];
      currentBytes = ENVELOPE_BYTES;
    }
    current.push(message);
    currentBytes += size;
  });
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Where Pub/Sub is and how to authenticate: what the publisher and the subscriber share. */
export type PubSubConnectionOptions = Omit<PubSubPublisherOptions, 'projectId' | 'topic'>;

/** A REST call that got no answer: unusable credentials (not retryable), no token, a network error, no answer in time. */
export class PubSubCallError extends Error {
  override readonly name = 'PubSubCallError';
  constructor(
    message: string,
    readonly retryable: boolean,
    cause: unknown,
  ) {
    super(message, { cause });
  }
}

/** Pub/Sub's answer to one call, read whole. */
export type PubSubAnswer = { ok: boolean; status: number; statusText: string; text: string };

/**
 * POSTs JSON to a Pub/Sub REST method with the connection's credentials (none for an emulator).
 * Throws PubSubCallError when no answer came; any answer, an error status too, is returned.
 */
export function pubSubCaller(opts: PubSubConnectionOptions): (url: string, body: unknown) => Promise<PubSubAnswer> {
  const doFetch: typeof fetch = opts.fetch ?? ((input, init) => fetch(input, init));
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const authorization = opts.emulatorHost ? async () => undefined : credentialsFrom(opts);

  return async (url, body) => {
    // One deadline for the token and the call: a token source that never answers (a metadata
    // server read has no timeout of its own) must fail like a call that never answers.
    const deadline = AbortSignal.timeout(timeoutMs);
    let bearer: string | undefined;
    try {
      bearer = await Promise.race([authorization(), aborted(deadline)]);
    } catch (error) {
      if (error instanceof PubSubConfigError) throw new PubSubCallError(error.message, false, error);
      // A token provider (metadata server, STS) failing is usually transient.
      throw new PubSubCallError(`could not get an access token: ${errorText(error)}`, true, error);
    }

    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (bearer) headers.authorization = `Bearer ${bearer}`;

    let response: Response;
    try {
      response = await doFetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: deadline });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      const reason = timedOut ? `no answer within ${timeoutMs} ms` : `network error: ${errorText(error)}`;
      throw new PubSubCallError(reason, true, error);
    }
    const text = await response.text().catch(() => '');
    return { ok: response.ok, status: response.status, statusText: response.statusText, text };
  };
}

export function createPubSubPublisher(opts: PubSubPublisherOptions): PubSubPublisher {
  const path = topicPath(opts.projectId, opts.topic);
  const url = publishUrl(path, opts);
  const call = pubSubCaller(opts);

  async function publishBatch(batch: WireMessage[], publishedBefore: string[]): Promise<string[]> {
    const fail = (
      message: string,
      details: { retryable: boolean; status?: number; messageRejected?: boolean; cause?: unknown },
    ) =>
      new PubSubPublishError(`Pub/Sub publish to ${path} failed: ${message}`, {
        ...details,
        publishedMessageIds: publishedBefore,
      });

    let response: PubSubAnswer;
    try {
      response = await call(url, { messages: batch });
    } catch (error) {
      if (!(error instanceof PubSubCallError)) throw error;
      throw fail(error.message, { retryable: error.retryable, cause: error.cause });
    }

    const text = response.text;
    if (!response.ok) {
      const googleStatus = googleErrorOf(text)?.status;
      throw fail(`${response.status} ${googleErrorText(text) ?? response.statusText}`.trim(), {
        retryable: isRetryableStatus(response.status),
        status: response.status,
        // Google answers 400 for more than the message: FAILED_PRECONDITION is the topic's state
        // (its KMS key disabled, say), fixed outside the message, so sending it again later can work.
        // Only INVALID_ARGUMENT (or a 400 that says nothing more) refuses the message itself.
        messageRejected: response.status === 400 && (googleStatus === undefined || googleStatus === 'INVALID_ARGUMENT'),
      });
    }
    const ids = parseMessageIds(text);
    if (!ids || ids.length !== batch.length) {
      // Pub/Sub may have stored the messages; sending them again is safe for consumers that dedupe.
      throw fail(`unexpected answer for ${batch.length} messages`, { retryable: true, status: response.status });
    }
    return ids;
  }

  return {
    topicPath: path,
    async publish(messages) {
      const batches = splitIntoBatches(messages.map(encodeMessage));
      const ids: string[] = [];
      // One request at a time: messages sharing an ordering key must reach Pub/Sub in order.
      for (const batch of batches) ids.push(...(await publishBatch(batch, [...ids])));
      return ids;
    },
  };
}

/**
 * A publisher whose concurrent callers share publish calls, as Pub/Sub's cost is mostly per call.
 * `publish` queues the caller's messages by ordering key; a key's call goes once `batch.maxMessages`
 * of it are queued or `batch.maxDelayMs` after the first caller, and resolves each caller to its
 * own ids, in order. Each key has its own queue, as in Google's client, because a publish request
 * holds one key (see splitIntoBatches): a call that fails rejects only its own callers, so one
 * cart's refused or failing message does not fail other carts' notifications (nor, pushed back
 * again and again with them, send them to the dead-letter topic), and a call that hangs holds up
 * only its own key's next one. A key has one call in flight at a time, so its messages stay in
 * order across calls; what queues meanwhile goes as soon as that call is done. A caller's
 * messages stay in one call (one caller with more than `maxMessages` goes alone, as does one
 * whose messages have several keys; `publisher` splits a call into requests by Pub/Sub's limits).
 * A failed call rejects its callers with its error, as Pub/Sub takes a request whole or not at all;
 * the error's `publishedMessageIds` are those of the whole call. No timer is pending while no
 * caller waits for one.
 */
export function batchingPublisher(
  publisher: Pick<PubSubPublisher, 'publish'>,
  batch: PublishBatch = PUBLISH_BATCH,
): Pick<PubSubPublisher, 'publish'> {
  type Caller = { messages: PubSubMessage[]; resolve: (ids: string[]) => void; reject: (error: unknown) => void };
  const queues = new Map<unknown, Caller[]>();
  const sending = new Set<unknown>();
  let timer: ReturnType<typeof setTimeout> | undefined;

  const queued = (queue: Caller[]) => queue.reduce((count, caller) => count + caller.messages.length, 0);

  /** The callers at the head of the queue whose messages fit in one call (always at least one). */
  function nextCall(queue: Caller[]): Caller[] {
    let count = 0;
    let callers = 0;
    while (callers < queue.length && (callers === 0 || count + queue[callers].messages.length <= batch.maxMessages)) {
      count += queue[callers].messages.length;
      callers++;
    }
    return queue.splice(0, callers);
  }

  /** The ordering key all the caller's messages share ('' for none), or a key of its own when they have several. */
  function keyOf(caller: Caller): unknown {
    const key = caller.messages[0]!.orderingKey ?? '';
    return caller.messages.every((m) => (m.orderingKey ?? '') === key) ? key : Symbol();
  }

  // Never rejects: each caller hears of its call's outcome through its own promise.
  async function call(callers: Caller[]): Promise<void> {
    try {
      const ids = await publisher.publish(callers.flatMap((caller) => caller.messages));
      let start = 0;
      for (const caller of callers) {
        caller.resolve(ids.slice(start, start + caller.messages.length));
        start += caller.messages.length;
      }
    } catch (error) {
      for (const caller of callers) caller.reject(error);
    }
  }

  async function send(key: unknown): Promise<void> {
    sending.add(key);
    const queue = queues.get(key)!;
    while (queue.length > 0) await call(nextCall(queue));
    queues.delete(key);
    sending.delete(key);
  }

  /** A timer while some key's callers wait for it (none is in flight), none otherwise. */
  function rearm(): void {
    const waiting = [...queues.keys()].some((key) => !sending.has(key));
    if (!waiting) {
      clearTimeout(timer);
      timer = undefined;
    } else {
      timer ??= setTimeout(() => {
        timer = undefined;
        for (const key of [...queues.keys()]) if (!sending.has(key)) void send(key);
      }, batch.maxDelayMs);
    }
  }

  return {
    publish(messages) {
      if (messages.length === 0) return Promise.resolve([]);
      return new Promise<string[]>((resolve, reject) => {
        const caller = { messages: [...messages], resolve, reject };
        const key = keyOf(caller);
        const queue = queues.get(key) ?? [];
        queue.push(caller);
        queues.set(key, queue);
        // While the key's call is in flight, `send` takes what is queued next.
        if (sending.has(key)) return;
        if (queued(queue) >= batch.maxMessages) void send(key);
        rearm();
      });
    },
  };
}

/**
 * 408 timeout, 409 ABORTED, 429 RESOURCE_EXHAUSTED, 499 CANCELLED and 5xx are worth retrying, as
 * Google's publish retry codes say (https://cloud.google.com/pubsub/docs/reference/error-codes).
 */
function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status === 499 || status >= 500;
}

type ServiceAccountKey = { client_email: string; private_key: string; private_key_id?: string };

function credentialsFrom(opts: PubSubConnectionOptions): () => Promise<string> {
  if (opts.serviceAccountKey && opts.getAccessToken) {
    throw new PubSubConfigError('give either a service-account key or an access-token provider, not both');
  }
  if (opts.getAccessToken) return opts.getAccessToken;
  if (opts.serviceAccountKey) return createServiceAccountTokenSource(opts.serviceAccountKey, opts.now);
  throw new PubSubConfigError(
    'no Pub/Sub credentials: set GCP_SERVICE_ACCOUNT_KEY, or PUBSUB_EMULATOR_HOST for an emulator',
  );
}

/**
 * Self-signed service-account JWT used directly as the bearer token (Google accepts these for
 * its APIs, for at most an hour: https://developers.google.com/identity/protocols/oauth2/service-account#jwt-auth;
 * no round trip to the token endpoint). Cached until 5 minutes before it expires.
 */
function createServiceAccountTokenSource(keyJson: string, now: () => number = Date.now): () => Promise<string> {
  const key = parseServiceAccountKey(keyJson);
  let signingKey: ReturnType<typeof importPKCS8> | undefined;
  let cached: { token: string; refreshAt: number } | undefined;
  let pending: Promise<string> | undefined;

  async function sign(): Promise<string> {
    signingKey ??= importPKCS8(key.private_key, 'RS256').catch((error: unknown) => {
      signingKey = undefined;
      throw new PubSubConfigError('GCP_SERVICE_ACCOUNT_KEY: private_key is not a usable PKCS#8 RSA key', {
        cause: error,
      });
    });
    const issuedAt = Math.floor(now() / 1000);
    const token = await new SignJWT({ scope: PUBSUB_SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(key.private_key_id ? { kid: key.private_key_id } : {}) })
      .setIssuer(key.client_email)
      .setSubject(key.client_email)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + TOKEN_LIFETIME_SECONDS)
      .sign(await signingKey);
    cached = { token, refreshAt: (issuedAt + TOKEN_LIFETIME_SECONDS - TOKEN_REFRESH_MARGIN_SECONDS) * 1000 };
    return token;
  }

  return async () => {
    if (cached && now() < cached.refreshAt) return cached.token;
    pending ??= sign().finally(() => {
      pending = undefined;
    });
    return pending;
  };
}

function parseServiceAccountKey(keyJson: string): ServiceAccountKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(keyJson);
  } catch {
    // JSON.parse's own message quotes the input: it would leak part of the key.
    throw new PubSubConfigError('GCP_SERVICE_ACCOUNT_KEY is not valid JSON');
  }
  const key = parsed as Partial<Record<keyof ServiceAccountKey, unknown>> | null;
  if (!key || typeof key.client_email !== 'string' || typeof key.private_key !== 'string') {
    throw new PubSubConfigError(
      'GCP_SERVICE_ACCOUNT_KEY lacks client_email or private_key (expected a service-account JSON key)',
    );
  }
  return {
    client_email: key.client_email,
    // Keys pasted through some secret stores arrive with literal "\n" sequences.
    private_key: key.private_key.replace(/\\n/g, '\n'),
    private_key_id: typeof key.private_key_id === 'string' ? key.private_key_id : undefined,
  };
}

function parseMessageIds(text: string): string[] | undefined {
  try {
    const body = JSON.parse(text) as { messageIds?: unknown };
    return Array.isArray(body.messageIds) && body.messageIds.every((id) => typeof id === 'string')
      ? body.messageIds
      : undefined;
  } catch {
    return undefined;
  }
}

/** Google's error body `{ error: { code, message, status } }`, when the answer is one. */
function googleErrorOf(text: string): { message: string; status: string | undefined } | undefined {
  try {
    const error = (JSON.parse(text) as { error?: { message?: unknown; status?: unknown } }).error;
    if (!error || typeof error.message !== 'string') return undefined;
    return { message: error.message, status: typeof error.status === 'string' ? error.status : undefined };
  } catch {
    return undefined;
  }
}

/** `STATUS: message` from Google's error body, or the start of another body. */
export function googleErrorText(text: string): string | undefined {
  const error = googleErrorOf(text);
  if (!error) return text ? text.slice(0, 200) : undefined;
  return `${error.status ? `${error.status}: ` : ''}${error.message}`.slice(0, 500);
}

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message}${cause}`;
}

// btoa encodes Latin-1 text; ASCII text is its own UTF-8, as a payment event's JSON mostly is,
// so it goes as it is. Other text is encoded to UTF-8 first.
const NOT_ASCII = /[\u0080-\uffff]/;

function base64Of(data: string | Uint8Array): string {
  if (typeof data === 'string' && !NOT_ASCII.test(data)) return btoa(data);
  return bytesToBase64(typeof data === 'string' ? new TextEncoder().encode(data) : data);
}

function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function utf8Length(text: string): number {
  // Messages are mostly ASCII (their data is base64): a native scan instead of a loop in JS.
  if (!NOT_ASCII.test(text)) return text.length;
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) length += 1;
    else if (code < 0x800) length += 2;
    // A surrogate half counts 2: a pair makes the 4 bytes of its code point.
    else if (code >= 0xd800 && code <= 0xdfff) length += 2;
    else length += 3;
  }
  return length;
}

/** Rejects, with the signal's reason, once it aborts. */
export function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
}
