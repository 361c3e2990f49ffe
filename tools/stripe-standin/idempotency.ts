import { StripeApiError } from './errors.ts';
import type { FormValue } from './form.ts';

// Stripe's idempotent requests: the first response to a POST with an `Idempotency-Key` is saved
// (errors included, once the endpoint began executing) and replayed for a retry with the same
// key and parameters; the key reused with other parameters, or on another endpoint, is an
// `idempotency_error`. Keys belong to the API key that used them and are forgotten after 24 h.
// stripe-node sends a key with every POST, so its automatic retries rely on this.

export interface SavedResponse {
  status: number;
  body: string;
  requestId: string;
}

interface Entry {
  endpoint: string;
  params: string;
  response: SavedResponse;
  savedAt: number;
}

const KEY_LIFETIME_MS = 24 * 60 * 60 * 1000;

export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  /**
   * The saved response for this key, or undefined when the key is new.
   * @param endpoint e.g. `POST /v1/checkout/sessions`
   */
  replay(apiKey: string, key: string, endpoint: string, params: FormValue): SavedResponse | undefined {
    const entry = this.entries.get(scoped(apiKey, key));
    if (!entry || Date.now() - entry.savedAt > KEY_LIFETIME_MS) return undefined;
    const retry = `Try using a key other than '${key}' if you meant to execute a different request.`;
    if (entry.endpoint !== endpoint) {
      throw idempotencyError(
        `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${entry.endpoint}' vs '${endpoint}'). ${retry}`,
      );
    }
    if (entry.params !== canonical(params)) {
      throw idempotencyError(
        `Keys for idempotent requests can only be used with the same parameters they were first used with. ${retry}`,
      );
    }
    return entry.response;
  }

  save(apiKey: string, key: string, endpoint: string, params: FormValue, response: SavedResponse): void {
    this.entries.set(scoped(apiKey, key), { endpoint, params: canonical(params), response, savedAt: Date.now() });
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
