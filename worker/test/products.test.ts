import { describe, expect, it, vi } from 'vitest';
import { call, createProduct, db, holdLocks, newUser, openCart, testEnv, unique } from './helpers.ts';
import { cartStatus, checkedOutCart, deliver, eventsFor } from './stripe-helpers.ts';

type ProductBody = {
  id: string;
  name: string;
  unitAmount: number;
  currency: string;
  imageUrl: string | null;
  description: string;
};

describe('GET /v1/products', () => {
  it('lists active products with integer minor-unit prices and no auth', async () => {
    const active = await createProduct({ unitAmount: 2599 });
    const hidden = await createProduct({ active: false });
    const res = await call('/v1/products');
    expect(res.status).toBe(200);
    const { products } = (await res.json()) as { products: ProductBody[] };
    const ids = products.map((p) => p.id);
    expect(ids).toContain(active.id);
    expect(ids).not.toContain(hidden.id);
    expect(products.find((p) => p.id === active.id)).toEqual({
      id: active.id,
      name: active.name,
      description: '',
      imageUrl: null,
      unitAmount: 2599,
      currency: 'usd',
      available: null,
    });
  });

  it('lists a catalogue larger than the 10 MiB Neon answers one query with, each product once though one is renamed meanwhile', async () => {
    // 1,000 products with every text at its longest, in a 3-byte character: about 12.5 MB. Their
    // names start with a digit, so they lead the list.
    const prefix = unique('big');
    const ids = (
      await db().query(
        `INSERT INTO products (id, name, description, image_url, unit_amount, currency)
         SELECT $1 || '-' || n, '0' || $1 || lpad(n::text, 4, '0') || repeat('€', 150), repeat('€', 2000),
                'https://img.example/' || repeat('€', 1980), 100, 'usd'
         FROM generate_series(1, 1000) n RETURNING id`,
        [prefix],
      )
    ).map((r) => r.id as string);
    // Once the first page is read, its first product is renamed to the end of the list.
    const realFetch = globalThis.fetch;
    let renamed = false;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const res = await realFetch(input, init);
      if (!renamed && String(init?.body ?? '').includes('FROM products')) {
        renamed = true;
        await db().query(`UPDATE products SET name = 'zzzz' || name WHERE id = $1`, [ids[0]]);
      }
      return res;
    });
    try {
      const res = await call('/v1/products');
      vi.restoreAllMocks();
      expect(res.status).toBe(200);
      const listed = ((await res.json()) as { products: ProductBody[] }).products.map((p) => p.id);
      expect(ids.filter((id) => !listed.includes(id))).toEqual([]);
      expect(listed.filter((id) => id === ids[0])).toHaveLength(1);
    } finally {
      vi.restoreAllMocks();
      await db().query('UPDATE products SET active = false WHERE id = ANY($1)', [ids]);
    }
  });

  it('answers 503 service_unavailable when the database is unreachable', async () => {
    const { app } = await import('../src/index.ts');
    const res = await app.request('/v1/products', {}, { ...testEnv, NEON_HTTP_ENDPOINT: 'http://127.0.0.1:9/sql' });
    expect(res.status).toBe(503);
    expect(res.headers.get('Content-Type')).toBe('application/problem+json');
    const body = (await res.json()) as { code: string; detail: string };
    expect(body.code).toBe('service_unavailable');
    expect(JSON.stringify(body)).not.toContain('127.0.0.1');
  });
});

describe('PUT /v1/admin/products/{productId}', () => {
  const admin = () => ({ Authorization: `Bearer ${testEnv.ADMIN_API_KEY}` });
  const body = {
    name: 'Mug',
    description: 'Stoneware',
    imageUrl: 'https://example.com/mug.png',
    unitAmount: 1200,
    currency: 'usd',
  };

  it('keeps line breaks and tabs in a description', async () => {
    const description = 'Stoneware.\r\n\tDishwasher safe.\nHolds 350 ml.';
    const res = await call(`/v1/admin/products/${unique('mug')}`, {
      method: 'PUT',
      headers: admin(),
      json: { ...body, description },
    });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { description: string }).description).toBe(description);
  });

  it('creates (201) then updates (200) a product', async () => {
    const id = unique('mug');
    const created = await call(`/v1/admin/products/${id}`, { method: 'PUT', headers: admin(), json: body });
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({
      id,
      ...body,
      active: true,
      available: null,
      stock: null,
      reserved: 0,
      taxCode: null,
    });

    const updated = await call(`/v1/admin/products/${id}`, {
      method: 'PUT',
      headers: admin(),
      json: { ...body, unitAmount: 1300, active: false },
    });
    expect(updated.status).toBe(200);
    const [row] = await db().query('SELECT unit_amount::int AS amount, active FROM products WHERE id = $1', [id]);
    expect(row).toEqual({ amount: 1300, active: false });
  });

  // Stripe takes twelve digits in IDR, eight in any other currency
  // (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
  it.each([
    ['Rp 1,500,000', 150_000_000],
    ["IDR's largest, Rp 9,999,999,999.99", 999_999_999_999],
  ])('takes an IDR price over eight digits (%s), and lists it as it is', async (_, unitAmount) => {
    const id = unique('batik');
    const res = await call(`/v1/admin/products/${id}`, {
      method: 'PUT',
      headers: admin(),
      json: { ...body, unitAmount, currency: 'idr' },
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ id, unitAmount, currency: 'idr' });
    const listed = ((await (await call('/v1/products')).json()) as { products: ProductBody[] }).products;
    expect(listed.find((p) => p.id === id)).toMatchObject({ unitAmount, currency: 'idr' });
    await db().query('UPDATE products SET active = false WHERE id = $1', [id]);
  });

  it.each([
    [
      'a USD price over eight digits',
      { unitAmount: 100_000_000, currency: 'usd' },
      "at most 99999999, Stripe's maximum amount in usd",
    ],
    [
      'an IDR price over twelve digits',
      { unitAmount: 1_000_000_000_000, currency: 'idr' },
      "at most 999999999999, Stripe's maximum amount in idr",
    ],
  ])("refuses %s with 400 validation_failed naming Stripe's maximum in its currency", async (_, price, detail) => {
    const id = unique('mug');
    const res = await call(`/v1/admin/products/${id}`, {
      method: 'PUT',
      headers: admin(),
      json: { ...body, ...price },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'validation_failed', detail: expect.stringContaining(detail) });
    expect(await db().query('SELECT 1 FROM products WHERE id = $1', [id])).toHaveLength(0);
  });

  it.each([
    ['no key', undefined],
    ['a wrong key', 'Bearer not-the-admin-key-000000'],
    ['a user token scheme', 'Basic abc'],
  ])('rejects %s with 401 and writes nothing', async (_, authorization) => {
    const id = unique('mug');
    const res = await call(`/v1/admin/products/${id}`, {
      method: 'PUT',
      headers: authorization ? { Authorization: authorization } : {},
      json: body,
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe('unauthorized');
    expect(await db().query('SELECT 1 FROM products WHERE id = $1', [id])).toHaveLength(0);
  });

  it.each([
    ['a float price', { ...body, unitAmount: 12.5 }],
    ['a negative price', { ...body, unitAmount: -1 }],
    ['an upper-case currency', { ...body, currency: 'USD' }],
    // Three letters, but no currency ISO 4217 has: Stripe would refuse every checkout of it.
    ['a currency that does not exist', { ...body, currency: 'abc' }],
    ["ISO 4217's code for no currency", { ...body, currency: 'xxx' }],
    // ISO 4217 codes no Stripe account charges in (https://docs.stripe.com/currencies).
    ["the IMF's special drawing right", { ...body, currency: 'xdr' }],
    ["North Korea's won, under sanctions Stripe follows", { ...body, currency: 'kpw' }],
    ['a missing name', { ...body, name: undefined }],
    ['an unknown field', { ...body, price: 3 }],
    ['a negative stock', { ...body, stock: -1 }],
    ['a fractional stock', { ...body, stock: 1.5 }],
    ['a tax code that is not Stripe Tax', { ...body, taxCode: 'VAT20' }],
    ['the id of another product', { ...body, id: 'another-product' }],
    // Text Postgres cannot store as sent.
    ['a NUL in the name', { ...body, name: 'mu\u0000g' }],
    ['an unpaired surrogate in the description', { ...body, description: 'cup \uD800' }],
    ['a NUL in the image URL', { ...body, imageUrl: 'https://example.com/a\u0000.png' }],
    // Text Checkout and the storefront cannot show.
    ['a line break in the name', { ...body, name: 'mug\nlarge' }],
    ['an escape character in the name', { ...body, name: 'mug\u001b[31m' }],
    ['a line separator in the name', { ...body, name: 'mug\u2028large' }],
    ['a C1 control character in the description', { ...body, description: 'cup\u0085' }],
    ['an escape character in the description', { ...body, description: 'cup\u001b[31m red' }],
    // The storefront puts it in an <img>, Checkout in the product's images: a web address only.
    ['a javascript: image URL', { ...body, imageUrl: 'javascript:alert(1)' }],
    // 424 characters as typed, 2,424 as Checkout is sent it.
    [
      'an image URL over 2000 characters once percent-encoded',
      { ...body, imageUrl: `https://example.com/${'é'.repeat(400)}.png` },
    ],
    ['a data: image URL', { ...body, imageUrl: 'data:image/png;base64,iVBORw0KGgo=' }],
    ['an image URL that is no URL', { ...body, imageUrl: '}' }],
    // Amounts Stripe refuses in these currencies (https://docs.stripe.com/currencies#three-decimal, #special-cases).
    ['a KWD price not ending in 0', { ...body, unitAmount: 1_005, currency: 'kwd' }],
    ['an ISK price with a fraction of a króna', { ...body, unitAmount: 15_050, currency: 'isk' }],
    ['a UGX price with a fraction of a shilling', { ...body, unitAmount: 1_000_001, currency: 'ugx' }],
  ])('rejects %s with 400 validation_failed and writes nothing', async (_, json) => {
    const id = unique('mug');
    const res = await call(`/v1/admin/products/${id}`, { method: 'PUT', headers: admin(), json });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('validation_failed');
    expect(await db().query('SELECT 1 FROM products WHERE id = $1', [id])).toHaveLength(0);
  });

  it('refuses to change the currency of a product in a shopper’s cart (409), which would leave the cart in two currencies', async () => {
    const product = await createProduct({ unitAmount: 700 });
    const user = await newUser();
    const cartId = await openCart(user.token, [{ id: product.id, quantity: 2 }]);
    const res = await call(`/v1/admin/products/${product.id}`, {
      method: 'PUT',
      headers: admin(),
      json: { name: product.name, unitAmount: 900, currency: 'eur' },
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { code: string }).code).toBe('currency_mismatch');
    const [row] = await db().query('SELECT unit_amount::int AS amount, currency FROM products WHERE id = $1', [
      product.id,
    ]);
    expect(row).toEqual({ amount: 700, currency: 'usd' });
    const cart = (await (await call(`/v1/carts/${cartId}`, { token: user.token })).json()) as { totalAmount: number };
    expect(cart.totalAmount).toBe(1_400);

    // Its price in its own currency still changes; and once no cart holds it, its currency too.
    const repriced = await call(`/v1/admin/products/${product.id}`, {
      method: 'PUT',
      headers: admin(),
      json: { name: product.name, unitAmount: 800, currency: 'usd' },
    });
    expect(repriced.status).toBe(200);
    expect(
      (await call(`/v1/carts/${cartId}/items/${product.id}`, { method: 'DELETE', token: user.token })).status,
    ).toBe(200);
    const moved = await call(`/v1/admin/products/${product.id}`, {
      method: 'PUT',
      headers: admin(),
      json: { name: product.name, unitAmount: 900, currency: 'eur' },
    });
    expect(moved.status).toBe(200);
  });

  it('refuses it too for a cart awaiting a delayed payment, which comes back to be edited when the payment fails', async () => {
    const state = await checkedOutCart();
    expect((await deliver(eventsFor(state).completedUnpaid())).status).toBe(200);
    expect(await cartStatus(state.cartId)).toBe('awaiting_payment');
    const [product] = state.products;
    const res = await call(`/v1/admin/products/${product!.id}`, {
      method: 'PUT',
      headers: admin(),
      json: { name: product!.name, unitAmount: 900, currency: 'eur' },
    });
    expect(res.status).toBe(409);
    expect((await deliver(eventsFor(state).asyncFailed())).status).toBe(200);
    const cart = (await (await call(`/v1/carts/${state.cartId}`, { token: state.user.token })).json()) as {
      status: string;
      currency: string;
    };
    expect(cart).toMatchObject({ status: 'payment_failed', currency: 'usd' });
  });

  it('never leaves a cart line in another currency than its product when an admin change and an add race (forced)', async () => {
    const product = await createProduct({ unitAmount: 700 });
    const user = await newUser();
    const cart = (await (await call('/v1/carts', { method: 'POST', token: user.token })).json()) as { id: string };
    // The admin's change is stopped at the product's row, after the moment it would have
    // looked for lines in carts, while the shopper's add runs.
    const held = await holdLocks([`SELECT FROM products WHERE id = '${product.id}' FOR SHARE`]);
    const change = call(`/v1/admin/products/${product.id}`, {
      method: 'PUT',
      headers: admin(),
      json: { name: product.name, unitAmount: 900, currency: 'eur' },
    });
    await held.waitForWaiters(1, '%products%');
    const add = call(`/v1/carts/${cart.id}/items/${product.id}`, {
      method: 'PUT',
      token: user.token,
      json: { quantity: 1 },
    });
    // The add either goes through at once or waits its turn behind the change.
    await Promise.race([add, held.waitForWaiters(2, '%')]);
    await held.release();
    expect((await add).status).toBe(200);
    expect([200, 409]).toContain((await change).status);
    const rows = await db().query(
      `SELECT i.currency AS line, p.currency AS product FROM cart_items i JOIN products p ON p.id = i.product_id
       WHERE i.cart_id = $1`,
      [cart.id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.line).toBe(rows[0]!.product);
  });

  it('takes back a Product as the API shows it (its own id, available) and an empty imageUrl as none', async () => {
    const id = unique('mug');
    const res = await call(`/v1/admin/products/${id}`, {
      method: 'PUT',
      headers: admin(),
      json: { ...body, id, imageUrl: '', available: 3 },
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ id, imageUrl: null, available: null, stock: null });
  });

  it('sets stock and tax code, shows what is available, and leaves them as they are when an update omits them', async () => {
    const id = unique('mug');
    const put = (json: object) => call(`/v1/admin/products/${id}`, { method: 'PUT', headers: admin(), json });
    const created = await put({ ...body, stock: 7, taxCode: 'txcd_99999999' });
    expect(await created.json()).toMatchObject({ stock: 7, reserved: 0, available: 7, taxCode: 'txcd_99999999' });
    const listed = (await (await call('/v1/products')).json()) as { products: { id: string; available: number }[] };
    expect(listed.products.find((p) => p.id === id)?.available).toBe(7);

    // A catalogue update that does not mention stock keeps what sales have left of it.
    await db().query('UPDATE products SET stock = 4 WHERE id = $1', [id]);
    expect(await (await put({ ...body, unitAmount: 1250 })).json()).toMatchObject({
      unitAmount: 1250,
      stock: 4,
      available: 4,
      taxCode: 'txcd_99999999',
    });
    // null: not counted any more.
    expect(await (await put({ ...body, stock: null, taxCode: null })).json()).toMatchObject({
      stock: null,
      available: null,
      taxCode: null,
    });
  });

  it('rejects a malformed product id', async () => {
    const res = await call('/v1/admin/products/bad%20id!', { method: 'PUT', headers: admin(), json: body });
    expect(res.status).toBe(400);
  });
});
