import { formatMoney, orderTotals } from '@edge-checkout/worker/money';
import type { Cart } from '../api/client.ts';
import { h, show } from '../dom.ts';
import { STATUS_LABELS } from '../order-status.ts';
import { links } from '../router.ts';
import { ChangeProblem } from './change-problem.ts';
import type { Screen } from './context.ts';
import { cartNotLoadedView, heading, Loadable } from './parts.ts';

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
      carts.view('your orders', (history) => {
        // An empty cart is not an order.
        const orders = history.carts.filter((cart) => cart.items.length > 0);
        if (orders.length === 0 && !history.hasMore) {
          return h(
            'div',
            { class: 'empty' },
            h('p', null, 'No orders yet.'),
            h('a', { href: links.products }, 'Browse products'),
          );
        }
        const older =
          history.hasMore &&
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
        return h('div', null, h('ul', { class: 'orders' }, orders.map(order)), older);
      }),
    );
  };
  // Only ever another screen's change, failed after the shopper came here (CartStore.showElsewhere).
  const changeProblem = new ChangeProblem(render, ctx);
  // The pages loaded so far, each asked for after the last cart of the one before (the API pages
  // by cart, so an order placed meanwhile neither repeats nor hides one).
  let history: { carts: Cart[]; hasMore: boolean } = { carts: [], hasMore: false };
  const carts = new Loadable(async () => {
    const page = await ctx.api.cartPage(history.carts[history.carts.length - 1]?.id);
    history = { carts: [...history.carts, ...page.carts], hasMore: page.hasMore };
    return history;
  }, render);
  // One older page at a time: a second tap while it loads (the screen is drawn anew meanwhile,
  // its button too) would ask for the same page again and show its orders twice.
  let loadingOlder = false;
  const orderLinks = () => ctx.main.querySelectorAll<HTMLElement>('a.order');
  const showOlder = async () => {
    if (loadingOlder) return;
    loadingOlder = true;
    const shown = orderLinks().length;
    try {
      await carts.load();
    } finally {
      loadingOlder = false;
      render();
    }
    // On to the first order loaded, where reading goes on: the button (gone after the last page)
    // is below them all, and the heading, where focus would fall back to, at the top.
    orderLinks()[shown]?.focus();
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

  // Back in the tab, or the network back: an order may have moved on meanwhile (paid again from
  // the app, refunded), and one may have been placed. The first page is read again, quietly, and
  // takes the place of the orders it holds; older pages loaded stay, as the list is by creation.
  ctx.onBack(async () => {
    if (!carts.loaded) return void carts.load();
    let first: typeof history;
    try {
      first = await ctx.api.cartPage();
    } catch {
      return;
    }
    const ids = new Set(first.carts.map((cart) => cart.id));
    const older = history.carts.filter((cart) => !ids.has(cart.id));
    // In place: it is what the list shows (carts.loaded).
    Object.assign(history, {
      carts: [...first.carts, ...older],
      hasMore: older.length > 0 ? history.hasMore : first.hasMore,
    });
    render();
  });
  ctx.cart.subscribe(render, ctx.signal);
  void carts.load();
};
