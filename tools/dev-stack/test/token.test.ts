import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { createDevToken, DEMO_SHOPPER, parseTtl, shopSignInLink, tokenSettings } from '../src/token.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'token-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const key = (secret: string) => new TextEncoder().encode(secret);

describe('createDevToken', () => {
  it('signs sub, iat and exp with HS256, as the Worker verifies them', async () => {
    const now = new Date();
    const token = await createDevToken({ userId: 'alice', secret: 'x'.repeat(32), ttlSeconds: 3600, now });
    const { payload, protectedHeader } = await jwtVerify(token, key('x'.repeat(32)), {
      algorithms: ['HS256'],
      requiredClaims: ['exp', 'sub'],
    });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.sub).toBe('alice');
    expect(payload.iat).toBe(Math.floor(now.getTime() / 1000));
    expect(payload.exp! - payload.iat!).toBe(3600);
    expect(payload.iss).toBeUndefined();
    await expect(jwtVerify(token, key('y'.repeat(32)))).rejects.toThrow();
  });

  it('adds iss and aud when they are configured', async () => {
    const token = await createDevToken({
      userId: 'bob',
      secret: 's'.repeat(32),
      ttlSeconds: 60,
      issuer: 'https://issuer.test',
      audience: 'edge-checkout',
    });
    const { payload } = await jwtVerify(token, key('s'.repeat(32)), {
      issuer: 'https://issuer.test',
      audience: 'edge-checkout',
    });
    expect(payload.sub).toBe('bob');
  });
});

describe('shopSignInLink', () => {
  it('opens the storefront with a token the Worker accepts in the fragment, for the demo shopper by default', async () => {
    const vars = { AUTH_JWT_SECRET: 'z'.repeat(32), AUTH_ISSUER: 'https://issuer.test', AUTH_AUDIENCE: 'shop' };
    const link = new URL(await shopSignInLink('http://127.0.0.1:8787', vars));
    expect(`${link.origin}${link.pathname}${link.search}`).toBe('http://127.0.0.1:8787/');
    const token = new URLSearchParams(link.hash.slice(1)).get('token')!;
    const { payload } = await jwtVerify(token, key(vars.AUTH_JWT_SECRET), {
      algorithms: ['HS256'],
      requiredClaims: ['exp', 'sub'],
      issuer: vars.AUTH_ISSUER,
      audience: vars.AUTH_AUDIENCE,
    });
    expect(payload.sub).toBe(DEMO_SHOPPER);
    await expect(shopSignInLink('http://127.0.0.1:8787', {})).rejects.toThrow('AUTH_JWT_SECRET is not set');
  });
});

describe('parseTtl', () => {
  it('reads seconds and s/m/h/d durations, and rejects the rest', () => {
    expect([parseTtl('3600'), parseTtl('90s'), parseTtl('30m'), parseTtl('2h'), parseTtl('7d')]).toEqual([
      3600, 90, 1800, 7200, 604800,
    ]);
    expect(() => parseTtl('1w')).toThrow('--ttl must be a duration');
    expect(() => parseTtl('0')).toThrow('--ttl must be a duration');
  });
});

describe('tokenSettings', () => {
  it('takes the secret from the environment, else .dev.vars, else the generated local secret', async () => {
    const devVars = path.join(scratch, '.dev.vars');
    const secrets = path.join(scratch, 'dev-secrets.json');
    writeFileSync(
      secrets,
      JSON.stringify({ AUTH_JWT_SECRET: 'from-secrets-file-0123456789', ADMIN_API_KEY: 'k'.repeat(20) }),
    );
    const files = { devVars, secrets };

    expect((await tokenSettings({}, files)).secret).toBe('from-secrets-file-0123456789');
    writeFileSync(devVars, 'AUTH_JWT_SECRET=from-dev-vars-0123456789\nAUTH_AUDIENCE=app\n');
    expect(await tokenSettings({}, files)).toEqual({
      secret: 'from-dev-vars-0123456789',
      issuer: undefined,
      audience: 'app',
    });
    expect(await tokenSettings({ AUTH_JWT_SECRET: 'from-env-0123456789', AUTH_ISSUER: 'iss' }, files)).toEqual({
      secret: 'from-env-0123456789',
      issuer: 'iss',
      audience: 'app',
    });
  });
  it('refuses to mint a token when a key set is configured, as the Worker would not accept it', async () => {
    const files = { devVars: path.join(scratch, 'none.vars'), secrets: path.join(scratch, 'jwks-secrets.json') };
    await expect(tokenSettings({ AUTH_JWKS_URL: 'https://auth.example/keys.json' }, files)).rejects.toThrow(
      'AUTH_JWKS_URL is configured',
    );
  });
});

describe('token CLI', () => {
  it('prints one token for the user with the requested lifetime', async () => {
    const { stdout } = await promisify(execFile)(
      'npx',
      ['tsx', path.join(import.meta.dirname, '../src/token.ts'), 'carol', '--ttl', '30m'],
      {
        env: { ...process.env, AUTH_JWT_SECRET: 'cli-secret-0123456789abcdef' },
      },
    );
    const token = stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    const { payload } = await jwtVerify(token, key('cli-secret-0123456789abcdef'));
    expect(payload.sub).toBe('carol');
    expect(decodeJwt(token).exp! - decodeJwt(token).iat!).toBe(1800);
  }, 30_000);
});
