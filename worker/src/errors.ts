import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { isDatabaseUnavailable } from './db.ts';
import { messagePage } from './pages.ts';

/** Stable, machine-readable error codes of the public contract, with their HTTP status and title. */
const codes = {
  unauthorized: [401, 'Unauthorized'],
  not_found: [404, 'Not found'],
  validation_failed: [400, 'Validation failed'],
  cart_not_editable: [409, 'Cart is not editable'],
  cart_empty: [422, 'Cart is empty'],
  currency_mismatch: [409, 'Currency mismatch'],
  cart_limit_exceeded: [409, 'Cart limit exceeded'],
  checkout_refused: [422, 'Checkout refused by Stripe'],
  invalid_signature: [400, 'Invalid signature'],
  payload_too_large: [413, 'Payload too large'],
  service_unavailable: [503, 'Service unavailable'],
  misconfigured: [500, 'Server misconfigured'],
  internal: [500, 'Internal error'],
} as const;

export type ErrorCode = keyof typeof codes;

/** [code, status, title] for every error code, for the documentation page. */
export const ERROR_CODES = Object.entries(codes).map(([code, [status, title]]) => [code, status, title] as const);

/** What a route throws; `onError` turns it into application/problem+json. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, detail: string, options?: { cause?: unknown }) {
    super(detail, options);
    this.name = 'ApiError';
    this.code = code;
  }
  get status(): number {
    return codes[this.code][0];
  }
}

export function notFound(what: string): ApiError {
  return new ApiError('not_found', `${what} not found`);
}

/** Maps anything thrown to the contract's error codes, never leaking internals to the client. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof HTTPException) {
    if (err.status === 413) return new ApiError('payload_too_large', 'Request body is too large');
    if (err.status === 400) return new ApiError('validation_failed', err.message || 'Malformed request');
    if (err.status === 401) return new ApiError('unauthorized', err.message || 'Unauthorized');
  }
  if (isDatabaseUnavailable(err)) {
    return new ApiError('service_unavailable', 'The database is unreachable; try again shortly', { cause: err });
  }
  return new ApiError('internal', 'Something went wrong on our side', { cause: err });
}

export function problemResponse(c: Context, err: unknown): Response | Promise<Response> {
  const apiError = toApiError(err);
  const requestId = c.get('requestId') as string | undefined;
  if (apiError.status >= 500) {
    // Logged with the cause for operators; the client only ever sees the code and a safe detail.
    console.error(JSON.stringify({ level: 'error', requestId, code: apiError.code, detail: apiError.message, cause: describe(apiError.cause) }));
  }
  const [status, title] = codes[apiError.code];
  if (c.req.path.startsWith('/checkout/')) {
    // Landing pages are read by people in an in-app browser: same status, a page instead of JSON.
    return c.html(messagePage({ title, message: apiError.message, requestId }), status);
  }
  return c.body(
    JSON.stringify({
      type: `/docs#error-${apiError.code}`,
      title,
      status,
      detail: apiError.message,
      code: apiError.code,
      requestId,
    }),
    status,
    { 'Content-Type': 'application/problem+json' },
  );
}

function describe(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  if (cause instanceof Error) return `${cause.name}: ${cause.message}`;
  return String(cause);
}
