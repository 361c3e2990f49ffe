import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { app } from '../src/index.ts';
import { db, problem, testEnv, tokenFor, unique } from './helpers.ts';

async function cartsOf(userId: string): Promise<number> {
  const [row] = await db().query('SELECT count(*)::int AS n FROM carts WHERE user_id = $1', [userId]);
  return (row as { n: number }).n;
}

function postCart(token: string, env: object = testEnv) {
  return app.request('/v1/carts', { method: 'POST', headers: { Authorization: `Bearer ${token}` } }, env);
}

describe('bearer tokens (HS256)', () => {
  it('accepts a valid token and uses its sub as the user', async () => {
    const user = unique('user');
    const res = await postCart(await tokenFor(user));
    expect(res.status).toBe(201);
    expect(await cartsOf(user)).toBe(1);
  });

  it.each([
    ['expired', { expiresIn: Math.floor(Date.now() / 1000) - 60 }, /expired/],
    ['signed with another secret', { secret: 'another-secret-entirely-0123456789' }, /not valid/],
    ['without exp', { expiresIn: null as unknown as number }, /exp/],
  ])('rejects a token %s with 401 and writes nothing', async (_, opts, detail) => {
    const user = unique('user');
    const res = await postCart(await tokenFor(user, opts));
    expect(res.status).toBe(401);
    const body = await problem(res);
    expect(body.code).toBe('unauthorized');
    expect(body.detail).toMatch(detail);
    expect(await cartsOf(user)).toBe(0);
  });

  it('rejects an unsigned (alg none) token', async () => {
    const user = unique('user');
    const header = btoa(JSON.stringify({ alg: 'none' })).replace(/=+$/, '');
    const payload = btoa(JSON.stringify({ sub: user, exp: Math.floor(Date.now() / 1000) + 600 })).replace(/=+$/, '');
    const res = await postCart(`${header}.${payload}.`);
    expect(res.status).toBe(401);
    expect(await cartsOf(user)).toBe(0);
  });

  it('checks issuer and audience when they are configured', async () => {
    const env = { ...testEnv, AUTH_ISSUER: 'https://issuer.example', AUTH_AUDIENCE: 'edge-checkout' };
    const good = await tokenFor(unique('user'), { claims: { iss: 'https://issuer.example', aud: 'edge-checkout' } });
    const wrongAud = await tokenFor(unique('user'), { claims: { iss: 'https://issuer.example', aud: 'someone-else' } });
    const noIss = await tokenFor(unique('user'), { claims: { aud: 'edge-checkout' } });
    expect((await postCart(good, env)).status).toBe(201);
    expect((await postCart(wrongAud, env)).status).toBe(401);
    expect((await postCart(noIss, env)).status).toBe(401);
  });

  it('answers 500 misconfigured naming the variables when no verification key is set', async () => {
    const res = await postCart(await tokenFor(unique('user')), { ...testEnv, AUTH_JWT_SECRET: undefined });
    expect(res.status).toBe(500);
    const body = await problem(res);
    expect(body.code).toBe('misconfigured');
    expect(body.detail).toContain('AUTH_JWT_SECRET or AUTH_JWKS_URL');
  });
});

describe('bearer tokens (JWKS)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('verifies RS256 tokens against the key set and refuses unknown keys', async () => {
    const jwksUrl = `https://auth.test/${unique('jwks')}/keys.json`;
    const signer = await generateKeyPair('RS256');
    const stranger = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(signer.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    // The key set is served here; everything else (the database) goes out as usual.
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      return url === jwksUrl ? Response.json({ keys: [jwk] }) : realFetch(input, init);
    });
    const env = { ...testEnv, AUTH_JWT_SECRET: undefined, AUTH_JWKS_URL: jwksUrl };
    const sign = (key: CryptoKey, sub: string) =>
      new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject(sub).setExpirationTime('5m').sign(key);

    const user = unique('user');
    const ok = await app.request(
      `/v1/carts/${crypto.randomUUID()}`,
      { headers: { Authorization: `Bearer ${await sign(signer.privateKey, user)}` } },
      env,
    );
    expect(ok.status).toBe(404); // authenticated, the cart just does not exist

    const forged = await app.request(
      '/v1/carts',
      { method: 'POST', headers: { Authorization: `Bearer ${await sign(stranger.privateKey, user)}` } },
      env,
    );
    expect(forged.status).toBe(401);
    expect(await cartsOf(user)).toBe(0);
  });
});
