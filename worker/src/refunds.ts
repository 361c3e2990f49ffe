import { type CartStatus, LANDED_STATUSES } from './cart-state.ts';
import { ApiError, notFound } from './errors.ts';
import { log } from './log.ts';
import type { RefundOut, RefundRequest } from './schemas.ts';
import type { Services } from './services.ts';
import { type Stripe, stripeFailure, stripeKeyInUse } from './stripe.ts';
import { refundEffect } from './stripe-events.ts';

/**
 * Refunds a paid cart through Stripe, for operators. With the request's Idempotency-Key the
 * Stripe idempotency key is ours (`refund-{cart}-{key}`), so a request retried after a timeout
 * gets Stripe's saved answer and refunds once; Stripe refuses that key with other parameters.
 * A failure Stripe saved under the key is replayed to retries with it; a request with a new key
 * starts afresh. The refund is applied from Stripe's answer through the same fulfilment as its
 * `charge.refunded` webhook, which then changes nothing.
 */
export async function refundCart(
  services: Services,
  cartId: string,
  request: RefundRequest,
  idempotencyKey: string | undefined,
): Promise<RefundOut> {
  const { sql, stripe, fulfilment } = services;
  const [cart] = (await sql.query(
    `SELECT c.status, k.payment_intent_id FROM carts c LEFT JOIN checkouts k ON k.session_id = c.checkout_session_id
     WHERE c.id = $1`,
    [cartId],
  )) as { status: CartStatus; payment_intent_id: string | null }[];
  if (!cart) throw notFound('Cart');
  // A fully refunded cart still goes to Stripe: a retry of the request that refunded it gets its answer back.
  if (!LANDED_STATUSES.includes(cart.status) || !cart.payment_intent_id) {
    throw new ApiError('not_refundable', `The cart is ${cart.status}: only a paid cart can be refunded`);
  }
  let refund: Stripe.Refund;
  try {
    refund = await stripe.refunds.create(
      {
        payment_intent: cart.payment_intent_id,
        ...(request.amount !== undefined && { amount: request.amount }),
        ...(request.reason && { reason: request.reason }),
        metadata: { cart_id: cartId },
        expand: ['charge'],
      },
      idempotencyKey ? { idempotencyKey: `refund-${cartId}-${idempotencyKey}` } : undefined,
    );
  } catch (err) {
    if (stripeKeyInUse(err)) {
      throw new ApiError(
        'service_unavailable',
        'A refund with this Idempotency-Key is still being made; retry with it',
        {
          cause: err,
          retryAfter: 1,
        },
      );
    }
    throw stripeFailure(err, 'refund');
  }
  // Asked for expanded; an answer that only names the charge (or none yet) is read back, or left
  // to the charge.refunded webhook, rather than failing a refund that has been made.
  const charge =
    typeof refund.charge === 'string'
      ? await stripe.charges.retrieve(refund.charge).catch((err: unknown) => {
          log.warn('refund_charge_not_read', { cartId, refundId: refund.id, error: err });
          return null;
        })
      : refund.charge;
  if (charge) await fulfilment.apply(refundEffect(refund, charge));
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
