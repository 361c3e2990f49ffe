import { describe, expect, it, vi } from 'vitest';
import { formatMoney } from '../src/money.ts';

describe('formatMoney', () => {
  it.each([
    [2_500, 'usd', '$25.00'],
    [1_500, 'jpy', '¥1,500'],
    [12_340, 'kwd', 'KWD\u00a012.340'],
    // Two-decimal in Stripe's API although ISO 4217 gives them none: 250000 HUF is 2,500 forints.
    // (Intl puts a no-break space between a currency code and the amount.)
    [250_000, 'huf', 'HUF\u00a02,500.00'],
    // Whole units, but two-decimal in the API: 35000 ISK is 350 krónur (#special-cases).
    [35_000, 'isk', 'ISK\u00a0350'],
    [500_000, 'ugx', 'UGX\u00a05,000'],
    [15_000_000, 'idr', 'IDR\u00a0150,000.00'],
    [42, null, '42'],
  ])('shows %i %s as the shopper pays it at Stripe: %s', (amount, currency, shown) => {
    expect(formatMoney(amount, currency)).toBe(shown);
  });

  it('makes one format object per currency, not one per amount (a page of 100 lines formats 100)', () => {
    formatMoney(1, 'eur');
    const made = vi.spyOn(Intl, 'NumberFormat');
    const shown = Array.from({ length: 100 }, (_, i) => formatMoney(100 * i, 'eur'));
    vi.restoreAllMocks();
    expect(shown[12]).toBe('€12.00');
    expect(made).not.toHaveBeenCalled();
  });
});
