import { CHECKOUT_SHIPPING_COUNTRIES } from '@edge-checkout/worker/shipping-countries';
import { type Context, Hono, type Next } from 'hono';
import type Stripe from 'stripe';
import {
  invalidRequest,
  missingParam,
  rateLimited,
  resourceMissing,
  StripeApiError,
  serverError,
  unrecognizedUrl,
} from './errors.ts';
import type { EventLog } from './events.ts';
import type { Expanders, JsonObject } from './expand.ts';
import { checkExpand, expandResponse } from './expand.ts';
import type { Faults } from './faults.ts';
import { decodeForm } from './form.ts';
import type { IdempotencyStore, SavedResponse } from './idempotency.ts';
import { keyInUse } from './idempotency.ts';
import { requestId } from './ids.ts';
import { listPage } from './lists.ts';
import { amountRefusal, formatAmount, isSupportedCurrency, maximumCharge, minimumCharge } from './money.ts';
import type { EventRequest } from './objects.ts';
import { API_VERSION } from './objects.ts';
import { Params } from './params.ts';
import type { NewLineItem, NewSession, Payments } from './payments.ts';
import { ACCOUNT_PAYMENT_METHODS, nowSeconds } from './payments.ts';

// Stripe's v1 API for what the Worker uses: Checkout Sessions, Refunds, Events (and a thin event of v2), and reading the
// PaymentIntents, Charges, ShippingRates, PromotionCodes and Disputes that payments create. Requests and responses have Stripe's wire
// format (form-encoded in, pretty JSON out, `Request-Id` and `Stripe-Version` headers) and its
// errors, so the official `stripe` library talks to it unchanged.

export interface ApiOptions {
  payments: Payments;
  events: EventLog;
  /** Whether an event reached every webhook endpoint, for `delivery_success`. */
  delivered(eventId: string): boolean;
  idempotency: IdempotencyStore;
  faults: Faults;
  /** When set, the only key accepted; otherwise any test-mode secret key is. */
  apiKey: string | undefined;
  log(line: string): void;
}

type ApiEnv = { Variables: { apiKey: string; requestId: string } };

/** The parse step of a POST: validates parameters (errors here are not saved for idempotent
 * retries, as in Stripe) and returns the step that acts, whose result or error is saved. */
type PostHandler = (params: Params, request: EventRequest, route: PathParams) => () => unknown;
/** The `:id` of the route. */
type PathParams = Record<string, string>;

const SESSION_MIN_LIFETIME_S = 30 * 60;
const SESSION_MAX_LIFETIME_S = 24 * 60 * 60;
// In payment mode: https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-line_items
const SESSION_MAX_LINE_ITEMS = 100;

export function apiRoutes(options: ApiOptions): Hono<ApiEnv> {
  const { payments, events, idempotency, faults } = options;
  const api = new Hono<ApiEnv>();

  const paymentIntent = {
    type: 'payment_intent',
    load: (o: JsonObject) => payments.paymentIntent(String(o.payment_intent)),
  };
  const expanders: Expanders = {
    'checkout.session': {
      payment_intent: paymentIntent,
      line_items: { type: 'list', load: (session) => lineItemsList(String(session.id), new Params({})) },
    },
    payment_intent: {
      latest_charge: { type: 'charge', load: (intent) => payments.charge(String(intent.latest_charge)) },
    },
    charge: {
      payment_intent: paymentIntent,
      refunds: {
        type: 'list',
        load: (charge) =>
          listPage(payments.refundsOf(String(charge.id)), new Params({}), `/v1/charges/${charge.id}/refunds`, 'refund'),
      },
    },
    refund: {
      charge: { type: 'charge', load: (refund) => payments.charge(String(refund.charge)) },
      payment_intent: paymentIntent,
    },
  };

  function lineItemsList(id: string, params: Params) {
    return listPage(payments.lineItems(id), params, `/v1/checkout/sessions/${id}/line_items`, 'line_item');
  }

  // Mounted at the root beside the hosted page and the controls: only the API needs a key.
  api.use('/v1/*', authenticated);
  api.use('/v2/*', authenticated);
  async function authenticated(c: Context<ApiEnv>, next: Next): Promise<void> {
    c.set('requestId', requestId());
    c.set('apiKey', authenticate(c.req.header('authorization'), options));
    // 429 and 404 faults: Stripe's rate limiter runs before its idempotency layer, so these
    // answers are never saved, not even over a key's saved response.
    const fault = faults.take(c.req.method, c.req.path, 'arrival');
    if (fault) {
      await faults.hold(fault.delayMs);
      throw fault.status === 429 ? rateLimited() : missingObject(c.req.method, c.req.path);
    }
    await next();
  }

  // Errors of authentication, arrival faults, parameter checks and the idempotency layer; those of
  // the executing step are answered by perform().
  api.onError((error, c) => {
    const id = c.get('requestId') ?? requestId();
    if (error instanceof StripeApiError) return respond(errorResponse(error, id));
    return respond(internalError(error, id, options.log));
  });

  /** A GET: query parameters, `expand`, no idempotency. */
  function get(path: string, handler: (params: Params, route: PathParams) => unknown): void {
    api.get(path, async (c) => {
      const params = new Params(decodeForm(new URL(c.req.url).searchParams));
      const response = await perform(c.req.method, c.req.path, c.get('requestId'), () => {
        const expand = params.expand();
        const result = handler(params, c.req.param());
        params.rejectUnknown();
        return expandResponse(result, expand, expanders);
      });
      return respond(response);
    });
  }

  /**
   * A POST: form body, `expand`, and Stripe's idempotent replay keyed by `Idempotency-Key`.
   * @param type the `object` of the response, to check `expand` before acting
   */
  function post(path: string, type: string, handler: PostHandler): void {
    api.post(path, async (c) => {
      const form = decodeForm(new URLSearchParams(await c.req.text()));
      const key = c.req.header('idempotency-key') ?? null;
      const apiKey = c.get('apiKey');
      const endpoint = `POST ${c.req.path}`;
      if (key !== null) {
        const conflict = faults.take(c.req.method, c.req.path, 'conflict');
        if (conflict) {
          await faults.hold(conflict.delayMs);
          throw keyInUse(key);
        }
        const saved = idempotency.replay(apiKey, key, endpoint, form);
        if (saved)
          return respond(saved, { 'Idempotency-Key': key, 'Idempotent-Replayed': 'true', ...retryAdvice(saved) });
      }
      const params = new Params(form);
      const expand = params.expand();
      const act = handler(params, { id: c.get('requestId'), idempotency_key: key }, c.req.param());
      params.rejectUnknown();
      checkExpand(type, expand, expanders);
      // Validation passed: the endpoint begins executing, and from here its result is saved.
      const execute = () =>
        perform(c.req.method, c.req.path, c.get('requestId'), () => expandResponse(act(), expand, expanders));
      if (key === null) return respond(await execute());
      idempotency.begin(apiKey, key, endpoint, form);
      const response = await execute();
      idempotency.save(apiKey, key, endpoint, form, response);
      return respond(response, { 'Idempotency-Key': key, ...retryAdvice(response) });
    });
  }

  /**
   * The executing step, with the faults that strike there: a delay (while an idempotency key is
   * in flight) and Stripe's own failure, which happens before anything is done. Never throws:
   * a Stripe error is a response like any other (and saved as one).
   */
  async function perform(method: string, path: string, id: string, act: () => unknown): Promise<SavedResponse> {
    const fault = faults.take(method, path, 'execution');
    if (fault) {
      await faults.hold(fault.delayMs);
      if (fault.status === 500) return errorResponse(serverError(), id);
    }
    try {
      return { status: 200, body: render(act()), requestId: id };
    } catch (error) {
      if (error instanceof StripeApiError) return errorResponse(error, id);
      return internalError(error, id, options.log);
    }
  }

  post('/v1/checkout/sessions', 'checkout.session', (params) => {
    const input = parseNewSession(params);
    return () => payments.createSession(input);
  });

  get('/v1/checkout/sessions/:id', (_params, { id }) => payments.session(id));

  get('/v1/checkout/sessions/:id/line_items', (params, { id }) => lineItemsList(id, params));

  post(
    '/v1/checkout/sessions/:id/expire',
    'checkout.session',
    (_params, request, { id }) =>
      () =>
        payments.expireSession(id, request),
  );

  post('/v1/refunds', 'refund', (params, request) => {
    const input = {
      paymentIntent: params.string('payment_intent') ?? null,
      charge: params.string('charge') ?? null,
      amount: params.integer('amount', { min: 1 }) ?? null,
      reason:
        params.enumeration<Stripe.Refund.Reason>('reason', ['duplicate', 'fraudulent', 'requested_by_customer']) ??
        null,
      metadata: params.metadata('metadata') ?? {},
    };
    return () => payments.createRefund(input, request);
  });

  get('/v1/refunds/:id', (_params, { id }) => payments.refund(id));
  get('/v1/shipping_rates/:id', (_params, { id }) => payments.shippingRate(id));
  get('/v1/promotion_codes/:id', (_params, { id }) => payments.promotionCode(id));
  get('/v1/disputes/:id', (_params, { id }) => payments.dispute(id));
  get('/v1/payment_intents/:id', (_params, { id }) => payments.paymentIntent(id));
  get('/v1/charges/:id', (_params, { id }) => payments.charge(id));
  get('/v1/events/:id', (_params, { id }) => events.get(id));
  // The thin event, for an event destination of thin events: its `snapshot_event` names the v1 event.
  get('/v2/core/events/:id', (_params, { id }) => events.thin(id));

  get('/v1/events', (params) => {
    const type = params.string('type');
    const types = params.stringList('types');
    if (type !== undefined && types !== undefined) {
      throw invalidRequest('You may only specify one of these parameters: type, types.');
    }
    // Stripe's `type` filter accepts a `*` wildcard, e.g. `checkout.session.*`.
    const patterns = (types ?? (type !== undefined ? [type] : [])).map(
      (t) =>
        new RegExp(
          `^${t
            .split('*')
            .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
            .join('.*')}$`,
        ),
    );
    // Stripe's recovery for a webhook endpoint that was down: `delivery_success=false` lists
    // the events not delivered to every endpoint, still being retried or given up on
    // (https://docs.stripe.com/webhooks/process-undelivered-events). An event made while no
    // endpoint existed went to none, so it counts as delivered.
    const delivery = params.boolean('delivery_success');
    const matching = events
      .newestFirst()
      .filter((e) => patterns.length === 0 || patterns.some((p) => p.test(e.type)))
      .filter((e) => delivery === undefined || options.delivered(e.id) === delivery);
    return listPage(matching, params, '/v1/events', 'event');
  });

  return api;
}

function respond(response: SavedResponse, headers: Record<string, string> = {}): Response {
  return new Response(response.body, {
    status: response.status,
    headers: {
      'Content-Type': 'application/json',
      'Request-Id': response.requestId,
      'Stripe-Version': API_VERSION,
      ...headers,
    },
  });
}

function errorResponse(error: StripeApiError, id: string): SavedResponse {
  return { status: error.status, body: render(error.toJSON()), requestId: id };
}

/** A bug in the stand-in: logged with its stack, answered as Stripe answers its own failures. */
function internalError(error: unknown, id: string, log: (line: string) => void): SavedResponse {
  log(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return errorResponse(serverError(), id);
}

/**
 * Stripe tells clients with `Stripe-Should-Retry: false` that retrying a saved 5xx is pointless:
 * the retry with the same key would only get the same 500 again. stripe-node obeys the header
 * before looking at the status (RequestSender._shouldRetry: "we expect the stripe-should-retry
 * header to be false in most cases when a 500 is returned, since our idempotency framework would
 * typically replay it anyway"), so it gives up at once instead of retrying into the replay.
 */
function retryAdvice(response: SavedResponse): Record<string, string> {
  return response.status >= 500 ? { 'Stripe-Should-Retry': 'false' } : {};
}

// The object a path names, with the `param` its handler reports an unknown id with (payments.ts,
// events.ts), so that a 404 fault answers exactly as an unknown id does.
const PATH_OBJECTS: readonly [RegExp, string, string][] = [
  [/^\/v1\/checkout\/sessions\/([^/]+)/, 'checkout.session', 'session'],
  [/^\/v1\/payment_intents\/([^/]+)/, 'payment_intent', 'intent'],
  [/^\/v1\/charges\/([^/]+)/, 'charge', 'charge'],
  [/^\/v1\/refunds\/([^/]+)/, 'refund', 'refund'],
  [/^\/v1\/shipping_rates\/([^/]+)/, 'shipping_rate', 'shipping_rate_token'],
  [/^\/v1\/promotion_codes\/([^/]+)/, 'promotion_code', 'promotion_code'],
  [/^\/v1\/disputes\/([^/]+)/, 'dispute', 'dispute'],
  [/^\/v1\/events\/([^/]+)/, 'event', 'id'],
  [/^\/v2\/core\/events\/([^/]+)/, 'event', 'id'],
];

/** A 404 fault: Stripe's answer for an unknown id in the path, or for a URL it does not serve when the path names none. */
function missingObject(method: string, path: string): StripeApiError {
  for (const [pattern, kind, param] of PATH_OBJECTS) {
    const id = pattern.exec(path)?.[1];
    if (id !== undefined) return resourceMissing(kind, id, param);
  }
  return unrecognizedUrl(method, path);
}

/** Stripe answers with indented JSON. */
function render(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

const NO_KEY_MESSAGE =
  "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.";

/** Stripe takes the secret key as a Bearer token, or as the user name of Basic auth (`curl -u sk_test_…:`). */
function authenticate(header: string | undefined, options: ApiOptions): string {
  const [scheme = '', credentials = ''] = (header ?? '').trim().split(/\s+/, 2);
  const key =
    scheme.toLowerCase() === 'bearer'
      ? credentials
      : scheme.toLowerCase() === 'basic'
        ? Buffer.from(credentials, 'base64').toString('utf8').split(':')[0]
        : '';
  if (key === '') throw new StripeApiError(401, { type: 'invalid_request_error', message: NO_KEY_MESSAGE });
  const accepted = options.apiKey !== undefined ? key === options.apiKey : /^(sk|rk)_test_\w+$/.test(key);
  if (!accepted) {
    if (/^(sk|rk)_live_/.test(key)) options.log('refused a live-mode API key: the stand-in only takes test keys');
    throw new StripeApiError(401, { type: 'invalid_request_error', message: `Invalid API Key provided: ${mask(key)}` });
  }
  return key;
}

/** `sk_test_abcdef…wxyz` → `sk_test_********wxyz`, as Stripe echoes a rejected key. */
function mask(key: string): string {
  const prefix = /^[a-z]{2}_(test|live)_/.exec(key)?.[0] ?? '';
  const rest = key.slice(prefix.length);
  return prefix + '*'.repeat(Math.max(rest.length - 4, 0)) + rest.slice(-4);
}

function parseNewSession(params: Params): NewSession {
  const mode = params.enumeration('mode', ['payment', 'setup', 'subscription']);
  if (mode === undefined) throw missingParam('mode');
  if (mode !== 'payment') {
    throw invalidRequest(`The Stripe stand-in only supports mode=payment, not ${mode}.`, 'mode');
  }
  const created = nowSeconds();
  const lineItems = params.hashList('line_items');
  if (lineItems === undefined || lineItems.length === 0) throw missingParam('line_items');
  if (lineItems.length > SESSION_MAX_LINE_ITEMS) {
    throw invalidRequest(
      `A Checkout Session in payment mode can have at most ${SESSION_MAX_LINE_ITEMS} line items; this one has ${lineItems.length}.`,
      'line_items',
    );
  }
  const items = lineItems.map(parseLineItem);
  const currency = items[0].currency;
  const mismatch = items.findIndex((item) => item.currency !== currency);
  if (mismatch !== -1) {
    throw invalidRequest(
      `All line items must use the same currency; line_items[${mismatch}] uses ${items[mismatch].currency}, not ${currency}.`,
      `line_items[${mismatch}][price_data][currency]`,
    );
  }
  const total = items.reduce((sum, item) => sum + item.unitAmount * item.quantity, 0);
  const minimum = minimumCharge(currency);
  if (minimum !== undefined && total < minimum) {
    throw invalidRequest(
      `The Checkout Session's total amount due must add up to at least ${formatAmount(minimum, currency)} ${currency}`,
    );
  }
  const maximum = maximumCharge(currency);
  if (total > maximum) {
    throw invalidRequest(
      `The Checkout Session's total amount due must be no more than ${formatAmount(maximum, currency)}.`,
      undefined,
      'amount_too_large',
    );
  }

  const successUrl = params.url('success_url');
  if (successUrl === undefined) throw missingParam('success_url');
  const expiresAt = params.integer('expires_at') ?? created + SESSION_MAX_LIFETIME_S;
  if (expiresAt < created + SESSION_MIN_LIFETIME_S) {
    throw invalidRequest(
      'The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.',
      'expires_at',
    );
  }
  if (expiresAt > created + SESSION_MAX_LIFETIME_S) {
    throw invalidRequest(
      'The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.',
      'expires_at',
    );
  }

  // A filter on the account's payment methods (API version 2026-09-30.endive replaced
  // `payment_method_types` with it); what remains is the session's `payment_method_types`.
  const allowed = params.stringList('allowed_payment_method_types') ?? null;
  const paymentMethodTypes = ACCOUNT_PAYMENT_METHODS.filter((m) => allowed === null || allowed.includes(m));
  if (paymentMethodTypes.length === 0) {
    throw invalidRequest(
      `None of the allowed_payment_method_types are enabled on this account; the stand-in offers ${ACCOUNT_PAYMENT_METHODS.join(', ')}.`,
      'allowed_payment_method_types',
    );
  }

  const intentData = params.hash('payment_intent_data');
  const automaticTax = params.hash('automatic_tax');
  return {
    currency,
    lineItems: items,
    allowPromotionCodes: params.boolean('allow_promotion_codes') ?? false,
    automaticTax: automaticTax?.requiredBoolean('enabled') ?? false,
    shippingCountries: parseShippingCountries(params),
    shippingRates: parseShippingOptions(params, currency),
    created,
    expiresAt,
    successUrl,
    cancelUrl: params.url('cancel_url') ?? null,
    clientReferenceId: params.string('client_reference_id', { maxLength: 200 }) ?? null,
    customerEmail: params.email('customer_email') ?? null,
    metadata: params.metadata('metadata') ?? {},
    allowedPaymentMethodTypes: allowed,
    paymentMethodTypes,
    paymentIntentData: {
      description: intentData?.string('description', { maxLength: 1000 }) ?? null,
      metadata: intentData?.metadata('metadata') ?? {},
    },
  };
}

function parseLineItem(item: Params, index: number): NewLineItem & { currency: string } {
  const price = item.string('price');
  // The stand-in has no Prices API, so every Price id is unknown to it, as to a fresh account.
  if (price !== undefined) throw resourceMissing('price', price, item.name('price'));
  const data = item.hash('price_data');
  if (data === undefined) {
    throw invalidRequest(
      'You must provide either price or price_data for each line item when using prices.',
      item.name('price_data'),
    );
  }
  const currency = data.requiredString('currency').toLowerCase();
  if (!isSupportedCurrency(currency)) throw invalidRequest(`Invalid currency: ${currency}.`, data.name('currency'));
  const unitAmount = data.requiredInteger('unit_amount', { min: 0 });
  const offStep = amountRefusal(unitAmount, currency);
  if (offStep) throw invalidRequest(offStep, data.name('unit_amount'), 'invalid_charge_amount');
  const product = data.hash('product_data');
  if (product === undefined) throw missingParam(data.name('product_data'));
  const name = product.requiredString('name', { maxLength: 250 });
  const taxCode = parseTaxCode(product);
  const taxBehavior = data.enumeration('tax_behavior', TAX_BEHAVIORS) ?? null;
  // Accepted and checked like Stripe does; the hosted page loads no external images.
  product.string('description', { maxLength: 40000 });
  const images = product.stringList('images') ?? [];
  if (images.length > 8) throw invalidRequest('You can provide at most 8 images.', product.name('images'));
  images.forEach((image, i) => {
    if (!URL.canParse(image)) throw invalidRequest('Not a valid URL', `${product.name('images')}[${i}]`, 'url_invalid');
  });
  product.metadata('metadata');
  const quantity = item.integer('quantity', { min: 1 });
  if (quantity === undefined) {
    throw invalidRequest(
      `Quantity is required. Add \`quantity\` to \`line_items[${index}]\``,
      item.name('quantity'),
      'parameter_missing',
    );
  }
  return { name, unitAmount, quantity, currency, taxCode, taxBehavior };
}

const TAX_BEHAVIORS = ['exclusive', 'inclusive', 'unspecified'] as const;

/** Stripe Tax's product tax codes are `txcd_` and eight digits (https://docs.stripe.com/tax/tax-codes). */
function parseTaxCode(params: Params): string | null {
  const code = params.string('tax_code');
  if (code === undefined) return null;
  if (!/^txcd_\d{8}$/.test(code)) throw resourceMissing('tax_code', code, params.name('tax_code'));
  return code;
}

function parseShippingCountries(params: Params): string[] | null {
  const collection = params.hash('shipping_address_collection');
  if (collection === undefined) return null;
  const countries = collection.stringList('allowed_countries');
  if (countries === undefined || countries.length === 0) throw missingParam(collection.name('allowed_countries'));
  countries.forEach((country, i) => {
    if (!CHECKOUT_SHIPPING_COUNTRIES.has(country)) {
      throw invalidRequest(
        `Invalid allowed_countries: ${country} is not a country Checkout ships to.`,
        `${collection.name('allowed_countries')}[${i}]`,
      );
    }
  });
  return countries;
}

// https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-shipping_options
const SESSION_MAX_SHIPPING_OPTIONS = 5;

/** `shipping_options[][shipping_rate_data]`: fixed-amount rates in the session's currency, made with the session. */
function parseShippingOptions(params: Params, currency: string): NewSession['shippingRates'] {
  const options = params.hashList('shipping_options') ?? [];
  if (options.length > SESSION_MAX_SHIPPING_OPTIONS) {
    throw invalidRequest(
      `You can specify up to ${SESSION_MAX_SHIPPING_OPTIONS} shipping options; this session has ${options.length}.`,
      'shipping_options',
    );
  }
  return options.map((option) => {
    const rateId = option.string('shipping_rate');
    // No ShippingRates API here: every rate id is unknown, as on a fresh account.
    if (rateId !== undefined) throw resourceMissing('shipping_rate', rateId, option.name('shipping_rate'));
    const data = option.hash('shipping_rate_data');
    if (data === undefined) throw missingParam(option.name('shipping_rate_data'));
    data.enumeration('type', ['fixed_amount']);
    const fixed = data.hash('fixed_amount');
    if (fixed === undefined) throw missingParam(data.name('fixed_amount'));
    const amount = fixed.requiredInteger('amount', { min: 0 });
    const rateCurrency = fixed.requiredString('currency').toLowerCase();
    if (rateCurrency !== currency) {
      throw invalidRequest(
        `The shipping rate's currency (${rateCurrency}) must be the session's currency (${currency}).`,
        fixed.name('currency'),
      );
    }
    const offStep = amountRefusal(amount, currency);
    if (offStep) throw invalidRequest(offStep, fixed.name('amount'), 'invalid_charge_amount');
    return {
      displayName: data.requiredString('display_name', { maxLength: 100 }),
      amount,
      currency,
      deliveryEstimate: parseDeliveryEstimate(data),
      taxBehavior: data.enumeration('tax_behavior', TAX_BEHAVIORS) ?? null,
      taxCode: parseTaxCode(data),
      metadata: data.metadata('metadata') ?? {},
    };
  });
}

function parseDeliveryEstimate(data: Params): Stripe.ShippingRate.DeliveryEstimate | null {
  const estimate = data.hash('delivery_estimate');
  if (estimate === undefined) return null;
  const bound = (key: 'minimum' | 'maximum') => {
    const value = estimate.hash(key);
    if (value === undefined) return null;
    return {
      unit: value.enumeration('unit', ['business_day', 'day', 'hour', 'month', 'week'] as const) ?? 'business_day',
      value: value.requiredInteger('value', { min: 1 }),
    };
  };
  return { minimum: bound('minimum'), maximum: bound('maximum') };
}
