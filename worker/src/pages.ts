import { html, raw } from 'hono/html';
import { isKeptAfterCancel } from './cart-state.ts';
import { describeCode, type ErrorCode } from './errors.ts';
import { formatMoney, orderTotals } from './money.ts';
import type { CartOut } from './schemas.ts';

type Html = ReturnType<typeof html>;

const headlines: Record<CartOut['status'], [string, string]> = {
  paid: ['Payment received', 'Thank you! Your order is paid. A confirmation is on its way to your inbox.'],
  awaiting_payment: [
    'Payment processing',
    'Your bank is processing the payment. We will let you know as soon as it clears.',
  ],
  checkout_pending: ['Confirming your payment…', 'This usually takes a few seconds. Check again in a moment.'],
  payment_failed: [
    'Payment failed',
    'The payment did not go through. Your cart is saved: you can try again from the app.',
  ],
  open: ['Checkout not completed', 'Nothing was charged. Your cart is saved in the app.'],
  refunded: ['Order refunded', 'This order has been refunded.'],
};

/**
 * A failed cart the shopper has since moved on from is history (docs/contract.md §3: edits and
 * checkout answer 409). It is told from the active one, which can be paid again, by the checkout
 * it still shows: the active one shows none (§2).
 */
const failedAndSuperseded: [string, string] = [
  'Payment failed',
  'The payment did not go through. To order these items, add them to your cart in the app again.',
];

/** The cart's status on the card, in words that agree with the headline above it. */
const statusWords: Record<CartOut['status'], string> = {
  paid: 'Paid',
  awaiting_payment: 'Awaiting bank transfer',
  checkout_pending: 'Confirming payment',
  payment_failed: 'Payment failed',
  open: 'Not paid',
  refunded: 'Refunded',
};

/** The page Stripe returns the shopper to, and the cancel page: state, total, a way back to the app. */
export function cartPage(opts: {
  cancelled?: boolean;
  cart: CartOut;
  appReturnUrl?: string;
  checkAgain?: boolean;
}): Html {
  const { cart } = opts;
  const cancelled = opts.cancelled && isKeptAfterCancel(cart.status);
  const [headline, message] = cancelled
    ? ['Checkout cancelled', headlines.open[1]]
    : cart.status === 'payment_failed' && cart.checkout
      ? failedAndSuperseded
      : headlines[cart.status];
  // Cancelled on Stripe's page, the cart is still checkout_pending until the shop expires the
  // session: "Confirming payment" under "Checkout cancelled" would say two things at once.
  const status = cancelled ? 'Cancelled' : statusWords[cart.status];
  const totals = orderTotals(cart);
  return layout({
    title: headline,
    body: html`<h1>${headline}</h1>
      <p>${message}</p>
      <section class="card" aria-label="Order summary">
        <ul>
          ${cart.items.map(
            (i) =>
              html`<li><span>${i.quantity} × ${i.name}</span><span>${formatMoney(i.lineTotal, cart.currency)}</span></li>`,
          )}
          ${totals.lines.map((l) => html`<li><span>${l.label}</span><span>${formatMoney(l.amount, cart.currency)}</span></li>`)}
        </ul>
        <p class="total"><span>Total</span><span>${formatMoney(totals.total, cart.currency)}</span></p>
        ${totals.refunded > 0 ? html`<p class="total"><span>Refunded</span><span>${formatMoney(totals.refunded, cart.currency)}</span></p>` : ''}
        <p class="status">Status: <strong data-status="${cart.status}">${status}</strong></p>
      </section>
      ${opts.checkAgain ? html`<a class="button secondary" href="">Check again</a>` : ''}
      ${returnLink(opts.appReturnUrl, { cart_id: cart.id, status: cart.status, ...(cancelled && cancelledSession(cart)) })}`,
  });
}

/**
 * From the cancel page: `cancelled=true`, and the session live as the page was drawn, for an app
 * whose own record of the session it opened is gone (a web view's storage cleared, the link
 * opened in another browser): usually the one just left on Stripe's page, so a newer checkout
 * started on another device after the page was drawn stays payable. Stripe's `cancel_url` names
 * no session, so one started before Cancel was tapped there is the one named.
 */
function cancelledSession(cart: CartOut): Record<string, string> {
  return { cancelled: 'true', ...(cart.checkout && { session_id: cart.checkout.sessionId }) };
}

/**
 * The success page of a session the cart has since left for a newer checkout (a reloaded tab of
 * a failed bank transfer): the cart's lines and status are the newer checkout's, so it shows
 * neither, only the way back to the app, where the cart is.
 */
export function replacedCheckoutPage(opts: { cart: CartOut; appReturnUrl?: string }): Html {
  const title = 'This checkout has ended';
  return layout({
    title,
    body: html`<h1>${title}</h1>
      <p>Your cart has gone on to a newer checkout since. Your order as it stands is in the app.</p>
      ${returnLink(opts.appReturnUrl, { cart_id: opts.cart.id, status: opts.cart.status })}`,
  });
}

/**
 * An error on a landing page, for a person: what went wrong in their words and the id to quote
 * to support. The problem's detail is written for developers (a validator's "cart_id: Invalid
 * GUID"), and its title too ("Validation failed"): the page goes by the problem's code.
 */
export function errorPage(opts: { code: ErrorCode; requestId?: string; appReturnUrl?: string }): Html {
  const [title, message] = errorWords(opts.code);
  return layout({
    title,
    body: html`<h1>${title}</h1><p>${message}</p>${opts.requestId ? html`<p class="status">Reference: ${opts.requestId}</p>` : ''}${returnLink(opts.appReturnUrl, {})}`,
  });
}

function errorWords(code: ErrorCode): [title: string, message: string] {
  // The pages are reached by Stripe's redirect, with the query we gave it: one the routes refuse
  // or do not know was cut short or changed on the way (or is older than our records).
  if (code === 'validation_failed')
    return ['This link does not work', 'This link is incomplete or damaged. Go back to the shop to find your order.'];
  if (code === 'not_found')
    return [
      'Not found',
      'This order could not be found: the link may be old or mistyped. Your orders are in the shop.',
    ];
  if (describeCode(code)[0] >= 500)
    return ['Something went wrong', 'The shop could not show this page just now. Try again in a moment.'];
  return ['This page could not be shown', 'Go back to the shop and try again from there.'];
}

/**
 * The link back to the app, with `params` appended to its query (after any of the same name the
 * setting already has, which it keeps). Appended to the query as configured: re-serialising it
 * (URLSearchParams) would rewrite what is already there (`%20` as `+`, which iOS's URLComponents
 * does not read as a space; `~` as `%7E`; `flag` as `flag=`), and a universal link matched on it
 * could stop matching.
 */
function returnLink(appReturnUrl: string | undefined, params: Record<string, string>): Html | string {
  if (!appReturnUrl) return '';
  const url = new URL(appReturnUrl);
  const added = Object.entries(params).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  if (added.length > 0) url.search = [url.search.slice(1), ...added].filter(Boolean).join('&');
  return html`<a class="button" href="${url.toString()}">Back to the shop</a>`;
}

/**
 * The landing pages' one inline style block; their Content-Security-Policy allows it by its hash.
 * A line's name wraps anywhere: a flex item is never narrower than its longest word, so a product
 * named with one long word pushed the amount off a phone's screen (WCAG 1.4.10).
 */
export const PAGE_STYLE = `
  :root { color-scheme: light dark; }
  body { font: 17px/1.5 -apple-system, system-ui, sans-serif; margin: 0; padding: 24px 20px; max-width: 32rem; margin-inline: auto; }
  h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
  .card { border: 1px solid #8884; border-radius: 12px; padding: 12px 16px; margin: 20px 0; }
  ul { list-style: none; padding: 0; margin: 0; }
  li, .total { display: flex; justify-content: space-between; gap: 12px; padding: 6px 0; }
  li > :first-child { overflow-wrap: anywhere; word-break: break-word; }
  .total { border-top: 1px solid #8884; font-weight: 600; margin: 6px 0 0; }
  .status { opacity: .8; margin: 6px 0 0; font-size: .9rem; }
  .button { display: block; text-align: center; background: #635bff; color: #fff; text-decoration: none;
            padding: 14px; border-radius: 10px; font-weight: 600; min-height: 24px; margin-top: 12px; }
  .button.secondary { background: none; color: inherit; border: 2px solid #635bff; }
`;

// Small, self-contained pages for a phone's in-app browser: no scripts, no external assets. No
// timed reload either (WCAG 2.2.1, technique F41: it takes focus and the reading place every few
// seconds); a payment being confirmed offers "Check again", and the shop polls by itself.
function layout(opts: { title: string; body: Html }): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title}</title>
<style>${raw(PAGE_STYLE)}</style>
</head>
<body><main>${opts.body}</main></body>
</html>`;
}
