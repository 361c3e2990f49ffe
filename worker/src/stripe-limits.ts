// What Stripe accepts, as its API reference documents it. The Worker refuses anything else
// where it enters (an edit, a setting, a refund), rather than have Stripe refuse it later.

/**
 * The largest amount Stripe charges, refunds or prices: eight digits in minor units
 * (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
 */
export const STRIPE_MAX_AMOUNT = 99_999_999;

/**
 * Checkout takes at most 100 line items in payment mode
 * (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-line_items).
 */
export const CHECKOUT_MAX_LINES = 100;

/**
 * A Checkout Session expires from 30 minutes to 24 hours after it is created
 * (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-expires_at).
 */
export const CHECKOUT_LIFETIME_MINUTES = { min: 30, max: 24 * 60 } as const;

/**
 * A currency as Stripe writes it: the ISO 4217 code in lower case (https://docs.stripe.com/currencies).
 * Only the form: which currencies an account can charge in depends on the account and changes
 * over time, so Stripe's own refusal at checkout (422 checkout_refused) says so.
 */
export const CURRENCY_CODE = /^[a-z]{3}$/;
