// Verifies the OIDC token Pub/Sub attaches to authenticated push requests: Google's signature,
// the audience, and the push service account's verified email
// (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions). Any answer but a 2xx
// is a nack, which Pub/Sub redelivers (https://cloud.google.com/pubsub/docs/push).
import { aborted } from '@edge-checkout/pubsub';
import { OAuth2Client, type TokenPayload } from 'google-auth-library';

/**
 * 401: no usable token (missing, malformed, forged, expired, other audience) — as Cloud Run
 * answers an invalid ID token. 403: a genuine Google token from an identity that may not push
 * here — as Cloud Run answers a caller without permission. 503: Google's certificates could not
 * be fetched, so nothing can be verified right now and Pub/Sub should retry.
 * Either way Pub/Sub treats the answer as a nack and redelivers.
 */
export type PushAuthResult =
  | { ok: true; email: string | undefined }
  | { ok: false; status: 401 | 403 | 503; reason: string };

/**
 * What Cloud Run puts in place of a token's signature once its own IAM check (a service deployed
 * with --no-allow-unauthenticated) has verified it, so the token cannot be replayed
 * (https://cloud.google.com/run/docs/troubleshooting#signature-removed). No one can verify such
 * a token again: the relay, which verifies each push itself as the contract asks, must be
 * deployed without that check, --no-invoker-iam-check (bridge/README.md).
 */
const SIGNATURE_REMOVED = 'SIGNATURE_REMOVED_BY_GOOGLE';

export type PushVerifier = {
  verify(authorizationHeader: string | undefined): Promise<PushAuthResult>;
};

export type OidcVerifierOptions = {
  /** PUSH_AUDIENCE: the subscription's `--push-auth-token-audience` (default: the push endpoint URL). */
  audience: string;
  /** PUSH_SERVICE_ACCOUNT: when set, the token's verified `email` must be this account. */
  serviceAccountEmail?: string;
  /** Google's PEM certificates endpoint; a local server in tests. */
  certsUrl?: string;
};

/**
 * How long a push waits for Google's certificates: well inside Pub/Sub's ack deadline, so that an
 * endpoint that takes the connection and never answers gets the push a 503 (redelivered), not
 * an answer Pub/Sub has stopped waiting for.
 */
const CERTS_DEADLINE_MS = 5_000;

export function createOidcVerifier(opts: OidcVerifierOptions): PushVerifier {
  // One client for the process: it caches Google's certificates for their max-age.
  const client = new OAuth2Client({
    ...(opts.certsUrl && { endpoints: { oauth2FederatedSignonPemCertsUrl: opts.certsUrl } }),
    // Its requests have no deadline of their own: a fetch that never answers would never end.
    // Longer than a push waits, as the pushes stop waiting for it first.
    transporterOptions: { timeout: 2 * CERTS_DEADLINE_MS },
  });
  // One fetch at a time, shared by the pushes that wait for it (the client starts one per caller).
  // Given up on at the deadline, it is shared no more: the next push fetches afresh.
  let fetching: ReturnType<OAuth2Client['getFederatedSignonCertsAsync']> | undefined;
  const certificates = async () => {
    fetching ??= client.getFederatedSignonCertsAsync();
    const shared = fetching;
    try {
      return await Promise.race([shared, aborted(AbortSignal.timeout(CERTS_DEADLINE_MS))]);
    } finally {
      if (fetching === shared) fetching = undefined;
    }
  };
  return {
    async verify(authorizationHeader) {
      const token = /^Bearer\s+(\S+)\s*$/i.exec(authorizationHeader ?? '')?.[1];
      if (!token) return { ok: false, status: 401, reason: 'missing bearer token' };
      if (token.endsWith(`.${SIGNATURE_REMOVED}`)) {
        return {
          ok: false,
          status: 401,
          reason:
            'token signature removed by Cloud Run: deploy the relay with --no-invoker-iam-check so it can verify pushes',
        };
      }
      // Checked before the certificates are fetched: a token that is no JWT cannot become valid
      // once Google answers again, so it gets its final 401 even while the certificates are out.
      if (!isJwtShaped(token)) return { ok: false, status: 401, reason: 'token is malformed' };
      let certs: Awaited<ReturnType<typeof certificates>>['certs'];
      try {
        certs = (await certificates()).certs;
      } catch {
        return { ok: false, status: 503, reason: 'could not fetch Google certificates to verify the token' };
      }
      let payload: TokenPayload | undefined;
      try {
        // What verifyIdToken does, with the certificates fetched above.
        const ticket = await client.verifySignedJwtWithCertsAsync(token, certs, opts.audience, client.issuers);
        payload = ticket.getPayload();
      } catch (error) {
        return rejection(error);
      }
      if (!payload) return { ok: false, status: 401, reason: 'token has no payload' };
      if (opts.serviceAccountEmail) {
        // Google writes service-account addresses in lower case; one set in another case is the same account.
        // The library checks the signature, audience, issuer and expiry, not the claims' types.
        const email: unknown = payload.email;
        if (typeof email !== 'string' || email.toLowerCase() !== opts.serviceAccountEmail.toLowerCase()) {
          return { ok: false, status: 403, reason: 'token is not from the configured push service account' };
        }
        if (payload.email_verified !== true) {
          return { ok: false, status: 403, reason: 'token email is not verified' };
        }
      }
      return { ok: true, email: payload.email };
    },
  };
}

/** Three dot-separated parts, the first two base64url JSON objects (RFC 7519 §7.2). */
function isJwtShaped(token: string): boolean {
  const parts = token.split('.');
  if (parts.length !== 3) return false;
  try {
    return parts.slice(0, 2).every((part) => {
      const decoded: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
      return typeof decoded === 'object' && decoded !== null;
    });
  } catch {
    return false;
  }
}

/** For PUSH_AUTH=none (the local emulator, which sends no token). */
export const acceptEveryPush: PushVerifier = {
  async verify() {
    return { ok: true, email: undefined };
  },
};

// google-auth-library's messages quote the whole token; map them to fixed reasons so that
// neither the answer nor the logs carry a bearer credential.
const REASONS: Array<[RegExp, string]> = [
  [/^Wrong recipient/, 'token audience is not PUSH_AUDIENCE'],
  [/^Token used too late/, 'token expired'],
  [/^Token used too early/, 'token not yet valid'],
  [/^Invalid token signature/, 'token signature does not verify'],
  [/^No pem found/, 'token signed by an unknown key'],
  [/^Invalid issuer/, 'token not issued by Google'],
  [/^Expiration time too far in future/, 'token lifetime too long'],
];

function rejection(error: unknown): PushAuthResult {
  const message = error instanceof Error ? error.message : '';
  const reason = REASONS.find(([pattern]) => pattern.test(message))?.[1] ?? 'token is malformed';
  return { ok: false, status: 401, reason };
}
