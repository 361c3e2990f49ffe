import { createMiddleware } from 'hono/factory';
import { createRemoteJWKSet, type JWTVerifyGetKey, type JWTVerifyOptions, errors as joseErrors, jwtVerify } from 'jose';
import { config, type Env } from './env.ts';
import { ApiError } from './errors.ts';

export type AuthVariables = { userId: string };

// Key sets are cached per URL for the isolate's life; jose refetches on an unknown `kid`.
const keySets = new Map<string, JWTVerifyGetKey>();

function bearer(header: string | undefined): string {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!match?.[1]) throw new ApiError('unauthorized', 'A bearer token is required');
  return match[1];
}

/** Verifies the bearer JWT (HS256 secret or JWKS) and returns its `sub`. */
export async function authenticate(env: Env, authorization: string | undefined): Promise<string> {
  const cfg = config(env);
  const token = bearer(authorization);
  const secret = cfg.optional('AUTH_JWT_SECRET');
  const jwksUrl = cfg.optional('AUTH_JWKS_URL');
  if (!secret && !jwksUrl) throw new ApiError('misconfigured', 'AUTH_JWT_SECRET or AUTH_JWKS_URL is not set');
  const options: JWTVerifyOptions = {
    requiredClaims: ['exp', 'sub'],
    issuer: cfg.optional('AUTH_ISSUER'),
    audience: cfg.optional('AUTH_AUDIENCE'),
  };
  try {
    const { payload } = secret
      ? await jwtVerify(token, new TextEncoder().encode(secret), { ...options, algorithms: ['HS256'] })
      : await jwtVerify(token, keySet(jwksUrl!), { ...options, algorithms: ['RS256', 'ES256'] });
    if (!payload.sub || payload.sub.length > 255) throw new ApiError('unauthorized', 'The token has no usable subject');
    return payload.sub;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    if (err instanceof joseErrors.JOSEError) {
      // A key set we cannot fetch is our outage, not the caller's bad token.
      if (err instanceof joseErrors.JWKSTimeout || err.code === 'ERR_JWKS_INVALID') {
        throw new ApiError('service_unavailable', 'The token keys could not be loaded', { cause: err });
      }
      throw new ApiError('unauthorized', tokenProblem(err));
    }
    throw err;
  }
}

function keySet(url: string): JWTVerifyGetKey {
  let found = keySets.get(url);
  if (!found) {
    found = createRemoteJWKSet(new URL(url));
    keySets.set(url, found);
  }
  return found;
}

function tokenProblem(err: InstanceType<typeof joseErrors.JOSEError>): string {
  if (err instanceof joseErrors.JWTExpired) return 'The token has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `The token's ${err.claim} claim is not accepted`;
  return 'The token is not valid';
}

/** Routes behind this see the caller's user id as `c.var.userId`. */
export const requireUser = createMiddleware<{ Bindings: Env; Variables: AuthVariables }>(async (c, next) => {
  c.set('userId', await authenticate(c.env, c.req.header('Authorization')));
  await next();
});

/** Admin routes: `Authorization: Bearer <ADMIN_API_KEY>`, compared in constant time. */
export const requireAdmin = createMiddleware<{ Bindings: Env }>(async (c, next) => {
  const expected = config(c.env).required('ADMIN_API_KEY');
  const given = bearer(c.req.header('Authorization'));
  if (!(await sameSecret(given, expected))) throw new ApiError('unauthorized', 'The admin key is not valid');
  await next();
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
