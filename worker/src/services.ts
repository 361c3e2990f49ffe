import { database, type Sql } from './db.ts';
import { type Config, config, type Env } from './env.ts';
import { type Fulfilment, fulfilment } from './fulfilment.ts';
import { type StripeApi, stripeApi } from './stripe.ts';

/**
 * What a request works with, built once per request and only when first used: a route that
 * never touches Stripe does not need it configured. Routes read them from `c.var.services`.
 */
export interface Services {
  readonly config: Config;
  readonly sql: Sql;
  /** Applies payment effects and publishes their events after the response. */
  readonly fulfilment: Fulfilment;
  readonly stripe: StripeApi;
}

/** `ctx` is null for the scheduled job, which publishes the outbox itself. */
export function requestServices(env: Env, ctx: () => { waitUntil(promise: Promise<unknown>): void } | null): Services {
  let sql: Sql | undefined;
  let fulfil: Fulfilment | undefined;
  let stripe: StripeApi | undefined;
  return {
    config: config(env),
    get sql() {
      sql ??= database(env);
      return sql;
    },
    get fulfilment() {
      fulfil ??= fulfilment(env, this.sql, ctx());
      return fulfil;
    },
    get stripe() {
      stripe ??= stripeApi(env);
      return stripe;
    },
  };
}
