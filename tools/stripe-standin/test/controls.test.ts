import type Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestStandin } from './testing.ts';
import { control, createCartSession, startTestStandin } from './testing.ts';

let t: TestStandin;
beforeEach(async () => {
  t = await startTestStandin();
});
afterEach(() => t.standin.close());

interface ControlError {
  error: { message: string; param?: string };
}

describe('test controls', () => {
  it('pays a session as the hosted page would and tells where the shopper lands', async () => {
    const session = await createCartSession(t.stripe, { customer_email: 'ada@example.com' });
    const res = await control<{ session: Stripe.Checkout.Session; redirect_url: string }>(
      t.standin,
      `/sessions/${session.id}/pay`,
      { outcome: 'paid', name: 'Ada' },
    );
    expect(res.status).toBe(200);
    expect(res.body.redirect_url).toBe(`https://shop.example/checkout/success?session_id=${session.id}`);
    expect(res.body.session).toMatchObject({
      status: 'complete',
      customer_details: { email: 'ada@example.com', name: 'Ada' },
    });
  });

  it('answers clear errors for a bad outcome, an unknown session, a second payment and a bad body', async () => {
    const session = await createCartSession(t.stripe);
    const bad = await control<ControlError>(t.standin, `/sessions/${session.id}/pay`, { outcome: 'maybe' });
    expect(bad).toMatchObject({ status: 400, body: { error: { param: 'outcome' } } });

    expect((await control(t.standin, '/sessions/cs_test_nope/pay', { outcome: 'paid' })).status).toBe(404);

    await control(t.standin, `/sessions/${session.id}/pay`, { outcome: 'paid' });
    const twice = await control<ControlError>(t.standin, `/sessions/${session.id}/pay`, { outcome: 'paid' });
    expect(twice.status).toBe(409);
    expect(twice.body.error.message).toMatch(/no longer active/);

    const notJson = await fetch(`${t.standin.url}/_standin/sessions/${session.id}/pay`, {
      method: 'POST',
      body: '{oops',
    });
    expect(notJson.status).toBe(400);
  });

  it('refuses to settle a session that has no delayed payment', async () => {
    const session = await createCartSession(t.stripe);
    expect((await control(t.standin, `/sessions/${session.id}/async/succeed`, {})).status).toBe(409);
    expect((await control(t.standin, `/sessions/${session.id}/async/later`, {})).status).toBe(400);
  });

  it('validates webhook settings', async () => {
    expect((await control(t.standin, '/webhooks')).body).toEqual({
      url: null,
      enabled: true,
      payload_style: 'snapshot',
    });
    expect((await control(t.standin, '/webhooks', { enabled: 'no' })).status).toBe(400);
    expect((await control(t.standin, '/webhooks', { url: 'not a url' })).status).toBe(400);
    expect((await control(t.standin, '/webhooks', { payload_style: 'fat' })).status).toBe(400);
    expect((await control(t.standin, '/webhooks', { url: 'http://127.0.0.1:9/hook' })).body).toEqual({
      url: 'http://127.0.0.1:9/hook',
      enabled: true,
      payload_style: 'snapshot',
    });
  });

  it('forgets a session: Stripe answers 404 resource_missing for it from then on', async () => {
    const session = await createCartSession(t.stripe);
    expect(await control(t.standin, `/sessions/${session.id}/forget`, {})).toEqual({
      status: 200,
      body: { id: session.id, object: 'checkout.session', deleted: true },
    });
    const missing = { statusCode: 404, code: 'resource_missing', message: `No such checkout.session: '${session.id}'` };
    await expect(t.stripe.checkout.sessions.retrieve(session.id)).rejects.toMatchObject(missing);
    await expect(t.stripe.checkout.sessions.expire(session.id)).rejects.toMatchObject(missing);
    await expect(t.stripe.checkout.sessions.listLineItems(session.id)).rejects.toMatchObject(missing);
    expect((await control(t.standin, `/sessions/${session.id}/forget`, {})).status).toBe(404);
  });

  it('moves expires_at only of open sessions, and only to whole seconds', async () => {
    const session = await createCartSession(t.stripe);
    expect((await control(t.standin, `/sessions/${session.id}/expires_at`, { expires_at: 1.5 })).status).toBe(400);
    await t.stripe.checkout.sessions.expire(session.id);
    expect((await control(t.standin, `/sessions/${session.id}/expires_at`, { expires_at: 0 })).status).toBe(409);
  });
});
