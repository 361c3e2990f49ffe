/**
 * Formats minor units the way the shopper reads money (2500 usd → $25.00, 500 jpy → ¥500): on
 * the landing pages and in the storefront, so both show the same amount the same way.
 */
export function formatMoney(amount: number, currency: string | null): string {
  if (!currency) return String(amount);
  const format = new Intl.NumberFormat('en', { style: 'currency', currency: currency.toUpperCase() });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(amount / 10 ** digits);
}
