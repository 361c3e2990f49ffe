import { database, type Sql } from './db.ts';
import { config, type Config, type Env } from './env.ts';
import { fulfilment, type Fulfilment } from './fulfilment.ts';
import { stripeClient, type Stripe } from './stripe.ts';

/**
 * What a request works with, built once per request and only when first used: a route that
 * never touches Stripe does not need it configured. Routes read them from `c.var.services`.
 */
export interface Services {
  readonly config: Config;
  readonly sql: Sql;
  /** Applies payment effects and publishes their events after the response. */
  readonly fulfilment: Fulfilment;
  readonly stripe: Stripe;
}

/** `ctx` is null for the scheduled job, which publishes the outbox itself. */
export function requestServices(env: Env, ctx: () => { waitUntil(promise: Promise<unknown>): void } | null): Services {
  let sql: Sql | undefined;
  let fulfil: Fulfilment | undefined;
  let stripe: Stripe | undefined;
  return {
    config: config(env),
    get sql() {
      return (sql ??= database(env));
    },
    get fulfilment() {
      return (fulfil ??= fulfilment(env, this.sql, ctx()));
    },
    get stripe() {
      return (stripe ??= stripeClient(env));
    },
  };
}
