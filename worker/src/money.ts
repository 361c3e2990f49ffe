// Stripe's exponents: two decimals unless listed here, even where ISO 4217, and so Intl, says
// otherwise (https://docs.stripe.com/currencies#zero-decimal, #three-decimal and #special-cases:
// HUF, TWD, IDR, COP, … are two-decimal too).
const ZERO_DECIMAL = new Set([
  'bif',
  'clp',
  'djf',
  'gnf',
  'jpy',
  'kmf',
  'krw',
  'mga',
  'pyg',
  'rwf',
  'vnd',
  'vuv',
  'xaf',
  'xof',
  'xpf',
]);
const THREE_DECIMAL = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);
// No longer divided, but two-decimal in Stripe's API for compatibility, "where the decimal
// amount is always 00": 500 is 5 ISK (https://docs.stripe.com/currencies#special-cases).
// Stripe refuses UGX amounts not divisible by 100 ("Currency UGX has become effectively
// zero-decimal", quoted in woocommerce/woocommerce-gateway-stripe#2674), and ISK ones since 2023
// (https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds).
const WHOLE_IN_TWO_DECIMALS = new Set(['isk', 'ugx']);

/** How many decimals Stripe's minor unit has in `currency` (lower case, as Stripe writes it). */
export function minorUnitDigits(currency: string): number {
  return ZERO_DECIMAL.has(currency) ? 0 : THREE_DECIMAL.has(currency) ? 3 : 2;
}

/**
 * The step Stripe's amounts in `currency` move in: 100 for ISK and UGX, 10 for three-decimal
 * currencies, whose "least-significant (last) digit" must be 0 for payments and refunds
 * (https://docs.stripe.com/currencies#three-decimal), 1 for the rest.
 */
function amountStep(currency: string): number {
  return WHOLE_IN_TWO_DECIMALS.has(currency) ? 100 : THREE_DECIMAL.has(currency) ? 10 : 1;
}

/** Whether Stripe takes `amount` in `currency` (amountStep); one it would refuse is refused where it enters. */
export function onStep(amount: number, currency: string): boolean {
  return amount % amountStep(currency) === 0;
}

/** What an amount off its step should have been, for the answer that refuses it. */
export function offStep(currency: string): string {
  return `a multiple of ${amountStep(currency)}, as Stripe takes amounts in ${currency}`;
}

/**
 * Formats minor units the way the shopper reads money (2500 usd → $25.00, 500 jpy → ¥500): on
 * the landing pages and in the storefront, so both show the same amount the same way.
 */
export function formatMoney(amount: number, currency: string | null): string {
  if (!currency) return String(amount);
  return moneyFormat(currency).format(amount / 10 ** minorUnitDigits(currency));
}

// A format object costs some 40 times what formatting one amount with it does, and a page of a
// hundred lines formats a hundred amounts: one per currency, kept for the isolate (or the tab).
const MONEY_FORMATS = new Map<string, Intl.NumberFormat>();

function moneyFormat(currency: string): Intl.NumberFormat {
  let format = MONEY_FORMATS.get(currency);
  if (!format) {
    const shown = WHOLE_IN_TWO_DECIMALS.has(currency) ? 0 : minorUnitDigits(currency);
    format = new Intl.NumberFormat('en', {
      style: 'currency',
      currency: currency.toUpperCase(),
      minimumFractionDigits: shown,
      maximumFractionDigits: shown,
    });
    MONEY_FORMATS.set(currency, format);
  }
  return format;
}

type Charged = {
  totalAmount: number;
  amounts: { discount: number; shipping: number; tax: number; total: number } | null;
  refundedAmount: number;
};

/**
 * An order's total as the shopper reads it under its items: once Stripe charged it, its
 * discount, shipping and tax, what was charged, and what has been refunded; before that, the
 * items' sum. The landing pages and the storefront show the same lines.
 */
export function orderTotals(cart: Charged): {
  lines: { label: string; amount: number }[];
  total: number;
  refunded: number;
} {
  const amounts = cart.amounts;
  if (!amounts) return { lines: [], total: cart.totalAmount, refunded: cart.refundedAmount };
  const lines = [
    { label: 'Discount', amount: -amounts.discount },
    { label: 'Shipping', amount: amounts.shipping },
    { label: 'Tax', amount: amounts.tax },
  ].filter((line) => line.amount !== 0);
  return { lines, total: amounts.total, refunded: cart.refundedAmount };
}
