// Stands in for Google's OIDC signing: a local RSA key, its certificate endpoint in the format
// of https://www.googleapis.com/oauth2/v1/certs ({ kid: PEM }), and ID tokens as Pub/Sub makes them.

import { type LocalServer, startLocalServer } from '@edge-checkout/test-support/local-server';
import { type CryptoKey, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { createOidcVerifier, type PushVerifier } from '../../src/oidc.ts';

export const PUSH_SERVICE_ACCOUNT = 'pubsub-push@demo-project.iam.gserviceaccount.com';
export const PUSH_AUDIENCE = 'https://relay.example.run.app/pubsub/push';

export type FakeGoogleOidc = {
  certsUrl: string;
  /** The relay's check as configured in production: PUSH_AUDIENCE, PUSH_SERVICE_ACCOUNT, these certificates. */
  verifier: PushVerifier;
  /** A token like Pub/Sub's for PUSH_AUDIENCE and PUSH_SERVICE_ACCOUNT; claims can be overridden. */
  idToken(
    claims?: Record<string, unknown>,
    options?: { signWith?: CryptoKey; lifetimeSeconds?: number; issuedAt?: number },
  ): Promise<string>;
  /** A key Google never published, under the same key id: a forged token. */
  forgeryKey: CryptoKey;
  certsServer: LocalServer;
  close(): Promise<void>;
};

const KEY_ID = 'local-google-key-1';

export async function startFakeGoogleOidc(): Promise<FakeGoogleOidc> {
  const google = await generateKeyPair('RS256', { extractable: true });
  const forgery = await generateKeyPair('RS256');
  const pem = await exportSPKI(google.publicKey);
  const certsServer = await startLocalServer(() => ({
    status: 200,
    body: { [KEY_ID]: pem },
    headers: { 'cache-control': 'public, max-age=3600' },
  }));
  const certsUrl = `${certsServer.url}/oauth2/v1/certs`;
  return {
    certsUrl,
    verifier: createOidcVerifier({ audience: PUSH_AUDIENCE, serviceAccountEmail: PUSH_SERVICE_ACCOUNT, certsUrl }),
    forgeryKey: forgery.privateKey,
    certsServer,
    async idToken(claims = {}, options = {}) {
      const issuedAt = options.issuedAt ?? Math.floor(Date.now() / 1000);
      return new SignJWT({
        iss: 'https://accounts.google.com',
        aud: PUSH_AUDIENCE,
        azp: '113774264463038321964',
        sub: '113774264463038321964',
        email: PUSH_SERVICE_ACCOUNT,
        email_verified: true,
        iat: issuedAt,
        exp: issuedAt + (options.lifetimeSeconds ?? 3600),
        ...claims,
      })
        .setProtectedHeader({ alg: 'RS256', kid: KEY_ID, typ: 'JWT' })
        .sign(options.signWith ?? google.privateKey);
    },
    close: () => certsServer.close(),
  };
}
