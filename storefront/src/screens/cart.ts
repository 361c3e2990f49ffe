import { isEditable } from '@edge-checkout/worker/cart-state';
import { formatMoney } from '@edge-checkout/worker/money';
import { ApiProblem, type Cart, type CartItem } from '../api/client.ts';
import { quantityIn } from '../cart-store.ts';
import { h, show } from '../dom.ts';
import { links } from '../router.ts';
import { ChangeProblem } from './change-problem.ts';
import type { Screen, ScreenContext } from './context.ts';
import { cartNotLoadedView, heading, listOutOfDate, loadingView, productsOnSale, whyNoMore } from './parts.ts';

/** A line's product taken off sale: it can be lowered and removed, not added to (checkout refuses it, naming it). */
const NO_LONGER_SOLD = 'No longer sold';

/** The active cart: its lines with +1 / −1 / remove, the count and total, and Checkout. */
export const cartScreen: Screen = (ctx) => {
  // While a checkout is being made (ctx.cart.checkingOut) or cancelled the lines stay as they
  // are, and once made, until the payment page has replaced the shop.
  let leaving = false;
  /** A checkout being cancelled: by the shopper's tap, or on the way back from the payment page. */
  let cancelling: 'tapped' | 'landed' | null = null;
  /** What became of the checkout cancelled on the payment page (cancelLanded). */
  let notice: string | null = null;
  // One status for the screen's life, its words changed in place: a live region drawn anew at
  // each redraw would be said again, and one that is new when its words change may not be said.
  const status = h('p', { class: 'notice', role: 'status' });

  const render = () => {
    if (ctx.signal.aborted) return;
    const cart = ctx.cart.cart;
    // Said only when the shopper did not tap for it: a tapped cancel shows on its busy button,
    // and a notice appearing above it would move it from under a second tap.
    const said = cancelling === 'landed' ? 'Cancelling your checkout…' : notice;
    if (said && status.textContent !== said) status.textContent = said;
    show(
      ctx.main,
      heading('Cart'),
      said && status,
      actionProblem.view(cart, false),
      cart ? cartView(cart) : cartNotLoadedView(ctx) || loadingView('your cart'),
    );
  };

  const actionProblem = new ChangeProblem(render, ctx);
  // What is left of each product, which the cart's lines do not say: "+" is off where a tap could
  // only be refused. Not shown when it fails to load; "+" is then on, and a refusal says why,
  // until it loads again (after a refusal, or when the network or the shopper comes back).
  const products = productsOnSale(ctx, render);
  /**
   * Why no more of a line's product can be added, by the list: it holds every product on sale
   * (GET /v1/products, docs/contract.md §1), so one missing from it was taken off sale.
   */
  const whyNoMoreOf = (item: CartItem) => {
    if (!products.loaded) return whyNoMore(item.quantity, null);
    const listed = products.loaded.find((product) => product.id === item.productId);
    return listed ? whyNoMore(item.quantity, listed.available) : NO_LONGER_SOLD;
  };
  /** After a change or checkout refused for what the list says, for the lines to show what is left. */
  const reloadIfOutOfDate = () => {
    if (listOutOfDate(actionProblem.error)) void products.load();
  };

  const cartView = (cart: Cart) => {
    if (cart.items.length === 0) {
      return h(
        'div',
        { class: 'empty' },
        h('p', null, 'Your cart is empty.'),
        h('a', { href: links.products }, 'Browse products'),
      );
    }
    const editable = isEditable(cart.status);
    const checkingOut = leaving || ctx.cart.checkingOut;
    return [
      stateNote(cart),
      h(
        'ul',
        { class: 'lines' },
        cart.items.map((item) => line(item, cart.currency, editable && !checkingOut)),
      ),
      h(
        'dl',
        { class: 'summary' },
        h('div', null, h('dt', null, 'Items'), h('dd', null, cart.itemCount)),
        h(
          'div',
          { class: 'total' },
          h('dt', null, 'Total'),
          h('dd', null, formatMoney(cart.totalAmount, cart.currency)),
        ),
      ),
      editable &&
        h(
          'button',
          {
            type: 'button',
            class: 'primary',
            // Off while the session is made, and said to be busy.
            'aria-disabled': checkingOut,
            'aria-busy': checkingOut,
            onclick: () => void checkout(),
          },
          'Checkout',
        ),
    ];
  };

  const stateNote = (cart: Cart) => {
    if (cart.status === 'payment_failed')
      return h('p', { class: 'notice' }, 'The last payment did not go through. Change the cart or try again.');
    if (cart.status !== 'checkout_pending' || !cart.checkout) return null;
    const { checkout } = cart;
    // Back from the Checkout page some other way than its Cancel (the browser's back button).
    return h(
      'div',
      { class: 'notice' },
      h('p', null, 'A checkout is in progress for this cart. Finish paying, or cancel it to change the cart.'),
      h(
        'a',
        { class: 'button primary', href: cart.checkout.url, onclick: () => ctx.cart.leavingFor(checkout) },
        'Continue to payment',
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          'aria-disabled': cancelling !== null,
          'aria-busy': cancelling !== null,
          onclick: () =>
            void cancel(cart.id, 'tapped', checkout.sessionId, () =>
              ctx.announce('Checkout cancelled. The cart can be changed again.'),
            ),
        },
        'Cancel checkout',
      ),
    );
  };

  const line = (item: CartItem, currency: string | null, editable: boolean) => {
    // No more to be had: "+" is off, and says why (as the products' Add does). Not said of a
    // cart being paid for: what is left then leaves out what its own checkout holds.
    const why = editable ? whyNoMoreOf(item) : null;
    const whyId = `why-not-${item.productId}`;
    return h(
      'li',
      { class: 'line' },
      h('span', { class: 'name' }, item.name),
      h(
        'span',
        { class: 'unit' },
        `${formatMoney(item.unitAmount, currency)} each`,
        why && [' · ', h('span', { id: whyId }, why)],
      ),
      h(
        'span',
        { class: 'stepper' },
        h(
          'button',
          {
            type: 'button',
            'aria-label': `Decrease quantity of ${item.name}`,
            'data-key': `less:${item.productId}`,
            // At 1 it takes the line away, as a quantity of 0 does.
            'aria-disabled': !editable,
            onclick: () =>
              void act(
                () => ctx.cart.decrease(item.productId),
                (now) =>
                  quantityIn(now, item.productId) > 0
                    ? `${item.name}: ${quantityIn(now, item.productId)}`
                    : `${item.name} removed`,
                `One ${item.name} was not taken out of your cart.`,
              ),
          },
          '−',
        ),
        h('span', { class: 'quantity' }, item.quantity),
        h(
          'button',
          {
            type: 'button',
            'aria-label': `Increase quantity of ${item.name}`,
            'data-key': `more:${item.productId}`,
            'aria-disabled': !editable || why !== null,
            'aria-describedby': why && whyId,
            onclick: () =>
              void act(
                () => ctx.cart.add(item.productId),
                (now) => `${item.name}: ${quantityIn(now, item.productId)}`,
                `One more ${item.name} was not added to your cart.`,
              ),
          },
          '+',
        ),
      ),
      h('span', { class: 'line-total' }, formatMoney(item.lineTotal, currency)),
      h(
        'button',
        {
          type: 'button',
          class: 'link',
          'aria-label': `Remove ${item.name}`,
          'data-key': `remove:${item.productId}`,
          'aria-disabled': !editable,
          onclick: () =>
            void act(
              () => ctx.cart.remove(item.productId),
              () => `${item.name} removed`,
              `${item.name} was not removed from your cart.`,
            ),
        },
        'Remove',
      ),
    );
  };

  /**
   * A change to the cart; `said` tells screen-reader users what happened, from the cart the change
   * answered (another device may have moved the line). What became of a cancelled checkout is old
   * news once the shopper acts again.
   */
  const act = async (change: () => Promise<Cart>, said: (now: Cart) => string, lead: string) => {
    notice = null;
    await actionProblem.run(change, (now) => ctx.announce(said(now)), lead);
    reloadIfOutOfDate();
  };

  /**
   * Cancels the checkout of `cartId`, then `done`; or shows why not, with Retry where it helps.
   * Not `done` if another checkout, started elsewhere since, is the cart's by now: the screen
   * shows that one, to continue or cancel.
   */
  const cancel = async (
    cartId: string,
    how: NonNullable<typeof cancelling>,
    sessionId: string | undefined,
    done: () => void,
  ) => {
    cancelling = how;
    render();
    await actionProblem.run(
      () => ctx.cart.cancelCheckout(cartId, sessionId),
      (now) => {
        if (isEditable(now.status)) done();
      },
      'Your checkout was not cancelled.',
    );
    cancelling = null;
    render();
  };

  /**
   * Back from the payment page's Cancel (ctx.cancelledCheckout): its checkout is cancelled here
   * too. The cart is drawn meanwhile, saying so, as the call may be slow; a cancel that failed is
   * shown as such, with Retry, for the checkout is still open. Refused because the cart was paid
   * after all (in another tab), its order is what to show.
   */
  const cancelLanded = async ({ cartId, sessionId }: NonNullable<ScreenContext['cancelledCheckout']>) => {
    // The session this tab left for, or else the one the cancel page named: never whichever is
    // live by now, which may be a newer checkout on another device.
    const meant = ctx.cart.leftFor(cartId) ?? sessionId ?? undefined;
    // Said by the status, which said it was cancelling.
    await cancel(cartId, 'landed', meant, () => {
      notice = 'Checkout cancelled. Nothing was charged, and your cart is kept.';
    });
    const { error } = actionProblem;
    if (!ctx.signal.aborted && error instanceof ApiProblem && error.code === 'cart_not_editable')
      location.replace(links.order(cartId));
  };

  // The Checkout page replaces the shop in this tab, as the app's web view did; Stripe sends
  // the shopper back to the Worker's landing page, whose "Back to the shop" returns here.
  const checkout = async () => {
    notice = null;
    actionProblem.clear();
    ctx.announce('Opening the payment page…');
    await actionProblem.run(
      () => ctx.cart.checkout(),
      (made) => {
        // Left the cart meanwhile: the checkout stays open for the cart screen to continue or
        // cancel, but the shopper is not taken anywhere they did not ask to go now; only told.
        if (ctx.signal.aborted) return ctx.announce('Your checkout is open. Continue to payment from your cart.');
        leaving = true;
        ctx.cart.leavingFor(made);
        location.assign(made.url);
      },
      'The payment page was not opened.',
    );
    reloadIfOutOfDate();
  };

  ctx.cart.subscribe(render, ctx.signal);
  render();
  if (ctx.cancelledCheckout) void cancelLanded(ctx.cancelledCheckout);
  // The status may have moved since the cart was last loaded (a payment, another tab).
  void ctx.cart.reload();
  void products.load();
};
