/**
 * The Worker's variables for local development: which names exist, where values come from
 * (defaults < `.dev.vars` < process environment), the generated-once local secrets, and the
 * env file handed to `wrangler dev` (so no secret appears in a process's command line).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { WORKER_VARIABLES } from '@edge-checkout/worker/env';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');
/** Git-ignored local state: Postgres data, secrets, the generated env file. */
export const DEV_DATA_DIR = path.join(REPO_ROOT, '.data');
export const DEV_VARS_FILE = path.join(REPO_ROOT, '.dev.vars');
export const DEV_SECRETS_FILE = path.join(DEV_DATA_DIR, 'dev-secrets.json');

/** docs/contract.md §1, declared by the Worker itself. */
export { WORKER_VARIABLES };

export type Vars = Record<string, string>;

/** `.dev.vars` as wrangler reads it (dotenv syntax); {} when there is none. */
export async function readDevVars(file = DEV_VARS_FILE): Promise<Vars> {
  if (!existsSync(file)) return {};
  return nonEmpty(parseEnv(await readFile(file, 'utf8')));
}

/**
 * What the developer configured: every entry of `.dev.vars` (it is the Worker's own file, so
 * names outside the list still reach the Worker), overridden by the process environment for
 * the Worker's names. Values are trimmed and a blank one counts as not set, as the Worker reads
 * them, so `STRIPE_SECRET_KEY= npm run dev` drops a key from `.dev.vars`, and the stack's choices
 * (the Stripe stand-in, the token's secret) follow what the Worker will see.
 */
export function configuredVars(devVars: Vars, env: NodeJS.ProcessEnv): Vars {
  const merged: Record<string, string | undefined> = { ...devVars };
  for (const name of WORKER_VARIABLES) if (name in env) merged[name] = env[name];
  return nonEmpty(merged);
}

function nonEmpty(vars: Record<string, string | undefined>): Vars {
  return Object.fromEntries(
    Object.entries(vars).flatMap(([name, value]) => (value?.trim() ? [[name, value.trim()]] : [])),
  );
}

export interface DevSecrets {
  /** Absent when a key set (AUTH_JWKS_URL) is configured: the Worker would prefer the secret to it. */
  AUTH_JWT_SECRET?: string;
  ADMIN_API_KEY: string;
  /** Signs the local Stripe stand-in's webhooks; not a Worker default (real Stripe has its own). */
  STRIPE_WEBHOOK_SECRET: string;
}

/**
 * Local-only secrets, generated on first use and kept in .data/ so tokens minted by
 * `npm run token` stay valid across restarts. A secret added in a later version is generated
 * alone; the existing ones are kept. Never used outside this checkout. With `AUTH_JWKS_URL`
 * configured no HS256 secret is generated or handed out: tokens then come from that provider.
 */
export async function loadDevSecrets(file = DEV_SECRETS_FILE, configured: Vars = {}): Promise<DevSecrets> {
  const stored = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>) : {};
  const kept = (name: keyof DevSecrets) => {
    const value = stored[name];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
  const secrets: DevSecrets = {
    ...(!configured.AUTH_JWKS_URL && {
      AUTH_JWT_SECRET: kept('AUTH_JWT_SECRET') ?? randomBytes(32).toString('base64url'),
    }),
    ADMIN_API_KEY: kept('ADMIN_API_KEY') ?? randomBytes(24).toString('base64url'),
    // Stripe's format, so the Worker's check of STRIPE_WEBHOOK_SECRET accepts it.
    STRIPE_WEBHOOK_SECRET: kept('STRIPE_WEBHOOK_SECRET') ?? `whsec_${randomBytes(24).toString('base64url')}`,
  };
  const generated = Object.entries(secrets).some(([name, value]) => stored[name] !== value);
  // A secret stored by an earlier run stays in the file for when the key set is unset again.
  if (generated) await writePrivateFile(file, `${JSON.stringify({ ...stored, ...secrets }, null, 2)}\n`);
  return secrets;
}

/**
 * An env file in the syntax wrangler's dotenv parser reads back verbatim. Single quotes keep a
 * value literal, newlines included (a service-account JSON key has `\n` escapes that double
 * quotes would turn into real newlines); a value holding a single quote uses backticks.
 */
export function formatEnvFile(vars: Vars): string {
  const lines = Object.entries(vars).map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new Error(`cannot pass variable ${JSON.stringify(name)} to wrangler: not a valid name`);
    const quote = !value.includes("'") ? "'" : !value.includes('`') ? '`' : undefined;
    // A trailing backslash would escape the closing quote for dotenv.
    if (!quote || value.endsWith('\\')) {
      throw new Error(
        `cannot pass ${name} to wrangler in an env file: its value holds both ' and \` or ends with a backslash`,
      );
    }
    // wrangler expands `$NAME` and `${NAME}` in an env file, quoted or not (dotenv-expand, in its
    // loadDotEnv); `\$` is its escape for a dollar sign, which it turns back into `$`.
    return `${name}=${quote}${value.replaceAll('$', '\\$')}${quote}`;
  });
  return `# Generated by npm run dev on each start; edit .dev.vars or the environment instead.\n${lines.join('\n')}\n`;
}

/** Written with mode 600 and renamed into place, so it is never readable half-written or by others. */
export async function writePrivateFile(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, content, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, file);
}
