import { emulatorHostOf, emulatorHostPort, PROJECT_ID, TOPIC_NAME } from '@edge-checkout/pubsub/names';
import { z } from 'zod';
import { ApiError } from './errors.ts';
import { offStep, onStep } from './money.ts';
import { CHECKOUT_SHIPPING_COUNTRIES } from './shipping-countries.ts';
import { NOT_ONE_LINE, NOT_STORABLE, ONE_LINE, storableText } from './storable-text.ts';
import { CHECKOUT_LIFETIME_MINUTES, isCurrencyCode, overMaximum, stripeMaxAmount } from './stripe-limits.ts';

/**
 * The Worker's bindings: wrangler vars, `.dev.vars` and secrets, declared as the strings they
 * should be. A `wrangler.toml` var arrives as written, though: `RETENTION_DAYS = 365` is a
 * number and a table an object ("text and JSON values",
 * https://developers.cloudflare.com/workers/configuration/environment-variables/). `config()`
 * reads each as its text and turns it into a typed value, once per isolate.
 */
export interface Env {
  /** Postgres connection string (Neon in production). Secret. */
  DATABASE_URL?: string;
  /**
   * Local development only: URL of a server speaking Neon's SQL-over-HTTP protocol in front of
   * a Postgres other than Neon (tools/dev-stack/src/neon-http-proxy.ts). Unset in production,
   * where the driver derives its endpoint from DATABASE_URL's host (isNeonEndpointHost).
   */
  NEON_HTTP_ENDPOINT?: string;
  /** Stripe secret key, `sk_test_…` or `sk_live_…`. Secret. */
  STRIPE_SECRET_KEY?: string;
  /** Webhook signing secret(s), `whsec_…`, comma-separated while rotating. Secret. */
  STRIPE_WEBHOOK_SECRET?: string;
  /** Another Stripe API server (the local stand-in); default https://api.stripe.com. */
  STRIPE_API_BASE?: string;
  /** Public origin of this Worker, for Checkout's success and cancel URLs. */
  PUBLIC_BASE_URL?: string;
  /** Universal link or deep link the landing pages offer to reopen the app. */
  APP_RETURN_URL?: string;
  /** Lifetime of a Checkout Session in minutes, 30..1440 as Stripe accepts; default 30. */
  CHECKOUT_TTL_MINUTES?: string;
  /** HS256 secret for bearer tokens (self-issued, local development, tests). Secret. */
  AUTH_JWT_SECRET?: string;
  /** JWKS URL for RS256/ES256 bearer tokens (Firebase Auth, Auth0, …). */
  AUTH_JWKS_URL?: string;
  /** Expected `iss` of bearer tokens: required with AUTH_JWKS_URL, checked when set with AUTH_JWT_SECRET. */
  AUTH_ISSUER?: string;
  /** Expected `aud` of bearer tokens: required with AUTH_JWKS_URL, checked when set with AUTH_JWT_SECRET. */
  AUTH_AUDIENCE?: string;
  /** Google Cloud project of the payment-events topic. */
  GCP_PROJECT_ID?: string;
  /** Topic id for payment events: projects/{GCP_PROJECT_ID}/topics/{PUBSUB_TOPIC}. */
  PUBSUB_TOPIC?: string;
  /** Service-account JSON key used to publish to Pub/Sub. Secret. */
  GCP_SERVICE_ACCOUNT_KEY?: string;
  /** `host:port` of a Pub/Sub emulator on this machine (Google's convention); then plain HTTP and no auth. */
  PUBSUB_EMULATOR_HOST?: string;
  /**
   * A locational Pub/Sub endpoint (`https://europe-west1-pubsub.googleapis.com`); default the
   * global `https://pubsub.googleapis.com`. Not used with PUBSUB_EMULATOR_HOST.
   */
  PUBSUB_API_ENDPOINT?: string;
  /** Bearer key for the admin routes. Secret. */
  ADMIN_API_KEY?: string;
  /** Countries Checkout collects a shipping address for (ISO codes, comma-separated); unset: none. */
  SHIPPING_COUNTRIES?: string;
  /** Shipping rates offered with the address: a JSON list of { name, amount, currency, minDays?, maxDays? }. */
  SHIPPING_RATES?: string;
  /** `true`: Stripe Tax adds tax at Checkout (automatic_tax). */
  STRIPE_AUTOMATIC_TAX?: string;
  /** `true`: shoppers may enter Stripe promotion codes at Checkout. */
  ALLOW_PROMOTION_CODES?: string;
  /** Origins allowed to call the API from a browser (CORS), comma-separated; none by default. */
  CORS_ORIGINS?: string;
  /** Days after which published and discarded outbox rows and processed events are deleted and customer emails blanked; default 90. */
  RETENTION_DAYS?: string;
}

/**
 * A var's text: a number or flag as written, a list of strings comma-separated (`["US", "CA"]`
 * as `US,CA`), any other table as JSON; undefined when unset or blank.
 */
function bindingText(value: unknown): string | undefined {
  const text =
    typeof value === 'string' || value === undefined || value === null
      ? value
      : Array.isArray(value) && value.every((item) => typeof item === 'string')
        ? value.join(',')
        : JSON.stringify(value);
  return text?.trim() || undefined;
}

// Plain http only to this machine (local stand-ins): anywhere else it would send keys, tokens
// and SQL in clear text, and let the network answer in Stripe's or Neon's place.
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;
// Schemes a browser runs or reads itself instead of handing them to an app.
const NOT_APP_SCHEMES = /^(javascript|data|vbscript|file|blob|about|filesystem|ftp|ws|wss):$/;

/** The parsed URL, or null when `value` is not an absolute URL (zod's own check has said so). */
function absoluteUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

const isHttpsOrLoopback = (u: URL | null) =>
  u?.protocol === 'https:' || (u?.protocol === 'http:' && LOOPBACK_HOST.test(u.hostname));

const HTTPS_URL = 'an https:// URL (http:// only for localhost)';
const LOOPBACK_HOST_PORT = 'host:port of this machine (localhost, 127.x.x.x or [::1])';
const url = z.url({ error: HTTPS_URL }).refine((v) => isHttpsOrLoopback(absoluteUrl(v)), HTTPS_URL);

// Where only the origin counts: a path, query or fragment would be dropped (the Stripe client
// takes a host and port) or end up inside the URLs built from it (`${base}/checkout/success`).
const ORIGIN_URL = 'an origin: https://host[:port], no path (http:// only for localhost)';
const originUrl = url
  .refine((v) => {
    const u = absoluteUrl(v);
    return u !== null && !u.username && !u.password && /^\/*$/.test(u.pathname) && !v.includes('?') && !v.includes('#');
  }, ORIGIN_URL)
  .transform((v) => new URL(v).origin);

// What Neon's driver asks of a connection string before it sends a query: a user, a host and a
// database (its URLFromPgConnectionString); anything less fails every query, which is no outage.
const POSTGRES_URL = 'a postgres:// URL with a user, a host and a database (special characters percent-encoded)';
/** A postgres:// URL read as the driver reads it, as an http URL; null when it is none. */
function postgresAsHttp(v: string): URL | null {
  const scheme = /^postgres(ql)?:/.exec(v)?.[0];
  return scheme ? absoluteUrl(`http:${v.slice(scheme.length)}`) : null;
}
const postgresUrl = z.string().refine((v) => {
  const u = postgresAsHttp(v);
  // The driver parses the string as it is, too (`new URL`), before it reads it as http.
  return (
    u !== null &&
    absoluteUrl(v) !== null &&
    Boolean(u.username) &&
    Boolean(u.hostname) &&
    u.hostname !== '-' &&
    u.pathname.length > 1
  );
}, POSTGRES_URL);

/**
 * A Neon compute endpoint's host (`ep-cool-darkness-123456.us-east-2.aws.neon.tech`, pooled
 * (`-pooler`) or not, on AWS or Azure). Without an endpoint of its own, Neon's driver sends
 * every query, with the connection string and its password in a header, to
 * `https://api.<host without its first label>/sql` (its `fetchEndpoint` default): Neon's API for
 * such a host, whoever answers there for any other.
 */
export function isNeonEndpointHost(hostname: string): boolean {
  return /^ep-[a-z0-9-]+\.([a-z0-9-]+\.)*neon\.tech$/i.test(hostname);
}
/**
 * What keeps Neon's SQL-over-HTTP endpoint from ever taking `url`, or null. Its proxy refuses a
 * connection string without a password (400, "missing authentication credentials", with no
 * SQLSTATE: neondatabase/neon proxy/src/serverless/http_util.rs, get_conn_info), which would
 * read as an outage on every request rather than a setting to fix.
 */
function neonUrlProblem(url: URL): string | null {
  if (!isNeonEndpointHost(url.hostname))
    return "DATABASE_URL is invalid: expected a Neon endpoint's host (ep-….neon.tech); another Postgres needs NEON_HTTP_ENDPOINT, a server speaking Neon's SQL over HTTP in front of it";
  if (!url.password)
    return "DATABASE_URL is invalid: expected the role's password in it (postgres://role:password@ep-….neon.tech/db): Neon refuses a connection string without one";
  return null;
}

// Absolute, so it works from any page: https (a universal link), or an app's own scheme
// (myshop://…). An app's link names a place in it after `//`; a scheme without (mailto:, tel:,
// sms:) opens the mail, phone or messages app instead of the shop's.
const RETURN_URL = 'an absolute https:// URL or an app scheme (myshop://…)';
const returnUrl = z.url({ error: RETURN_URL }).refine((v) => {
  const u = absoluteUrl(v);
  if (u === null) return false;
  if (/^https?:$/.test(u.protocol)) return isHttpsOrLoopback(u);
  return (
    !NOT_APP_SCHEMES.test(u.protocol) &&
    v.slice(u.protocol.length).startsWith('//') &&
    (u.host !== '' || u.pathname.replace(/^\/+/, '') !== '')
  );
}, RETURN_URL);

/**
 * A whole number of `unit` from `min` to `max`, written in decimal digits (as a TOML number or
 * text), one message for any other value: `Number()` alone would also read `0x1E` and `1e2`.
 */
function wholeNumber(min: number, max: number, unit: string) {
  const message = `whole ${unit} from ${min} to ${max}`;
  return z.coerce
    .string()
    .regex(/^\d+$/, message)
    .transform(Number)
    .pipe(z.number().min(min, message).max(max, message));
}

/** `a, b,c` → ['a', 'b', 'c']. */
const commaSeparated = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

// An origin as a browser sends it in `Origin`: scheme, host and port, nothing else (a trailing
// slash is forgiven). Plain http is allowed: we send nothing there, a browser page served from it
// calls us, and whether to trust such a page is the operator's call. So is an app's own scheme:
// a hybrid app's iOS web view cannot use http(s) (WKWebView reserves them), and sends its scheme
// as its origin (Capacitor `capacitor://localhost`, Ionic `ionic://localhost`).
const ORIGIN = 'origins (http(s)://host[:port], or an app scheme such as capacitor://localhost; no path)';
const origin = z
  .string()
  .refine((v) => {
    const u = absoluteUrl(v);
    if (u === null || u.username || u.password || u.search || u.hash || v.endsWith('?') || v.endsWith('#'))
      return false;
    if (/^https?:$/.test(u.protocol)) return `${u.origin}/` === u.href;
    return !NOT_APP_SCHEMES.test(u.protocol) && u.host !== '' && ['', '/'].includes(u.pathname);
  }, ORIGIN)
  // As browsers write it: scheme and host in lower case, no default port (`https://Shop.example:443`).
  .transform((v) => {
    const u = new URL(v);
    return /^https?:$/.test(u.protocol) ? u.origin : `${u.protocol}//${u.host.toLowerCase()}`;
  });

// `true` or `false`, as wrangler vars are strings.
const flag = z
  .string()
  .toLowerCase()
  .pipe(z.enum(['true', 'false'], { message: 'true or false' }))
  .transform((v) => v === 'true');

// A fixed-amount Checkout shipping rate. A session offers the rates in its own currency, at most
// 5 (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-shipping_options).
const RATE_NAME = 'a name of 1 to 100 characters';
const RATE_AMOUNT = 'a whole amount in minor units, 0 or more';
const RATE_CURRENCY = 'an ISO 4217 currency code in lower case (usd), of a currency Stripe charges in';
const RATE_DAYS = 'a whole number of days, at least 1';
const shippingRate = z
  .strictObject(
    {
      // Shown by Checkout, stored with the session: one line of storable text, as a product's name.
      name: z
        .string({ error: RATE_NAME })
        .trim()
        .min(1, RATE_NAME)
        .max(100, RATE_NAME)
        .refine(storableText, NOT_STORABLE)
        .regex(ONE_LINE, NOT_ONE_LINE),
      amount: z.number({ error: RATE_AMOUNT }).int(RATE_AMOUNT).min(0, RATE_AMOUNT),
      currency: z.string({ error: RATE_CURRENCY }).refine(isCurrencyCode, RATE_CURRENCY),
      minDays: z.number({ error: RATE_DAYS }).int(RATE_DAYS).min(1, RATE_DAYS).optional(),
      maxDays: z.number({ error: RATE_DAYS }).int(RATE_DAYS).min(1, RATE_DAYS).optional(),
    },
    { error: 'a rate { name, amount, currency, minDays?, maxDays? } and nothing else' },
  )
  .refine((r) => !r.minDays || !r.maxDays || r.minDays <= r.maxDays, 'minDays at most maxDays')
  // Per the rate's currency: twelve digits in IDR, eight in any other
  // (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
  .refine((r) => r.amount <= stripeMaxAmount(r.currency), {
    path: ['amount'],
    error: (issue) => overMaximum((issue.input as { currency: string }).currency),
  })
  .refine((r) => onStep(r.amount, r.currency), {
    error: (issue) => offStep((issue.input as { currency: string }).currency),
  });
// An empty list is no rates, as when the variable is unset: `SHIPPING_RATES = []` in wrangler.toml
// reaches the Worker as an empty table, which reads as unset (bindingText), and the same value
// written as text must mean the same.
const shippingRates = z
  .array(shippingRate, { error: 'a JSON list of shipping rates' })
  .refine(
    (rates) => rates.every((r) => rates.filter((o) => o.currency === r.currency).length <= 5),
    'at most 5 shipping rates per currency',
  );
export type ShippingRate = z.output<typeof shippingRate>;

const COUNTRY_CODES = 'ISO country codes, comma-separated (US,CA)';
const WEBHOOK_SECRETS = 'whsec_… secrets, comma-separated';

// Each variable is checked on its own, so one bad value only disables what depends on it.
const schema = {
  DATABASE_URL: postgresUrl,
  NEON_HTTP_ENDPOINT: url,
  STRIPE_SECRET_KEY: z.string().regex(/^(sk|rk)_(test|live)_/, 'a Stripe secret key (sk_test_… or sk_live_…)'),
  // A secret is `whsec_` and one word of base64 or hex: one with a space or `;` inside is two
  // pasted wrongly and would never match.
  STRIPE_WEBHOOK_SECRET: commaSeparated.pipe(
    z.array(z.string().regex(/^whsec_[\w+/=-]+$/, WEBHOOK_SECRETS)).min(1, WEBHOOK_SECRETS),
  ),
  STRIPE_API_BASE: originUrl,
  PUBLIC_BASE_URL: originUrl,
  APP_RETURN_URL: returnUrl,
  CHECKOUT_TTL_MINUTES: wholeNumber(CHECKOUT_LIFETIME_MINUTES.min, CHECKOUT_LIFETIME_MINUTES.max, 'minutes'),
  // Any length, as the contract names no minimum; RFC 7518 §3.2 asks 32 bytes or more for HS256,
  // which the README recommends and `npm run dev` generates.
  AUTH_JWT_SECRET: z.string().min(1),
  AUTH_JWKS_URL: url,
  AUTH_ISSUER: z.string().min(1),
  AUTH_AUDIENCE: z.string().min(1),
  GCP_PROJECT_ID: z.string().regex(PROJECT_ID, 'a Google Cloud project id'),
  PUBSUB_TOPIC: z.string().regex(TOPIC_NAME, 'a Pub/Sub topic id'),
  GCP_SERVICE_ACCOUNT_KEY: z.string().min(1),
  // The emulator speaks plain HTTP without credentials: anywhere but this machine, payment events
  // (emails, addresses) would travel in clear text to whoever answers.
  // Read as Google's client reads it, so the same value works for both.
  PUBSUB_EMULATOR_HOST: z
    .string()
    .transform(emulatorHostPort)
    .refine((v) => LOOPBACK_HOST.test(emulatorHostOf(v) ?? ''), LOOPBACK_HOST_PORT),
  // Google keeps a key's order only among messages published in one region
  // (https://cloud.google.com/pubsub/docs/ordering), and the global endpoint routes each request
  // to a region near its sender: a Worker answering in several places needs a locational one.
  // https only (loopback http for a local stand-in), as the service account's tokens go there.
  PUBSUB_API_ENDPOINT: originUrl,
  ADMIN_API_KEY: z.string().min(1),
  // Checked here, as a country Stripe refuses would fail every checkout with Stripe's 400.
  SHIPPING_COUNTRIES: commaSeparated
    .pipe(
      z
        .array(
          z
            .string()
            .toUpperCase()
            .regex(/^[A-Z]{2}$/, COUNTRY_CODES),
        )
        .min(1, COUNTRY_CODES),
    )
    .transform((codes) => [...new Set(codes)])
    .superRefine((codes, ctx) => {
      const refused = codes.filter((code) => !CHECKOUT_SHIPPING_COUNTRIES.has(code));
      if (refused.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `countries Stripe Checkout ships to, which ${refused.join(', ')} is not`,
        });
      }
    }),
  SHIPPING_RATES: z
    .string()
    .transform((v, ctx) => {
      try {
        return JSON.parse(v) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'a JSON list of shipping rates' });
        return z.NEVER;
      }
    })
    .pipe(shippingRates),
  STRIPE_AUTOMATIC_TAX: flag,
  ALLOW_PROMOTION_CODES: flag,
  CORS_ORIGINS: commaSeparated.pipe(z.array(origin)),
  // At least 30: Stripe lists and resends events for 30 days
  // (https://docs.stripe.com/api/events/list), and an event forgotten sooner could be applied again.
  RETENTION_DAYS: wholeNumber(30, 3650, 'days'),
} satisfies Record<keyof Env, z.ZodType>;

type Name = keyof typeof schema;

/** Every variable's name: the dev stack passes these through, the documentation lists them. */
export const WORKER_VARIABLES = Object.keys(schema) as readonly Name[];
type Value<N extends Name> = z.output<(typeof schema)[N]>;

const defaults: Partial<{ [N in Name]: Value<N> }> = {
  CHECKOUT_TTL_MINUTES: CHECKOUT_LIFETIME_MINUTES.min,
  RETENTION_DAYS: 90,
};

export interface Config {
  /** The typed value, or undefined when the variable is unset. Throws when it is set but invalid. */
  optional<N extends Name>(name: N): Value<N> | undefined;
  /** The typed value; a missing or invalid variable answers 500 `misconfigured` naming it. */
  required<N extends Name>(name: N): Value<N>;
}

const cache = new WeakMap<Env, Config>();

/** Reads and validates the bindings once per `env` object (one per isolate on Workers). */
export function config(env: Env): Config {
  let found = cache.get(env);
  if (!found) {
    found = parse(env);
    cache.set(env, found);
  }
  return found;
}

function parse(env: Env): Config {
  const values = new Map<Name, unknown>();
  const problems = new Map<Name, string>();
  for (const name of Object.keys(schema) as Name[]) {
    const raw = bindingText(env[name]);
    if (raw === undefined) {
      if (defaults[name] !== undefined) values.set(name, defaults[name]);
      continue;
    }
    const result = schema[name].safeParse(raw);
    if (result.success) values.set(name, result.data);
    else {
      const issue = result.error.issues[0];
      const where = issue?.path.length ? ` (at ${issue.path.join('.')})` : '';
      problems.set(name, `${name} is invalid: expected ${issue?.message ?? 'another value'}${where}`);
    }
  }
  const database = values.get('DATABASE_URL');
  const neonProblem =
    typeof database === 'string' && bindingText(env.NEON_HTTP_ENDPOINT) === undefined
      ? neonUrlProblem(postgresAsHttp(database)!)
      : null;
  if (neonProblem) {
    values.delete('DATABASE_URL');
    problems.set('DATABASE_URL', neonProblem);
  }
  const optional = <N extends Name>(name: N): Value<N> | undefined => {
    const problem = problems.get(name);
    if (problem) throw new ApiError('misconfigured', problem);
    return values.get(name) as Value<N> | undefined;
  };
  return {
    optional,
    required(name) {
      const value = optional(name);
      if (value === undefined) throw new ApiError('misconfigured', `${name} is not set`);
      return value;
    },
  };
}
