// Buying with shipping and a promotion code: the storefront in a phone-sized Chromium, on a
// stack configured as a shop that ships (SHIPPING_COUNTRIES, SHIPPING_RATES), takes promotion
// codes and lets Stripe Tax add tax. The stand-in's hosted page is driven by role and
// accessible name, as a screen reader user would; what Stripe charged comes back on the cart.
import { randomUUID } from 'node:crypto';
import { shopSignInLink } from '@edge-checkout/dev-stack/token';
import { findChromium, launchPhoneBrowser, type PhoneBrowser } from '@edge-checkout/test-support/browser';
import { chromiumMissing, skipWithout } from '@edge-checkout/test-support/requirements';
import { useLocalStack } from '@edge-checkout/test-support/stack';
import { StandinControls } from '@edge-checkout/test-support/standin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const stack = useLocalStack({
  configured: {
    SHIPPING_COUNTRIES: 'US,CA',
    SHIPPING_RATES: JSON.stringify([
      { name: 'Standard', amount: 500, currency: 'usd', minDays: 3, maxDays: 5 },
      { name: 'Express', amount: 1500, currency: 'usd', minDays: 1, maxDays: 2 },
    ]),
    ALLOW_PROMOTION_CODES: 'true',
    STRIPE_AUTOMATIC_TAX: 'true',
  },
});
const withoutChromium = skipWithout('Chromium', chromiumMissing());

describe.skipIf(withoutChromium)('buying with shipping and a promotion code (Chromium, 390×844)', () => {
  let browser: PhoneBrowser;
  beforeAll(async () => {
    browser = await launchPhoneBrowser(findChromium()!);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('enters an address, picks Express, applies a code on Stripe’s page; the order keeps what was charged and where it goes', async () => {
    const code = `SPRING${randomUUID().slice(0, 4).toUpperCase()}`;
    await new StandinControls(stack.stripeUrl).promotionCode(code, 20);
    const { products } = (await (await fetch(`${stack.workerUrl}/v1/products`)).json()) as {
      products: { id: string; name: string; unitAmount: number }[];
    };
    const mug = products.find((p) => p.id === 'mug-ceramic')!;
    const userId = `e2e-commerce-${randomUUID().slice(0, 8)}`;
    const link = await shopSignInLink(stack.workerUrl, stack.vars, userId, 600);
    const page = await browser.context.newPage();
    await page.goto(link);

    await page.getByRole('button', { name: `Add ${mug.name} to cart`, exact: true }).tap();
    await page.getByRole('link', { name: 'Cart (1)', exact: true }).tap();
    await page.getByRole('button', { name: 'Checkout', exact: true }).tap();
    await page.waitForURL((url) => url.origin === stack.stripeUrl);
    const sessionId = /\/(cs_[A-Za-z0-9_]+)$/.exec(new URL(page.url()).pathname)![1]!;

    // Stripe's page: the address, the faster rate, the code; a mistyped code first.
    await page.getByRole('textbox', { name: 'Full name' }).fill('Sam Shopper');
    await page.getByRole('textbox', { name: 'Address line 1' }).fill('1 Main St');
    await page.getByRole('textbox', { name: 'City' }).fill('Springfield');
    await page.getByRole('textbox', { name: 'State or province' }).fill('IL');
    await page.getByRole('textbox', { name: 'Postal code' }).fill('62701');
    await page.getByRole('combobox', { name: 'Country' }).selectOption('US');
    await page.getByRole('radio', { name: /^Express/ }).check();
    await page.getByRole('textbox', { name: 'Promotion code' }).fill(`${code}X`);
    const pay = page.getByRole('button', { name: /^Pay \$/ });
    await pay.tap();
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('This code is invalid.');
    // What was entered is still there; only the code needs mending.
    expect(await page.getByRole('textbox', { name: 'Address line 1' }).inputValue()).toBe('1 Main St');
    expect(await page.getByRole('radio', { name: /^Express/ }).isChecked()).toBe(true);
    await page.getByRole('textbox', { name: 'Promotion code' }).fill(code);
    await pay.tap();

    await page.waitForURL(`${stack.workerUrl}/checkout/success?session_id=${sessionId}`);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Payment received');

    // 20 % off the mug, Express shipping, and the stand-in's 10 % tax on both.
    const discount = Math.round(mug.unitAmount * 0.2);
    const tax = Math.round((mug.unitAmount - discount) * 0.1) + 150;
    const token = new URL(link).hash.slice('#token='.length);
    const { carts } = (await (
      await fetch(`${stack.workerUrl}/v1/carts`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { carts: Record<string, unknown>[] };
    expect(carts[0]).toMatchObject({
      status: 'paid',
      amounts: {
        subtotal: mug.unitAmount,
        discount,
        shipping: 1500,
        tax,
        total: mug.unitAmount - discount + 1500 + tax,
      },
      shipping: {
        name: 'Sam Shopper',
        address: { line1: '1 Main St', city: 'Springfield', state: 'IL', postalCode: '62701', country: 'US' },
        rate: { name: 'Express', amount: 1500, minDays: 1, maxDays: 2 },
      },
    });
    // The landing page and the shop's order page show what was charged, not the items' sum.
    const charged = `Total$${((mug.unitAmount - discount + 1500 + tax) / 100).toFixed(2)}`;
    expect(await page.locator('p.total').first().textContent()).toBe(charged);
    await page.getByRole('link', { name: 'Back to the shop', exact: true }).tap();
    await expect.poll(() => page.locator('p.total').first().textContent()).toBe(charged);
    expect(await page.getByRole('listitem').filter({ hasText: 'Shipping' }).textContent()).toBe('Shipping$15.00');
    await page.close();
  });
});
