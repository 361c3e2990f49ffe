/**
 * `npm run token -- USER_ID [--ttl 1h]`: prints an HS256 bearer token for the local Worker,
 * for trying the API with curl: `curl -H "Authorization: Bearer $(npm run -s token -- alice)" …`
 *
 * Signed with AUTH_JWT_SECRET from the environment, else `.dev.vars`, else the secret that
 * `npm run dev` generated in .data/dev-secrets.json (created here if it does not exist yet).
 * `iss` and `aud` are set when AUTH_ISSUER / AUTH_AUDIENCE are, as the Worker then checks them.
 */

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SignJWT } from 'jose';
import { configuredVars, DEV_SECRETS_FILE, DEV_VARS_FILE, loadDevSecrets, readDevVars } from './dev-env.ts';

export interface TokenOptions {
  userId: string;
  secret: string;
  ttlSeconds: number;
  issuer?: string;
  audience?: string;
  now?: Date;
}

export async function createDevToken(opts: TokenOptions): Promise<string> {
  const iat = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(opts.userId)
    .setIssuedAt(iat)
    .setExpirationTime(iat + opts.ttlSeconds);
  if (opts.issuer) jwt.setIssuer(opts.issuer);
  if (opts.audience) jwt.setAudience(opts.audience);
  return jwt.sign(new TextEncoder().encode(opts.secret));
}

/** Who the shop link of `npm run dev` signs in. */
export const DEMO_SHOPPER = 'demo-shopper';
/** A working day: the link is printed once, when `npm run dev` starts. */
const SHOP_LINK_TTL_SECONDS = 12 * 3600;

/**
 * The storefront's sign-in link for a user (docs/contract.md §8), signed as the Worker checks
 * tokens (`vars`: its AUTH_JWT_SECRET, AUTH_ISSUER, AUTH_AUDIENCE). The token rides in the
 * fragment, which browsers never send to servers.
 */
export async function shopSignInLink(
  workerUrl: string,
  vars: Readonly<Record<string, string>>,
  userId = DEMO_SHOPPER,
  ttlSeconds = SHOP_LINK_TTL_SECONDS,
): Promise<string> {
  const secret = vars.AUTH_JWT_SECRET;
  if (!secret) throw new Error('AUTH_JWT_SECRET is not set: no token can be made for the shop link');
  const token = await createDevToken({
    userId,
    secret,
    ttlSeconds,
    issuer: vars.AUTH_ISSUER,
    audience: vars.AUTH_AUDIENCE,
  });
  return `${workerUrl}/#token=${token}`;
}

/** "3600", "90s", "30m", "2h", "7d" → seconds. */
export function parseTtl(text: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  const seconds = match
    ? Number(match[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd']
    : NaN;
  if (!Number.isInteger(seconds) || seconds <= 0)
    throw new Error(`--ttl must be a duration like 3600, 30m, 2h or 7d, not ${JSON.stringify(text)}`);
  return seconds;
}

/** Same precedence as `npm run dev`: environment > .dev.vars > the generated local secret. */
export async function tokenSettings(
  env: NodeJS.ProcessEnv,
  files = { devVars: DEV_VARS_FILE, secrets: DEV_SECRETS_FILE },
): Promise<Pick<TokenOptions, 'secret' | 'issuer' | 'audience'>> {
  const configured = configuredVars(await readDevVars(files.devVars), env);
  const secret = configured.AUTH_JWT_SECRET ?? (await loadDevSecrets(files.secrets, configured)).AUTH_JWT_SECRET;
  if (!secret) {
    throw new Error('AUTH_JWKS_URL is configured: the Worker takes tokens from that provider, not from npm run token');
  }
  return { secret, issuer: configured.AUTH_ISSUER, audience: configured.AUTH_AUDIENCE };
}

function parseArgs(argv: string[]): { userId: string; ttlSeconds: number } {
  let userId: string | undefined;
  let ttlSeconds = 3600;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--ttl') ttlSeconds = parseTtl(argv[++i] ?? '');
    else if (arg.startsWith('--ttl=')) ttlSeconds = parseTtl(arg.slice('--ttl='.length));
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`);
    else if (userId === undefined) userId = arg;
    else throw new Error(`unexpected argument ${JSON.stringify(arg)}`);
  }
  if (!userId) throw new Error('usage: npm run token -- USER_ID [--ttl 1h]');
  return { userId, ttlSeconds };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  (async () => {
    const args = parseArgs(process.argv.slice(2));
    console.log(await createDevToken({ ...args, ...(await tokenSettings(process.env)) }));
  })().catch((err: unknown) => {
    console.error(`token: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
