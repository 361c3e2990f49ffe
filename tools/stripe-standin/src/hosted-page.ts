import { Hono } from 'hono';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type Stripe from 'stripe';
import { StripeApiError } from './errors.ts';
import { formatAmount } from './money.ts';
import { isEmail } from './params.ts';
import type { Choices, Payments, PayOutcome } from './payments.ts';
import { DELAYED_METHOD, TEST_CUSTOMER } from './payments.ts';
import { TEST_TAX_RATE_PERCENT } from './totals.ts';

// The page a session's `url` opens, in place of checkout.stripe.com: the order, an email field
// (Checkout always collects one, and the Worker publishes it with the payment), a shipping
// address and method when the session collects one, a promotion code field when it allows them,
// and one button per way a real payment can go. It is a plain form (no script, no external assets) so it works on a
// phone, in a headless browser, and with curl. Like Stripe, paying redirects with 303 to
// `success_url` (with `{CHECKOUT_SESSION_ID}` filled in); cancelling goes back to `cancel_url`
// and leaves the session open.

type Action = PayOutcome | 'cancel';
const ACTIONS: readonly Action[] = ['paid', 'async', 'async_fail', 'cancel'];

export function successRedirect(session: Stripe.Checkout.Session): string {
  return String(session.success_url).replaceAll('{CHECKOUT_SESSION_ID}', session.id);
}

export function hostedPageRoutes(payments: Payments): Hono {
  const page = new Hono();

  const render = (session: Stripe.Checkout.Session, form: FormState) =>
    paymentPage(
      session,
      payments.lineItems(session.id),
      session.shipping_options.map((o) => payments.shippingRate(String(o.shipping_rate))),
      form,
    );

  page.get('/:id', (c) => {
    const session = findSession(payments, c.req.param('id'));
    if (!session) return c.html(notFoundPage(), 404);
    if (session.status !== 'open') return c.html(inactivePage(session), session.status === 'expired' ? 410 : 200);
    return c.html(render(session, { ...TEST_CUSTOMER, fields: {}, error: null }));
  });

  page.post('/:id', async (c) => {
    const session = findSession(payments, c.req.param('id'));
    if (!session) return c.html(notFoundPage(), 404);
    const form = await c.req.parseBody();
    const text = (key: string) => (typeof form[key] === 'string' ? form[key].trim() : '');
    const action = ACTIONS.find((a) => a === form.action);
    const email = String(session.customer_email ?? form.email ?? '').trim();
    const name = text('name');
    const fields = Object.fromEntries(FIELDS.map((key) => [key, text(key)]));
    if (action === 'cancel' && session.cancel_url !== null) return c.redirect(session.cancel_url, 303);
    if (session.status !== 'open') return c.html(inactivePage(session), refusalStatus(session));
    if (action === undefined || action === 'cancel' || !isEmail(email)) {
      const error = isEmail(email) ? 'Choose how to pay.' : 'Enter a valid email address.';
      return c.html(render(session, { email, name, fields, error }), 400);
    }
    try {
      const paid = payments.pay(
        session.id,
        action,
        { email, name: name === '' ? null : name },
        choicesOf(session, fields),
      );
      return c.redirect(successRedirect(paid), 303);
    } catch (error) {
      if (!(error instanceof StripeApiError)) throw error;
      // Expired or paid meanwhile (the expiry timer, another tab), a method the session lacks, a
      // missing address or a code that does not apply.
      if (session.status !== 'open') return c.html(inactivePage(session), refusalStatus(session));
      return c.html(render(session, { email, name, fields, error: error.message }), 400);
    }
  });

  return page;
}

/** Paying a session that is no longer open: 410 once expired, 409 when already paid. */
function refusalStatus(session: Stripe.Checkout.Session): 409 | 410 {
  return session.status === 'expired' ? 410 : 409;
}

function findSession(payments: Payments, id: string): Stripe.Checkout.Session | undefined {
  try {
    return payments.session(id);
  } catch (error) {
    if (error instanceof StripeApiError && error.status === 404) return undefined;
    throw error;
  }
}

// The form's fields besides email and name: the shipping address, its rate, the promotion code.
const FIELDS = [
  'shipping_name',
  'line1',
  'line2',
  'city',
  'state',
  'postal_code',
  'country',
  'shipping_rate',
  'promotion_code',
] as const;

interface FormState {
  email: string;
  name: string;
  fields: Partial<Record<(typeof FIELDS)[number], string>>;
  error: string | null;
}

/** The address, rate and code as the form gave them; blanks are left for payments.pay to refuse. */
function choicesOf(session: Stripe.Checkout.Session, fields: FormState['fields']): Choices {
  const value = (key: (typeof FIELDS)[number]) => fields[key] || null;
  return {
    promotionCode: fields.promotion_code || undefined,
    ...(session.shipping_address_collection && {
      shipping: {
        name: value('shipping_name'),
        address: {
          line1: value('line1'),
          line2: value('line2'),
          city: value('city'),
          state: value('state'),
          postal_code: value('postal_code'),
          country: value('country'),
        },
        rate: value('shipping_rate'),
      },
    }),
  };
}

function paymentPage(
  session: Stripe.Checkout.Session,
  items: Stripe.LineItem[],
  rates: Stripe.ShippingRate[],
  form: FormState,
) {
  const currency = session.currency ?? 'usd';
  const total = formatAmount(session.amount_total ?? 0, currency);
  const minutesLeft = Math.max(0, Math.round((session.expires_at * 1000 - Date.now()) / 60_000));
  const delayed = session.payment_method_types.includes(DELAYED_METHOD);
  const countries = session.shipping_address_collection?.allowed_countries ?? null;
  const chosenRate = form.fields.shipping_rate || rates[0]?.id;
  return layout(
    `Pay ${total}`,
    html`<h1>Pay ${total}</h1>
      <table>
        ${items.map(
          (item) =>
            html`<tr>
              <td>${item.description}<br /><small>Qty ${item.quantity} × ${formatAmount(item.price?.unit_amount ?? 0, currency)}</small></td>
              <td class="amount">${formatAmount(item.amount_subtotal, currency)}</td>
            </tr>`,
        )}
        ${
          rates.length
            ? html`<tr><td>Shipping</td><td class="amount">${formatAmount(session.total_details?.amount_shipping ?? 0, currency)}</td></tr>`
            : ''
        }
        <tr class="total"><td>Total</td><td class="amount">${total}</td></tr>
      </table>
      ${
        session.automatic_tax.enabled
          ? html`<p class="note">Tax (${TEST_TAX_RATE_PERCENT}% in test mode) and any discount are added when you pay.</p>`
          : ''
      }
      <form method="post">
        ${form.error ? html`<p class="error" role="alert">${form.error}</p>` : ''}
        <label>Email
          <input type="email" name="email" required value="${session.customer_email ?? form.email}" ${session.customer_email ? 'readonly' : ''} autocomplete="email" />
        </label>
        <label>Name on card
          <input type="text" name="name" value="${form.name}" autocomplete="name" />
        </label>
        ${
          countries
            ? html`<fieldset>
                <legend>Shipping address</legend>
                <label>Full name <input type="text" name="shipping_name" value="${form.fields.shipping_name ?? ''}" autocomplete="shipping name" /></label>
                <label>Address line 1 <input type="text" name="line1" required value="${form.fields.line1 ?? ''}" autocomplete="shipping address-line1" /></label>
                <label>Address line 2 <input type="text" name="line2" value="${form.fields.line2 ?? ''}" autocomplete="shipping address-line2" /></label>
                <label>City <input type="text" name="city" required value="${form.fields.city ?? ''}" autocomplete="shipping address-level2" /></label>
                <label>State or province <input type="text" name="state" value="${form.fields.state ?? ''}" autocomplete="shipping address-level1" /></label>
                <label>Postal code <input type="text" name="postal_code" required value="${form.fields.postal_code ?? ''}" autocomplete="shipping postal-code" /></label>
                <label>Country
                  <select name="country" autocomplete="shipping country">
                    ${countries.map((code) => html`<option value="${code}" ${form.fields.country === code ? 'selected' : ''}>${code}</option>`)}
                  </select>
                </label>
              </fieldset>`
            : ''
        }
        ${
          rates.length
            ? html`<fieldset>
                <legend>Shipping method</legend>
                ${rates.map(
                  (rate) =>
                    html`<label class="choice"><input type="radio" name="shipping_rate" value="${rate.id}" ${rate.id === chosenRate ? 'checked' : ''} />
                      ${rate.display_name} · ${formatAmount(rate.fixed_amount?.amount ?? 0, currency)}${deliveryEstimate(rate)}</label>`,
                )}
              </fieldset>`
            : ''
        }
        ${
          session.allow_promotion_codes
            ? html`<label>Promotion code <input type="text" name="promotion_code" value="${form.fields.promotion_code ?? ''}" autocomplete="off" /></label>`
            : ''
        }
        <button name="action" value="paid">Pay ${total}</button>
        ${
          delayed
            ? html`<button name="action" value="async" class="secondary">Pay by bank transfer (delayed)</button>
              <button name="action" value="async_fail" class="secondary">Payment fails (bank transfer)</button>`
            : ''
        }
        ${session.cancel_url ? html`<button name="action" value="cancel" class="link" formnovalidate>Cancel</button>` : ''}
      </form>
      <p class="note">Expires in ${minutesLeft} min · Session <code>${session.id}</code></p>`,
  );
}

function deliveryEstimate(rate: Stripe.ShippingRate): string {
  const { minimum, maximum } = rate.delivery_estimate ?? {};
  if (!minimum && !maximum) return '';
  const range = minimum && maximum ? `${minimum.value}–${maximum.value}` : String((minimum ?? maximum)!.value);
  return ` · ${range} ${(maximum ?? minimum)!.unit.replace('_', ' ')}s`;
}

function inactivePage(session: Stripe.Checkout.Session) {
  if (session.status === 'complete') {
    return layout(
      'Payment complete',
      html`<h1>Payment complete</h1>
        <p>This Checkout Session has already been paid.</p>
        <p><a href="${successRedirect(session)}">Continue</a></p>`,
    );
  }
  return layout(
    'Session expired',
    html`<h1>This Checkout Session is no longer active</h1>
      <p>The session has expired. Go back to the shop and start the checkout again.</p>
      ${session.cancel_url ? html`<p><a href="${session.cancel_url}">Back to the shop</a></p>` : ''}`,
  );
}

function notFoundPage() {
  return layout(
    'Not found',
    html`<h1>Something went wrong</h1>
      <p>The page you were looking for could not be found. Please check the URL or contact the merchant.</p>`,
  );
}

function layout(title: string, body: HtmlEscapedString | Promise<HtmlEscapedString>) {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · Stripe stand-in</title>
        <!-- No icon: otherwise the browser asks for /favicon.ico, a 404 in its console. -->
        <link rel="icon" href="data:," />
        <style>
          body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f9fc; color: #1a1f36; }
          main { max-width: 28rem; margin: 0 auto; padding: 1rem; }
          .badge { display: inline-block; background: #ffde92; color: #5a3c00; font-size: .75rem; font-weight: 600; padding: .1rem .5rem; border-radius: 4px; }
          table { width: 100%; border-collapse: collapse; margin: 1rem 0; }
          td { padding: .5rem 0; border-bottom: 1px solid #e3e8ee; vertical-align: top; }
          .amount { text-align: right; white-space: nowrap; }
          .total td { font-weight: 600; border-bottom: 0; }
          label { display: block; margin: .75rem 0; font-size: .9rem; }
          input { display: block; width: 100%; box-sizing: border-box; font: inherit; padding: .6rem; margin-top: .25rem; border: 1px solid #c1c9d2; border-radius: 6px; }
          button { display: block; width: 100%; font: inherit; font-weight: 600; padding: .8rem; margin: .6rem 0; border: 0; border-radius: 6px; background: #635bff; color: #fff; }
          button.secondary { background: #fff; color: #635bff; border: 1px solid #635bff; }
          button.link { background: none; color: #697386; }
          .error { color: #df1b41; }
          fieldset { border: 1px solid #e3e8ee; border-radius: 6px; margin: .75rem 0; padding: .25rem .75rem; }
          legend { font-size: .9rem; font-weight: 600; }
          select { display: block; width: 100%; font: inherit; padding: .6rem; margin-top: .25rem; }
          .choice { display: flex; gap: .5rem; align-items: center; }
          .choice input { width: auto; margin: 0; }
          .note { color: #697386; font-size: .8rem; word-break: break-all; }
        </style>
      </head>
      <body>
        <main>
          <p><span class="badge">TEST MODE · Stripe stand-in</span></p>
          ${body}
        </main>
      </body>
    </html>`;
}
