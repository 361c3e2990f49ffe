// The mobile app's side, over HTTP only: a signed-in shopper and the Checkout page it opens.
import { randomUUID } from 'node:crypto';
import { createDevToken } from '@edge-checkout/dev-stack/token';
import type { CartOut, CheckoutOut } from '@edge-checkout/worker/schemas';

// The API's own shapes (worker/src/schemas.ts), so a change there fails these callers' types.
export type Cart = CartOut;
export type Checkout = CheckoutOut;

export class Shopper {
  private constructor(
    private readonly workerUrl: string,
    private readonly token: string,
    /** Unique per test, so tests never share carts. */
    readonly userId: string,
  ) {}

  static async signIn(workerUrl: string, jwtSecret: string, label: string): Promise<Shopper> {
    const userId = `e2e-${label}-${randomUUID().slice(0, 8)}`;
    return new Shopper(workerUrl, await createDevToken({ userId, secret: jwtSecret, ttlSeconds: 600 }), userId);
  }

  /** The shopper a token signs in, e.g. a storefront tab's, changing their carts from elsewhere. */
  static withToken(workerUrl: string, token: string, userId: string): Shopper {
    return new Shopper(workerUrl, token, userId);
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.workerUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  }

  /** POST /v1/carts, then the given quantities: the shopper filling a new cart. */
  async fillCart(quantities: Record<string, number>): Promise<Cart> {
    const created = await this.call<Cart>('POST', '/v1/carts');
    if (created.status !== 201)
      throw new Error(`POST /v1/carts answered ${created.status}: ${JSON.stringify(created.body)}`);
    let cart = created.body;
    for (const [productId, quantity] of Object.entries(quantities)) {
      const put = await this.call<Cart>('PUT', `/v1/carts/${cart.id}/items/${productId}`, { quantity });
      if (put.status !== 200)
        throw new Error(`PUT item ${productId} answered ${put.status}: ${JSON.stringify(put.body)}`);
      cart = put.body;
    }
    return cart;
  }

  async checkout(cartId: string): Promise<Checkout> {
    const res = await this.call<Checkout>('POST', `/v1/carts/${cartId}/checkout`);
    if (res.status !== 201) throw new Error(`POST checkout answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async cart(cartId: string): Promise<Cart> {
    const res = await this.call<Cart>('GET', `/v1/carts/${cartId}`);
    if (res.status !== 200) throw new Error(`GET cart answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body;
  }
}

/** The hosted page's buttons (tools/stripe-standin/src/hosted-page.ts). */
export type PageAction = 'paid' | 'async' | 'async_fail' | 'cancel';

/**
 * Opens the Checkout url and submits its form as a browser would, without following the
 * redirect: returns where the 303 points (success_url or cancel_url).
 */
export async function submitHostedPage(
  url: string,
  action: PageAction,
  customer = { email: 'shopper@example.com', name: 'Ada Shopper' },
): Promise<string> {
  const page = await fetch(url);
  const html = await page.text();
  if (page.status !== 200 || !html.includes(`value="${action}"`))
    throw new Error(`the Checkout page (${page.status}) has no ${action} button:\n${html.slice(0, 500)}`);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...customer, action }),
    redirect: 'manual',
  });
  const location = res.headers.get('location');
  if (res.status !== 303 || !location)
    throw new Error(`submitting ${action} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  return location;
}
