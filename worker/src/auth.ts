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

function bearer(header: string | undefined): string {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!match?.[1]) throw new ApiError('unauthorized', 'A bearer token is required');
  return match[1];
}

const KEY_SET_ALGORITHMS = ['RS256', 'ES256'];

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
  try {
    const { payload } = bySecret
      ? await jwtVerify(token, new TextEncoder().encode(secret), options)
      : await jwtVerify(token, keySet(jwksUrl!), options);
    // jose checks that `sub` is there, not that it is the string RFC 7519 §4.1.2 says it is.
    if (typeof payload.sub !== 'string' || !payload.sub || payload.sub.length > 255 || !storableText(payload.sub))
      throw new ApiError('unauthorized', 'The token has no usable subject');
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

// One per URL for the isolate's life, with the keys last fetched.
const keySets = new Map<string, JWTVerifyGetKey>();

function keySet(url: string): JWTVerifyGetKey {
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
    found = async (header, token) => {
      try {
        return await remote(header, token);
      } catch (err) {
        if (!keysNotLoaded(err)) throw err;
        const { jwks, uat } = lastFetched as Partial<ExportedJWKSCache>;
        if (!jwks || uat === undefined || Date.now() - uat > KEYS_GRACE_MS) {
          throw new KeySetUnavailable(`${url} could not be loaded`, { cause: err });
        }
        // A key the last set does not have may be a new one we cannot see yet.
        return createLocalJWKSet(jwks)(header, token).catch((lookup: unknown) => {
          throw lookup instanceof joseErrors.JWKSNoMatchingKey
            ? new KeySetUnavailable(`${url} could not be loaded`, { cause: err })
            : lookup;
        });
      }
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
  if (err instanceof joseErrors.JWTExpired) return 'The token has expired';
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
