import { closedPort, startLocalServer } from '@edge-checkout/test-support/local-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOidcVerifier } from '../src/oidc.ts';
import { startRelay } from '../src/server.ts';
import {
  type FakeGoogleOidc,
  PUSH_AUDIENCE,
  PUSH_SERVICE_ACCOUNT,
  startFakeGoogleOidc,
} from './helpers/google-oidc.ts';
import { paymentEvent, pushEnvelope } from './helpers/payment-event.ts';

let google: FakeGoogleOidc;

beforeAll(async () => {
  google = await startFakeGoogleOidc();
});
afterAll(() => google.close());

const bearer = (token: string) => `Bearer ${token}`;

describe('OIDC verification of push requests', () => {
  it('accepts a Google-signed token for the audience from the push service account', async () => {
    await expect(google.verifier.verify(bearer(await google.idToken()))).resolves.toEqual({
      ok: true,
      email: PUSH_SERVICE_ACCOUNT,
    });
  });

  it('answers 401 without a bearer token', async () => {
    await expect(google.verifier.verify(undefined)).resolves.toMatchObject({
      ok: false,
      status: 401,
      reason: 'missing bearer token',
    });
    await expect(google.verifier.verify('Basic dXNlcjpwYXNz')).resolves.toMatchObject({ ok: false, status: 401 });
  });

  it('answers 401 for a token meant for another service', async () => {
    const token = await google.idToken({ aud: 'https://other.example.com/push' });
    await expect(google.verifier.verify(bearer(token))).resolves.toMatchObject({
      ok: false,
      status: 401,
      reason: 'token audience is not PUSH_AUDIENCE',
    });
  });

  it('answers 401 for an expired token (beyond the library’s 5-minute clock skew)', async () => {
    const token = await google.idToken({}, { issuedAt: Math.floor(Date.now() / 1000) - 7200 });
    await expect(google.verifier.verify(bearer(token))).resolves.toMatchObject({
      ok: false,
      status: 401,
      reason: 'token expired',
    });
  });

  it('answers 401 for a forged signature, and for a tampered payload', async () => {
    const forged = await google.idToken({}, { signWith: google.forgeryKey });
    await expect(google.verifier.verify(bearer(forged))).resolves.toMatchObject({
      ok: false,
      status: 401,
      reason: 'token signature does not verify',
    });
    const [header, , signature] = (await google.idToken()).split('.');
    const payload = Buffer.from(JSON.stringify({ aud: PUSH_AUDIENCE, email: 'attacker@example.com' })).toString(
      'base64url',
    );
    await expect(google.verifier.verify(bearer(`${header}.${payload}.${signature}`))).resolves.toMatchObject({
      ok: false,
      status: 401,
    });
  });

  it('says the deployment is wrong when Cloud Run removed the signature of a token it verified (--no-allow-unauthenticated)', async () => {
    const [header, payload] = (await google.idToken()).split('.');
    await expect(google.verifier.verify(bearer(`${header}.${payload}.SIGNATURE_REMOVED_BY_GOOGLE`))).resolves.toEqual({
      ok: false,
      status: 401,
      reason: expect.stringMatching(/removed by Cloud Run: deploy the relay with --no-invoker-iam-check/),
    });
  });

  it('answers 401 for a token not issued by Google and for garbage', async () => {
    const token = await google.idToken({ iss: 'https://evil.example.com' });
    await expect(google.verifier.verify(bearer(token))).resolves.toMatchObject({
      ok: false,
      status: 401,
      reason: 'token not issued by Google',
    });
    await expect(google.verifier.verify(bearer('not.a.jwt'))).resolves.toMatchObject({
      ok: false,
      status: 401,
      reason: 'token is malformed',
    });
  });

  it('answers 403 for a genuine token from another service account, or with an unverified email', async () => {
    const other = await google.idToken({ email: 'someone-else@demo-project.iam.gserviceaccount.com' });
    await expect(google.verifier.verify(bearer(other))).resolves.toMatchObject({ ok: false, status: 403 });
    const unverified = await google.idToken({ email_verified: false });
    await expect(google.verifier.verify(bearer(unverified))).resolves.toMatchObject({
      ok: false,
      status: 403,
      reason: 'token email is not verified',
    });
    // Google's push tokens say "email_verified": true; one that does not say so is not taken as verified.
    const unsaid = await google.idToken({ email_verified: undefined });
    await expect(google.verifier.verify(bearer(unsaid))).resolves.toMatchObject({ ok: false, status: 403 });
    // Signed, but its email no address at all: refused as another account's, not a crash (a 500).
    for (const email of [123, {}, [], true]) {
      const odd = await google.idToken({ email });
      await expect(google.verifier.verify(bearer(odd)), JSON.stringify(email)).resolves.toMatchObject({
        ok: false,
        status: 403,
      });
    }
  });

  it('takes PUSH_SERVICE_ACCOUNT written in any case (Google issues the address in lower case)', async () => {
    const verifier = createOidcVerifier({
      audience: PUSH_AUDIENCE,
      serviceAccountEmail: PUSH_SERVICE_ACCOUNT.toUpperCase(),
      certsUrl: google.certsUrl,
    });
    await expect(verifier.verify(bearer(await google.idToken()))).resolves.toMatchObject({ ok: true });
  });

  it('accepts any service account when PUSH_SERVICE_ACCOUNT is not set', async () => {
    const anyAccount = createOidcVerifier({ audience: PUSH_AUDIENCE, certsUrl: google.certsUrl });
    const token = await google.idToken({ email: 'someone-else@demo-project.iam.gserviceaccount.com' });
    await expect(anyAccount.verify(bearer(token))).resolves.toMatchObject({ ok: true });
  });

  it('runs without PUSH_SERVICE_ACCOUNT (optional in the contract): still verifies every push, and warns at start', async () => {
    const pubsub = await startLocalServer(() => ({ status: 200, body: { messageIds: ['n-1'] } }));
    const lines: Array<{ severity: string; message: string }> = [];
    const relay = await startRelay(
      {
        port: 0,
        projectId: 'demo-project',
        notificationTopic: 'notifications',
        pushAuth: 'oidc',
        pushAudience: PUSH_AUDIENCE,
        pushServiceAccount: undefined,
        emulatorHost: new URL(pubsub.url).host,
      },
      {
        hostname: '127.0.0.1',
        oidcCertsUrl: google.certsUrl,
        log: (severity, message) => lines.push({ severity, message }),
      },
    );
    try {
      expect(lines).toContainEqual({
        severity: 'WARNING',
        message: 'PUSH_SERVICE_ACCOUNT is not set: any Google-signed token for PUSH_AUDIENCE is accepted',
      });
      const push = (authorization?: string) =>
        fetch(`${relay.url}/pubsub/push`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(authorization && { authorization }) },
          body: JSON.stringify(pushEnvelope(paymentEvent())),
        });
      expect((await push()).status).toBe(401);
      expect((await push(bearer(await google.idToken({ aud: 'https://other.example.com/push' })))).status).toBe(401);
      const fromAnyAccount = await google.idToken({ email: 'someone-else@demo-project.iam.gserviceaccount.com' });
      expect((await push(bearer(fromAnyAccount))).status).toBe(200);
      expect(pubsub.requests).toHaveLength(1);
    } finally {
      await relay.close();
      await pubsub.close();
    }
  });

  it('never puts the token into the reason', async () => {
    const tokens = [
      await google.idToken({ aud: 'x' }),
      await google.idToken({}, { signWith: google.forgeryKey }),
      await google.idToken({}, { issuedAt: 1 }),
    ];
    for (const token of tokens) {
      const result = await google.verifier.verify(bearer(token));
      expect(result.ok).toBe(false);
      expect(JSON.stringify(result)).not.toContain(token.split('.')[1]);
    }
  });

  it('answers 503 when Google’s certificates cannot be fetched, so Pub/Sub retries', async () => {
    const unreachable = createOidcVerifier({
      audience: PUSH_AUDIENCE,
      certsUrl: `http://127.0.0.1:${await closedPort()}/oauth2/v1/certs`,
    });
    await expect(unreachable.verify(bearer(await google.idToken()))).resolves.toMatchObject({ ok: false, status: 503 });
  }, 20_000);

  it('answers a malformed token its final 401 even while Google’s certificates cannot be fetched', async () => {
    const unreachable = createOidcVerifier({
      audience: PUSH_AUDIENCE,
      certsUrl: `http://127.0.0.1:${await closedPort()}/oauth2/v1/certs`,
    });
    const payload = (await google.idToken()).split('.')[1];
    for (const token of ['not-a-jwt', `a.${payload}.c`, `${payload}.${payload}`, 'e30.bm90IGpzb24.c2ln']) {
      await expect(unreachable.verify(bearer(token))).resolves.toMatchObject({
        ok: false,
        status: 401,
        reason: 'token is malformed',
      });
    }
  });

  it(
    'answers 503 within its deadline when Google’s certificates never answer, with one fetch for the pushes waiting, and fetches again for the next',
    async () => {
      const certs = await (await fetch(google.certsUrl)).json();
      // The first fetch is never answered; Google answers the ones after it.
      const flaky = await startLocalServer((request) =>
        flaky.requests.indexOf(request) === 0 ? 'hang' : { status: 200, body: certs },
      );
      try {
        const stalled = createOidcVerifier({ audience: PUSH_AUDIENCE, certsUrl: `${flaky.url}/oauth2/v1/certs` });
        const token = bearer(await google.idToken());
        // Answered at the deadline (without it they would wait out this test's timeout).
        const results = await Promise.all([stalled.verify(token), stalled.verify(token), stalled.verify(token)]);
        expect(results).toEqual(Array(3).fill(expect.objectContaining({ ok: false, status: 503 })));
        expect(flaky.requests).toHaveLength(1);
        await expect(stalled.verify(token)).resolves.toMatchObject({ ok: true });
      } finally {
        await flaky.close();
      }
    },
    4 * 5_000,
  );

  it('fetches the certificates once and reuses them for their max-age', async () => {
    const before = google.certsServer.requests.length;
    const fresh = createOidcVerifier({ audience: PUSH_AUDIENCE, certsUrl: google.certsUrl });
    for (let i = 0; i < 3; i++) await fresh.verify(bearer(await google.idToken()));
    expect(google.certsServer.requests.length - before).toBe(1);
  });
});
