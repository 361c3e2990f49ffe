import { z } from 'zod';
import { ApiError } from './errors.ts';

/**
 * The Worker's bindings: wrangler vars, `.dev.vars` and secrets. Every value is a string as
 * Cloudflare delivers it; `config()` turns them into typed values once per isolate.
 */
export interface Env {
  /** Postgres connection string (Neon in production). Secret. */
  DATABASE_URL?: string;
  /**
   * Local development only: URL of a server speaking Neon's SQL-over-HTTP protocol in front of
   * a local Postgres (tools/neon-http-proxy.ts). Unset in production, where the driver derives
   * `https://<host>/sql` from DATABASE_URL.
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
  /** Expected `iss` of bearer tokens, checked when set. */
  AUTH_ISSUER?: string;
  /** Expected `aud` of bearer tokens, checked when set. */
  AUTH_AUDIENCE?: string;
  /** Google Cloud project of the payment-events topic. */
  GCP_PROJECT_ID?: string;
  /** Topic id for payment events: projects/{GCP_PROJECT_ID}/topics/{PUBSUB_TOPIC}. */
  PUBSUB_TOPIC?: string;
  /** Service-account JSON key used to publish to Pub/Sub. Secret. */
  GCP_SERVICE_ACCOUNT_KEY?: string;
  /** `host:port` of a Pub/Sub emulator (Google's convention); then plain HTTP and no auth. */
  PUBSUB_EMULATOR_HOST?: string;
  /** Bearer key for the admin routes. Secret. */
  ADMIN_API_KEY?: string;
}

const optionalText = z.string().trim().min(1).optional().catch(undefined);
const url = z.url({ protocol: /^https?$/ });

// Each variable is checked on its own, so one bad value only disables what depends on it.
const schema = {
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL'),
  NEON_HTTP_ENDPOINT: url,
  STRIPE_SECRET_KEY: z.string().regex(/^(sk|rk)_(test|live)_/, 'a Stripe secret key (sk_test_… or sk_live_…)'),
  STRIPE_WEBHOOK_SECRET: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().startsWith('whsec_')).min(1)),
  STRIPE_API_BASE: url,
  PUBLIC_BASE_URL: url.transform((v) => v.replace(/\/+$/, '')),
  APP_RETURN_URL: z.string().min(1),
  CHECKOUT_TTL_MINUTES: z.coerce.number().int().min(30).max(1440),
  AUTH_JWT_SECRET: z.string().min(16, 'at least 16 characters'),
  AUTH_JWKS_URL: url,
  AUTH_ISSUER: z.string().min(1),
  AUTH_AUDIENCE: z.string().min(1),
  GCP_PROJECT_ID: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'a Google Cloud project id'),
  PUBSUB_TOPIC: z.string().regex(/^[A-Za-z][\w.~+%-]{2,254}$/, 'a Pub/Sub topic id'),
  GCP_SERVICE_ACCOUNT_KEY: z.string().min(1),
  PUBSUB_EMULATOR_HOST: z.string().regex(/^[\w.-]+:\d+$/, 'host:port'),
  ADMIN_API_KEY: z.string().min(16, 'at least 16 characters'),
} satisfies Record<keyof Env, z.ZodType>;

type Name = keyof typeof schema;

/** Every variable's name: the dev stack passes these through, the documentation lists them. */
export const WORKER_VARIABLES = Object.keys(schema) as readonly Name[];
type Value<N extends Name> = z.output<(typeof schema)[N]>;

const defaults: Partial<{ [N in Name]: Value<N> }> = { CHECKOUT_TTL_MINUTES: 30 };

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
    const raw = optionalText.parse(env[name]);
    if (raw === undefined) {
      if (defaults[name] !== undefined) values.set(name, defaults[name]);
      continue;
    }
    const result = schema[name].safeParse(raw);
    if (result.success) values.set(name, result.data);
    else problems.set(name, `${name} is invalid: expected ${result.error.issues[0]?.message ?? 'another value'}`);
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
