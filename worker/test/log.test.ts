import { afterEach, describe, expect, it, vi } from 'vitest';
import { app } from '../src/index.ts';
import { log, redact, withLogContext } from '../src/log.ts';
import { callWithEnv, linesOf, testEnv, tokenFor } from './helpers.ts';
import { checkedOutCart, stripeEnv } from './stripe-helpers.ts';

afterEach(() => vi.restoreAllMocks());

describe('log lines', () => {
  it('carry the id of the request they were written for, the one its answer carries', async () => {
    let res: Response | undefined;
    const lines = await linesOf(async () => {
      res = await app.request('/v1/products', {}, { ...testEnv, DATABASE_URL: undefined });
    });
    expect(res!.status).toBe(500);
    expect(lines).toEqual([
      expect.objectContaining({ level: 'error', msg: 'request_failed', requestId: res!.headers.get('X-Request-Id') }),
    ]);
  });

  it('carry it from work the route does after its first await, such as reading a session back', async () => {
    const state = await checkedOutCart();
    let res: Response | undefined;
    const lines = await linesOf(async () => {
      res = await callWithEnv(
        { ...stripeEnv, STRIPE_API_BASE: 'http://127.0.0.1:9' },
        `/checkout/success?session_id=${state.sessionId}`,
      );
    });
    expect(res!.status).toBe(200);
    const line = lines.find((l) => l.msg === 'landing_page_reconcile_failed');
    expect(line).toMatchObject({ level: 'warn', requestId: res!.headers.get('X-Request-Id') });
  });

  it('of a scheduled run carry its run id', async () => {
    const lines = await linesOf(() => withLogContext({ cronRun: 'run-1' }, async () => log.info('scheduled')));
    expect(lines).toEqual([{ level: 'info', msg: 'scheduled', cronRun: 'run-1' }]);
  });

  it('never hold an email address or a credential, wherever it comes from', async () => {
    const token = await tokenFor('alice');
    const lines = await linesOf(async () =>
      log.error('stripe_failed', {
        error: new Error(`No such customer: alice.smith+shop@example.co.uk (Authorization: Bearer ${token})`),
        others: "bob@bücher.de, jörg.müller@example.com and o'brien@example.com",
        detail: `key sk_live_51Habc123 and rk_test_9xyz, secret whsec_abcDEF123, token ${token}`,
        key: '{"private_key":"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\n-----END PRIVATE KEY-----\\n"}',
        database:
          'connect to postgresql://neondb_owner:npg_Secret42@ep-cool-1.eu-central-1.aws.neon.tech/neondb failed',
      }),
    );
    const text = JSON.stringify(lines);
    for (const secret of [
      'alice.smith',
      'bob',
      'bücher',
      'jörg',
      'müller',
      'brien',
      'example.co.uk',
      token,
      token.split('.')[1]!,
      'sk_live_51Habc123',
      'rk_test_9xyz',
      'whsec_abcDEF123',
      'MIIEvQIBADANBg',
      'npg_Secret42',
      'neondb_owner',
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(lines[0]).toMatchObject({
      error: 'Error: No such customer: [email] (Authorization: Bearer [token])',
      others: '[email], [email] and [email]',
      detail: 'key [stripe-key] and [stripe-key], secret [webhook-secret], token [token]',
      database: 'connect to [database-url] failed',
    });
  });

  it('keep what an operator needs: ids, amounts, codes', () => {
    const line =
      '{"msg":"amount_mismatch","sessionId":"cs_test_a1B2","cartId":"0b9e4a1c-2f7e-4c55","eventId":"evt_1Q","amount":2500}';
    expect(redact(line)).toBe(line);
  });
});
