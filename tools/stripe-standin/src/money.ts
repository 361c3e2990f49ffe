// Amounts are integers in the currency's minor unit, as in Stripe; these helpers show them to
// people (the hosted page, error messages) and apply Stripe's minimum charge per currency.

// Stripe's exponents, which differ from ISO 4217's (and so Intl's) for some currencies: two
// decimals unless listed here (https://docs.stripe.com/currencies#zero-decimal, #three-decimal,
// #special-cases: an ISK amount of 100 is 1 króna; HUF, TWD, IDR, COP, … are two-decimal too).
// Written from Stripe's page, not taken from the Worker: a stand-in sharing the Worker's reading
// of it could not show where that reading is wrong.
const ZERO_DECIMAL = 'bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf'.split(' ');
const THREE_DECIMAL = 'bhd jod kwd omr tnd'.split(' ');

/** 1999, 'usd' → "$19.99"; 500, 'jpy' → "¥500" (zero-decimal currencies have no minor unit). */
export function formatAmount(amount: number, currency: string): string {
  const digits = ZERO_DECIMAL.includes(currency) ? 0 : THREE_DECIMAL.includes(currency) ? 3 : 2;
  return new Intl.NumberFormat('en-US', {
    style: 'currency',
    currency: currency.toUpperCase(),
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(amount / 10 ** digits);
}

export function isSupportedCurrency(currency: string): boolean {
  return Intl.supportedValuesOf('currency').includes(currency.toUpperCase());
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
// $999,999.99): https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts. A few
// currencies and payment methods have other limits, which the stand-in does not model.
export const MAXIMUM_CHARGE = 99_999_999;
