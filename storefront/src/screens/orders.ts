import { formatMoney, orderTotals } from '@edge-checkout/worker/money';
import type { Cart } from '../api/client.ts';
import { h, show } from '../dom.ts';
import { STATUS_LABELS } from '../order-status.ts';
import { links } from '../router.ts';
import { ChangeProblem } from './change-problem.ts';
import type { Screen } from './context.ts';
import { cartNotLoadedView, heading, Loadable, problemView } from './parts.ts';

const when = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' });

/** Order history (GET /v1/carts, newest first), each with its status. */
export const ordersScreen: Screen = (ctx) => {
  const render = () => {
    if (ctx.signal.aborted) return;
    show(
      ctx.main,
      heading('Orders'),
      cartNotLoadedView(ctx),
      changeProblem.view(ctx.cart.cart, true),
      firstPage.view('your orders', (first) => {
        const { carts, hasMore } = history(first);
        // An empty cart is not an order.
        const orders = carts.filter((cart) => cart.items.length > 0);
        if (orders.length === 0 && !hasMore) {
          return h(
            'div',
            { class: 'empty' },
            h('p', null, 'No orders yet.'),
            h('a', { href: links.products }, 'Browse products'),
          );
        }
        const more =
          hasMore &&
          h(
            'button',
            {
              type: 'button',
              class: 'secondary',
              'aria-disabled': loadingOlder,
              'aria-busy': loadingOlder,
              onclick: showOlder,
            },
            'Show older orders',
          );
        return h('div', null, h('ul', { class: 'orders' }, orders.map(order)), more);
      }),
      // A page of older orders that failed: after those shown, which stay.
      olderProblem !== null && problemView(olderProblem, showOlder),
    );
  };
  // Only ever another screen's change, failed after the shopper came here (CartStore.showElsewhere).
  const changeProblem = new ChangeProblem(render, ctx);
  // The first page, loaded again (quietly, the latest read's answer kept) when the shopper or the
  // network comes back: an order may have moved on meanwhile (paid again from the app, refunded),
  // and one may have been placed.
  const firstPage = new Loadable(() => ctx.api.cartPage(), render);
  /** The shopper's or the network's returns so far: an older page read before one is read again. */
  let returns = 0;
  ctx.onBack(() => {
    returns++;
    // After the first page: an order placed meanwhile moves its last ones down, to be read again too.
    void firstPage.reload().then(readOlderAgain);
  });
  /**
   * Every order shown, newest first, and whether there are older ones: the first page as last
   * read, then those shown before that it no longer holds (an order placed meanwhile moved its
   * last ones down) and the older pages loaded ("Show older orders"), each asked for after the
   * last order shown (the API pages by cart, so an order placed meanwhile neither repeats nor
   * hides one). The list is by creation, so what the first page does not hold is older than it.
   */
  let shown: { carts: Cart[]; hasMore: boolean } = { carts: [], hasMore: false };
  const history = (first: { carts: Cart[]; hasMore: boolean }) => {
    const ids = new Set(first.carts.map((cart) => cart.id));
    const rest = shown.carts.filter((cart) => !ids.has(cart.id));
    shown = { carts: [...first.carts, ...rest], hasMore: rest.length > 0 ? shown.hasMore : first.hasMore };
    return shown;
  };
  /**
   * The older orders shown may have moved on too (refunded, a transfer settled): their pages are
   * read again, quietly, down to the oldest shown, and each order shown takes its new self. Only
   * the latest such reading counts; none when only the first page is shown.
   */
  let readingsOlder = 0;
  const readOlderAgain = async () => {
    const first = firstPage.loaded;
    const firstIds = new Set(first?.carts.map((cart) => cart.id));
    // Not Array.prototype.at: Safari 15.0-15.3, a build target, lacks it.
    const oldest = shown.carts[shown.carts.length - 1]?.id;
    if (!first || oldest === undefined || shown.carts.every((cart) => firstIds.has(cart.id))) return;
    const mine = ++readingsOlder;
    let after = first.carts[first.carts.length - 1]?.id;
    try {
      for (;;) {
        const page = await ctx.api.cartPage(after);
        if (mine !== readingsOlder) return;
        const fresh = new Map(page.carts.map((cart) => [cart.id, cart]));
        shown = { ...shown, carts: shown.carts.map((cart) => fresh.get(cart.id) ?? cart) };
        render();
        after = page.carts[page.carts.length - 1]?.id;
        if (!page.hasMore || after === undefined || fresh.has(oldest)) return;
      }
    } catch {
      // What is shown stays: asked for by nothing the shopper did.
    }
  };
  let olderProblem: unknown = null;
  // One older page at a time: a second tap while it loads (the screen is drawn anew meanwhile,
  // its button too) would ask for the same page again.
  let loadingOlder = false;
  const showOlder = async () => {
    const first = firstPage.loaded;
    if (loadingOlder || !first) return;
    loadingOlder = true;
    olderProblem = null;
    render();
    const { carts } = history(first);
    const orders = carts.filter((cart) => cart.items.length > 0);
    const lastOrder = orders[orders.length - 1]?.id;
    const returnsBefore = returns;
    try {
      const page = await ctx.api.cartPage(carts[carts.length - 1]?.id);
      const ids = new Set(shown.carts.map((cart) => cart.id));
      shown = { carts: [...shown.carts, ...page.carts.filter((cart) => !ids.has(cart.id))], hasMore: page.hasMore };
      // Read before a return and answered after it: read again, as the pages shown then were.
      if (returns !== returnsBefore) void readOlderAgain();
    } catch (error) {
      olderProblem = error;
    } finally {
      loadingOlder = false;
      render();
    }
    // On to the first order loaded, where reading goes on: the button (gone after the last page)
    // is below them all, and the heading, where focus would fall back to, at the top.
    if (olderProblem === null) {
      const links = [...ctx.main.querySelectorAll<HTMLElement>('a.order')];
      links[links.findIndex((link) => link.dataset.key === `order:${lastOrder}`) + 1]?.focus();
    }
  };

  const order = (cart: Cart) => {
    const date = when.format(new Date(cart.updatedAt));
    const items = `${cart.itemCount} ${cart.itemCount === 1 ? 'item' : 'items'}`;
    const total = formatMoney(orderTotals(cart).total, cart.currency);
    const status = STATUS_LABELS[cart.status];
    return h(
      'li',
      null,
      h(
        'a',
        {
          class: 'order',
          'data-key': `order:${cart.id}`,
          // The open cart is still being filled, and one whose checkout is open is not being paid
          // yet (nothing to confirm): both are the cart screen's, which continues or cancels it.
          href: cart.status === 'open' || cart.status === 'checkout_pending' ? links.cart : links.order(cart.id),
          'aria-label': `Order of ${date}: ${items}, ${total}, ${status}`,
        },
        h('span', { class: 'when' }, date),
        h('span', { class: 'what' }, `${items} · ${total}`),
        h('span', { class: `badge status-${cart.status}` }, status),
      ),
    );
  };

  ctx.cart.subscribe(render, ctx.signal);
  void firstPage.load();
};
