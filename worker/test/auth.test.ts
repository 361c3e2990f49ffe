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

  it("accepts a token valid from a few seconds ahead (an issuer's clock ahead of ours), and refuses one expired by ours", async () => {
    const now = Math.floor(Date.now() / 1000);
    const signed = (claims: Record<string, number>) =>
      new SignJWT({ sub: unique('user'), ...claims })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(testEnv.AUTH_JWT_SECRET));
    // As Azure AD and others issue them: nbf = iat, both by the issuer's clock, here 20 s ahead.
    expect((await postCart(await signed({ iat: now + 20, nbf: now + 20, exp: now + 600 }))).status).toBe(201);
    const later = await postCart(await signed({ nbf: now + 3600, exp: now + 7200 }));
    expect(later.status).toBe(401);
    expect((await problem(later)).detail).toBe("The token's nbf claim is not accepted");
    // The leeway is for clocks ahead; a token past its exp by ours is over.
    const expired = await postCart(await signed({ exp: now - 5 }));
    expect(expired.status).toBe(401);
    expect((await problem(expired)).detail).toBe('The token has expired');
  });

  it.each([
    ['a NUL', 'user\u0000x'],
    ['an unpaired surrogate', 'user\uDC00'],
  ])('rejects a signed token whose sub holds %s with 401 and writes nothing', async (_, sub) => {
    const res = await postCart(await tokenFor(sub));
    expect(res.status).toBe(401);
    expect((await problem(res)).code).toBe('unauthorized');
  });

  // RFC 7519 §4.1.2: `sub` is a string. A number would name the user "123" too, another's carts.
  it.each([
    ['a number', 123],
    ['an object', { id: 'user' }],
    ['true', true],
  ])('rejects a signed token whose sub is %s with 401, reading and writing alike', async (_, sub) => {
    const token = await new SignJWT({ sub } as Record<string, unknown>)
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(testEnv.AUTH_JWT_SECRET));
    const write = await postCart(token);
    expect(write.status).toBe(401);
    expect((await problem(write)).code).toBe('unauthorized');
    const read = await app.request('/v1/carts', { headers: { Authorization: `Bearer ${token}` } }, testEnv);
    expect(read.status).toBe(401);
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

  it('takes the secret the operator configured, whatever its length', async () => {
    const env = { ...testEnv, AUTH_JWT_SECRET: 'test-secret' };
    const user = unique('user');
    expect((await postCart(await tokenFor(user, { secret: 'test-secret' }), env)).status).toBe(201);
    expect((await postCart(await tokenFor(unique('user')), env)).status).toBe(401);
    expect(await cartsOf(user)).toBe(1);
  });

  it('answers 500 misconfigured naming the variables when no verification key is set', async () => {
    const res = await postCart(await tokenFor(unique('user')), { ...testEnv, AUTH_JWT_SECRET: undefined });
    expect(res.status).toBe(500);
    const body = await problem(res);
    expect(body.code).toBe('misconfigured');
    expect(body.detail).toContain('AUTH_JWT_SECRET or AUTH_JWKS_URL');
  });
});

describe('the answer to a missing or refused token', () => {
  it('says the scheme it takes (WWW-Authenticate), and that a token sent was refused', async () => {
    const none = await app.request('/v1/carts', { method: 'POST' }, testEnv);
    expect(none.status).toBe(401);
    expect(none.headers.get('WWW-Authenticate')).toBe('Bearer');
    const refused = await postCart('not.a.token');
    expect(refused.status).toBe(401);
    expect(refused.headers.get('WWW-Authenticate')).toBe('Bearer error="invalid_token"');
    const admin = await app.request('/v1/admin/carts', { headers: { Authorization: 'Bearer wrong-key' } }, testEnv);
    expect(admin.status).toBe(401);
    expect(admin.headers.get('WWW-Authenticate')).toBe('Bearer error="invalid_token"');
    // RFC 6750 §3: no error code for another scheme; invalid_request for the scheme without a token.
    const basic = await app.request(
      '/v1/carts',
      { method: 'POST', headers: { Authorization: 'Basic dXNlcjpwYXNz' } },
      testEnv,
    );
    expect(basic.headers.get('WWW-Authenticate')).toBe('Bearer');
    const empty = await app.request('/v1/carts', { method: 'POST', headers: { Authorization: 'Bearer' } }, testEnv);
    expect(empty.headers.get('WWW-Authenticate')).toBe('Bearer error="invalid_request"');
  });

  it('declares WWW-Authenticate on every 401 of the OpenAPI document', async () => {
    const doc = (await (await app.request('/openapi.json', {}, testEnv)).json()) as {
      paths: Record<
        string,
        Record<string, { responses: Record<string, { headers?: Record<string, { required?: boolean }> }> }>
      >;
    };
    const unauthorized = Object.values(doc.paths).flatMap((ops) =>
      Object.values(ops).flatMap((op) => (op.responses['401'] ? [op.responses['401']] : [])),
    );
    expect(unauthorized.length).toBeGreaterThan(5);
    for (const response of unauthorized) expect(response.headers?.['WWW-Authenticate']?.required).toBe(true);
  });
});

describe('bearer tokens (JWKS)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  // Firebase Auth's values for a project (https://firebase.google.com/docs/auth/admin/verify-id-tokens#verify_id_tokens_using_a_third-party_jwt_library):
  // one key set for every project, the project in `iss` and `aud`.
  const PROJECT = 'edge-checkout-shop';
  const claims = { iss: `https://securetoken.google.com/${PROJECT}`, aud: PROJECT };

  /** A key set served at a URL of its own (everything else, the database, goes out as usual); `up` switches it. */
  async function keyServer() {
    const url = `https://auth.test/${unique('jwks')}/keys.json`;
    const signer = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(signer.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const weak = (await crypto.subtle.generateKey(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      true,
      ['sign', 'verify'],
    )) as CryptoKeyPair;
    const weakJwk = {
      ...(await crypto.subtle.exportKey('jwk', weak.publicKey)),
      kid: 'weak',
      alg: 'RS256',
      use: 'sig',
    };
    // up; down: answers 503; unreachable: no answer at all (DNS, connection refused); badkey: a
    // set whose key WebCrypto cannot import (a modulus of a few bits). Every set also serves `weak`,
    // a 1024-bit RSA key, which RS256 must not use (RFC 7518 §3.3).
    const server = { url, state: 'up' as 'up' | 'down' | 'unreachable' | 'badkey', fetches: 0 };
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      if ((input instanceof Request ? input.url : String(input)) !== url) return realFetch(input, init);
      server.fetches++;
      if (server.state === 'unreachable') throw new TypeError('Network connection lost.');
      if (server.state === 'badkey') return Response.json({ keys: [{ ...jwk, n: 'AAAA' }, weakJwk] });
      return server.state === 'up'
        ? Response.json({ keys: [jwk, weakJwk] })
        : new Response('unavailable', { status: 503 });
    });
    const sign = (sub: string, over: Record<string, unknown> = claims, key: CryptoKey = signer.privateKey) =>
      new SignJWT(over)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setSubject(sub)
        .setExpirationTime('5m')
        .sign(key);
    const env = {
      ...testEnv,
      AUTH_JWT_SECRET: undefined,
      AUTH_JWKS_URL: url,
      AUTH_ISSUER: claims.iss,
      AUTH_AUDIENCE: PROJECT,
    };
    /** A token signed with the 1024-bit key, by hand: jose refuses to sign with it. */
    const signWeak = async (sub: string) => {
      const part = (value: object) =>
        btoa(JSON.stringify(value)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
      const input = `${part({ alg: 'RS256', kid: 'weak' })}.${part({ ...claims, sub, exp: Math.floor(Date.now() / 1000) + 300 })}`;
      const signature = await crypto.subtle.sign('RSASSA-PKCS1-v1_5', weak.privateKey, new TextEncoder().encode(input));
      const encoded = btoa(String.fromCharCode(...new Uint8Array(signature)))
        .replace(/=+$/, '')
        .replace(/\+/g, '-')
        .replace(/\//g, '_');
      return `${input}.${encoded}`;
    };
    return { server, sign, signWeak, env };
  }

  it('refuses with 401, on every try, a token signed with a key the set serves but RS256 must not use (1024 bits)', async () => {
    const { server, signWeak, env } = await keyServer();
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.now();
    const user = unique('user');
    for (let round = 0; round < 3; round++) {
      vi.setSystemTime(start + round * 31_000);
      const res = await postCart(await signWeak(user), env);
      expect(res.status).toBe(401);
      expect(res.headers.get('WWW-Authenticate')).toBe('Bearer error="invalid_token"');
    }
    expect(server.fetches).toBe(1);
    expect(await cartsOf(user)).toBe(0);
  });

  it('refuses a key the set does not have with 401 right after reading the set again, not 503', async () => {
    const { server, sign, env } = await keyServer();
    server.state = 'badkey';
    expect((await postCart(await sign(unique('user')), env)).status).toBe(503);
    // The set was read again, and read: a kid it does not name is not one we cannot see yet.
    const forged = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'nope' })
      .setSubject(unique('user'))
      .setExpirationTime('5m')
      .sign((await generateKeyPair('RS256')).privateKey);
    expect((await postCart(forged, env)).status).toBe(401);
  });

  it('verifies RS256 tokens against the key set and refuses unknown keys', async () => {
    const { sign, env } = await keyServer();
    const stranger = await generateKeyPair('RS256');
    const user = unique('user');
    const ok = await postCart(await sign(user), env);
    expect(ok.status).toBe(201);

    const forger = unique('user');
    const forged = await postCart(await sign(forger, claims, stranger.privateKey), env);
    expect(forged.status).toBe(401);
    expect(await cartsOf(forger)).toBe(0);
  });

  it('takes both kinds of token when both keys are set, each only by its own key', async () => {
    const { sign, env } = await keyServer();
    const both = { ...env, AUTH_JWT_SECRET: testEnv.AUTH_JWT_SECRET };
    const provider = unique('user');
    expect((await postCart(await sign(provider), both)).status).toBe(201);
    // Self-issued (HS256) tokens must name the provider's issuer and audience too, when those are set.
    const selfIssued = unique('user');
    const providerClaims = { iss: env.AUTH_ISSUER, aud: env.AUTH_AUDIENCE };
    const hs256 = await tokenFor(selfIssued, { claims: providerClaims });
    expect((await postCart(hs256, both)).status).toBe(201);

    // An RS256 token of another key is not tried against the secret, nor an HS256 one against the key set.
    const stranger = await generateKeyPair('RS256');
    const forger = unique('user');
    expect((await postCart(await sign(forger, claims, stranger.privateKey), both)).status).toBe(401);
    const wrongSecret = await tokenFor(forger, {
      claims: providerClaims,
      secret: 'another-secret-entirely-0123456789',
    });
    expect((await postCart(wrongSecret, both)).status).toBe(401);
    expect(await cartsOf(forger)).toBe(0);

    // Junk is refused as a bad token, even where the key set lacks its issuer and audience.
    const halfConfigured = { ...both, AUTH_ISSUER: undefined, AUTH_AUDIENCE: undefined };
    for (const junk of ['abc', 'a.b.c']) expect((await postCart(junk, halfConfigured)).status).toBe(401);
    expect((await postCart(await tokenFor(unique('user')), halfConfigured)).status).toBe(201);
  });

  it("refuses a token the same provider signed for another tenant, with the victim's sub", async () => {
    const { sign, env } = await keyServer();
    const victim = unique('user');
    expect((await postCart(await sign(victim), env)).status).toBe(201);
    const cartId = ((await (await postCart(await sign(victim), env)).json()) as { id: string }).id;

    const other = { iss: 'https://securetoken.google.com/someone-elses-app', aud: 'someone-elses-app' };
    for (const token of [await sign(victim, other), await sign(victim, { ...claims, aud: other.aud })]) {
      const res = await app.request(`/v1/carts/${cartId}`, { headers: { Authorization: `Bearer ${token}` } }, env);
      expect(res.status).toBe(401);
      expect((await problem(res)).code).toBe('unauthorized');
    }
  });

  it.each(['AUTH_ISSUER', 'AUTH_AUDIENCE'])(
    'answers 500 misconfigured without %s, whatever the token',
    async (name) => {
      const { sign, env } = await keyServer();
      const user = unique('user');
      const res = await postCart(await sign(user), { ...env, [name]: undefined });
      expect(res.status).toBe(500);
      expect(await problem(res)).toMatchObject({ code: 'misconfigured', detail: `${name} is not set` });
      expect(await cartsOf(user)).toBe(0);
    },
  );

  it.each(['down', 'unreachable'] as const)('answers 503, not 401, when the key set is %s', async (state) => {
    const { server, sign, env } = await keyServer();
    server.state = state;
    const user = unique('user');
    const res = await postCart(await sign(user), env);
    expect(res.status).toBe(503);
    expect((await problem(res)).code).toBe('service_unavailable');
    expect(server.fetches).toBeGreaterThan(0);
    expect(await cartsOf(user)).toBe(0);
  });

  it('keeps verifying with the keys last fetched for an hour while the key set cannot be fetched', async () => {
    const { server, sign, env } = await keyServer();
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.now();
    expect((await postCart(await sign(unique('user')), env)).status).toBe(201);
    server.state = 'down';

    // Past jose's 10-minute cache the set is fetched again, fails, and the last keys still verify.
    vi.setSystemTime(start + 30 * 60_000);
    const fetchesBefore = server.fetches;
    expect((await postCart(await sign(unique('user')), env)).status).toBe(201);
    expect(server.fetches).toBeGreaterThan(fetchesBefore);

    // Past the grace period they no longer do: the answer says it is our outage.
    vi.setSystemTime(start + 61 * 60_000);
    const late = unique('user');
    const res = await postCart(await sign(late), env);
    expect(res.status).toBe(503);
    expect(await cartsOf(late)).toBe(0);

    // Back up: fetched again once the last failure is 30 s old, verified again.
    server.state = 'up';
    vi.setSystemTime(start + 61 * 60_000 + 31_000);
    expect((await postCart(await sign(unique('user')), env)).status).toBe(201);
  });

  it('asks a key set that failed again only every 30 s, not on every request', async () => {
    const { server, sign, env } = await keyServer();
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.now();
    expect((await postCart(await sign(unique('user')), env)).status).toBe(201);
    server.state = 'down';
    // Past jose's 10-minute cache: one request finds the set failing; the next ones use the last keys.
    vi.setSystemTime(start + 11 * 60_000);
    const fetchesBefore = server.fetches;
    for (let i = 0; i < 4; i++) expect((await postCart(await sign(unique('user')), env)).status).toBe(201);
    expect(server.fetches).toBe(fetchesBefore + 1);
    vi.setSystemTime(start + 11 * 60_000 + 31_000);
    expect((await postCart(await sign(unique('user')), env)).status).toBe(201);
    expect(server.fetches).toBe(fetchesBefore + 2);
  });

  it('answers 503, not 500, while the key set holds a key that cannot be used, and verifies once it is mended', async () => {
    const { server, sign, env } = await keyServer();
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.now();
    server.state = 'badkey';
    const user = unique('user');
    const res = await postCart(await sign(user), env);
    expect(res.status).toBe(503);
    expect((await problem(res)).code).toBe('service_unavailable');
    expect(await cartsOf(user)).toBe(0);

    server.state = 'up';
    const answers: number[] = [];
    for (let round = 1; round <= 3; round++) {
      vi.setSystemTime(start + round * 31_000);
      answers.push((await postCart(await sign(unique('user')), env)).status);
    }
    expect(answers.every((status) => status === 503 || status === 201)).toBe(true);
    expect(answers.at(-1)).toBe(201);
  });

  it.each([
    ['issued in the future (iat)', { iat: 'future' }],
    ['signed in in the future (auth_time)', { auth_time: 'future' }],
  ])('refuses a token %s with 401, as Firebase requires both in the past', async (_, over) => {
    const { sign, env } = await keyServer();
    const future = Math.floor(Date.now() / 1000) + 3600;
    const claim = Object.fromEntries(Object.keys(over).map((k) => [k, future]));
    const user = unique('user');
    const res = await postCart(await sign(user, { ...claims, ...claim }), env);
    expect(res.status).toBe(401);
    expect((await problem(res)).detail).toBe(`The token's ${Object.keys(over)[0]} claim is not accepted`);
    expect(await cartsOf(user)).toBe(0);
    // A clock a few seconds ahead of ours is not refused.
    const soon = Math.floor(Date.now() / 1000) + 20;
    expect((await postCart(await sign(unique('user'), { ...claims, iat: soon, auth_time: soon }), env)).status).toBe(
      201,
    );
  });
});
