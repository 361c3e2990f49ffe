// The error type every layer throws, each code with the HTTP status it answers; the rendering is
// elsewhere: problem+json through problem.ts, and HTML on the landing pages (routes/pages.ts).
// Config throws them too (`misconfigured`); a database failure is not one until problem.ts maps it.

/** Stable, machine-readable error codes of the public contract, with their HTTP status and title. */
const codes = {
  unauthorized: [401, 'Unauthorized'],
  not_found: [404, 'Not found'],
  method_not_allowed: [405, 'Method not allowed'],
  validation_failed: [400, 'Validation failed'],
  cart_not_editable: [409, 'Cart is not editable'],
  cart_empty: [422, 'Cart is empty'],
  currency_mismatch: [409, 'Currency mismatch'],
  cart_limit_exceeded: [409, 'Cart limit exceeded'],
  quantity_changed: [409, 'Quantity changed'],
  out_of_stock: [409, 'Out of stock'],
  not_refundable: [409, 'Nothing to refund'],
  refund_refused: [422, 'Refund refused by Stripe'],
  checkout_refused: [422, 'Checkout refused by Stripe'],
  idempotency_key_failed: [409, 'Stripe keeps a failure for this idempotency key'],
  event_being_published: [409, 'The event is being published'],
  invalid_signature: [400, 'Invalid signature'],
  payload_too_large: [413, 'Payload too large'],
  unsupported_media_type: [415, 'Unsupported media type'],
  rate_limited: [429, 'Too many requests'],
  refund_outcome_unknown: [502, 'Refund outcome unknown'],
  service_unavailable: [503, 'Service unavailable'],
  misconfigured: [500, 'Server misconfigured'],
  internal: [500, 'Internal error'],
} as const;

export type ErrorCode = keyof typeof codes;

/** HTTP status and title of a code. */
export function describeCode(code: ErrorCode): readonly [number, string] {
  return codes[code];
}

/** [code, status, title] for every error code, for the documentation page. */
export const ERROR_CODES = Object.entries(codes).map(([code, [status, title]]) => [code, status, title] as const);

/** What a route throws; `onError` turns it into application/problem+json. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  /** Seconds the client should wait before trying again (the `Retry-After` header). */
  readonly retryAfter: number | undefined;
  /** Members of the problem beyond the standard ones (RFC 9457 extension members), e.g. what is out of stock. */
  readonly extensions: Record<string, unknown> | undefined;
  constructor(
    code: ErrorCode,
    detail: string,
    options?: { cause?: unknown; retryAfter?: number; extensions?: Record<string, unknown> },
  ) {
    super(detail, options);
    this.name = 'ApiError';
    this.code = code;
    this.retryAfter = options?.retryAfter;
    this.extensions = options?.extensions;
  }
  get status(): number {
    return codes[this.code][0];
  }
}

/** `extensions`: what the client sent that names it (a `productId`), where the path alone is not enough. */
export function notFound(what: string, extensions?: Record<string, unknown>): ApiError {
  return new ApiError('not_found', `${what} not found`, { extensions });
}
