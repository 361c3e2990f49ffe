// What Stripe accepts, as its API reference documents it. The Worker refuses anything else
// where it enters (an edit, a setting, a refund), rather than have Stripe refuse it later.

// Stripe's largest amount: "up to twelve digits for IDR (for example, a value of 999999999999
// for a charge of 9,999,999,999.99 IDR), and up to eight digits for all other currencies"
// (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts). Twelve digits stay
// well inside a JS number's exact integers (2^53) and Postgres's bigint.
const MAX_AMOUNT = 99_999_999;
const MAX_AMOUNT_BY_CURRENCY: ReadonlyMap<string, number> = new Map([['idr', 999_999_999_999]]);

/**
 * The largest amount Stripe charges, refunds or prices in `currency` (lower case, as Stripe
 * writes it), in minor units: 999,999,999,999 for IDR, 99,999,999 for every other currency.
 */
export function stripeMaxAmount(currency: string): number {
  return MAX_AMOUNT_BY_CURRENCY.get(currency) ?? MAX_AMOUNT;
}

/** Why Stripe would refuse an amount over its maximum in `currency`, for the answer that refuses it. */
export function overMaximum(currency: string): string {
  return `at most ${stripeMaxAmount(currency)}, Stripe's maximum amount in ${currency}`;
}

/** The largest amount Stripe takes in any currency (IDR's): the bound of a field checked against its currency elsewhere. */
export const STRIPE_MAX_AMOUNT_ANY = Math.max(MAX_AMOUNT, ...MAX_AMOUNT_BY_CURRENCY.values());

/** The maximums in words, for documentation: "99999999, or 999999999999 for idr". */
export const STRIPE_MAX_AMOUNTS_TEXT = [
  String(MAX_AMOUNT),
  ...[...MAX_AMOUNT_BY_CURRENCY].map(([currency, max]) => `${max} for ${currency}`),
].join(', or ');

/**
 * stripeMaxAmount as two parameters of a statement that learns the currency itself: the maximum
 * of every currency but those in the JSON object of the second, read as
 * `COALESCE(($2::jsonb ->> currency)::bigint, $1)`.
 */
export const STRIPE_MAX_AMOUNT_SQL = [MAX_AMOUNT, JSON.stringify(Object.fromEntries(MAX_AMOUNT_BY_CURRENCY))] as const;

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
 * Only the form, for what Stripe sends: its own currencies need no more checking.
 */
export const CURRENCY_CODE = /^[a-z]{3}$/;

// ISO 4217's currencies, as the runtime's ICU lists them: Stripe charges in some 135 of them
// (https://docs.stripe.com/currencies#presentment-currencies). Left out are those no Stripe
// account charges in: units of account (XDR, the IMF's special drawing right; XSU, the sucre of
// ALBA's clearing system) and the currencies of the countries Stripe serves no one in under
// sanctions (Cuba, Iran, North Korea, Syria).
const NEVER_CHARGED: ReadonlySet<string> = new Set(['xdr', 'xsu', 'cuc', 'cup', 'irr', 'kpw', 'syp']);
// Listed on first use, not when the module loads: the storefront imports this module (through
// cart-state.ts) and Intl.supportedValuesOf is missing in Safari < 15.4.
let chargedCurrencies: ReadonlySet<string> | undefined;

/**
 * A currency we are given (a product's, a shipping rate's) is a lower-case ISO 4217 code that
 * Stripe charges in: `abc`, `xxx` ("no currency") or `xdr` would be taken, shown and added to
 * carts, and refused by Stripe at every checkout. Which of the rest an account can charge in
 * depends on the account and changes over time, so Stripe's own refusal at checkout (422
 * checkout_refused) says so.
 */
export function isCurrencyCode(code: string): boolean {
  chargedCurrencies ??= new Set(
    Intl.supportedValuesOf('currency')
      .map((c) => c.toLowerCase())
      .filter((c) => !NEVER_CHARGED.has(c)),
  );
  return CURRENCY_CODE.test(code) && chargedCurrencies.has(code);
}
