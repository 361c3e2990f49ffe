import { isCurrencyCode } from '@edge-checkout/worker/stripe-limits';

// Amounts are integers in the currency's minor unit, as in Stripe; these helpers show them to
// people (the hosted page, error messages) and apply Stripe's minimum charge per currency.

// Stripe's exponents, which differ from ISO 4217's (and so Intl's) for some currencies: two
// decimals unless listed here (https://docs.stripe.com/currencies#zero-decimal, #three-decimal,
// #special-cases: an ISK amount of 100 is 1 króna; HUF, TWD, IDR, COP, … are two-decimal too).
// Written from Stripe's page, not taken from the Worker: a stand-in sharing the Worker's reading
// of it could not show where that reading is wrong.
const ZERO_DECIMAL = 'bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv xaf xof xpf'.split(' ');
const THREE_DECIMAL = 'bhd jod kwd omr tnd'.split(' ');
// #special-cases: ISK and UGX became zero-decimal, but "backwards compatibility requires you to
// represent it as a two-decimal value, where the decimal amount is always 00" (500 is 5 ISK).
const WHOLE_IN_TWO_DECIMALS = ['isk', 'ugx'];

/** 1999, 'usd' → "$19.99"; 500, 'jpy' → "¥500" (zero-decimal currencies have no minor unit). */
export function formatAmount(amount: number, currency: string): string {
  const digits = ZERO_DECIMAL.includes(currency) ? 0 : THREE_DECIMAL.includes(currency) ? 3 : 2;
  const shown = WHOLE_IN_TWO_DECIMALS.includes(currency) ? 0 : digits;
  return new Intl.NumberFormat('en-US', {
    style: 'currency',
    currency: currency.toUpperCase(),
    minimumFractionDigits: shown,
    maximumFractionDigits: shown,
  }).format(amount / 10 ** digits);
}

/**
 * Why Stripe refuses `amount` in `currency`, if it does: a three-decimal amount must end in 0
 * ("your integration must round amounts to the nearest ten", #three-decimal, for payments and
 * refunds), an ISK or UGX one in 00 (#special-cases; Stripe's message for UGX is quoted in
 * woocommerce/woocommerce-gateway-stripe#2674).
 */
export function amountRefusal(amount: number, currency: string): string | undefined {
  if (WHOLE_IN_TWO_DECIMALS.includes(currency) && amount % 100 !== 0) {
    return `Invalid amount. Currency ${currency.toUpperCase()} has become effectively zero-decimal and charged amounts must be evenly divisible by 100.`;
  }
  if (THREE_DECIMAL.includes(currency) && amount % 10 !== 0) {
    return `Invalid amount. ${currency.toUpperCase()} amounts must be rounded to the nearest ten: the last digit must be 0.`;
  }
  return undefined;
}

export function isSupportedCurrency(currency: string): boolean {
  return isCurrencyCode(currency.toLowerCase());
}

// Stripe's documented minimum charge amounts for the currencies a shop most likely uses. Stripe
// checks others against the account's settlement currency, which a stand-in has no notion of.
const MINIMUM_CHARGE: Readonly<Record<string, number>> = {
  usd: 50,
  eur: 50,
  gbp: 30,
  cad: 50,
  aud: 50,
  chf: 50,
  jpy: 50,
};

export function minimumCharge(currency: string): number | undefined {
  return MINIMUM_CHARGE[currency];
}

// Stripe takes amounts of up to eight digits in the minor unit, 99,999,999 (a USD charge of
// $999,999.99), except in IDR: "The amount value supports up to twelve digits for IDR (for
// example, a value of 999999999999 for a charge of 9,999,999,999.99 IDR), and up to eight digits
// for all other currencies" (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
// Payment methods have limits of their own, which the stand-in does not model.
export function maximumCharge(currency: string): number {
  return currency === 'idr' ? 999_999_999_999 : 99_999_999;
}
