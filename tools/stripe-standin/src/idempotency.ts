import { invalidRequest, StripeApiError } from './errors.ts';
import type { FormValue } from './form.ts';

// Stripe's idempotent requests (https://docs.stripe.com/api/idempotent_requests and
// https://docs.stripe.com/error-low-level#idempotency): the status and body of the first response
// to a POST with an `Idempotency-Key` are saved once the endpoint began executing, whatever they
// are (500s included), and replayed for a retry with the same key and parameters. The key reused
// with other parameters, or on another endpoint, is an `idempotency_error`. Nothing is saved for
// a request refused by validation, nor for one that arrives while another request with its key is
// still executing: that one answers 409 `idempotency_key_in_use`. Keys belong to the API key that
// used them and are forgotten after 24 h. stripe-node sends a key with every POST and retries a
// 409 with the same key, so its automatic retries rely on all of this.

export interface SavedResponse {
  status: number;
  body: string;
  requestId: string;
}

interface Request {
  endpoint: string;
  params: string;
}

interface Entry extends Request {
  response: SavedResponse;
  savedAt: number;
}

const KEY_LIFETIME_MS = 24 * 60 * 60 * 1000;
const KEY_MAX_LENGTH = 255;

export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  /** Keys whose request is executing: from the moment it starts acting until its response is saved. */
  private readonly inFlight = new Map<string, Request>();

  /**
   * The saved response for this key, or undefined when the key is new. Throws Stripe's answer when
   * the key belongs to another request, or to one still executing.
   * @param endpoint e.g. `POST /v1/checkout/sessions`
   */
  replay(apiKey: string, key: string, endpoint: string, params: FormValue): SavedResponse | undefined {
    if (key.length > KEY_MAX_LENGTH) {
      throw invalidRequest(`The Idempotency-Key header must be at most ${KEY_MAX_LENGTH} characters long.`);
    }
    const scope = scoped(apiKey, key);
    const pending = this.inFlight.get(scope);
    if (pending) {
      checkSameRequest(pending, key, endpoint, params);
      throw keyInUse(key);
    }
    const entry = this.entries.get(scope);
    if (!entry || Date.now() - entry.savedAt > KEY_LIFETIME_MS) return undefined;
    checkSameRequest(entry, key, endpoint, params);
    return entry.response;
  }

  /** The request with this key starts acting; until save(), others with the key answer 409. */
  begin(apiKey: string, key: string, endpoint: string, params: FormValue): void {
    this.inFlight.set(scoped(apiKey, key), { endpoint, params: canonical(params) });
  }

  save(apiKey: string, key: string, endpoint: string, params: FormValue, response: SavedResponse): void {
    const scope = scoped(apiKey, key);
    this.inFlight.delete(scope);
    this.entries.set(scope, { endpoint, params: canonical(params), response, savedAt: Date.now() });
  }
}

/**
 * Stripe's answer to a request whose key another request is still using, word for word as Stripe
 * sent it (type included: `invalid_request_error`, not `idempotency_error`), e.g. in
 * https://github.com/beam-community/stripity-stripe/issues/564. stripe-node retries any 409.
 */
export function keyInUse(key: string): StripeApiError {
  return new StripeApiError(409, {
    type: 'invalid_request_error',
    code: 'idempotency_key_in_use',
    message: `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${key}. Please try again later.`,
  });
}

function checkSameRequest(first: Request, key: string, endpoint: string, params: FormValue): void {
  const retry = `Try using a key other than '${key}' if you meant to execute a different request.`;
  if (first.endpoint !== endpoint) {
    throw idempotencyError(
      `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${first.endpoint}' vs '${endpoint}'). ${retry}`,
    );
  }
  if (first.params !== canonical(params)) {
    throw idempotencyError(
      `Keys for idempotent requests can only be used with the same parameters they were first used with. ${retry}`,
    );
  }
}

function scoped(apiKey: string, key: string): string {
  return `${apiKey}\n${key}`;
}

function idempotencyError(message: string): StripeApiError {
  return new StripeApiError(400, { type: 'idempotency_error', message });
}

/** The same parameters in any order give the same text. */
function canonical(value: FormValue): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
}
