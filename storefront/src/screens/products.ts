import { isEditable } from '@edge-checkout/worker/cart-state';
import { formatMoney } from '@edge-checkout/worker/money';
import type { Product } from '../api/client.ts';
import { h, show } from '../dom.ts';
import { ChangeProblem } from './change-problem.ts';
import type { Screen } from './context.ts';
import { cartNotLoadedView, heading, listOutOfDate, productPicture, productsOnSale, whyNoMore } from './parts.ts';

/** The catalogue: every active product, each with its "Add … to cart" button. */
export const productsScreen: Screen = (ctx) => {
  const render = () => {
    if (ctx.signal.aborted) return;
    show(
      ctx.main,
      heading('Products'),
      addProblem.view(ctx.cart.cart, true),
      cartNotLoadedView(ctx),
      products.view('products', (list) =>
        list.length === 0
          ? h('p', null, 'There is nothing for sale right now.')
          : h('ul', { class: 'products' }, list.map(productCard)),
      ),
    );
  };
  const addProblem = new ChangeProblem(render, ctx);
  const products = productsOnSale(ctx, render);

  const productCard = (product: Product) => {
    const inCart = ctx.cart.quantityOf(product.id);
    // What is left leaves out what a checkout of this cart holds: its lines are not counted twice.
    const held = ctx.cart.cart !== null && !isEditable(ctx.cart.cart.status);
    // Why the button is off, if it is: said as its description.
    // The lines cannot change while a checkout is being made (README, The storefront).
    const why =
      whyNoMore(held ? 0 : inCart, product.available) ?? (ctx.cart.checkingOut ? 'Checkout in progress' : null);
    const whyId = `why-not-${product.id}`;
    return h(
      'li',
      { class: 'product' },
      productPicture(product),
      h('h2', null, product.name),
      h('p', { class: 'description' }, product.description),
      h(
        'p',
        { class: 'price-line' },
        h('span', { class: 'price' }, formatMoney(product.unitAmount, product.currency)),
        inCart > 0 ? h('span', { class: 'in-cart' }, `${inCart} in cart`) : null,
      ),
      // No more to be had (whyNoMore) or a checkout being made, the button keeps its name
      // (docs/contract.md §8) and says why it is off as its description, so a screen reader says it too.
      h(
        'button',
        {
          type: 'button',
          'aria-label': `Add ${product.name} to cart`,
          'data-key': `add:${product.id}`,
          'aria-describedby': why && whyId,
          'aria-disabled': why !== null,
          onclick: () => void add(product),
        },
        why ? h('span', { id: whyId }, why) : 'Add',
      ),
    );
  };

  const add = async (product: Product) => {
    await addProblem.run(
      () => ctx.cart.add(product.id),
      (cart) => ctx.announce(`${product.name} added. ${cart.itemCount} in the cart.`),
      `${product.name} was not added to your cart.`,
    );
    // Taken off sale or bought up since the list was loaded: the list loaded again no longer
    // offers it, or says what is left.
    if (listOutOfDate(addProblem.error)) void products.load();
  };

  ctx.cart.subscribe(render, ctx.signal);
  void products.load();
};
