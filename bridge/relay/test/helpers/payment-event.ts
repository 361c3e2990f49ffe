// Payment events (docs/contract.md §5) and the push envelopes Pub/Sub wraps them in.

export function paymentEvent(overrides: Record<string, unknown> = {}) {
  return {
    id: 'evt_cart_0001_paid',
    type: 'cart.paid',
    occurredAt: '2026-11-28T06:00:00.000Z',
    cart: {
      id: 'cart_0001',
      userId: 'user_42',
      status: 'paid',
      currency: 'usd',
      totalAmount: 4500,
      items: [
        { productId: 'prod_mug', name: 'Mug', unitAmount: 1500, quantity: 2, lineTotal: 3000 },
        { productId: 'prod_tee', name: 'T-shirt', unitAmount: 1500, quantity: 1, lineTotal: 1500 },
      ],
    },
    customer: { email: 'ada@example.com', name: 'Ada Lovelace' },
    stripe: { eventId: 'evt_1Stripe', sessionId: 'cs_test_1', paymentIntentId: 'pi_1' },
    amountMismatch: false,
    amounts: { subtotal: 4500, discount: 450, shipping: 500, tax: 455, total: 5005 },
    shipping: {
      name: 'Ada Lovelace',
      address: {
        line1: '12 St James Sq',
        line2: null,
        city: 'London',
        state: null,
        postalCode: 'SW1Y 4JH',
        country: 'GB',
      },
      rate: { name: 'Standard', amount: 500, minDays: 3, maxDays: 5 },
    },
    refundedAmount: 0,
    oversold: false,
    dispute: null,
    ...overrides,
  };
}

/** The body Pub/Sub POSTs to a push endpoint. `data` is the raw base64 field when a string is given. */
export function pushEnvelope(data: unknown, options: { base64Data?: string; messageId?: string } = {}) {
  return {
    message: {
      data: options.base64Data ?? Buffer.from(JSON.stringify(data)).toString('base64'),
      attributes: { eventType: 'cart.paid', eventId: 'evt_cart_0001_paid', cartId: 'cart_0001' },
      messageId: options.messageId ?? '1001',
      publishTime: '2026-11-28T06:00:01.000Z',
      orderingKey: 'cart_0001',
    },
    subscription: 'projects/demo-project/subscriptions/payment-events-relay',
  };
}
