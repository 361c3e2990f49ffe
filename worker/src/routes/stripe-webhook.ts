import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { type AppEnv, STRIPE_WEBHOOK_PATH } from '../app.ts';
import { log } from '../log.ts';
import { json, problems } from '../schemas.ts';
import { type Stripe, type StripeApi, stripeFailure, type ThinEvent, verifyWebhook } from '../stripe.ts';
import { wellFormedEvent } from '../stripe-event-shape.ts';
import { cartIdOfOurPayment, effectOfEvent, HANDLED_EVENT_TYPES } from '../stripe-events.ts';

const received = createRoute({
  method: 'post',
  path: STRIPE_WEBHOOK_PATH,
  operationId: 'receiveStripeEvent',
  tags: ['Webhooks'],
  summary: 'Stripe webhook endpoint (signature-verified)',
  description:
    `Handles ${HANDLED_EVENT_TYPES.join(', ')}, as snapshot events or as thin events (\`v1.\` and the type), ` +
    'whose snapshot event is read from Stripe; other types are acknowledged and ignored. ' +
    '200 once the effect is durably stored; 503 makes Stripe retry.',
  // Documented, not validated here: verification reads the header itself, and a missing one is
  // invalid_signature like any other bad signature.
  parameters: [
    {
      name: 'Stripe-Signature',
      in: 'header',
      required: true,
      schema: { type: 'string' },
      description: "Stripe's signature of the raw body",
    },
  ],
  responses: {
    200: json(z.object({ received: z.literal(true) }), 'Stored (or a replay, or ignored)'),
    ...problems(400, 413, 500, 503),
  },
});

export function stripeWebhookRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(received, async (c) => {
    // Verification is kept apart from handling: only a bad signature may answer invalid_signature,
    // a failure while handling must make Stripe retry. A signed event whose fields could never be
    // stored is refused first (400), rather than failing the same way on every retry.
    const verified = await verifyWebhook(c.env, await c.req.text(), c.req.header('Stripe-Signature'));
    let signed: unknown = verified;
    // Optional: a signed `null` parses to null, which wellFormedEvent refuses below.
    if (verified?.object === 'v2.core.event') {
      signed = await snapshotOf(verified, c.var.services.stripe);
      if (signed === null) {
        // A thin event of another type or account: nothing to apply.
        // Acknowledged so that Stripe does not disable the destination, and logged for a look.
        const { id: eventId, type, context } = verified;
        log.warn('stripe_thin_event_ignored', { eventId, type, ...(context && { context }) });
        return c.json({ received: true as const }, 200);
      }
    }
    const event = wellFormedEvent(signed);
    const effect = effectOfEvent(event);
    if (effect) {
      const result = await c.var.services.fulfilment.apply(effect);
      // Applied events and replays are the normal case, recorded in payment_events and in the
      // request log; a log line each would be most of a webhook's cost. What needs a look is logged.
      const ourCartId = result.outcome === 'unknown_cart' ? cartIdOfOurPayment(event) : null;
      if (ourCartId) {
        // A payment for a checkout this Worker made that the database does not know: written after
        // the point a restore went back to, or made by another deployment sharing the Stripe account.
        // Stripe will not send it again, so an operator has to look (docs/operations.md §5): an
        // error, as the runbook watches errors.
        log.error('stripe_checkout_unknown', {
          eventId: event.id,
          type: event.type,
          cartId: ourCartId,
          sessionId: effect.sessionId,
        });
      } else if (result.outcome !== 'applied' && result.outcome !== 'duplicate') {
        log.info('stripe_event_not_applied', { eventId: event.id, type: event.type, ...result });
      }
    }
    return c.json({ received: true as const }, 200);
  });
}

/**
 * The snapshot event a thin event of a handled API v1 event type stands for (`v1.charge.refunded`
 * for `charge.refunded`): an event destination of thin events for API v1 resources
 * (https://docs.stripe.com/changelog/endive/2026-09-30/thin-events-for-api-v1-resources-generally-available)
 * is sent only a notice, and Stripe counts it delivered once acknowledged, so its object is read
 * now or never. Read as an event rather than as the object's latest state (unless Stripe names
 * no snapshot event): it is then applied, and recorded under its own id, exactly as the same
 * event delivered to a snapshot destination, or found by the scheduled job, would be. Null for
 * any other thin event, and for one of another account: its `context` names a connected account,
 * whose event only that account's context can read
 * (https://docs.stripe.com/api/v2/core/events/object); its checkout is not one of ours.
 */
async function snapshotOf(thin: ThinEvent, stripe: StripeApi): Promise<Stripe.Event | null> {
  const type = thin.type.replace(/^v1\./, '');
  if (thin.context || type === thin.type || !(HANDLED_EVENT_TYPES as readonly string[]).includes(type)) return null;
  try {
    return await stripe.retrieveSnapshotEvent(thin.id, type);
  } catch (err) {
    throw stripeFailure(err, 'event');
  }
}
