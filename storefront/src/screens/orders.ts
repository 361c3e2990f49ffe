import { formatMoney, orderTotals } from '@edge-checkout/worker/money';
import type { Cart } from '../api/client.ts';
import { h, show } from '../dom.ts';
import { STATUS_LABELS } from '../order-status.ts';
import { links } from '../router.ts';
import type { Screen } from './context.ts';
import { heading, Loadable } from './parts.ts';

const when = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' });

/** Order history (GET /v1/carts, newest first), each with its status. */
export const ordersScreen: Screen = (ctx) => {
  const render = () => {
    if (ctx.signal.aborted) return;
    show(
      ctx.main,
      heading('Orders'),
      carts.view('your orders', (all) => {
        // An empty cart is not an order.
        const orders = all.filter((cart) => cart.items.length > 0);
        return orders.length === 0
          ? h(
              'div',
              { class: 'empty' },
              h('p', null, 'No orders yet.'),
              h('a', { href: links.products }, 'Browse products'),
            )
          : h('ul', { class: 'orders' }, orders.map(order));
      }),
    );
  };
  const carts = new Loadable(() => ctx.api.carts(), render);

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
          // The open cart is still being filled: it is changed on the cart screen.
          href: cart.status === 'open' ? links.cart : links.order(cart.id),
          'aria-label': `Order of ${date}: ${items}, ${total}, ${status}`,
        },
        h('span', { class: 'when' }, date),
        h('span', { class: 'what' }, `${items} · ${total}`),
        h('span', { class: `badge status-${cart.status}` }, status),
      ),
    );
  };

  void carts.load();
};
