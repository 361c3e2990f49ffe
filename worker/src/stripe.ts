import Stripe from 'stripe';
import { config, type Env } from './env.ts';
import { ApiError } from './errors.ts';
import { log } from './log.ts';

export { Stripe };

/**
 * The Stripe operations this Worker makes: the one place that calls Stripe's API. Each call's
 * options (expansions, retries, keys) are fixed here, so callers cannot send one differently.
 */
export interface StripeApi {
  /** Under the caller's idempotency key, whose parameters must never change. */
  createCheckoutSession(
    params: Stripe.Checkout.SessionCreateParams,
    idempotencyKey: string,
  ): Promise<Stripe.Checkout.Session>;
  /** With its payment intent expanded: how a completed session was paid. */
  retrieveCheckoutSession(id: string): Promise<Stripe.Checkout.Session>;
  expireCheckoutSession(id: string): Promise<Stripe.Checkout.Session>;
  /** With its charge expanded, under `refund-{operatorKey}` when the operator sent one. */
  createRefund(params: Omit<Stripe.RefundCreateParams, 'expand'>, operatorKey?: string): Promise<Stripe.Refund>;
  retrieveCharge(id: string): Promise<Stripe.Charge>;
  /**
   * The snapshot event a thin event stands for, as Stripe renders it to the v1 events API. Two
   * reads: the v2 event, whose `snapshot_event` names it, and the v1 event
   * (https://docs.stripe.com/api/v2/core/events/object). Stripe documents `snapshot_event` as
   * optional; without it, the event is made of the current state of its `related_object` ("which
   * you can use to retrieve the resource's latest state",
   * https://docs.stripe.com/changelog/endive/2026-09-30/thin-events-for-api-v1-resources-generally-available),
   * under the thin event's id and the snapshot `type` it stands for. Null when neither is there,
   * or the object is of a type not read here.
   */
  retrieveSnapshotEvent(thinEventId: string, type: string): Promise<Stripe.Event | null>;
  /** One page of the events of these types Stripe could not deliver, newest first. */
  listUndeliveredEvents(
    types: readonly string[],
    page: { limit: number } & ({ starting_after?: string } | { ending_before?: string }),
  ): Promise<Stripe.ApiList<Stripe.Event>>;
}

/** Stripe's API for this request; STRIPE_API_BASE points it at the local stand-in. */
export function stripeApi(env: Env): StripeApi {
  const cfg = config(env);
  const key = cfg.required('STRIPE_SECRET_KEY');
  const base = cfg.optional('STRIPE_API_BASE');
  const target = base ? new URL(base) : undefined;
  const stripe = new Stripe(key, {
    httpClient: Stripe.createFetchHttpClient(),
    // stripe-node retries a failed connection, a 409 and a 5xx Stripe does not mark
    // `Stripe-Should-Retry: false`, with backoff, and gives a POST sent without a key one of its
    // own for all its tries (https://github.com/stripe/stripe-node#network-retries;
    // RequestSender._shouldRetry, _defaultIdempotencyKey): the expire and the reads are safe to
    // retry; the create and the refund carry keys of their own.
    maxNetworkRetries: 2,
    timeout: 10_000,
    ...(target && {
      host: target.hostname,
      port: target.port || (target.protocol === 'https:' ? '443' : '80'),
      protocol: target.protocol === 'https:' ? 'https' : 'http',
    }),
  });
  // The objects the handled events are about, read as a snapshot event of them holds them.
  const relatedObjectReads: Record<string, (id: string) => Promise<unknown>> = {
    'checkout.session': (id) => stripe.checkout.sessions.retrieve(id),
    charge: (id) => stripe.charges.retrieve(id),
    dispute: (id) => stripe.disputes.retrieve(id),
    refund: (id) => stripe.refunds.retrieve(id),
  };
  return {
    createCheckoutSession: (params, idempotencyKey) => stripe.checkout.sessions.create(params, { idempotencyKey }),
    retrieveCheckoutSession: async (id) => {
      inModeOf(key, id);
      return stripe.checkout.sessions.retrieve(id, { expand: ['payment_intent'] });
    },
    expireCheckoutSession: async (id) => {
      inModeOf(key, id);
      return stripe.checkout.sessions.expire(id);
    },
    createRefund: (params, operatorKey) =>
      stripe.refunds.create(
        { ...params, expand: ['charge'] },
        // No retries of our own: the operator's retry is the retry. Under the operator's key,
        // stripe-node's retry of a 5xx would get the saved 500 replayed and the first failure
        // would already read as a replay (RequestSender._shouldRetry). Without one, its retry
        // under a key of its own would hide the first attempt's unknown outcome (no answer, a
        // 5xx) behind the retry's own answer (a 409 while the first is in flight, a 429), which
        // would read as "nothing was done, try again" and could refund twice.
        { ...(operatorKey && { idempotencyKey: `refund-${operatorKey}` }), maxNetworkRetries: 0 },
      ),
    retrieveCharge: (id) => stripe.charges.retrieve(id),
    retrieveSnapshotEvent: async (thinEventId, type) => {
      const thin = await stripe.v2.core.events.retrieve(thinEventId);
      if (thin.snapshot_event) return stripe.events.retrieve(thin.snapshot_event);
      const related = (thin as { related_object?: { id: string; type: string } | null }).related_object;
      const read = related && relatedObjectReads[related.type];
      if (!read) return null;
      return {
        id: thin.id,
        object: 'event',
        type,
        created: Math.floor(Date.parse(thin.created) / 1000),
        livemode: thin.livemode,
        data: { object: await read(related.id) },
      } as Stripe.Event;
    },
    listUndeliveredEvents: (types, page) => stripe.events.list({ delivery_success: false, types: [...types], ...page }),
  };
}

/** A live-mode key (`sk_live_…`, `rk_live_…`); the configuration admits only those and test ones. */
function isLiveKey(key: string): boolean {
  return /^[a-z]{2}_live_/.test(key);
}

/**
 * Refuses to ask about a live session with a test key: "objects in one mode can't be manipulated
 * by objects in the other" (https://docs.stripe.com/keys#test-live-modes), so Stripe would answer
 * 404, which reads as a session gone for good and releases its cart while it can still be paid.
 * A test key deployed in production is a setting to mend, not a lost session. The other way
 * round is let through: a test session is never paid with real money, and its 404 releases it.
 */
function inModeOf(key: string, sessionId: string): void {
  if (!isLiveKey(key) && sessionId.startsWith('cs_live_')) {
    throw new ApiError(
      'misconfigured',
      `STRIPE_SECRET_KEY is a test-mode key; Checkout Session ${sessionId} was made in live mode`,
    );
  }
}

/**
 * Web Crypto as Stripe's SubtleCryptoProvider uses it (importKey, sign, digest: stripe-node
 * 23.1.0, crypto/SubtleCryptoProvider), but with each signing secret imported as a key once per
 * isolate: the provider imports it again for every event. Together with db.ts's two savings this
 * took about an eighth off a webhook's Worker CPU (README, "What a webhook costs"). The provider
 * imports only HMAC-SHA256 signing keys.
 */
const signingKeys = new Map<string, Promise<CryptoKey>>();
const utf8 = new TextDecoder();
const keyCachingSubtle: Pick<SubtleCrypto, 'importKey' | 'sign' | 'digest'> = {
  importKey(format, keyData, algorithm, extractable, usages) {
    // The provider hands over the secret's UTF-8 bytes.
    const secret = utf8.decode(keyData as Uint8Array);
    let key = signingKeys.get(secret);
    if (!key) {
      key = crypto.subtle.importKey(format, keyData, algorithm, extractable, usages);
      signingKeys.set(secret, key);
    }
    return key;
  },
  sign: (algorithm, key, data) => crypto.subtle.sign(algorithm, key, data),
  digest: (algorithm, data) => crypto.subtle.digest(algorithm, data),
};
const cryptoProvider = Stripe.createSubtleCryptoProvider(keyCachingSubtle as unknown as SubtleCrypto);
// Verification needs no API key; a client built with a placeholder gives access to it.
const verifier = new Stripe('sk_test_verification_only', { httpClient: Stripe.createFetchHttpClient() });

/** A thin event (`v2.core.event`): Stripe's notice that something happened, without the object. */
export type ThinEvent = {
  object: 'v2.core.event';
  id: string;
  type: string;
  context: string | null;
  livemode: boolean | null;
};

/**
 * Checks `Stripe-Signature` over the raw body against each configured secret (several while a
 * secret is being rotated), with Stripe's 300 s tolerance
 * (https://docs.stripe.com/webhooks#replay-attacks). Only this throws invalid_signature.
 * A signed thin event comes back as it is: an event destination sending thin events here (its
 * ping included) is Stripe's own; it carries no object, which the caller reads from Stripe.
 */
export async function verifyWebhook(
  env: Env,
  rawBody: string,
  signature: string | undefined,
): Promise<Stripe.Event | ThinEvent> {
  const secrets = config(env).required('STRIPE_WEBHOOK_SECRET');
  if (!signature) throw new ApiError('invalid_signature', 'The Stripe-Signature header is missing');
  let why = '';
  for (const secret of secrets) {
    let event: Stripe.Event | ThinEvent;
    try {
      event = await verifier.webhooks.constructEventAsync(rawBody, signature, secret, 300, cryptoProvider);
    } catch (err) {
      if (err instanceof Stripe.errors.StripeSignatureVerificationError) {
        // The library checks the age only once a signature matched: "too old" is the news.
        if (!why.startsWith('Timestamp')) why = err.message.split('.')[0]!;
        continue;
      }
      // Anything else comes after the signature matched, as the library reads the body only
      // then (constructEventAsync): a thin event, which the library leaves to another function
      // (https://docs.stripe.com/event-destinations#thin-events), or a body that is no event
      // at all. No retry changes the latter, so it is a 400, not a 500 on every delivery.
      const thin = thinEvent(rawBody);
      if (!thin) {
        const detail =
          err instanceof SyntaxError ? 'The signed body is not JSON' : `The signed body is not an event: ${err}`;
        throw new ApiError('validation_failed', detail.slice(0, 300), { cause: err });
      }
      event = thin;
    }
    // A signed `null` comes back as it is, for the caller's shape check to refuse.
    inModeOfKey(env, event);
    return event;
  }
  throw refusedSignature(signature, why);
}

/**
 * An event of the other mode than STRIPE_SECRET_KEY's was signed with the secret of an endpoint
 * in that mode: in production, say, a test-mode endpoint's secret beside a live key. Stripe keeps
 * the modes apart (https://docs.stripe.com/keys#test-live-modes), so the deployment's own mode
 * has no endpoint here, and its refunds and disputes would never reach the carts (the scheduled
 * job lists only events that failed delivery to an endpoint), unnoticed, as its payments still
 * land through the read-backs. A 500 `misconfigured` instead, which Stripe retries and reports
 * as the endpoint failing, until the secret is mended. A connected account's event (`account`
 * on a snapshot event, `context` on a thin one) is let through: a live Connect endpoint is sent
 * the test-mode events of accounts connected in live mode too
 * (https://docs.stripe.com/connect/webhooks), and its checkouts are not this Worker's. A key that
 * is not set or not valid is another problem, met where the key is used.
 */
function inModeOfKey(env: Env, event: { livemode?: unknown; account?: unknown; context?: unknown } | null): void {
  if (typeof event?.livemode !== 'boolean' || event.account || event.context) return;
  let key: string | undefined;
  try {
    key = config(env).optional('STRIPE_SECRET_KEY');
  } catch {
    return;
  }
  if (!key) return;
  if (event.livemode === isLiveKey(key)) return;
  const [eventMode, keyMode] = event.livemode ? ['live', 'test'] : ['test', 'live'];
  throw new ApiError(
    'misconfigured',
    `A ${eventMode}-mode event reached a Worker with a ${keyMode}-mode STRIPE_SECRET_KEY: STRIPE_WEBHOOK_SECRET holds the signing secret of a ${eventMode}-mode endpoint`,
  );
}

/**
 * Logged when the header has Stripe's form (`t=…,v1=…`), as a 4xx otherwise is not: after a
 * secret is rotated, a wrong one shows at once rather than as payments landing late (through the
 * scheduled job), and `signedAt` (its `t`) finds the delivery in Stripe's dashboard. A header in
 * no such form (none, a stranger's) is not worth a line. `detail` is stripe-node's reason.
 */
function refusedSignature(header: string, why: string): ApiError {
  const signedAt = /(?:^|,)t=(\d{1,12})(?:,|$)/.exec(header)?.[1];
  if (signedAt && /(?:^|,)v1=/.test(header)) log.warn('stripe_signature_refused', { detail: why, signedAt });
  return new ApiError('invalid_signature', 'The Stripe signature does not match any configured secret or is too old');
}

function thinEvent(rawBody: string): ThinEvent | null {
  try {
    const body = JSON.parse(rawBody) as Partial<ThinEvent> | null;
    return body?.object === 'v2.core.event'
      ? {
          object: body.object,
          id: String(body.id),
          type: String(body.type),
          context: typeof body.context === 'string' && body.context ? body.context : null,
          livemode: typeof body.livemode === 'boolean' ? body.livemode : null,
        }
      : null;
  } catch {
    return null;
  }
}

/**
 * What a failed Stripe call means for our client. Stripe refusing the request itself
 * (`invalid_request_error`, or a 402) is final: a 4xx naming Stripe's reason, as retrying cannot help.
 * Stripe refusing our key is a 500 `misconfigured`. Anything else (Stripe unreachable, failing,
 * rate-limiting, a key in flight) is a 503 the client may retry; the cart has not been changed.
 */
export function stripeFailure(err: unknown, what: 'checkout' | 'refund' | 'event' = 'checkout'): ApiError {
  if (err instanceof ApiError) return err;
  // 402 request_failed (card_error): "the parameters were valid but the request failed"
  // (https://docs.stripe.com/api/errors), as final as an invalid request.
  if (stripeRefused(err) || err instanceof Stripe.errors.StripeCardError) {
    // Stripe signed the event for us, so reading it is refused (404) only with a key of another
    // account or mode than the event destination's: a setting to mend, after which Stripe's
    // retries of the delivery go through.
    if (what === 'event') {
      return new ApiError(
        'misconfigured',
        `Stripe does not give STRIPE_SECRET_KEY the event it sent (${err.statusCode}): the key must be of the event destination's account and mode`,
        { cause: err },
      );
    }
    return new ApiError(`${what}_refused`, `Stripe refused the ${what}: ${err.message}`, { cause: err });
  }
  // "401: No valid API key provided", "403: The API key doesn't have permissions to perform the
  // request" (https://docs.stripe.com/api/errors): our setting is wrong, not Stripe, and no retry
  // helps until it is mended. Stripe's message quotes part of the key, so it is not passed on.
  if (err instanceof Stripe.errors.StripeAuthenticationError || err instanceof Stripe.errors.StripePermissionError) {
    return new ApiError(
      'misconfigured',
      `STRIPE_SECRET_KEY is not accepted by Stripe for this ${what} (${err.statusCode ?? err.type})`,
      { cause: err },
    );
  }
  // The key was first used with other parameters (https://docs.stripe.com/api/idempotent_requests).
  if (stripeKeyReused(err)) {
    return new ApiError('validation_failed', `The Idempotency-Key was used for another request: ${err.message}`, {
      cause: err,
    });
  }
  const detail =
    err instanceof Stripe.errors.StripeError
      ? `Stripe could not process the request (${err.type}${err.code ? `: ${err.code}` : ''}); try again`
      : 'Stripe could not be reached; try again';
  // Stripe's rate limiter answers before its idempotency layer, so the same request may simply
  // come again a little later (https://docs.stripe.com/error-low-level#idempotency): when Stripe
  // says, as Stripe says (bounded), otherwise in a second.
  const retryAfter = err instanceof Stripe.errors.StripeRateLimitError ? stripeRetryAfter(err) : undefined;
  return new ApiError('service_unavailable', detail, { cause: err, retryAfter });
}

function stripeRetryAfter(err: InstanceType<typeof Stripe.errors.StripeError>): number {
  const seconds = Number(err.headers?.['retry-after']);
  return Number.isInteger(seconds) && seconds > 0 ? Math.min(seconds, 60) : 1;
}

/**
 * Stripe answered with a result it may save under the idempotency key: every later request with
 * that key would get the same failure back, 500s included. Results are saved once the endpoint
 * began executing; authentication failures, rate limits, a key in flight and parameters that
 * failed validation are not saved (https://docs.stripe.com/api/idempotent_requests). A 400 cannot
 * be told apart from outside, so every 400 counts as saved: a new key for one that was not costs
 * nothing. A network failure may hide a success, so the key is kept for it.
 */
export function stripeSavedFailure(err: unknown): boolean {
  const status = err instanceof Stripe.errors.StripeError ? err.statusCode : undefined;
  return status !== undefined && (status >= 500 || [400, 402, 404].includes(status));
}

/**
 * Stripe may have carried the request out, and we cannot tell: it answered a 5xx
 * (https://docs.stripe.com/error-low-level#server-errors), an answer stripe-node could not read
 * (no status then), or none at all (after stripe-node's own retries).
 */
export function stripeOutcomeUnknown(err: unknown): boolean {
  if (!(err instanceof Stripe.errors.StripeError)) return false;
  return err.statusCode === undefined || err.statusCode >= 500;
}

/**
 * Stripe says this failure is what it keeps for the idempotency key: it replayed it, or says
 * not to retry (`Stripe-Should-Retry: false`). A retry with the key gets it again.
 */
export function stripeKeptFailure(err: unknown): boolean {
  if (!(err instanceof Stripe.errors.StripeError)) return false;
  return err.headers?.['idempotent-replayed'] === 'true' || err.headers?.['stripe-should-retry'] === 'false';
}

/** 409: another request with the same idempotency key is still running at Stripe. */
export function stripeKeyInUse(err: unknown): boolean {
  return err instanceof Stripe.errors.StripeError && err.statusCode === 409;
}

/** The idempotency key was first used with other parameters (400 idempotency_error). */
export function stripeKeyReused(err: unknown): err is InstanceType<typeof Stripe.errors.StripeIdempotencyError> {
  return err instanceof Stripe.errors.StripeIdempotencyError;
}

/** Stripe refused the request itself (invalid_request_error, 400 or 404): sent again, it fails again. */
export function stripeRefused(err: unknown): err is InstanceType<typeof Stripe.errors.StripeInvalidRequestError> {
  return err instanceof Stripe.errors.StripeInvalidRequestError;
}

/** Stripe does not know the object (404 resource_missing). */
export function stripeNotFound(err: unknown): boolean {
  return stripeRefused(err) && err.statusCode === 404;
}
