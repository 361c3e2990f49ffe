// Screens live in the fragment (#/cart), so the Worker serves one page and a reload or the back
// button keeps the shopper where they were.

export type Route =
  | { screen: 'products' }
  | { screen: 'cart' }
  | { screen: 'orders' }
  | { screen: 'order'; cartId: string };

export const links = {
  products: '#/',
  cart: '#/cart',
  orders: '#/orders',
  order: (cartId: string) => `#/orders/${encodeURIComponent(cartId)}`,
};

export function routeOf(hash: string): Route {
  const path = hash.replace(/^#\/?/, '');
  if (path === 'cart') return { screen: 'cart' };
  if (path === 'orders') return { screen: 'orders' };
  const order = /^orders\/([^/]+)$/.exec(path);
  if (order) return { screen: 'order', cartId: decodeURIComponent(order[1]!) };
  return { screen: 'products' };
}

/** Where a landing page's "Back to the shop" link brought the shopper (`?cart_id=…&status=…`). */
export interface LandingReturn {
  cartId: string;
  /** From the cancel page, while the cart was still unpaid. */
  cancelled: boolean;
  /** From the cancel page: the session live as it was drawn, the one left on Stripe's page. */
  sessionId: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Reads and removes the landing pages' parameters from the address. `status` is not used: the
 * cart is read from the API, which knows better by now.
 */
export function takeLandingReturn(): LandingReturn | null {
  const query = new URLSearchParams(location.search);
  const cartId = query.get('cart_id');
  if (cartId === null) return null;
  history.replaceState(null, '', `${location.pathname}${location.hash}`);
  if (!UUID.test(cartId)) return null;
  return { cartId, cancelled: query.get('cancelled') === 'true', sessionId: query.get('session_id') || null };
}

/** Takes the landing parameters out of the address, unread (another shopper signed in). */
export function dropLandingReturn(): void {
  history.replaceState(null, '', `${location.pathname}${location.hash}`);
}

/**
 * Puts `landing` back into the address: the token it was taken with was refused (it expired
 * while the shopper was on Stripe's page), and signing in again reloads the page, which takes it
 * then. Taken again, a cancel already made is refused and shows the cart as it is.
 */
export function restoreLandingReturn(landing: LandingReturn): void {
  const query = new URLSearchParams({ cart_id: landing.cartId });
  if (landing.cancelled) query.set('cancelled', 'true');
  if (landing.sessionId) query.set('session_id', landing.sessionId);
  history.replaceState(null, '', `${location.pathname}?${query}${location.hash}`);
}
