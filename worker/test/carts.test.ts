import { describe, expect, it } from 'vitest';
import { CART_LIMITS } from '../src/cart-state.ts';
import { shopperLock } from '../src/carts.ts';
import type { CartOut } from '../src/schemas.ts';
import { call, createProduct, db, holdLocks, newUser, problem, unique } from './helpers.ts';

/** An item edit waiting for its cart's row lock, as pg_stat_activity shows its statement. */
const EDIT_WAITING_FOR_CART = '%FROM carts WHERE id = $1 AND user_id = $2 FOR UPDATE%';

type CartBody = CartOut;

async function postCarts(token: string): Promise<{ status: number; cart: CartBody; location: string | null }> {
  const res = await call('/v1/carts', { method: 'POST', token });
  return { status: res.status, cart: (await res.json()) as CartBody, location: res.headers.get('Location') };
}

async function countCarts(userId: string): Promise<number> {
  const [row] = await db().query('SELECT count(*)::int AS n FROM carts WHERE user_id = $1', [userId]);
  return (row as { n: number }).n;
}

describe('POST /v1/carts', () => {
  it('creates an empty open cart (201, named by Location), then returns the same one (200)', async () => {
    const user = await newUser();
    const first = await postCarts(user.token);
    expect(first.status).toBe(201);
    // RFC 9110 §15.3.2: without Location a client takes the new resource to be /v1/carts itself.
    const named = await call(first.location!, { token: user.token });
    expect(named.status).toBe(200);
    expect(((await named.json()) as CartBody).id).toBe(first.cart.id);
    expect(first.cart).toMatchObject({
      status: 'open',
      currency: null,
      items: [],
      itemCount: 0,
      totalAmount: 0,
      checkout: null,
    });
    expect(Date.parse(first.cart.createdAt)).not.toBeNaN();

    const second = await postCarts(user.token);
    expect(second.status).toBe(200);
    expect(second.cart.id).toBe(first.cart.id);
    expect(second.location).toBeNull();
  });

  it('yields one cart for concurrent requests of one user', async () => {
    const user = await newUser();
    // All eight wait behind a held lock on the shopper, then go at once.
    const lock = await holdLocks([`SELECT ${shopperLock(`'${user.id}'`)}`]);
    const pending = Promise.all(Array.from({ length: 8 }, () => postCarts(user.token)));
    await lock.waitForWaiters(8, '%pg_advisory_xact_lock%');
    await lock.release();
    const answers = await pending;
    expect(new Set(answers.map((a) => a.cart.id)).size).toBe(1);
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(await countCarts(user.id)).toBe(1);
  });

  it('starts a new cart once the active one is paid', async () => {
    const user = await newUser();
    const { cart } = await postCarts(user.token);
    await db().query(`UPDATE carts SET status = 'paid' WHERE id = $1`, [cart.id]);
    const next = await postCarts(user.token);
    expect(next.status).toBe(201);
    expect(next.cart.id).not.toBe(cart.id);
  });

  it.each([
    ['no token', undefined],
    ['a malformed token', 'not-a-jwt'],
  ])('answers 401 for %s and creates nothing', async (_, token) => {
    const res = await call('/v1/carts', { method: 'POST', token });
    expect(res.status).toBe(401);
    expect((await problem(res)).code).toBe('unauthorized');
  });
});

describe('GET /v1/carts/{cartId} and GET /v1/carts', () => {
  it("returns the caller's cart and answers 404 for another user's cart, exactly as for a missing one", async () => {
    const owner = await newUser();
    const other = await newUser();
    const { cart } = await postCarts(owner.token);

    const mine = await call(`/v1/carts/${cart.id}`, { token: owner.token });
    expect(mine.status).toBe(200);
    expect(((await mine.json()) as CartBody).id).toBe(cart.id);

    const theirs = await call(`/v1/carts/${cart.id}`, { token: other.token });
    const missing = await call(`/v1/carts/${crypto.randomUUID()}`, { token: other.token });
    expect(theirs.status).toBe(404);
    expect(missing.status).toBe(404);
    const [a, b] = [await problem(theirs), await problem(missing)];
    expect({ ...a, requestId: '' }).toEqual({ ...b, requestId: '' });
  });

  it('answers 404 for a well-formed uuid of no cart, whatever its version bits', async () => {
    const user = await newUser();
    for (const id of ['00000000-0000-0000-0000-000000000001', '11111111-1111-1111-1111-111111111111']) {
      for (const [path, method] of [
        [`/v1/carts/${id}`, 'GET'],
        [`/v1/carts/${id}/items/tshirt-classic`, 'DELETE'],
        [`/v1/carts/${id}/checkout`, 'POST'],
      ] as const) {
        const res = await call(path, { method, token: user.token });
        expect(res.status, `${method} ${path}`).toBe(404);
        expect((await problem(res)).code).toBe('not_found');
      }
    }
  });

  it('rejects a cart id that is not a uuid with 400', async () => {
    const user = await newUser();
    const res = await call('/v1/carts/42', { token: user.token });
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe('validation_failed');
  });

  it("lists the caller's carts newest first, and only theirs", async () => {
    const user = await newUser();
    const other = await newUser();
    const first = (await postCarts(user.token)).cart;
    await db().query(`UPDATE carts SET status = 'paid', created_at = now() - interval '1 day' WHERE id = $1`, [
      first.id,
    ]);
    const second = (await postCarts(user.token)).cart;
    await postCarts(other.token);

    const res = await call('/v1/carts', { token: user.token });
    expect(res.status).toBe(200);
    const { carts } = (await res.json()) as { carts: CartBody[] };
    expect(carts.map((c) => [c.id, c.status])).toEqual([
      [second.id, 'open'],
      [first.id, 'paid'],
    ]);
  });

  it('pages the order history with startingAfter, every cart once, ties in creation time included', async () => {
    const user = await newUser();
    // Five past orders: two of them made in the same instant, which the keyset must not skip.
    const ids = (
      await db().query(
        `INSERT INTO carts (user_id, status, created_at)
         SELECT $1, 'paid', now() - make_interval(days => d) FROM unnest('{1,2,2,3,4}'::int[]) AS d
         RETURNING id`,
        [user.id],
      )
    ).map((row) => row.id as string);
    const page = async (query: string) => {
      const res = await call(`/v1/carts?${query}`, { token: user.token });
      expect(res.status, query).toBe(200);
      return (await res.json()) as { carts: CartBody[]; hasMore: boolean };
    };
    const seen: string[] = [];
    let query = 'limit=2';
    for (const expectedMore of [true, true, false]) {
      const { carts, hasMore } = await page(query);
      expect(hasMore).toBe(expectedMore);
      seen.push(...carts.map((c) => c.id));
      query = `limit=2&startingAfter=${carts.at(-1)!.id}`;
    }
    // The pages together are the whole history in one page, in its order.
    const whole = await page('limit=5');
    expect(whole.hasMore).toBe(false);
    expect(seen).toEqual(whole.carts.map((c) => c.id));
    expect([...seen].sort()).toEqual([...ids].sort());

    // Another shopper's cart, or none, is no place to start from.
    const other = await newUser();
    const { cart: theirs } = await postCarts(other.token);
    for (const id of [theirs.id, crypto.randomUUID()]) {
      const res = await call(`/v1/carts?startingAfter=${id}`, { token: user.token });
      expect(res.status).toBe(400);
      expect(await problem(res)).toMatchObject({
        code: 'validation_failed',
        detail: expect.stringContaining('startingAfter'),
      });
    }
  });
});

describe('PUT and DELETE /v1/carts/{cartId}/items/{productId}', () => {
  async function put(token: string, cartId: string, productId: string, body: unknown) {
    return call(`/v1/carts/${cartId}/items/${productId}`, { method: 'PUT', token, json: body });
  }
  async function items(cartId: string) {
    return db().query('SELECT product_id, quantity FROM cart_items WHERE cart_id = $1 ORDER BY product_id', [cartId]);
  }

  it('adds, changes and removes items, with totals from database prices', async () => {
    const user = await newUser();
    const tee = await createProduct({ unitAmount: 2000 });
    const mug = await createProduct({ unitAmount: 1250 });
    const { cart } = await postCarts(user.token);

    await put(user.token, cart.id, tee.id, { quantity: 2 });
    const res = await put(user.token, cart.id, mug.id, { quantity: 3 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as CartBody;
    expect(body).toMatchObject({ currency: 'usd', itemCount: 5, totalAmount: 2 * 2000 + 3 * 1250 });
    expect(body.items).toEqual([
      { productId: tee.id, name: tee.name, unitAmount: 2000, quantity: 2, lineTotal: 4000 },
      { productId: mug.id, name: mug.name, unitAmount: 1250, quantity: 3, lineTotal: 3750 },
    ]);

    const changed = (await (await put(user.token, cart.id, tee.id, { quantity: 1 })).json()) as CartBody;
    expect(changed.totalAmount).toBe(2000 + 3750);

    const zeroed = (await (await put(user.token, cart.id, tee.id, { quantity: 0 })).json()) as CartBody;
    expect(zeroed.items.map((i) => i.productId)).toEqual([mug.id]);

    const deleted = await call(`/v1/carts/${cart.id}/items/${mug.id}`, { method: 'DELETE', token: user.token });
    expect(deleted.status).toBe(200);
    expect((await deleted.json()) as CartBody).toMatchObject({ items: [], currency: null, totalAmount: 0 });
  });

  it('ignores any price the client sends', async () => {
    const user = await newUser();
    const tee = await createProduct({ unitAmount: 2000 });
    const { cart } = await postCarts(user.token);
    const res = await put(user.token, cart.id, tee.id, { quantity: 1, unitAmount: 1 });
    expect(res.status).toBe(400);
    expect(await items(cart.id)).toEqual([]);
  });

  it.each([
    ['quantity 100', { quantity: 100 }],
    ['a negative quantity', { quantity: -1 }],
    ['a fractional quantity', { quantity: 1.5 }],
    ['a string quantity', { quantity: '2' }],
    ['no quantity', {}],
  ])('rejects %s with 400 and changes nothing', async (_, body) => {
    const user = await newUser();
    const tee = await createProduct();
    const { cart } = await postCarts(user.token);
    await put(user.token, cart.id, tee.id, { quantity: 4 });
    const res = await put(user.token, cart.id, tee.id, body);
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe('validation_failed');
    expect(await items(cart.id)).toEqual([{ product_id: tee.id, quantity: 4 }]);
  });

  it('rejects a body that is not JSON with 400', async () => {
    const user = await newUser();
    const tee = await createProduct();
    const { cart } = await postCarts(user.token);
    const res = await call(`/v1/carts/${cart.id}/items/${tee.id}`, {
      method: 'PUT',
      token: user.token,
      headers: { 'Content-Type': 'application/json' },
      body: '{"quantity":',
    });
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe('validation_failed');
  });

  it('answers 404 for an unknown or inactive product and changes nothing', async () => {
    const user = await newUser();
    const inactive = await createProduct({ active: false });
    const { cart } = await postCarts(user.token);
    const unknown = unique('nope');
    for (const [productId, detail] of [
      [unknown, `Product not found`],
      [inactive.id, `${inactive.name} (${inactive.id}) is no longer sold`],
    ]) {
      const res = await put(user.token, cart.id, productId, { quantity: 1 });
      expect(res.status).toBe(404);
      // productId: the product is what was not found, not the cart (the path names both).
      expect(await problem(res)).toMatchObject({ detail: expect.stringContaining(detail), productId });
    }
    expect(await items(cart.id)).toEqual([]);
  });

  it('lets a line of a product taken off sale be lowered and removed, but not grown', async () => {
    const user = await newUser();
    const lamp = await createProduct();
    const { cart } = await postCarts(user.token);
    expect((await put(user.token, cart.id, lamp.id, { quantity: 3 })).status).toBe(200);
    await db().query('UPDATE products SET active = false WHERE id = $1', [lamp.id]);

    const grown = await put(user.token, cart.id, lamp.id, { quantity: 4 });
    expect(grown.status).toBe(404);
    // Named as the shopper knows it, and by id: the product is what is missing, not the cart.
    expect(await problem(grown)).toMatchObject({
      code: 'not_found',
      detail: expect.stringContaining(`${lamp.name} (${lamp.id}) is no longer sold`),
      productId: lamp.id,
    });
    expect(await items(cart.id)).toEqual([{ product_id: lamp.id, quantity: 3 }]);
    const lowered = await put(user.token, cart.id, lamp.id, { quantity: 1 });
    expect(lowered.status).toBe(200);
    expect(((await lowered.json()) as CartBody).items).toMatchObject([{ productId: lamp.id, quantity: 1 }]);
    expect((await put(user.token, cart.id, lamp.id, { quantity: 0 })).status).toBe(200);
    expect(await items(cart.id)).toEqual([]);
  });

  it("answers 404 for another user's cart and leaves it untouched", async () => {
    const owner = await newUser();
    const intruder = await newUser();
    const tee = await createProduct();
    const { cart } = await postCarts(owner.token);
    await put(owner.token, cart.id, tee.id, { quantity: 2 });

    const res = await put(intruder.token, cart.id, tee.id, { quantity: 9 });
    expect(res.status).toBe(404);
    const del = await call(`/v1/carts/${cart.id}/items/${tee.id}`, { method: 'DELETE', token: intruder.token });
    expect(del.status).toBe(404);
    expect(await items(cart.id)).toEqual([{ product_id: tee.id, quantity: 2 }]);
  });

  it('answers 409 currency_mismatch for a product in another currency', async () => {
    const user = await newUser();
    const usd = await createProduct({ currency: 'usd' });
    const eur = await createProduct({ currency: 'eur' });
    const { cart } = await postCarts(user.token);
    await put(user.token, cart.id, usd.id, { quantity: 1 });
    const res = await put(user.token, cart.id, eur.id, { quantity: 1 });
    expect(res.status).toBe(409);
    expect((await problem(res)).code).toBe('currency_mismatch');
    expect(await items(cart.id)).toEqual([{ product_id: usd.id, quantity: 1 }]);
  });

  it('removes a product in another currency as any absent one: 200, the cart as it was (found by the fuzz test)', async () => {
    const user = await newUser();
    const usd = await createProduct({ currency: 'usd' });
    const eur = await createProduct({ currency: 'eur' });
    const { cart } = await postCarts(user.token);
    await put(user.token, cart.id, usd.id, { quantity: 1 });
    const res = await call(`/v1/carts/${cart.id}/items/${eur.id}`, { method: 'DELETE', token: user.token });
    expect(res.status).toBe(200);
    expect(await items(cart.id)).toEqual([{ product_id: usd.id, quantity: 1 }]);
  });

  it('keeps one currency when first items in two currencies race into an empty cart', async () => {
    const user = await newUser();
    const usd = await createProduct({ currency: 'usd' });
    const eur = await createProduct({ currency: 'eur' });
    const { cart } = await postCarts(user.token);
    // Both edits read the empty cart, then wait for its row lock: neither saw the other's item.
    const lock = await holdLocks([`SELECT 1 FROM carts WHERE id = '${cart.id}' FOR UPDATE`]);
    const pending = Promise.all([
      put(user.token, cart.id, usd.id, { quantity: 1 }),
      put(user.token, cart.id, eur.id, { quantity: 1 }),
    ]);
    await lock.waitForWaiters(2, EDIT_WAITING_FOR_CART);
    await lock.release();
    const answers = await pending;
    expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(await items(cart.id)).toHaveLength(1);
  });

  it.each([
    ['total', 60_000_000, 0],
    ['number of lines', 100, CART_LIMITS.lines - 1],
  ])('lets no two additions racing into a cart cross its %s limit together', async (_, unitAmount, present) => {
    const user = await newUser();
    const { cart } = await postCarts(user.token);
    const [first, second, ...rest] = await Promise.all(
      Array.from({ length: present + 2 }, () => createProduct({ unitAmount })),
    );
    // The cart one line or one product's price short of its limit: either addition fits, not both.
    await db().query(
      `INSERT INTO cart_items (cart_id, product_id, currency, quantity) SELECT $1, unnest($2::text[]), 'usd', 1`,
      [cart.id, rest.map((p) => p.id)],
    );
    // Both edits wait for the cart's row lock; each must then see the other's line.
    const lock = await holdLocks([`SELECT 1 FROM carts WHERE id = '${cart.id}' FOR UPDATE`]);
    const pending = Promise.all([first, second].map((p) => put(user.token, cart.id, p!.id, { quantity: 1 })));
    await lock.waitForWaiters(2, EDIT_WAITING_FOR_CART);
    await lock.release();
    const answers = await pending;
    expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
    expect((await problem(answers.find((r) => r.status === 409)!)).code).toBe('cart_limit_exceeded');
    expect(await items(cart.id)).toHaveLength(present + 1);
  });

  it('leaves the cart as it was, updatedAt included, for an edit that changes nothing', async () => {
    const user = await newUser();
    const [tee, mug] = await Promise.all([createProduct(), createProduct()]);
    const { cart } = await postCarts(user.token);
    const first = (await (await put(user.token, cart.id, tee.id, { quantity: 2 })).json()) as CartBody;
    const versionOf = async () =>
      ((await db().query('SELECT version FROM carts WHERE id = $1', [cart.id]))[0] as { version: number }).version;
    const version = await versionOf();
    // A retry whose first answer was lost, and a line removed that is not there.
    const again = await put(user.token, cart.id, tee.id, { quantity: 2 });
    expect(again.status).toBe(200);
    expect(((await again.json()) as CartBody).updatedAt).toBe(first.updatedAt);
    const gone = await call(`/v1/carts/${cart.id}/items/${mug.id}`, { method: 'DELETE', token: user.token });
    expect(gone.status).toBe(200);
    expect(((await gone.json()) as CartBody).updatedAt).toBe(first.updatedAt);
    expect(await versionOf()).toBe(version);
    // A change still moves it on.
    const changed = (await (await put(user.token, cart.id, tee.id, { quantity: 3 })).json()) as CartBody;
    expect(changed.updatedAt > first.updatedAt).toBe(true);
    expect(await versionOf()).toBe(version + 1);
  });

  describe('with expectedQuantity (a client working "one more" out from what it showed)', () => {
    it('refuses to overwrite a line changed elsewhere with 409 quantity_changed, and changes nothing', async () => {
      const user = await newUser();
      const [tee, mug] = await Promise.all([createProduct(), createProduct()]);
      const { cart } = await postCarts(user.token);
      await put(user.token, cart.id, tee.id, { quantity: 1 });
      await put(user.token, cart.id, mug.id, { quantity: 2 });
      // Another device raises the tee to 3 and removes the mug; this one still shows 1 tee, 2 mugs.
      await put(user.token, cart.id, tee.id, { quantity: 3 });
      const seen = (await (await put(user.token, cart.id, mug.id, { quantity: 0 })).json()) as CartBody;

      for (const [product, body, now] of [
        [tee, { quantity: 2, expectedQuantity: 1 }, 3], // one more
        [tee, { quantity: 0, expectedQuantity: 1 }, 3], // one fewer, the last one as it showed
        [mug, { quantity: 3, expectedQuantity: 2 }, 0], // one more of a line gone
      ] as const) {
        const res = await put(user.token, cart.id, product.id, body);
        expect(res.status).toBe(409);
        expect(await problem(res)).toMatchObject({ code: 'quantity_changed', productId: product.id, quantity: now });
      }
      expect(await items(cart.id)).toEqual([{ product_id: tee.id, quantity: 3 }]);
      const after = (await (await call(`/v1/carts/${cart.id}`, { token: user.token })).json()) as CartBody;
      expect(after.updatedAt).toBe(seen.updatedAt);
    });

    it('applies a change from the quantity expected, and answers the same request again as the first (RFC 9110 §13.1.1)', async () => {
      const user = await newUser();
      const tee = await createProduct({ unitAmount: 500 });
      const { cart } = await postCarts(user.token);
      const first = await put(user.token, cart.id, tee.id, { quantity: 1, expectedQuantity: 0 });
      expect(first.status).toBe(200);
      const grown = await put(user.token, cart.id, tee.id, { quantity: 2, expectedQuantity: 1 });
      expect(grown.status).toBe(200);
      const body = (await grown.json()) as CartBody;
      expect(body).toMatchObject({ itemCount: 2, totalAmount: 1000 });
      // Its answer lost, or resent by the browser itself, the same request comes again: the line
      // already holds what it asks for, and it is not counted twice.
      const again = await put(user.token, cart.id, tee.id, { quantity: 2, expectedQuantity: 1 });
      expect(again.status).toBe(200);
      expect(((await again.json()) as CartBody).updatedAt).toBe(body.updatedAt);
      expect(await items(cart.id)).toEqual([{ product_id: tee.id, quantity: 2 }]);
    });

    it('lets exactly one of two devices change a line both saw at the same quantity', async () => {
      const user = await newUser();
      const tee = await createProduct();
      const { cart } = await postCarts(user.token);
      await put(user.token, cart.id, tee.id, { quantity: 1 });
      const lock = await holdLocks([`SELECT 1 FROM carts WHERE id = '${cart.id}' FOR UPDATE`]);
      const pending = Promise.all([
        put(user.token, cart.id, tee.id, { quantity: 2, expectedQuantity: 1 }),
        put(user.token, cart.id, tee.id, { quantity: 5, expectedQuantity: 1 }),
      ]);
      await lock.waitForWaiters(2, EDIT_WAITING_FOR_CART);
      await lock.release();
      const answers = await pending;
      const won = answers.findIndex((r) => r.status === 200);
      expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
      expect(await problem(answers[1 - won]!)).toMatchObject({ code: 'quantity_changed' });
      expect(await items(cart.id)).toEqual([{ product_id: tee.id, quantity: won === 0 ? 2 : 5 }]);
    });

    it('is refused as any other field out of range, with 400 validation_failed', async () => {
      const user = await newUser();
      const tee = await createProduct();
      const { cart } = await postCarts(user.token);
      for (const expectedQuantity of [-1, CART_LIMITS.quantity + 1, 1.5, '1', null]) {
        const res = await put(user.token, cart.id, tee.id, { quantity: 1, expectedQuantity });
        expect(res.status).toBe(400);
        expect((await problem(res)).code).toBe('validation_failed');
      }
      expect(await items(cart.id)).toEqual([]);
    });
  });

  it('keeps every concurrent change to different items', async () => {
    const user = await newUser();
    const products = await Promise.all(
      Array.from({ length: 6 }, (_, i) => createProduct({ unitAmount: 100 * (i + 1) })),
    );
    const { cart } = await postCarts(user.token);
    const lock = await holdLocks([`SELECT 1 FROM carts WHERE id = '${cart.id}' FOR UPDATE`]);
    const pending = Promise.all(products.map((p, i) => put(user.token, cart.id, p.id, { quantity: i + 1 })));
    await lock.waitForWaiters(products.length, EDIT_WAITING_FOR_CART);
    await lock.release();
    const answers = await pending;
    expect(answers.every((r) => r.status === 200)).toBe(true);
    const final = (await (await call(`/v1/carts/${cart.id}`, { token: user.token })).json()) as CartBody;
    expect(final.itemCount).toBe(1 + 2 + 3 + 4 + 5 + 6);
    expect(final.totalAmount).toBe(products.reduce((sum, _, i) => sum + 100 * (i + 1) * (i + 1), 0));
  });

  it.each(['checkout_pending', 'awaiting_payment', 'paid', 'refunded'])(
    'answers 409 cart_not_editable for a %s cart and changes nothing',
    async (status) => {
      const user = await newUser();
      const tee = await createProduct();
      const { cart } = await postCarts(user.token);
      await put(user.token, cart.id, tee.id, { quantity: 2 });
      await db().query(`UPDATE carts SET status = $2::cart_status WHERE id = $1`, [cart.id, status]);
      const res = await put(user.token, cart.id, tee.id, { quantity: 5 });
      expect(res.status).toBe(409);
      expect((await problem(res)).code).toBe('cart_not_editable');
      const del = await call(`/v1/carts/${cart.id}/items/${tee.id}`, { method: 'DELETE', token: user.token });
      expect(del.status).toBe(409);
      expect(await items(cart.id)).toEqual([{ product_id: tee.id, quantity: 2 }]);
    },
  );

  it('refuses the 101st product with 409 cart_limit_exceeded, as Stripe Checkout takes at most 100 lines', async () => {
    const user = await newUser();
    const { cart } = await postCarts(user.token);
    const products = await Promise.all(Array.from({ length: 101 }, () => createProduct({ unitAmount: 100 })));
    await db().query(
      `INSERT INTO cart_items (cart_id, product_id, currency, quantity) SELECT $1, unnest($2::text[]), 'usd', 1`,
      [cart.id, products.slice(0, 100).map((p) => p.id)],
    );
    const res = await put(user.token, cart.id, products[100]!.id, { quantity: 1 });
    expect(res.status).toBe(409);
    expect(await problem(res)).toMatchObject({ code: 'cart_limit_exceeded', detail: expect.stringContaining('100') });
    expect(await items(cart.id)).toHaveLength(100);
    // Lines already in the cart can still change.
    expect((await put(user.token, cart.id, products[0]!.id, { quantity: 2 })).status).toBe(200);
  });

  it("refuses an edit that takes the total over Stripe's maximum amount, and keeps the cart as it was", async () => {
    const user = await newUser();
    const { cart } = await postCarts(user.token);
    const dear = await createProduct({ unitAmount: 50_000_000 });
    expect((await put(user.token, cart.id, dear.id, { quantity: 1 })).status).toBe(200);
    const res = await put(user.token, cart.id, dear.id, { quantity: 2 });
    expect(res.status).toBe(409);
    expect((await problem(res)).code).toBe('cart_limit_exceeded');
    expect(await items(cart.id)).toEqual([{ product_id: dear.id, quantity: 1 }]);
    // Removing is always allowed.
    expect((await put(user.token, cart.id, dear.id, { quantity: 0 })).status).toBe(200);
  });

  // Stripe takes twelve digits in IDR, eight in any other currency
  // (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
  it("holds an IDR cart to Stripe's twelve-digit maximum rather than the eight digits of other currencies", async () => {
    const user = await newUser();
    const { cart } = await postCarts(user.token);
    const rupiah = await createProduct({ unitAmount: 150_000_000, currency: 'idr' });
    const grand = await createProduct({ unitAmount: 400_000_000_000, currency: 'idr' });
    const res = await put(user.token, cart.id, rupiah.id, { quantity: 2 });
    expect(res.status).toBe(200);
    expect(((await res.json()) as CartBody).totalAmount).toBe(300_000_000);
    expect((await put(user.token, cart.id, grand.id, { quantity: 2 })).status).toBe(200);
    // 300,000,000 + 3 × 400,000,000,000 is more than 999,999,999,999.
    const over = await put(user.token, cart.id, grand.id, { quantity: 3 });
    expect(over.status).toBe(409);
    expect(await problem(over)).toMatchObject({
      code: 'cart_limit_exceeded',
      detail: expect.stringContaining('999999999999 in minor units of idr'),
    });
    const kept = new Map((await items(cart.id)).map((row) => [row.product_id, row.quantity]));
    expect(kept).toEqual(
      new Map([
        [rupiah.id, 2],
        [grand.id, 2],
      ]),
    );
  });

  it('lets a cart that a price rise put over the maximum come down, one step at a time, but not grow', async () => {
    const user = await newUser();
    const { cart } = await postCarts(user.token);
    const dear = await createProduct({ unitAmount: 20_000_000 });
    expect((await put(user.token, cart.id, dear.id, { quantity: 4 })).status).toBe(200);
    await db().query('UPDATE products SET unit_amount = 40_000_000 WHERE id = $1', [dear.id]);
    const grown = await put(user.token, cart.id, dear.id, { quantity: 5 });
    expect(grown.status).toBe(409);
    expect((await problem(grown)).code).toBe('cart_limit_exceeded');
    // Lowering crosses no limit (the contract refuses only the edit that would cross one), even
    // while the cart stays over it: 3 × 40,000,000 is still more than Stripe takes.
    expect((await put(user.token, cart.id, dear.id, { quantity: 3 })).status).toBe(200);
    expect(await items(cart.id)).toEqual([{ product_id: dear.id, quantity: 3 }]);
    expect((await put(user.token, cart.id, dear.id, { quantity: 2 })).status).toBe(200);
    expect(await items(cart.id)).toEqual([{ product_id: dear.id, quantity: 2 }]);
  });

  it('lets a payment_failed cart be edited', async () => {
    const user = await newUser();
    const tee = await createProduct();
    const { cart } = await postCarts(user.token);
    await db().query(`UPDATE carts SET status = 'payment_failed' WHERE id = $1`, [cart.id]);
    const res = await put(user.token, cart.id, tee.id, { quantity: 1 });
    expect(res.status).toBe(200);
  });
});
