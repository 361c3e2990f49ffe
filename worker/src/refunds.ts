import { type CartStatus, LANDED_STATUSES } from './cart-state.ts';
import { ApiError, notFound } from './errors.ts';
import { log } from './log.ts';
import { offStep, onStep } from './money.ts';
import type { RefundOut, RefundRequest } from './schemas.ts';
import type { Services } from './services.ts';
import { type Stripe, stripeFailure, stripeKeptFailure, stripeKeyInUse, stripeOutcomeUnknown } from './stripe.ts';
import { refundEffect } from './stripe-events.ts';
import { overMaximum, stripeMaxAmount } from './stripe-limits.ts';

/**
 * Refunds a paid cart through Stripe, for operators. With the request's Idempotency-Key the
 * Stripe idempotency key is ours (`refund-{key}`), so a request retried after a timeout gets
 * Stripe's saved answer and refunds once; Stripe refuses that key with other parameters, another
 * cart's included. A failure Stripe saved under the key is what every retry with it gets back
 * (https://docs.stripe.com/error-low-level#idempotency): a replayed refusal is a 4xx as the first
 * was, and a replayed 5xx a final 409, since retrying that key can never succeed; a request with
 * a new key (or none) starts afresh. The refund is applied from Stripe's answer through the same fulfilment
 * as its `charge.refunded` webhook, which then changes nothing.
 */
export async function refundCart(
  services: Services,
  cartId: string,
  request: RefundRequest,
  idempotencyKey: string | undefined,
): Promise<RefundOut> {
  const { sql, stripe, fulfilment } = services;
  const [cart] = (await sql.query(
    `SELECT c.status, k.payment_intent_id, k.currency FROM carts c LEFT JOIN checkouts k ON k.session_id = c.checkout_session_id
     WHERE c.id = $1`,
    [cartId],
  )) as { status: CartStatus; payment_intent_id: string | null; currency: string | null }[];
  if (!cart) throw notFound('Cart');
  // A fully refunded cart still goes to Stripe: a retry of the request that refunded it gets its answer back.
  if (!LANDED_STATUSES.includes(cart.status)) {
    throw new ApiError('not_refundable', `The cart is ${cart.status}: only a paid cart can be refunded`);
  }
  // A session Stripe completed as `no_payment_required` (a 100 % discount) has no payment intent.
  if (!cart.payment_intent_id) {
    throw new ApiError('not_refundable', 'Nothing was charged for this cart: there is no payment to refund');
  }
  if (request.amount !== undefined && cart.currency && !onStep(request.amount, cart.currency)) {
    throw new ApiError('validation_failed', `amount: ${offStep(cart.currency)}`);
  }
  // The request's bound is the largest of any currency (IDR's); the cart's own is checked here,
  // where its currency is known. Stripe would refuse more than the charge anyway, but in words
  // about the charge rather than the limit.
  if (request.amount !== undefined && cart.currency && request.amount > stripeMaxAmount(cart.currency)) {
    throw new ApiError('validation_failed', `amount: ${overMaximum(cart.currency)}`);
  }
  let refund: Stripe.Refund;
  try {
    refund = await stripe.createRefund(
      {
        payment_intent: cart.payment_intent_id,
        ...(request.amount !== undefined && { amount: request.amount }),
        ...(request.reason && { reason: request.reason }),
        metadata: { cart_id: cartId },
      },
      idempotencyKey,
    );
  } catch (err) {
    if (idempotencyKey && stripeKeyInUse(err)) {
      throw new ApiError(
        'service_unavailable',
        'A refund with this Idempotency-Key is still being made; retry with it',
        {
          cause: err,
          retryAfter: 1,
        },
      );
    }
    // Stripe calls a 5xx's outcome unknown (https://docs.stripe.com/error-low-level#server-errors):
    // the refund may have been made, and then its charge.refunded webhook records it. Without a
    // key, no answer here invites a blind retry that could refund twice: the operator checks the
    // cart first. With one, a retry is safe (Stripe replays a refund it made) and is a 503 as
    // usual, unless Stripe keeps this failure for the key
    // (https://docs.stripe.com/api/idempotent_requests): then no retry with it can succeed.
    if (stripeOutcomeUnknown(err)) {
      if (!idempotencyKey) {
        throw new ApiError(
          'refund_outcome_unknown',
          'Stripe failed while making the refund, which may have been made all the same. Check the cart before refunding again: ' +
            'a refund Stripe made shows in its refundedAmount once its webhook arrives. Send an Idempotency-Key to make a retry safe',
          { cause: err },
        );
      }
      if (stripeKeptFailure(err)) {
        throw new ApiError(
          'idempotency_key_failed',
          'Stripe failed this refund under this Idempotency-Key and answers every retry with it the same way. ' +
            'Check the cart: a refund Stripe made after all shows there once its webhook arrives. To try again, send a new Idempotency-Key',
          { cause: err },
        );
      }
    }
    throw stripeFailure(err, 'refund');
  }
  // Asked for expanded; an answer that only names the charge (or none yet) is read back, or left
  // to the charge.refunded webhook, rather than failing a refund that has been made.
  const charge =
    typeof refund.charge === 'string'
      ? await stripe.retrieveCharge(refund.charge).catch((err: unknown) => {
          log.warn('refund_charge_not_read', { cartId, refundId: refund.id, error: err });
          return null;
        })
      : refund.charge;
  // The refund is made: a failure to record it now must not read as "not refunded, try again", for
  // a retry without a key would refund a second time. Its charge.refunded webhook records it.
  if (charge) {
    await fulfilment.apply(refundEffect(refund, charge)).catch((err: unknown) => {
      log.warn('refund_not_recorded', { cartId, refundId: refund.id, error: err });
    });
  }
  return {
    id: refund.id,
    cartId,
    amount: refund.amount,
    currency: refund.currency,
    status: refund.status ?? 'pending',
    reason: refund.reason,
    createdAt: new Date(refund.created * 1000).toISOString(),
  };
}
