/**
 * Verify-only Worker: the baseline `npm run bench` compares the real webhook endpoint with.
 * It reads the raw body, verifies `Stripe-Signature` exactly as worker/src/stripe.ts does
 * (`constructEventAsync` with the SubtleCrypto provider, 300 s tolerance) and answers
 * `{ received: true }`: the floor of what a webhook costs in workerd, with no database and no
 * Pub/Sub. STRIPE_WEBHOOK_SECRET (and BENCH_LOG) come from the env file bench/load.ts writes.
 */
import Stripe from 'stripe';

interface Env {
  STRIPE_WEBHOOK_SECRET: string;
  /** '1' (`npm run bench -- --baseline-log on`): one console.log per event: what a log line per webhook would cost. */
  BENCH_LOG?: string;
}

const cryptoProvider = Stripe.createSubtleCryptoProvider();
const verifier = new Stripe('sk_test_verification_only', { httpClient: Stripe.createFetchHttpClient() });

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (request.method === 'GET' && url.pathname === '/healthz') return Response.json({ ok: true });
    if (request.method !== 'POST' || url.pathname !== '/v1/webhooks/stripe')
      return new Response('not found', { status: 404 });
    const body = await request.text();
    const signature = request.headers.get('Stripe-Signature');
    if (!signature) return Response.json({ code: 'invalid_signature' }, { status: 400 });
    try {
      const event = await verifier.webhooks.constructEventAsync(
        body,
        signature,
        env.STRIPE_WEBHOOK_SECRET,
        300,
        cryptoProvider,
      );
      if (env.BENCH_LOG === '1')
        console.log(JSON.stringify({ level: 'info', msg: 'stripe_event', eventId: event.id, type: event.type }));
    } catch (err) {
      if (err instanceof Stripe.errors.StripeSignatureVerificationError)
        return Response.json({ code: 'invalid_signature' }, { status: 400 });
      throw err;
    }
    return Response.json({ received: true });
  },
};
