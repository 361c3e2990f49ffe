import Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Fault } from '../src/faults.ts';
import type { TestStandin } from './testing.ts';
import {
  API_KEY,
  addFault,
  CART_SESSION,
  clientFor,
  control,
  createCartSession,
  startTestStandin,
  stripeError,
  waitFor,
} from './testing.ts';

// Stripe's idempotency rules under the faults that exercise them: what is saved (a 500 once the
// endpoint began executing), what is not (validation errors, 409s, 429s, 404s), and what a
// concurrent request with the same key sees.

let t: TestStandin;
let log: string[];
beforeEach(async () => {
  log = [];
  t = await startTestStandin({ log: (line) => log.push(line) });
});
afterEach(() => t.standin.close());

async function activeFaults(): Promise<Fault[]> {
  return (await control<{ data: Fault[] }>(t.standin, '/faults')).body.data;
}

/** A client that retries like the Worker's (maxNetworkRetries: 2), recording each attempt. */
function retryingClient(fetchFn?: typeof fetch): { stripe: Stripe; attempts: Stripe.RequestEvent[] } {
  const stripe = clientFor(t.standin, API_KEY, 2, fetchFn);
  const attempts: Stripe.RequestEvent[] = [];
  stripe.on('request', (event: Stripe.RequestEvent) => attempts.push(event));
  return { stripe, attempts };
}

/** Held until released: the first request stays in flight for as long as a test needs it there. */
const UNTIL_RELEASED = 2 ** 31 - 1;
const releaseHeld = () => control(t.standin, '/faults/release', {});

const created = () => log.filter((line) => /^session cs_test_\w+ created/.test(line));

describe('an injected 500', () => {
  it('fails before acting, is saved under the key and replayed for the same parameters only', async () => {
    await addFault(t.standin, { method: 'POST', path: '/v1/checkout/sessions', status: 500 });
    const { stripe, attempts } = retryingClient();

    const failed = await stripeError(stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'cart-1-v1' }));
    expect(failed).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(failed).toMatchObject({ statusCode: 500, rawType: 'api_error', message: 'An unknown error occurred' });
    // Stripe-Should-Retry: false keeps stripe-node from retrying into a replay of the same 500.
    expect(failed.headers?.['stripe-should-retry']).toBe('false');
    expect(attempts).toHaveLength(1);
    expect(created()).toEqual([]);
    expect(await activeFaults()).toEqual([]);

    // The fault is used up: this 500 can only come from the idempotency layer.
    const replayed = await stripeError(stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'cart-1-v1' }));
    expect(replayed).toMatchObject({ statusCode: 500, requestId: failed.requestId });
    expect(replayed.headers).toMatchObject({ 'idempotent-replayed': 'true', 'stripe-should-retry': 'false' });
    expect(created()).toEqual([]);

    const changed = await stripeError(
      stripe.checkout.sessions.create(
        { ...CART_SESSION, client_reference_id: 'cart-2' },
        { idempotencyKey: 'cart-1-v1' },
      ),
    );
    expect(changed).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(changed).toMatchObject({ statusCode: 400, rawType: 'idempotency_error' });

    const fresh = await stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'cart-1-v1-retry' });
    expect(fresh.status).toBe('open');
    expect(created()).toHaveLength(1);
  });

  it('leaves an expire undone', async () => {
    const session = await createCartSession(t.stripe);
    await addFault(t.standin, { path: `/v1/checkout/sessions/${session.id}/expire`, status: 500 });
    const error = await stripeError(t.stripe.checkout.sessions.expire(session.id, {}, { idempotencyKey: 'expire-1' }));
    expect(error.statusCode).toBe(500);
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
    expect((await t.stripe.events.list()).data).toEqual([]);
  });

  it('is not used up by a request that fails validation, which is not saved either', async () => {
    await addFault(t.standin, { path: '/v1/checkout/sessions', status: 500 });
    const invalid = await stripeError(
      t.stripe.checkout.sessions.create({ ...CART_SESSION, success_url: 'nope' }, { idempotencyKey: 'fix-me' }),
    );
    expect(invalid).toMatchObject({ statusCode: 400, code: 'url_invalid' });
    expect(await activeFaults()).toHaveLength(1);

    const failed = await stripeError(t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'fix-me' }));
    expect(failed.statusCode).toBe(500);
  });
});

describe('a request while another with its key is executing', () => {
  it('answers 409 idempotency_key_in_use and saves nothing; the first one’s result is replayed after', async () => {
    await addFault(t.standin, { path: '/v1/checkout/sessions', delayMs: UNTIL_RELEASED });
    const first = t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'double-tap' });
    // The first request took the delay: it is executing, its key in flight.
    await waitFor(async () => (await activeFaults()).length === 0);

    const second = await stripeError(t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'double-tap' }));
    expect(second).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(second).toMatchObject({
      statusCode: 409,
      code: 'idempotency_key_in_use',
      doc_url: 'https://stripe.com/docs/error-codes/idempotency-key-in-use',
      message:
        'There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): double-tap. Please try again later.',
    });
    expect(second.headers?.['idempotent-replayed']).toBeUndefined();

    await releaseHeld();
    const session = await first;
    const third = await t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'double-tap' });
    expect(third.id).toBe(session.id);
    expect(created()).toHaveLength(1);
  });

  it('is retried by stripe-node with the same key until it gets the first one’s result', async () => {
    await addFault(t.standin, { path: '/v1/checkout/sessions', delayMs: UNTIL_RELEASED });
    const first = t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'double-tap' });
    await waitFor(async () => (await activeFaults()).length === 0);

    // The first request finishes before stripe-node sees the second's 409; its retry then gets
    // the first one's result.
    const { stripe, attempts } = retryingClient(async (input, init) => {
      const response = await fetch(input, init);
      if (response.status === 409) {
        await releaseHeld();
        await first;
      }
      return response;
    });
    const second = await stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'double-tap' });
    expect(second.id).toBe((await first).id);
    expect(attempts.map((a) => a.idempotency_key)).toEqual(['double-tap', 'double-tap']);
    expect(created()).toHaveLength(1);
  });

  it('refuses other parameters with the key while the first is still executing', async () => {
    await addFault(t.standin, { path: '/v1/checkout/sessions', delayMs: UNTIL_RELEASED });
    const first = t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'k' });
    await waitFor(async () => (await activeFaults()).length === 0);
    const other = await stripeError(
      t.stripe.checkout.sessions.create({ ...CART_SESSION, client_reference_id: 'other' }, { idempotencyKey: 'k' }),
    );
    // Other parameters are refused as such, in flight or not.
    expect(other).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    await releaseHeld();
    await first;
  });
});

describe('faults that are not saved', () => {
  it('409: stripe-node retries with the same key, and the retry acts', async () => {
    await addFault(t.standin, { path: '/v1/checkout/sessions', status: 409 });
    const { stripe, attempts } = retryingClient();
    const session = await stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'busy' });
    expect(session.status).toBe('open');
    expect(attempts).toHaveLength(2);
    expect(created()).toHaveLength(1);
  });

  it('429: answered before the idempotency layer, even for a key with a saved response', async () => {
    const session = await t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'saved' });
    await addFault(t.standin, { path: '/v1/checkout/sessions', status: 429 });
    const limited = await stripeError(t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'saved' }));
    expect(limited).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect(limited).toMatchObject({ statusCode: 429, code: 'rate_limit', rawType: 'invalid_request_error' });
    expect(limited.message).toMatch(/^Testmode request rate limit exceeded/);
    expect((await t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'saved' })).id).toBe(session.id);
  });

  it('404: the retry with the same key acts', async () => {
    const session = await createCartSession(t.stripe);
    await addFault(t.standin, { path: `/v1/checkout/sessions/${session.id}/expire`, status: 404 });
    const missing = await stripeError(t.stripe.checkout.sessions.expire(session.id, {}, { idempotencyKey: 'expire' }));
    expect(missing).toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
      param: 'session',
      message: `No such checkout.session: '${session.id}'`,
    });
    expect((await t.stripe.checkout.sessions.expire(session.id, {}, { idempotencyKey: 'expire' })).status).toBe(
      'expired',
    );
  });
});

it('refuses an Idempotency-Key longer than 255 characters', async () => {
  const error = await stripeError(t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'k'.repeat(256) }));
  expect(error).toMatchObject({ statusCode: 400, rawType: 'invalid_request_error' });
  expect(created()).toEqual([]);
  expect((await t.stripe.checkout.sessions.create(CART_SESSION, { idempotencyKey: 'k'.repeat(255) })).status).toBe(
    'open',
  );
});
