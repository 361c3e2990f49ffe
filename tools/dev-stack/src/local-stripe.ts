/**
 * Stripe in the local stack (docs/contract.md §7):
 *   - no STRIPE_SECRET_KEY and no STRIPE_API_BASE: the local stand-in runs in this process and
 *     sends its webhooks to the Worker, signed with a generated-once local secret;
 *   - STRIPE_API_BASE set (e.g. a stand-in from `npm run stripe:standin`): that server is used;
 *   - a real key and no STRIPE_API_BASE: Stripe itself; webhooks need `stripe listen`.
 */

import { startStripeStandin } from '@edge-checkout/stripe-standin';
import type { LocalService, ServiceContext } from './local-service.ts';
import { assertPortFree, isLoopbackHost } from './net.ts';

/** Any sk_test_ key passes the stand-in; this one says where it belongs. Not a secret. */
export const LOCAL_STRIPE_KEY = 'sk_test_local_standin';

// Locally the Worker is only unreachable while wrangler starts or reloads, so a failed webhook
// is retried every few seconds (Stripe waits hours) and, as on Stripe, never given up.
const WEBHOOK_RETRY_DELAYS_MS = [250, 500, 1_000, 2_000, 5_000];

export const stripeService: LocalService = {
  name: 'stripe',
  async start(ctx) {
    const webhookUrl = `${ctx.workerUrl}/v1/webhooks/stripe`;
    const key = ctx.configured.STRIPE_SECRET_KEY;
    const apiBase = ctx.configured.STRIPE_API_BASE;
    // A developer's own secret (rotation lists several) wins, so the Worker and the stand-in agree:
    // the first one of the list, read as the Worker reads it (blank entries skipped).
    const configuredSecret = ctx.configured.STRIPE_WEBHOOK_SECRET?.split(',')
      .map((secret) => secret.trim())
      .find(Boolean);

    if (apiBase) return useConfiguredServer(ctx, apiBase, webhookUrl, configuredSecret);
    if (key) {
      const live = /^(sk|rk)_live_/.test(key);
      ctx.log(
        `stripe: STRIPE_SECRET_KEY is configured and STRIPE_API_BASE is not: talking to Stripe${live ? ' with a LIVE key (real payments)' : ''}. ` +
          `Stripe cannot reach 127.0.0.1: for webhooks run \`stripe listen --forward-to ${webhookUrl.replace(/^http:\/\//, '')}\` ` +
          `and put the whsec_… it prints in STRIPE_WEBHOOK_SECRET` +
          (configuredSecret
            ? ''
            : ' (not set yet: webhooks are refused until it is; the success page and the scheduled job still settle carts)'),
      );
      return undefined;
    }

    const port = ctx.ports.stripeStandin;
    if (port !== 0) {
      await assertPortFree(
        port,
        `if it is a stand-in you started (npm run stripe:standin), run with STRIPE_API_BASE=http://127.0.0.1:${port}; or set STRIPE_STANDIN_PORT`,
      );
    }
    const webhookSecret = configuredSecret ?? ctx.secrets.STRIPE_WEBHOOK_SECRET;
    const standin = await startStripeStandin({
      port,
      webhookUrl,
      webhookSecret,
      asyncDelayMs: ctx.stripeAsyncDelayMs,
      webhookRetryDelaysMs: WEBHOOK_RETRY_DELAYS_MS,
      log: (line) => ctx.print(`[stripe] ${line}`),
    });
    ctx.log(
      `stripe: local stand-in on ${standin.url} (no Stripe account needed); hosted payment pages at its session urls, webhooks to ${webhookUrl}`,
    );
    return {
      vars: { STRIPE_SECRET_KEY: LOCAL_STRIPE_KEY, STRIPE_WEBHOOK_SECRET: webhookSecret, STRIPE_API_BASE: standin.url },
      stop: standin.close,
    };
  },
};

/**
 * STRIPE_API_BASE names a server the developer runs. The Worker needs a key and the secret
 * that server signs webhooks with; when it is our stand-in we can also tell whether its
 * webhooks reach this Worker.
 */
async function useConfiguredServer(
  ctx: ServiceContext,
  apiBase: string,
  webhookUrl: string,
  configuredSecret: string | undefined,
) {
  const vars: Record<string, string> = {};
  if (!ctx.configured.STRIPE_SECRET_KEY) vars.STRIPE_SECRET_KEY = LOCAL_STRIPE_KEY;
  if (!configuredSecret) vars.STRIPE_WEBHOOK_SECRET = ctx.secrets.STRIPE_WEBHOOK_SECRET;
  ctx.log(`stripe: STRIPE_API_BASE is configured (${apiBase}); not starting the stand-in`);

  let host: string;
  try {
    host = new URL(apiBase).hostname;
  } catch {
    return { vars, stop: async () => {} }; // the Worker names the bad value (500 misconfigured)
  }
  // Only a server on this machine is probed: nothing leaves 127.0.0.1.
  if (!isLoopbackHost(host)) return { vars, stop: async () => {} };
  const webhooks = await fetch(new URL('/_standin/webhooks', apiBase), { signal: AbortSignal.timeout(2_000) })
    .then(async (res) => (res.ok ? ((await res.json()) as { url: string | null }) : undefined))
    .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  if (webhooks instanceof Error) {
    ctx.log(`stripe: WARNING nothing answers at ${apiBase} yet; checkout answers 503 until it does`);
  } else if (webhooks && webhooks.url !== webhookUrl) {
    ctx.log(
      `stripe: that stand-in sends webhooks to ${webhooks.url ?? 'nowhere'}; for this Worker start it with ` +
        `STRIPE_WEBHOOK_URL=${webhookUrl} and STRIPE_WEBHOOK_SECRET set to the Worker's ` +
        `(${configuredSecret ? 'the one configured here' : 'STRIPE_WEBHOOK_SECRET in .data/dev-secrets.json'})`,
    );
  } else if (webhooks) {
    ctx.log(
      `stripe: that stand-in sends its webhooks here; they verify only if it signs with the Worker's STRIPE_WEBHOOK_SECRET`,
    );
  }
  return { vars, stop: async () => {} };
}
