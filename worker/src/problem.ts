import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { bearerChallenge } from './auth.ts';
import { databaseFailure } from './db.ts';
import { ApiError, describeCode } from './errors.ts';
import { log } from './log.ts';

/** Maps anything thrown to the contract's error codes, never leaking internals to the client. */
function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof HTTPException) {
    if (err.status === 400) return new ApiError('validation_failed', err.message || 'Malformed request');
    if (err.status === 415) {
      return new ApiError('unsupported_media_type', 'The request body must be JSON (Content-Type: application/json)');
    }
  }
  const failure = databaseFailure(err);
  if (failure === 'unavailable') {
    return new ApiError('service_unavailable', 'The database is unreachable; try again shortly', { cause: err });
  }
  if (failure === 'busy') {
    return new ApiError('service_unavailable', 'The database gave the request up; try again', {
      cause: err,
      retryAfter: 1,
    });
  }
  return new ApiError('internal', 'Something went wrong on our side', { cause: err });
}

/**
 * What went wrong, as the client will see it, and the headers that go with it (`Retry-After`);
 * 5xx are logged with their cause for operators.
 */
export function problemOf(
  c: Context,
  err: unknown,
): { error: ApiError; status: number; title: string; requestId: string | undefined; headers: Record<string, string> } {
  const error = toApiError(err);
  const requestId = c.get('requestId') as string | undefined;
  const [status, title] = describeCode(error.code);
  if (status >= 500) log.error('request_failed', { code: error.code, detail: error.message, cause: error.cause });
  const headers: Record<string, string> = error.retryAfter ? { 'Retry-After': String(error.retryAfter) } : {};
  // A 401 says which scheme it takes (RFC 9110 §15.5.2), and what was wrong with what was sent.
  if (error.code === 'unauthorized') headers['WWW-Authenticate'] = bearerChallenge(c.req.header('Authorization'));
  return { error, status, title, requestId, headers };
}

/** application/problem+json (RFC 9457) with the stable `code` and the request id. */
export function problemResponse(c: Context, err: unknown): Response {
  const { error, status, title, requestId, headers } = problemOf(c, err);
  return c.body(
    JSON.stringify({
      ...error.extensions,
      type: `/docs#error-${error.code}`,
      title,
      status,
      detail: error.message,
      code: error.code,
      requestId,
    }),
    status as 400,
    // An error is about this one request (a 401 or 404 of a private route among them): no cache keeps it.
    { ...headers, 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store' },
  );
}
