import { createMiddleware } from 'hono/factory';
import { ApiError } from './errors.ts';

/**
 * Limits on what a stranger can make us do, counted by Cloudflare's Workers Rate Limiting
 * (https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/): each binding
 * is declared in wrangler.toml (`[[ratelimits]]`, with its limit per period of 10 or 60 s) and
 * counts per key in the Cloudflare location that serves the request. Calls to Stripe are the
 * scarce resource: Stripe's rate limit is per account, so one client looping checkout could
 * stop it for every shopper. The limits are far above what a shopper does (README, "Rate limits").
 */
export const RATE_LIMITS = {
  /** Starting and cancelling Checkout (each costs Stripe calls), per user. */
  CHECKOUT_RATE_LIMIT: { periodSeconds: 60, what: 'checkout attempts' },
  /** Landing pages that read a session back from Stripe without a login, per Checkout Session. */
  STRIPE_PAGE_RATE_LIMIT: { periodSeconds: 60, what: 'payment confirmations of this checkout' },
  /** Every write of a signed-in user, a ceiling no person reaches by hand. */
  WRITE_RATE_LIMIT: { periodSeconds: 60, what: 'changes' },
} as const;

export type RateLimitName = keyof typeof RATE_LIMITS;
/** What a Workers Rate Limiting binding offers (workers-types' `RateLimit`). */
interface RateLimiter {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}
export type RateLimitBindings = { [N in RateLimitName]?: RateLimiter };

/** Counts one request for `key`; over the limit it throws 429 `rate_limited` with `Retry-After`. */
export async function takeToken(env: RateLimitBindings, name: RateLimitName, key: string): Promise<void> {
  const limiter = env[name];
  if (!limiter) throw new ApiError('misconfigured', `The rate limit binding ${name} is not configured`);
  const { success } = await limiter.limit({ key });
  if (success) return;
  // The binding does not say when its window ends; one whole period is always enough.
  const { periodSeconds, what } = RATE_LIMITS[name];
  throw new ApiError('rate_limited', `Too many ${what}; try again in ${periodSeconds} seconds`, {
    retryAfter: periodSeconds,
  });
}

/** Limits a signed-in route per user (after `requireUser`). */
export function limitPerUser(name: RateLimitName) {
  return createMiddleware<{ Bindings: RateLimitBindings; Variables: { userId: string } }>(async (c, next) => {
    await takeToken(c.env, name, c.var.userId);
    await next();
  });
}
