// Stripe's exponents: two decimals unless listed here, even where ISO 4217, and so Intl, says
// otherwise (https://docs.stripe.com/currencies#zero-decimal, #three-decimal and #special-cases:
// 100 ISK is 1 króna in the API; HUF, TWD, IDR, COP, … are two-decimal too).
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
  'ugx',
  'vnd',
  'vuv',
  'xaf',
  'xof',
  'xpf',
]);
const THREE_DECIMAL = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

/** How many decimals Stripe's minor unit has in `currency` (lower case, as Stripe writes it). */
export function minorUnitDigits(currency: string): number {
  return ZERO_DECIMAL.has(currency) ? 0 : THREE_DECIMAL.has(currency) ? 3 : 2;
}

/**
 * Formats minor units the way the shopper reads money (2500 usd → $25.00, 500 jpy → ¥500): on
 * the landing pages and in the storefront, so both show the same amount the same way.
 */
export function formatMoney(amount: number, currency: string | null): string {
  if (!currency) return String(amount);
  const digits = minorUnitDigits(currency);
  return new Intl.NumberFormat('en', {
    style: 'currency',
    currency: currency.toUpperCase(),
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(amount / 10 ** digits);
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
