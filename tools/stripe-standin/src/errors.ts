// Stripe's error wire format: `{ "error": { type, code?, message, param?, doc_url? } }` with the
// HTTP status Stripe uses. stripe-node picks its error class from the status (400/404 →
// StripeInvalidRequestError, 401 → StripeAuthenticationError, …) and from `type` for
// `idempotency_error`, so both must match what Stripe sends for the Worker to see the same errors.
// Fields Stripe leaves out are left out here too, rather than sent as null.

export type StripeErrorType = 'invalid_request_error' | 'idempotency_error' | 'api_error';

export interface StripeErrorFields {
  type: StripeErrorType;
  message: string;
  code?: string;
  param?: string;
}

export class StripeApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 409 | 429 | 500,
    readonly fields: StripeErrorFields,
  ) {
    super(fields.message);
  }

  toJSON(): { error: StripeErrorFields & { doc_url?: string } } {
    const { code } = this.fields;
    // Stripe links every coded error to its documentation page, e.g. resource_missing → resource-missing.
    const docUrl = code ? `https://stripe.com/docs/error-codes/${code.replaceAll('_', '-')}` : undefined;
    return { error: { ...this.fields, ...(docUrl ? { doc_url: docUrl } : {}) } };
  }
}

export function invalidRequest(message: string, param?: string, code?: string): StripeApiError {
  return new StripeApiError(400, {
    type: 'invalid_request_error',
    message,
    ...(code ? { code } : {}),
    ...(param ? { param } : {}),
  });
}

export function missingParam(param: string): StripeApiError {
  return invalidRequest(`Missing required param: ${param}.`, param, 'parameter_missing');
}

export function unknownParam(param: string, suggestion?: string): StripeApiError {
  const hint = suggestion ? ` Did you mean ${suggestion}?` : '';
  return invalidRequest(`Received unknown parameter: ${param}.${hint}`, param, 'parameter_unknown');
}

/** Stripe reads an empty form value as "unset", which most create parameters cannot be. */
export function emptyParam(param: string): StripeApiError {
  return invalidRequest(
    `You passed an empty string for '${param}'. We assume empty values are an attempt to unset a parameter; ` +
      `however '${param}' cannot be unset. You should remove '${param}' from your request or supply a non-empty value.`,
    param,
    'parameter_invalid_empty',
  );
}

/** `kind` is Stripe's object name as it appears in the message: `checkout.session`, `payment_intent`, … */
export function resourceMissing(kind: string, id: string, param: string): StripeApiError {
  return new StripeApiError(404, {
    type: 'invalid_request_error',
    code: 'resource_missing',
    message: `No such ${kind}: '${id}'`,
    param,
  });
}

/** How Stripe answers a failure of its own: no code, a generic message. */
export function serverError(): StripeApiError {
  return new StripeApiError(500, { type: 'api_error', message: 'An unknown error occurred' });
}

/**
 * Stripe's rate limiter, as it answers a test-mode key (the only kind the stand-in takes). The
 * body is one Stripe sent (type `invalid_request_error`, code `rate_limit`); stripe-node tells it
 * by the 429 and throws StripeRateLimitError.
 */
export function rateLimited(): StripeApiError {
  return new StripeApiError(429, {
    type: 'invalid_request_error',
    code: 'rate_limit',
    message:
      'Testmode request rate limit exceeded, the rate limits in testmode are lower than livemode. You can learn more about rate limits here https://stripe.com/docs/rate-limits.',
  });
}

export function unrecognizedUrl(method: string, path: string): StripeApiError {
  return new StripeApiError(404, {
    type: 'invalid_request_error',
    message: `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
  });
}
