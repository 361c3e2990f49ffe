import { isPaymentPending } from '@edge-checkout/worker/cart-state';
import { formatMoney, orderTotals } from '@edge-checkout/worker/money';
import { type ApiProblem, asProblem, type Cart } from '../api/client.ts';
import { h, show } from '../dom.ts';
import { STATUS_LABELS, STATUS_RESULTS } from '../order-status.ts';
import { links } from '../router.ts';
import { ChangeProblem } from './change-problem.ts';
import type { Screen } from './context.ts';
import { cartNotLoadedView, heading, holdRetry, loadingView, problemView } from './parts.ts';

/** How often an order whose checkout is pending is read again: its webhook is seconds away. */
const POLL_MS = 2_000;
/**
 * An order awaiting a bank transfer, which can take days: read again after 30 s, then twice as
 * long each time, up to every 10 minutes.
 */
const BANK_POLL_MS = { first: 30_000, most: 600_000 };
/**
 * After reads that failed in a row (offline, a proxy failing): 2 s, then twice as long each
 * time, up to a minute. The network coming back, or the shopper, reads at once (onBack).
 */
const FAILING_POLL_MS = { first: POLL_MS, most: 60_000 };

/**
 * One order and its result: paid, awaiting a bank transfer, failed. While the payment is still
 * being decided the order is read again (every 2 s while the checkout is pending, less and less
 * often while the bank transfer is awaited), and the change is announced. Not while the page is
 * hidden: it is read once when the shopper comes back to it.
 */
export function orderScreen(cartId: string): Screen {
  return (ctx) => {
    let cart: Cart | null = null;
    let problem: unknown = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    /**
     * While the order is worth reading again (a read is due, not on its way): not before
     * `notBefore` (Retry-After, by Date.now()).
     */
    let due: { notBefore: number } | null = null;
    /** Reads in a row that found the bank transfer still awaited: each waits twice as long. */
    let bankReads = 0;
    /** Reads in a row that failed: each waits twice as long. */
    let failedReads = 0;
    /**
     * The shopper or the network came back while a read was on its way: sent while the network
     * was gone, it fails, and the next is made at once, not after the back-off's wait.
     */
    let backWhileReading = false;
    ctx.signal.addEventListener('abort', () => clearTimeout(timer));
    /**
     * A read due is made now, or once its Retry-After has passed, rather than at its timer (which
     * may be the back-off's minute away); none while the page is hidden.
     */
    const readDueNow = () => {
      clearTimeout(timer);
      if (!due || document.hidden) return;
      if (due.notBefore <= Date.now()) void load();
      else timer = setTimeout(load, due.notBefore - Date.now());
    };
    // Hidden (another tab, the phone locked), nothing is read; shown again, the order is read
    // once, and the reads go on from there.
    document.addEventListener('visibilitychange', readDueNow, { signal: ctx.signal });

    const render = () => {
      if (ctx.signal.aborted) return;
      if (!cart) {
        show(
          ctx.main,
          heading('Order'),
          cartNotLoadedView(ctx),
          changeProblem.view(ctx.cart.cart, true),
          problem ? problemView(problem, load) : loadingView('the order'),
        );
        return;
      }
      const result = STATUS_RESULTS[cart.status];
      // Still the shopper's active cart (docs/contract.md §3): it can be changed or paid again.
      // Once they started another, a failed payment's cart is only history.
      const active = ctx.cart.cart?.id === cart.id;
      const totals = orderTotals(cart);
      const retry =
        cart.status === 'payment_failed' &&
        (active
          ? 'Your cart is saved: try again from the cart.'
          : 'To order these items, add them to your cart again.');
      show(
        ctx.main,
        heading(result.headline),
        cartNotLoadedView(ctx),
        changeProblem.view(ctx.cart.cart, true),
        h('p', null, result.message, retry && ` ${retry}`),
        problem !== null && problemView(problem, load),
        h(
          'section',
          { class: 'card', 'aria-label': 'Order summary' },
          // Not a live region: a change of status is announced (load), once.
          h('p', { class: 'status-line' }, 'Status: ', h('strong', null, STATUS_LABELS[cart.status])),
          h(
            'ul',
            { class: 'order-items' },
            cart.items.map((item) =>
              h(
                'li',
                null,
                h('span', null, `${item.quantity} × ${item.name}`),
                h('span', null, formatMoney(item.lineTotal, cart!.currency)),
              ),
            ),
            totals.lines.map((line) =>
              h('li', null, h('span', null, line.label), h('span', null, formatMoney(line.amount, cart!.currency))),
            ),
          ),
          h(
            'p',
            { class: 'total' },
            h('span', null, 'Total'),
            h('span', null, formatMoney(totals.total, cart.currency)),
          ),
          totals.refunded > 0 &&
            h(
              'p',
              { class: 'total' },
              h('span', null, 'Refunded'),
              h('span', null, formatMoney(totals.refunded, cart.currency)),
            ),
        ),
        active
          ? h('a', { class: 'button primary', href: links.cart }, 'Go to cart')
          : h('a', { class: 'button primary', href: links.products }, 'Continue shopping'),
      );
    };

    // Only ever another screen's change, failed after the shopper came here (CartStore.showElsewhere).
    const changeProblem = new ChangeProblem(render, ctx);

    /** Loads started: a poll and a Retry may be on their way at once, and only the latest counts. */
    let loads = 0;
    /** `quiet`: asked for by nothing the shopper did; if it fails, what is shown stays as it was. */
    async function load({ quiet = false } = {}) {
      clearTimeout(timer);
      due = null;
      const mine = ++loads;
      const before = cart?.status;
      const [cartBefore, problemBefore] = [JSON.stringify(cart), problem];
      let failed: ApiProblem | null = null;
      let answer: { cart: Cart } | { error: unknown };
      try {
        answer = { cart: await ctx.api.cart(cartId) };
      } catch (error) {
        answer = { error };
      }
      // An older answer arriving last would take the order back to what it was (paid, then
      // awaiting the bank again); the latest load, still on its way, draws and asks again.
      if (ctx.signal.aborted || mine !== loads || (quiet && 'error' in answer)) return;
      if ('cart' in answer) {
        cart = answer.cart;
        problem = null;
      } else {
        failed = asProblem(answer.error);
        // Refused again the same way (asked again by itself, or by Retry): the problem shown
        // stays, and is not said again.
        if (!saysTheSame(problem, answer.error)) problem = answer.error;
        else holdRetry(problem, failed.retryAt);
      }
      if (JSON.stringify(cart) !== cartBefore || problem !== problemBefore) render();
      if (before && cart && cart.status !== before) {
        ctx.announce(`${STATUS_RESULTS[cart.status].headline}. Status: ${STATUS_LABELS[cart.status]}`);
        // The payment settled: the shopper's active cart may be a new one now.
        void ctx.cart.reload();
      }
      // An order not read yet (its first read failed, in a way worth trying again) may be being
      // paid for: it is read again as a pending one is.
      const worthAsking = (cart === null || isPaymentPending(cart.status)) && (failed === null || failed.retryable);
      // Counted afresh once the order settles: paid again by bank transfer, its reads begin at 30 s.
      bankReads = worthAsking && cart?.status === 'awaiting_payment' ? bankReads + 1 : 0;
      failedReads = worthAsking && failed ? failedReads + 1 : 0;
      const backMeanwhile = backWhileReading;
      backWhileReading = false;
      if (!worthAsking) return;
      const wait = Math.max(
        bankReads > 0 ? backedOff(BANK_POLL_MS, bankReads) : POLL_MS,
        failedReads > 0 ? backedOff(FAILING_POLL_MS, failedReads) : 0,
      );
      // After a 429 or 503, not before the time the shop asked for (Retry-After), as its Retry
      // says: a try sooner only counts against its limit again.
      due = { notBefore: failed?.retryAt ?? 0 };
      if (failed && backMeanwhile) readDueNow();
      else if (!document.hidden) timer = setTimeout(load, Math.max(wait, due.notBefore - Date.now()));
    }

    // Back in the tab, or the network back: a read due is made now, and one on its way (none is
    // due then) is followed at once if it fails. An order settled, or whose payment failed, is
    // read once, quietly: it may have moved on elsewhere meanwhile (paid again from the app,
    // refunded).
    ctx.onBack(() => {
      if (due) readDueNow();
      else if (cart === null || isPaymentPending(cart.status)) backWhileReading = true;
      else void load({ quiet: true });
    });
    ctx.cart.subscribe(render, ctx.signal);
    render();
    void load();
  };
}

/** The `n`th wait in a row of `poll`: its first, then twice as long each time, up to its most. */
function backedOff(poll: { first: number; most: number }, n: number): number {
  return Math.min(poll.first * 2 ** (n - 1), poll.most);
}

/**
 * Whether two problems tell the shopper the same. Not by the time to wait: each 429 or 503 counts
 * its Retry-After from its own answer, so a shop refusing read after read would put up a new
 * alert, said again, at every read. The alert shown takes the latest answer's wait instead
 * (holdRetry), as the reads do.
 */
function saysTheSame(shown: unknown, error: unknown): boolean {
  if (shown === null) return false;
  const [a, b] = [asProblem(shown), asProblem(error)];
  return a.status === b.status && a.code === b.code && a.message === b.message;
}
