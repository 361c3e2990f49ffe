import { type ApiProblem, createShopApi } from './api/client.ts';
import { CartStore } from './cart-store.ts';
import { h, show } from './dom.ts';
import {
  dropLandingReturn,
  type LandingReturn,
  links,
  type Route,
  restoreLandingReturn,
  routeOf,
  takeLandingReturn,
} from './router.ts';
import { cartScreen } from './screens/cart.ts';
import type { Screen, ScreenContext } from './screens/context.ts';
import { orderScreen } from './screens/order.ts';
import { ordersScreen } from './screens/orders.ts';
import { productsScreen } from './screens/products.ts';
import { showSignIn } from './screens/sign-in.ts';
import { currentSession, signIn, signOut, takeTokenFromAddress } from './session.ts';

const SHOP_NAME = 'Edge Shop';

function screenFor(route: Route): { title: string; screen: Screen } {
  switch (route.screen) {
    case 'products':
      return { title: 'Products', screen: productsScreen };
    case 'cart':
      return { title: 'Cart', screen: cartScreen };
    case 'orders':
      return { title: 'Orders', screen: ordersScreen };
    case 'order':
      return { title: 'Order', screen: orderScreen(route.cartId) };
  }
}

/** The shell: header with the cart badge, the current screen, who is signed in. */
export function startShop(body: HTMLElement): void {
  takeTokenFromAddress();
  // Kept in the address until someone is signed in (the link opened in a browser without the
  // app's token): signing in reloads this page, which takes it then. Kept here until the API has
  // answered with the token, which may have expired while the shopper was on Stripe's page
  // (onUnauthorized puts it back).
  let landing = currentSession() ? takeLandingReturn() : null;

  const header = h('header', { class: 'bar' });
  const main = h('main', { id: 'main' });
  const footer = h('footer');
  const announcer = h('div', { class: 'visually-hidden', 'aria-live': 'polite' });
  body.replaceChildren(header, main, footer, announcer);

  let signedOutBecause: string | null = null;
  /** See ScreenContext.cancelledCheckout: for the first screen drawn, once. */
  let cancelledCheckout: ScreenContext['cancelledCheckout'] = null;
  let shown: AbortController | null = null;
  /** The screen shown listens here (ScreenContext.onBack). */
  const back = new EventTarget();
  const loadAgain = () => {
    void cart.reload();
    back.dispatchEvent(new Event('back'));
  };
  /** Whose token was refused with the landing put back (onUnauthorized). */
  let landingFor: string | null | undefined;

  const api = createShopApi({
    token: () => currentSession()?.token ?? null,
    onUnauthorized(problem: ApiProblem, refused: string | null) {
      // Sent before a sign-in in this tab and answered after it (a call the last token's refusal
      // left without one, say): it says nothing of the token signed in with since.
      if (refused !== (currentSession()?.token ?? null)) return;
      if (landing) {
        // For this shopper only: someone else signing in here starts afresh.
        landingFor ??= currentSession()?.userId ?? null;
        restoreLandingReturn(landing);
      }
      signOut();
      // The first reason is the one that says why (an expired token); calls made after it
      // carry no token at all, and would only say that.
      signedOutBecause ??= `You are signed out (${problem.message}). Open a new sign-in link.`;
      render();
    },
  });
  const cart = new CartStore(api);
  // A cart answered: the API took the token, and the landing is done with.
  cart.subscribe(() => {
    if (cart.cart) landing = null;
  });
  /** A sign-in in this tab: the landing put back is followed only for the shopper it was for. */
  const signedInAgain = () => {
    if (landingFor !== undefined && currentSession()?.userId !== landingFor) dropLandingReturn();
    location.reload();
  };

  const renderHeader = (route: Route | null) => {
    const count = cart.cart?.itemCount ?? 0;
    const current = (screen: Route['screen']) => (route?.screen === screen ? 'page' : false);
    show(
      header,
      h('a', { class: 'brand', href: links.products, 'aria-current': current('products') }, SHOP_NAME),
      route &&
        h(
          'nav',
          { 'aria-label': 'Shop' },
          h('a', { href: links.orders, 'aria-current': current('orders') }, 'Orders'),
          h(
            'a',
            {
              id: 'cart-link',
              class: 'cart-link',
              href: links.cart,
              'aria-label': `Cart (${count})`,
              'aria-current': current('cart'),
              'aria-busy': cart.saving,
            },
            'Cart',
            h('span', { class: 'count', 'aria-hidden': 'true' }, count),
          ),
          // A call can take long on a bad network (up to the API client's deadline): the shopper
          // sees that the change is on its way, not a shop that ignores taps.
          cart.saving && h('span', { class: 'saving' }, 'Saving…'),
        ),
    );
  };

  function render(): void {
    shown?.abort();
    shown = null;
    const session = currentSession();
    if (!session) {
      renderHeader(null);
      footer.replaceChildren();
      document.title = `Sign in · ${SHOP_NAME}`;
      showSignIn(main, {
        reason: signedOutBecause,
        onToken(token) {
          signIn(token);
          // A fresh start for the new shopper: nothing of the last one's cart is kept.
          signedInAgain();
        },
      });
      main.querySelector('h1')?.focus();
      return;
    }
    const route = routeOf(location.hash);
    const { title, screen } = screenFor(route);
    renderHeader(route);
    show(
      footer,
      h('span', null, session.userId ? `Signed in as ${session.userId}` : 'Signed in'),
      h('button', { type: 'button', class: 'link', onclick: signOutAndRestart }, 'Sign out'),
    );
    document.title = `${title} · ${SHOP_NAME}`;
    shown = new AbortController();
    const { signal } = shown;
    screen({
      main,
      signal,
      api,
      cart,
      announce: (message) => {
        // Emptied first, so the same words twice are still said twice.
        announcer.textContent = '';
        setTimeout(() => {
          announcer.textContent = message;
        }, 50);
      },
      onBack: (listener) => back.addEventListener('back', listener, { signal }),
      reloadCart: () => cart.reload(),
      cancelledCheckout: takeCancelledCheckout(),
    });
    main.querySelector('h1')?.focus();
  }

  const takeCancelledCheckout = () => {
    const taken = cancelledCheckout;
    cancelledCheckout = null;
    return taken;
  };

  const signOutAndRestart = () => {
    signOut();
    location.reload();
  };

  cart.subscribe(() => renderHeader(currentSession() ? routeOf(location.hash) : null));
  window.addEventListener('hashchange', () => {
    // A new sign-in link opened in this tab.
    if (new URLSearchParams(location.hash.slice(1)).has('token')) {
      takeTokenFromAddress();
      signedInAgain();
      return;
    }
    render();
  });
  // Back in this tab or window from another, or from the app: the cart may have changed there.
  // The API takes whole quantities, so the next tap here must build on the cart as it is now.
  // Coming back usually fires both events: one load does for both. Leaving ends the return.
  let loadedOnReturn = false;
  const cartMayHaveChanged = () => {
    if (document.visibilityState !== 'visible') {
      loadedOnReturn = false;
      return;
    }
    if (loadedOnReturn || !currentSession()) return;
    loadedOnReturn = true;
    loadAgain();
  };
  document.addEventListener('visibilitychange', cartMayHaveChanged);
  window.addEventListener('focus', cartMayHaveChanged);
  window.addEventListener('blur', () => {
    loadedOnReturn = false;
  });
  // Nothing else would load again what failed while the network was gone (ScreenContext.onBack).
  window.addEventListener('online', () => {
    if (currentSession()) loadAgain();
  });
  // Back from the Checkout page with the browser's back button: the page comes from the
  // back/forward cache as it was left (a Checkout button still busy); draw it afresh.
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) render();
  });

  const signedIn = currentSession() !== null;
  if (landing) cancelledCheckout = arriveFromLanding(landing);
  // Drawn at once, back from the cancel page too: the cart screen says its cancel is on its way.
  render();
  if (signedIn) void cart.reload();
}

/**
 * "Back to the shop" from a landing page: to the order's result, or from the cancel page, to the
 * cart, where its checkout is cancelled (the checkout to cancel is returned).
 */
function arriveFromLanding(landing: LandingReturn): ScreenContext['cancelledCheckout'] {
  history.replaceState(null, '', `${location.pathname}${landing.cancelled ? links.cart : links.order(landing.cartId)}`);
  return landing.cancelled ? { cartId: landing.cartId, sessionId: landing.sessionId } : null;
}
