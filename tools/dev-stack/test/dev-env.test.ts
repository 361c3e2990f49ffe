import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { configuredVars, formatEnvFile, loadDevSecrets, REPO_ROOT, readDevVars } from '../src/dev-env.ts';
import { wranglerDev } from '../src/local-stack.ts';
import { freePort } from '../src/net.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'dev-env-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('configuredVars', () => {
  it('lets the process environment override .dev.vars for the Worker names only', () => {
    const devVars = { DATABASE_URL: 'postgres://from-dev-vars', STRIPE_SECRET_KEY: 'sk_test_devvars', MY_FLAG: 'on' };
    const env = { DATABASE_URL: 'postgres://from-env', PATH: '/usr/bin', HOME: '/root', STRIPE_SECRET_KEY: '' };
    expect(configuredVars(devVars, env)).toEqual({ DATABASE_URL: 'postgres://from-env', MY_FLAG: 'on' });
  });

  it('reads values as the Worker does: trimmed, and blank as not set', () => {
    const env = { AUTH_JWT_SECRET: ' dev-secret ', STRIPE_API_BASE: ' ' };
    expect(configuredVars({ STRIPE_API_BASE: 'http://127.0.0.1:12111' }, env)).toEqual({
      AUTH_JWT_SECRET: 'dev-secret',
    });
  });
});

describe('readDevVars', () => {
  it('reads dotenv syntax and is empty when the file does not exist', async () => {
    const file = path.join(scratch, '.dev.vars');
    writeFileSync(file, '# local\nSTRIPE_SECRET_KEY=sk_test_123\nAPP_RETURN_URL="myapp://orders"\nEMPTY=\n');
    expect(await readDevVars(file)).toEqual({ STRIPE_SECRET_KEY: 'sk_test_123', APP_RETURN_URL: 'myapp://orders' });
    expect(await readDevVars(path.join(scratch, 'missing'))).toEqual({});
  });
});

describe('loadDevSecrets', () => {
  it('generates the local secrets once, privately, and returns the same ones afterwards', async () => {
    const file = path.join(scratch, 'data', 'dev-secrets.json');
    const first = await loadDevSecrets(file);
    expect(first.AUTH_JWT_SECRET?.length).toBeGreaterThanOrEqual(32);
    expect(first.ADMIN_API_KEY.length).toBeGreaterThanOrEqual(16);
    expect(first.ADMIN_API_KEY).not.toBe(first.AUTH_JWT_SECRET);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await loadDevSecrets(file)).toEqual(first);
  });

  it('adds a secret a newer version needs and keeps the existing ones, so issued tokens stay valid', async () => {
    const file = path.join(scratch, 'older', 'dev-secrets.json');
    mkdirSync(path.dirname(file));
    writeFileSync(
      file,
      JSON.stringify({ AUTH_JWT_SECRET: 'kept-jwt-secret-0123456789abcdef', ADMIN_API_KEY: 'kept-admin-key-0123' }),
    );
    const secrets = await loadDevSecrets(file);
    expect(secrets).toMatchObject({
      AUTH_JWT_SECRET: 'kept-jwt-secret-0123456789abcdef',
      ADMIN_API_KEY: 'kept-admin-key-0123',
    });
    // The Worker only accepts webhook secrets in Stripe's format.
    expect(secrets.STRIPE_WEBHOOK_SECRET).toMatch(/^whsec_[\w-]{32}$/);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(secrets);
  });

  it('generates no HS256 secret when a key set is configured, which the Worker would otherwise not use', async () => {
    const file = path.join(scratch, 'jwks', 'dev-secrets.json');
    const jwks = {
      AUTH_JWKS_URL: 'https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com',
    };
    const secrets = await loadDevSecrets(file, jwks);
    expect(secrets.AUTH_JWT_SECRET).toBeUndefined();
    expect(secrets.ADMIN_API_KEY.length).toBeGreaterThanOrEqual(16);
    expect(JSON.parse(readFileSync(file, 'utf8'))).not.toHaveProperty('AUTH_JWT_SECRET');

    // Back to local tokens: one is generated, and kept once the key set is configured again.
    const local = await loadDevSecrets(file);
    expect(local.AUTH_JWT_SECRET).toMatch(/^[\w-]{43}$/);
    expect(await loadDevSecrets(file, jwks)).toEqual({ ...local, AUTH_JWT_SECRET: undefined });
    expect((await loadDevSecrets(file)).AUTH_JWT_SECRET).toBe(local.AUTH_JWT_SECRET);
  });
});

describe('formatEnvFile', () => {
  it('writes values that dotenv reads back exactly, newlines and escapes included', () => {
    const vars = {
      GCP_SERVICE_ACCOUNT_KEY: JSON.stringify(
        { private_key: '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END-----\n' },
        null,
        2,
      ),
      APP_RETURN_URL: "myapp://it's/here#frag",
      DATABASE_URL: 'postgres://u:p%40ss@127.0.0.1:54329/db?sslmode=disable',
      SPACED: '  a = b  "c" ',
    };
    expect(parseEnv(formatEnvFile(vars))).toEqual(vars);
  });

  it('hands wrangler values with $ in them unchanged (it expands $NAME in an env file)', async () => {
    const dir = mkdtempSync(path.join(scratch, 'echo-'));
    writeFileSync(path.join(dir, 'index.js'), 'export default { fetch: (_request, env) => Response.json(env) };\n');
    writeFileSync(
      path.join(dir, 'wrangler.toml'),
      'name = "echo"\nmain = "index.js"\ncompatibility_date = "2026-04-20"\nsend_metrics = false\n',
    );
    const vars = {
      ADMIN_API_KEY: 'adm$in-key',
      DATABASE_URL: 'postgres://shop:pa$$w0rd@127.0.0.1/shop',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${NAME}, which wrangler would expand
      AUTH_JWT_SECRET: 'x${HOME}\\$y',
    };
    const envFile = path.join(dir, 'worker.env');
    writeFileSync(envFile, formatEnvFile(vars), { mode: 0o600 });
    const port = await freePort();
    const wrangler = wranglerDev({
      port,
      inspectorPort: await freePort(),
      envFile,
      config: path.join(dir, 'wrangler.toml'),
    });
    const child = spawn(wrangler.command, wrangler.args, {
      cwd: REPO_ROOT,
      env: wrangler.env,
      stdio: 'ignore',
      detached: true,
    });
    try {
      await expect
        .poll(
          () =>
            fetch(`http://127.0.0.1:${port}/`).then(
              (res) => res.json(),
              () => undefined,
            ),
          { timeout: 60_000 },
        )
        .toEqual(vars);
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
    }
  }, 90_000);

  it('refuses values it cannot quote, naming the variable', () => {
    expect(() => formatEnvFile({ ODD: "it's a `tick`" })).toThrow('cannot pass ODD');
    expect(() => formatEnvFile({ 'BAD-NAME': 'x' })).toThrow('not a valid name');
  });
});
