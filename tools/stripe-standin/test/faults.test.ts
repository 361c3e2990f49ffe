import type Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Fault } from '../src/faults.ts';
import type { TestStandin } from './testing.ts';
import { API_KEY, addFault, clientFor, control, createCartSession, startTestStandin, stripeError } from './testing.ts';

// The fault controls (/_standin/faults): what a fault matches, how it counts down, and how each
// kind answers. How faults meet idempotency keys is in idempotency.test.ts.

let t: TestStandin;
beforeEach(async () => {
  t = await startTestStandin();
});
afterEach(() => {
  vi.useRealTimers();
  return t.standin.close();
});

async function remaining(): Promise<number[]> {
  return (await control<{ data: Fault[] }>(t.standin, '/faults')).body.data.map((f) => f.remaining);
}

describe('POST /_standin/faults', () => {
  it('answers the fault with its defaults: any method, once, no delay', async () => {
    const fault = await addFault(t.standin, { path: '/v1/checkout/sessions', status: 500 });
    expect(fault).toEqual({
      id: expect.stringMatching(/^fault_/),
      method: null,
      path: '/v1/checkout/sessions',
      status: 500,
      delayMs: 0,
      times: 1,
      remaining: 1,
    });
    expect((await control<{ data: Fault[] }>(t.standin, '/faults')).body.data).toEqual([fault]);
  });

  it.each([
    ['a path outside /v1', { path: '/_standin/events', status: 500 }, 'path'],
    ['a * inside the path', { path: '/v1/*/expire', status: 500 }, 'path'],
    ['a status Stripe faults do not have', { path: '/v1/refunds', status: 503 }, 'status'],
    ['neither status nor delay', { path: '/v1/refunds' }, 'status'],
    ['a negative delay', { path: '/v1/refunds', delayMs: -1 }, 'delayMs'],
    ['times 0', { path: '/v1/refunds', status: 500, times: 0 }, 'times'],
    ['an unknown method', { method: 'PATCH', path: '/v1/refunds', status: 500 }, 'method'],
    ['a 409 for GETs, which carry no Idempotency-Key', { method: 'get', path: '/v1/events', status: 409 }, 'status'],
  ])('refuses %s', async (_case, spec, param) => {
    const res = await control<{ error: { param: string } }>(t.standin, '/faults', spec);
    expect(res).toMatchObject({ status: 400, body: { error: { param } } });
    expect(await remaining()).toEqual([]);
  });
});

describe('matching and counting down', () => {
  it('affects `times` matching requests, by exact path or prefix, then disappears', async () => {
    await addFault(t.standin, { path: '/v1/checkout/sessions/*', status: 429, times: 2 });
    // The prefix ends in a slash, so creating (POST /v1/checkout/sessions) is not affected.
    const session = await createCartSession(t.stripe);
    expect(await remaining()).toEqual([2]);

    expect((await stripeError(t.stripe.checkout.sessions.retrieve(session.id))).statusCode).toBe(429);
    expect(await remaining()).toEqual([1]);
    expect((await stripeError(t.stripe.checkout.sessions.listLineItems(session.id))).statusCode).toBe(429);
    expect(await remaining()).toEqual([]);
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).id).toBe(session.id);
  });

  it('matches only its method, and only /v1 requests', async () => {
    const session = await createCartSession(t.stripe);
    await addFault(t.standin, { method: 'GET', path: `/v1/checkout/sessions/${session.id}*`, status: 500 });
    expect((await t.stripe.checkout.sessions.expire(session.id)).status).toBe('expired');
    expect((await fetch(`${t.standin.url}/c/pay/${session.id}`)).status).toBe(410);
    expect(await remaining()).toEqual([1]);
  });

  it('lets the oldest matching fault act first', async () => {
    await addFault(t.standin, { path: '/v1/events', status: 429 });
    await addFault(t.standin, { path: '/v1/events*', status: 429, times: 3 });
    await stripeError(t.stripe.events.list());
    expect(await remaining()).toEqual([3]);
  });

  it('counts the retries stripe-node makes of a GET that failed with 500 (no Stripe-Should-Retry)', async () => {
    const session = await createCartSession(t.stripe);
    await addFault(t.standin, { method: 'GET', path: '/v1/checkout/sessions/*', status: 500, times: 2 });
    const retrying = clientFor(t.standin, API_KEY, 2);
    const attempts: Stripe.RequestEvent[] = [];
    retrying.on('request', (event: Stripe.RequestEvent) => attempts.push(event));
    expect((await retrying.checkout.sessions.retrieve(session.id)).id).toBe(session.id);
    expect(attempts).toHaveLength(3);
    expect(await remaining()).toEqual([]);
  });

  it('clears one fault or all of them', async () => {
    const first = await addFault(t.standin, { path: '/v1/refunds', status: 500 });
    await addFault(t.standin, { path: '/v1/events', status: 429 });
    await addFault(t.standin, { path: '/v1/charges/*', delayMs: 10 });

    expect(await control(t.standin, `/faults/${first.id}`, undefined, 'DELETE')).toEqual({
      status: 200,
      body: { ...first, deleted: true },
    });
    expect((await control(t.standin, `/faults/${first.id}`, undefined, 'DELETE')).status).toBe(404);
    expect(await remaining()).toEqual([1, 1]);
    expect((await control(t.standin, '/faults', undefined, 'DELETE')).body).toEqual({ deleted: 2 });
    expect(await remaining()).toEqual([]);
  });
});

describe('what each fault answers', () => {
  it('404: resource_missing for the object in the path, or an unrecognized URL when it names none', async () => {
    await addFault(t.standin, { path: '/v1/payment_intents/*', status: 404 });
    const intent = await stripeError(t.stripe.paymentIntents.retrieve('pi_123'));
    expect(intent).toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
      param: 'intent',
      message: "No such payment_intent: 'pi_123'",
    });

    await addFault(t.standin, { path: '/v1/events', status: 404 });
    const list = await stripeError(t.stripe.events.list());
    expect(list).toMatchObject({
      statusCode: 404,
      message: expect.stringMatching(/^Unrecognized request URL \(GET: \/v1\/events\)/),
    });
  });

  it('delayMs alone: the request is held, then acts normally', async () => {
    const session = await createCartSession(t.stripe);
    await addFault(t.standin, { path: `/v1/checkout/sessions/${session.id}/expire`, delayMs: 200 });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const expiring = t.stripe.checkout.sessions.expire(session.id);
    // Used up: the request reached the fault. Without the hold it would have expired the session.
    await expect.poll(remaining).toEqual([]);
    vi.advanceTimersByTime(199);
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
    vi.advanceTimersByTime(1);
    expect((await expiring).status).toBe('expired');
  });

  it('delayMs with a status: held, then fails', async () => {
    await addFault(t.standin, { path: '/v1/events', status: 429, delayMs: 200 });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let settled = false;
    const failing = stripeError(t.stripe.events.list()).finally(() => {
      settled = true;
    });
    await expect.poll(remaining).toEqual([]);
    vi.advanceTimersByTime(199);
    // A round trip after the fault was used up: an answer sent without the hold would be here.
    await remaining();
    expect(settled).toBe(false);
    vi.advanceTimersByTime(1);
    expect((await failing).statusCode).toBe(429);
  });

  it('POST /_standin/faults/release ends the holds now: the held request acts at once', async () => {
    const session = await createCartSession(t.stripe);
    await addFault(t.standin, { path: `/v1/checkout/sessions/${session.id}/expire`, delayMs: 2 ** 31 - 1 });
    const expiring = t.stripe.checkout.sessions.expire(session.id);
    await expect.poll(remaining).toEqual([]);
    expect((await t.stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');

    expect((await control(t.standin, '/faults/release', {})).body).toEqual({ released: 1 });
    // Without the release this waits for the delay, some 24 days, and the test times out.
    expect((await expiring).status).toBe('expired');
    expect((await control(t.standin, '/faults/release', {})).body).toEqual({ released: 0 });
  });

  it('a closed stand-in drops the requests it holds instead of acting on them later', async () => {
    const log: string[] = [];
    const own = await startTestStandin({ log: (line) => log.push(line) });
    const stripe = clientFor(own.standin, API_KEY);
    await control(own.standin, '/faults', { path: '/v1/checkout/sessions', delayMs: 200 });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const held = createCartSession(stripe).then(
      () => 'answered',
      () => 'dropped',
    );
    await expect.poll(async () => (await control<{ data: Fault[] }>(own.standin, '/faults')).body.data).toEqual([]);
    await own.standin.close();
    expect(await held).toBe('dropped');
    // Past the hold's end: a hold that outlived close() would create the session now.
    await vi.advanceTimersByTimeAsync(200);
    expect(log.filter((line) => line.includes('created'))).toEqual([]);
  });
});
