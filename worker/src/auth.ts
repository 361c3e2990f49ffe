import { createMiddleware } from 'hono/factory';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  type ExportedJWKSCache,
  type JWKSCacheInput,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  errors as joseErrors,
  jwksCache,
  jwtVerify,
} from 'jose';
import { config, type Env } from './env.ts';
import { ApiError } from './errors.ts';
import { privateResponse } from './security-headers.ts';
import { storableText } from './storable-text.ts';

export type AuthVariables = { userId: string };

// Whitespace around a field's value is not part of it (RFC 9110 §5.5).
const BEARER = /^Bearer(?:\s+(\S+))?$/i;

function bearer(header: string | undefined): string {
  const token = BEARER.exec((header ?? '').trim())?.[1];
  if (!token) throw new ApiError('unauthorized', 'A bearer token is required');
  return token;
}

/**
 * The WWW-Authenticate challenge of a 401 (RFC 6750 §3): no error code without a bearer token
 * (none sent, or another scheme), invalid_request for the scheme without its token, and
 * invalid_token for a token refused.
 */
export function bearerChallenge(header: string | undefined): string {
  const match = BEARER.exec((header ?? '').trim());
  if (!match) return 'Bearer';
  return match[1] ? 'Bearer error="invalid_token"' : 'Bearer error="invalid_request"';
}

const KEY_SET_ALGORITHMS = ['RS256', 'ES256'];
// How far ahead of our clock a token may say it was issued, or becomes valid (`iat`, `nbf`):
// issuers' clocks drift a little (RFC 7519 §4.1.5 allows "some small leeway"). Not for `exp`: a
// token that has expired by our clock is refused.
const CLOCK_SKEW_S = 60;
const TOKEN_EXPIRED = 'The token has expired';

/** Verifies the bearer JWT (HS256 secret or JWKS) and returns its `sub`. */
async function authenticate(env: Env, authorization: string | undefined): Promise<string> {
  const cfg = config(env);
  const token = bearer(authorization);
  const secret = cfg.optional('AUTH_JWT_SECRET');
  const jwksUrl = cfg.optional('AUTH_JWKS_URL');
  if (!secret && !jwksUrl) throw new ApiError('misconfigured', 'AUTH_JWT_SECRET or AUTH_JWKS_URL is not set');
  // With both, a token that names a key set's algorithm goes to the key set and any other to the
  // secret (a malformed one is refused there: 401). Each key takes only its own algorithms, so a
  // token can never be checked against the other kind of key.
  const bySecret = !!secret && !(jwksUrl && KEY_SET_ALGORITHMS.includes(headerAlgorithm(token) ?? ''));
  // A provider signs the tokens of all its tenants with one key set (Firebase: every project's),
  // so with a key set only the issuer and audience say that a token is for us.
  const options: JWTVerifyOptions = bySecret
    ? { issuer: cfg.optional('AUTH_ISSUER'), audience: cfg.optional('AUTH_AUDIENCE'), algorithms: ['HS256'] }
    : { issuer: cfg.required('AUTH_ISSUER'), audience: cfg.required('AUTH_AUDIENCE'), algorithms: KEY_SET_ALGORITHMS };
  options.requiredClaims = ['exp', 'sub'];
  // jose applies one tolerance to `nbf` and `exp` alike; `exp` is checked strictly below.
  options.clockTolerance = CLOCK_SKEW_S;
  try {
    const { payload } = bySecret
      ? await jwtVerify(token, new TextEncoder().encode(secret), options)
      : await jwtVerify(token, keySet(jwksUrl!).getKey, options);
    if ((payload.exp as number) <= Date.now() / 1000) throw new ApiError('unauthorized', TOKEN_EXPIRED);
    // jose checks that `sub` is there, not that it is the string RFC 7519 §4.1.2 says it is.
    if (typeof payload.sub !== 'string' || !payload.sub || payload.sub.length > 255 || !storableText(payload.sub))
      throw new ApiError('unauthorized', 'The token has no usable subject');
    // jose checks `iat` only against a maximum age; Firebase's ID tokens must have been issued,
    // and signed in (`auth_time`), in the past
    // (https://firebase.google.com/docs/auth/admin/verify-id-tokens#verify_id_tokens_using_a_third-party_jwt_library).
    for (const claim of ['iat', 'auth_time'] as const) {
      const at = payload[claim];
      if (at !== undefined && !(typeof at === 'number' && at <= Date.now() / 1000 + CLOCK_SKEW_S)) {
        throw new ApiError('unauthorized', `The token's ${claim} claim is not accepted`);
      }
    }
    return payload.sub;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // A key set we cannot fetch is our outage, not the caller's bad token.
    if (err instanceof KeySetUnavailable) {
      throw new ApiError('service_unavailable', 'The token keys could not be loaded; try again shortly', {
        cause: err,
      });
    }
    if (err instanceof joseErrors.JOSEError) throw new ApiError('unauthorized', tokenProblem(err));
    // jose refusing the key the token names by its rules (an RSA key under 2048 bits, RFC 7518
    // §3.3; a key of another type): no try verifies that token.
    if (err instanceof TypeError) throw new ApiError('unauthorized', 'The token names a key that is not accepted');
    // WebCrypto refusing to import a key of the set (a malformed one): the provider's set failing,
    // not the caller's token. It is read again for the next try.
    if (!bySecret) {
      await keySet(jwksUrl!).readAgain();
      throw new ApiError('service_unavailable', 'The token keys could not be used; try again shortly', { cause: err });
    }
    throw err;
  }
}

/** The `alg` a token's header names, if it can be read; verification then checks everything. */
function headerAlgorithm(token: string): string | undefined {
  try {
    return decodeProtectedHeader(token).alg;
  } catch {
    return undefined;
  }
}

/** The key set could not be fetched or read. */
class KeySetUnavailable extends Error {
  override readonly name = 'KeySetUnavailable';
}

// jose keeps a fetched key set for 10 minutes and refetches sooner for an unknown `kid`. While
// the provider cannot be reached, the keys last fetched keep verifying for this long.
const KEYS_GRACE_MS = 60 * 60 * 1000;
// After a fetch failed, requests use the keys last fetched without trying again for this long:
// jose's cooldown follows successful fetches only, and a provider that is down or slow would
// otherwise be asked (and waited for, up to its 5 s timeout) by every request.
const FETCH_RETRY_MS = 30 * 1000;

interface KeySet {
  getKey: JWTVerifyGetKey;
  /** Fetches the set again, unless it was tried in the last FETCH_RETRY_MS; never throws. */
  readAgain(): Promise<void>;
}

// One per URL for the isolate's life, with the keys last fetched.
const keySets = new Map<string, KeySet>();

function keySet(url: string): KeySet {
  let found = keySets.get(url);
  if (!found) {
    // jose writes each key set it fetches here.
    const lastFetched: JWKSCacheInput = {};
    const remote = createRemoteJWKSet(new URL(url), {
      [jwksCache]: lastFetched,
      [customFetch]: (input: string, init: RequestInit) =>
        fetch(input, init).catch((cause: unknown) => {
          throw new KeySetUnavailable(`${url} could not be reached`, { cause });
        }),
    });
    let failedAt = Number.NEGATIVE_INFINITY;
    let readAgainAt = Number.NEGATIVE_INFINITY;
    /** The keys last fetched, within their grace; a key they do not have may be a new one we cannot see yet. */
    const lastKeys: JWTVerifyGetKey = async (header, token) => {
      const { jwks, uat } = lastFetched as Partial<ExportedJWKSCache>;
      if (!jwks || uat === undefined || Date.now() - uat > KEYS_GRACE_MS) {
        throw new KeySetUnavailable(`${url} could not be loaded`);
      }
      return createLocalJWKSet(jwks)(header, token).catch((lookup: unknown) => {
        throw lookup instanceof joseErrors.JWKSNoMatchingKey
          ? new KeySetUnavailable(`${url} could not be loaded`)
          : lookup;
      });
    };
    found = {
      async getKey(header, token) {
        if (Date.now() - failedAt < FETCH_RETRY_MS) return lastKeys(header, token);
        try {
          return await remote(header, token);
        } catch (err) {
          if (!keysNotLoaded(err)) throw err;
          failedAt = Date.now();
          return lastKeys(header, token);
        }
      },
      // Awaited by the request: work left running after the answer may be cut off in Workers.
      async readAgain() {
        if (Date.now() - readAgainAt < FETCH_RETRY_MS) return;
        readAgainAt = Date.now();
        await remote.reload().catch(() => {
          failedAt = Date.now();
        });
      },
    };
    keySets.set(url, found);
  }
  return found;
}

/** What jose throws when the key set did not arrive or is not one (no answer, not 200, not a JWKS). */
function keysNotLoaded(err: unknown): boolean {
  return (
    err instanceof KeySetUnavailable ||
    err instanceof joseErrors.JWKSTimeout ||
    err instanceof joseErrors.JWKSInvalid ||
    // "Expected 200 OK" and "Failed to parse": the base class, no more specific one.
    (err instanceof joseErrors.JOSEError && err.constructor === joseErrors.JOSEError)
  );
}

function tokenProblem(err: InstanceType<typeof joseErrors.JOSEError>): string {
  if (err instanceof joseErrors.JWTExpired) return TOKEN_EXPIRED;
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `The token's ${err.claim} claim is not accepted`;
  return 'The token is not valid';
}

/** Routes behind this see the caller's user id as `c.var.userId`; what they answer is the caller's alone. */
export const requireUser = createMiddleware<{ Bindings: Env; Variables: AuthVariables }>(async (c, next) => {
  c.set('userId', await authenticate(c.env, c.req.header('Authorization')));
  await privateResponse(c, next);
});

/** Admin routes: `Authorization: Bearer <ADMIN_API_KEY>`, compared in constant time. */
export const requireAdmin = createMiddleware<{ Bindings: Env }>(async (c, next) => {
  const expected = config(c.env).required('ADMIN_API_KEY');
  const given = bearer(c.req.header('Authorization'));
  if (!(await sameSecret(given, expected))) throw new ApiError('unauthorized', 'The admin key is not valid');
  await privateResponse(c, next);
});

async function sameSecret(a: string, b: string): Promise<boolean> {
  // Hashing first gives equal lengths, so the comparison leaks neither content nor length.
  const encoder = new TextEncoder();
  const [ha, hb] = await Promise.all([
    crypto.subtle.digest('SHA-256', encoder.encode(a)),
    crypto.subtle.digest('SHA-256', encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(ha, hb);
}
