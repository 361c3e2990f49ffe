// What a Checkout Session comes to once the shopper has chosen: the line items, less a promotion
// code's discount, plus the shipping rate, plus tax. Stripe discounts the items' subtotal
// (https://docs.stripe.com/payments/checkout/discounts) and Stripe Tax adds tax to prices that
// exclude it or reports what prices that include it contain
// (https://docs.stripe.com/payments/checkout/taxes). The stand-in taxes at one fixed test rate,
// everywhere, except what carries Stripe's non-taxable code.

/** The stand-in's tax rate, in percent: the same for every address. */
export const TEST_TAX_RATE_PERCENT = 10;
/** Stripe's product tax code for a non-taxable sale (https://docs.stripe.com/tax/zero-tax). */
const NONTAXABLE_TAX_CODE = 'txcd_00000000';

export type TaxBehavior = 'exclusive' | 'inclusive' | 'unspecified';

/** Something taxed: a line item (its unit amount × quantity) or the shipping rate. */
export interface Taxed {
  amount: number;
  taxCode: string | null;
  taxBehavior: TaxBehavior;
}

/** A coupon's terms: a percentage, or an amount in the session's currency. */
export type DiscountTerms = { percentOff: number } | { amountOff: number };

export interface Totals {
  subtotal: number;
  discount: number;
  shipping: number;
  /** All tax: on the items and on shipping. */
  tax: number;
  shippingTax: number;
  total: number;
  /** Per line item, in order: its share of the discount and its tax. */
  lines: { discount: number; tax: number }[];
}

export function computeTotals(input: {
  lines: Taxed[];
  discount: DiscountTerms | null;
  shipping: Taxed | null;
  automaticTax: boolean;
}): Totals {
  const subtotal = input.lines.reduce((sum, line) => sum + line.amount, 0);
  const discounts = discountShares(input.lines, subtotal, input.discount);
  const taxOf = (taxed: Taxed, base: number) => (input.automaticTax ? tax(taxed, base) : { amount: 0, added: 0 });
  const lines = input.lines.map((line, i) => {
    const lineTax = taxOf(line, line.amount - discounts[i]!);
    return { discount: discounts[i]!, tax: lineTax.amount, added: lineTax.added };
  });
  const shipping = input.shipping?.amount ?? 0;
  const shippingTax = input.shipping ? taxOf(input.shipping, shipping) : { amount: 0, added: 0 };
  const discount = discounts.reduce((sum, d) => sum + d, 0);
  const added = lines.reduce((sum, l) => sum + l.added, 0) + shippingTax.added;
  return {
    subtotal,
    discount,
    shipping,
    tax: lines.reduce((sum, l) => sum + l.tax, 0) + shippingTax.amount,
    shippingTax: shippingTax.amount,
    total: subtotal - discount + shipping + added,
    lines: lines.map(({ discount, tax }) => ({ discount, tax })),
  };
}

/** Each line's share of the discount: a percentage of each, or an amount spread by their size (never more than they come to). */
function discountShares(lines: Taxed[], subtotal: number, terms: DiscountTerms | null): number[] {
  if (!terms || subtotal === 0) return lines.map(() => 0);
  if ('percentOff' in terms) return lines.map((line) => Math.round((line.amount * terms.percentOff) / 100));
  const off = Math.min(terms.amountOff, subtotal);
  let left = off;
  return lines.map((line, i) => {
    const share = i === lines.length - 1 ? left : Math.round((off * line.amount) / subtotal);
    left -= share;
    return share;
  });
}

/** The tax in `base`, and how much of it is added on top (exclusive; unspecified is taken as exclusive, Stripe's default setting). */
function tax(taxed: Taxed, base: number): { amount: number; added: number } {
  if (taxed.taxCode === NONTAXABLE_TAX_CODE || base <= 0) return { amount: 0, added: 0 };
  if (taxed.taxBehavior === 'inclusive') {
    const amount = Math.round((base * TEST_TAX_RATE_PERCENT) / (100 + TEST_TAX_RATE_PERCENT));
    return { amount, added: 0 };
  }
  const amount = Math.round((base * TEST_TAX_RATE_PERCENT) / 100);
  return { amount, added: amount };
}
