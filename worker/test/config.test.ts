import { describe, expect, it, vi } from 'vitest';
import { config, type Env } from '../src/env.ts';
import { ApiError } from '../src/errors.ts';
import { call, callWithEnv, createProduct, db, newUser, openCart, problem, testEnv } from './helpers.ts';
import { checkedOutCart, deliver, eventsFor, stripeEnv } from './stripe-helpers.ts';

/** What config() makes of one variable: its value, or the problem it names. */
function read<N extends keyof Env>(name: N, value: string): unknown {
  try {
    return config({ [name]: value }).optional(name as never);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'misconfigured') return `misconfigured: ${err.message}`;
    throw err;
  }
}

describe('URLs the Worker calls', () => {
  it.each([
    'STRIPE_API_BASE',
    'NEON_HTTP_ENDPOINT',
    'AUTH_JWKS_URL',
    'PUBSUB_API_ENDPOINT',
    'PUBLIC_BASE_URL',
  ] as const)('%s: https anywhere, plain http only to this machine', (name) => {
    for (const ok of [
      'https://api.example.com',
      'http://127.0.0.1:12111',
      'http://localhost:8787',
      'http://[::1]:9/',
    ]) {
      expect(read(name, ok)).not.toMatch(/^misconfigured/);
    }
    for (const bad of [
      'http://api.example.com',
      'http://10.0.0.5:8080',
      'http://127.0.0.1.evil.example',
      'http://localhost.evil.example',
      'ftp://files.example',
      'javascript:alert(1)',
    ]) {
      expect(read(name, bad)).toBe(
        `misconfigured: ${name} is invalid: expected an https:// URL (http:// only for localhost)`,
      );
    }
  });
});

describe('origins the Worker builds URLs on', () => {
  it.each(['STRIPE_API_BASE', 'PUBSUB_API_ENDPOINT', 'PUBLIC_BASE_URL'] as const)(
    '%s: an origin, never a path, query, fragment or user that would be dropped or spliced into URLs',
    (name) => {
      expect(read(name, 'https://Shop.Example/')).toBe('https://shop.example');
      expect(read(name, 'http://127.0.0.1:8787//')).toBe('http://127.0.0.1:8787');
      for (const bad of [
        'https://shop.example/api',
        'https://shop.example/?src=app',
        'https://shop.example/#top',
        'https://user:pass@shop.example',
      ]) {
        expect(read(name, bad)).toBe(
          `misconfigured: ${name} is invalid: expected an origin: https://host[:port], no path (http:// only for localhost)`,
        );
      }
    },
  );
});

describe('DATABASE_URL', () => {
  it("is what Neon's driver can connect with: a user, a host and a database", () => {
    const good = 'postgres://shop:p%23ss@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/shop?sslmode=require';
    expect(read('DATABASE_URL', good)).toBe(good);
    // A `#` left unencoded in the password ends the URL there; each of these fails every query.
    for (const bad of [
      'postgres://shop:p#ss@ep-a-1.eu-central-1.aws.neon.tech/shop',
      'postgres://localhost',
      'postgres://ep-a-1.eu-central-1.aws.neon.tech/shop',
      'postgres://shop:p#ss@ep-a-1.eu-central-1.aws.neon.tech\\shop',
      'mysql://shop@db/shop',
    ]) {
      const answer = read('DATABASE_URL', bad);
      expect(answer).toMatch(/^misconfigured: DATABASE_URL is invalid: expected a postgres:\/\/ URL with a user/);
      expect(answer).not.toContain('p#ss');
    }
  });

  it("names a Neon endpoint's host, unless NEON_HTTP_ENDPOINT serves another Postgres: the password goes nowhere else", () => {
    for (const elsewhere of [
      'postgres://shop:s3cret@db.example.com/shop?sslmode=require',
      'postgres://shop:s3cret@ep-db.example.com/shop',
    ]) {
      const refused = () => config({ DATABASE_URL: elsewhere }).required('DATABASE_URL');
      expect(refused).toThrow(/^DATABASE_URL is invalid: expected a Neon endpoint's host \(ep-….neon.tech\)/);
      expect(refused).not.toThrow(/s3cret/);
    }
    const azure = 'postgres://shop:s3cret@ep-a-1-pooler.eastus2.azure.neon.tech/shop';
    expect(config({ DATABASE_URL: azure }).required('DATABASE_URL')).toBe(azure);
    const local = {
      DATABASE_URL: 'postgresql://shop@127.0.0.1:5432/shop',
      NEON_HTTP_ENDPOINT: 'http://127.0.0.1:4444/sql',
    };
    expect(config(local).required('DATABASE_URL')).toBe(local.DATABASE_URL);
  });

  it("holds the role's password for Neon, whose endpoint refuses a connection string without one", () => {
    for (const withoutPassword of [
      'postgres://shop@ep-a-1.eu-central-1.aws.neon.tech/shop?sslmode=require',
      'postgres://shop:@ep-a-1.eu-central-1.aws.neon.tech/shop',
    ]) {
      expect(() => config({ DATABASE_URL: withoutPassword }).required('DATABASE_URL')).toThrow(
        /^DATABASE_URL is invalid: expected the role's password in it/,
      );
    }
  });

  it('answers 500 misconfigured for a host other than Neon, and sends nothing there', async () => {
    const sent = vi.spyOn(globalThis, 'fetch');
    const { NEON_HTTP_ENDPOINT: _, ...production } = testEnv;
    const res = await callWithEnv(
      { ...production, DATABASE_URL: 'postgres://shop:s3cret@db.example.com/shop' },
      '/v1/products',
    );
    expect(res.status).toBe(500);
    const body = await problem(res);
    expect(body.code).toBe('misconfigured');
    expect(body.detail).toMatch(/^DATABASE_URL is invalid/);
    expect(sent.mock.calls.map(([input]) => String(input instanceof Request ? input.url : input))).not.toContainEqual(
      expect.stringContaining('example.com'),
    );
    sent.mockRestore();
  });
});

describe('values written in wrangler.toml as numbers, flags or tables', () => {
  it('are read as their text, not taken for unset', () => {
    // `[vars] CHECKOUT_TTL_MINUTES = 120` reaches the Worker as the number 120, not "120".
    const env = {
      CHECKOUT_TTL_MINUTES: 120,
      RETENTION_DAYS: 365,
      STRIPE_AUTOMATIC_TAX: true,
      ALLOW_PROMOTION_CODES: false,
      SHIPPING_RATES: [{ name: 'Standard', amount: 500, currency: 'usd' }],
      SHIPPING_COUNTRIES: ['US', 'CA'],
      CORS_ORIGINS: ['https://shop.example'],
    } as unknown as Env;
    const cfg = config(env);
    expect(cfg.optional('CHECKOUT_TTL_MINUTES')).toBe(120);
    expect(cfg.optional('RETENTION_DAYS')).toBe(365);
    expect(cfg.optional('STRIPE_AUTOMATIC_TAX')).toBe(true);
    expect(cfg.optional('ALLOW_PROMOTION_CODES')).toBe(false);
    expect(cfg.optional('SHIPPING_RATES')).toEqual([{ name: 'Standard', amount: 500, currency: 'usd' }]);
    expect(cfg.optional('SHIPPING_COUNTRIES')).toEqual(['US', 'CA']);
    expect(cfg.optional('CORS_ORIGINS')).toEqual(['https://shop.example']);
    expect(() => config({ CHECKOUT_TTL_MINUTES: 5 } as unknown as Env).optional('CHECKOUT_TTL_MINUTES')).toThrow(
      'CHECKOUT_TTL_MINUTES is invalid: expected whole minutes from 30 to 1440',
    );
  });

  it('take whole numbers only as decimal digits', () => {
    for (const bad of ['0x1E', '1e2', '30.0', '+30', '30.5']) {
      expect(read('CHECKOUT_TTL_MINUTES', bad)).toBe(
        'misconfigured: CHECKOUT_TTL_MINUTES is invalid: expected whole minutes from 30 to 1440',
      );
    }
    expect(read('RETENTION_DAYS', '1e2')).toMatch(/^misconfigured: RETENTION_DAYS is invalid: expected whole days/);
    expect(read('RETENTION_DAYS', '0100')).toBe(100);
  });
});

describe('SHIPPING_COUNTRIES and SHIPPING_RATES', () => {
  it('forgive spaces and a trailing comma in the country list, as in the other lists', () => {
    expect(read('SHIPPING_COUNTRIES', 'us, CA ,')).toEqual(['US', 'CA']);
    expect(read('SHIPPING_COUNTRIES', ',')).toBe(
      'misconfigured: SHIPPING_COUNTRIES is invalid: expected ISO country codes, comma-separated (US,CA)',
    );
  });

  it('take only countries Stripe Checkout ships to, each once', () => {
    expect(read('SHIPPING_COUNTRIES', 'us, CA,US')).toEqual(['US', 'CA']);
    expect(read('SHIPPING_COUNTRIES', 'US, CU')).toBe(
      'misconfigured: SHIPPING_COUNTRIES is invalid: expected countries Stripe Checkout ships to, which CU is not',
    );
    expect(read('SHIPPING_COUNTRIES', 'QQ,IR')).toMatch(/which QQ, IR is not$/);
  });

  it('read an empty list as no rates, whether wrangler.toml or the text gives it', () => {
    expect(read('SHIPPING_RATES', '[]')).toEqual([]);
    expect(read('SHIPPING_RATES', ' [ ] ')).toEqual([]);
    expect(config({ SHIPPING_RATES: [] } as unknown as Env).optional('SHIPPING_RATES')).toBeUndefined();
    expect(read('SHIPPING_RATES', '{}')).toBe(
      'misconfigured: SHIPPING_RATES is invalid: expected a JSON list of shipping rates',
    );
  });

  it('refuse a rate in a currency ISO 4217 does not have', () => {
    expect(read('SHIPPING_RATES', '[{"name":"Standard","amount":500,"currency":"abc"}]')).toBe(
      'misconfigured: SHIPPING_RATES is invalid: expected an ISO 4217 currency code in lower case (usd), of a currency Stripe charges in (at 0.currency)',
    );
  });

  it('name the rate and the field that is wrong', () => {
    expect(
      read(
        'SHIPPING_RATES',
        '[{"name":"Standard","amount":500,"currency":"usd"},{"name":"Express","amount":"9","currency":"usd"}]',
      ),
    ).toBe('misconfigured: SHIPPING_RATES is invalid: expected a whole amount in minor units, 0 or more (at 1.amount)');
  });

  it('refuse a rate name Checkout cannot show or the database cannot store, rather than every checkout in its currency', () => {
    for (const [name, expected] of [
      ['Standard\\u0000', 'text without NUL characters or unpaired surrogates'],
      ['Express \\ud83d', 'text without NUL characters or unpaired surrogates'],
      ['Line\\nbreak', 'one line of text, without control characters or line separators'],
      ['Red\\u001b[31m', 'one line of text, without control characters or line separators'],
    ]) {
      expect(read('SHIPPING_RATES', `[{"name":"${name}","amount":500,"currency":"usd"}]`)).toBe(
        `misconfigured: SHIPPING_RATES is invalid: expected ${expected} (at 0.name)`,
      );
    }
  });

  // Stripe takes twelve digits in IDR, eight in any other currency
  // (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
  it("hold each rate to Stripe's maximum in its own currency", () => {
    expect(read('SHIPPING_RATES', '[{"name":"Kurir","amount":150000000,"currency":"idr"}]')).toEqual([
      { name: 'Kurir', amount: 150_000_000, currency: 'idr' },
    ]);
    expect(read('SHIPPING_RATES', '[{"name":"Kurir","amount":1000000000000,"currency":"idr"}]')).toBe(
      "misconfigured: SHIPPING_RATES is invalid: expected at most 999999999999, Stripe's maximum amount in idr (at 0.amount)",
    );
    expect(read('SHIPPING_RATES', '[{"name":"Freight","amount":100000000,"currency":"usd"}]')).toBe(
      "misconfigured: SHIPPING_RATES is invalid: expected at most 99999999, Stripe's maximum amount in usd (at 0.amount)",
    );
  });

  it('refuse an amount Stripe refuses in its currency', () => {
    expect(read('SHIPPING_RATES', '[{"name":"Standard","amount":1005,"currency":"kwd"}]')).toBe(
      'misconfigured: SHIPPING_RATES is invalid: expected a multiple of 10, as Stripe takes amounts in kwd (at 0)',
    );
    expect(read('SHIPPING_RATES', '[{"name":"Standard","amount":1010,"currency":"kwd"}]')).toEqual([
      { name: 'Standard', amount: 1010, currency: 'kwd' },
    ]);
  });
});

describe('STRIPE_WEBHOOK_SECRET', () => {
  it('is one or more whsec_ secrets, comma-separated', () => {
    expect(read('STRIPE_WEBHOOK_SECRET', ' whsec_abc= ,  whsec_D/e+f ')).toEqual(['whsec_abc=', 'whsec_D/e+f']);
    for (const bad of ['whsec_abc whsec_def', 'whsec_abc;whsec_def', 'whsec_', 'sk_test_abc']) {
      expect(read('STRIPE_WEBHOOK_SECRET', bad)).toBe(
        'misconfigured: STRIPE_WEBHOOK_SECRET is invalid: expected whsec_… secrets, comma-separated (at 0)',
      );
    }
    expect(read('STRIPE_WEBHOOK_SECRET', ' , ')).toBe(
      'misconfigured: STRIPE_WEBHOOK_SECRET is invalid: expected whsec_… secrets, comma-separated',
    );
  });
});

describe('STRIPE_SECRET_KEY', () => {
  it('answers 500 misconfigured, not "try again", when Stripe refuses it (401), and the success page still shows the order', async () => {
    // Well formed, so only Stripe can tell: revoked, mistyped, or of another account.
    const env = { ...stripeEnv, STRIPE_SECRET_KEY: 'sk_live_revoked_or_mistyped' };
    const user = await newUser();
    const product = await createProduct();
    const cartId = await openCart(user.token, [{ id: product.id, quantity: 1 }], env);
    const res = await call(`/v1/carts/${cartId}/checkout`, { method: 'POST', token: user.token, env });
    expect(res.status).toBe(500);
    const body = await problem(res);
    expect(body).toMatchObject({
      code: 'misconfigured',
      detail: 'STRIPE_SECRET_KEY is not accepted by Stripe for this checkout (401)',
    });
    expect(JSON.stringify(body)).not.toContain('revoked');

    const state = await checkedOutCart();
    const page = await callWithEnv(env, `/checkout/success?session_id=${state.sessionId}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('data-status="checkout_pending"');
  });
});

describe('secrets', () => {
  it('are taken at any length the operator chose (the contract names no minimum)', () => {
    expect(read('AUTH_JWT_SECRET', 'test-secret')).toBe('test-secret');
    expect(read('ADMIN_API_KEY', 'admin')).toBe('admin');
    // Blank is unset: a route that needs it answers misconfigured, "ADMIN_API_KEY is not set".
    expect(read('ADMIN_API_KEY', '  ')).toBeUndefined();
  });
});

describe('GCP_PROJECT_ID and PUBSUB_TOPIC', () => {
  it("follow Google's rules, with the short project ids emulators are started with", () => {
    for (const ok of ['demo', 'test-project', 'example.com:shop-1']) expect(read('GCP_PROJECT_ID', ok)).toBe(ok);
    for (const bad of ['My_Project', 'shop-', 'projects/x']) {
      expect(read('GCP_PROJECT_ID', bad)).toBe(
        'misconfigured: GCP_PROJECT_ID is invalid: expected a Google Cloud project id',
      );
    }
    expect(read('PUBSUB_TOPIC', 'payment-events')).toBe('payment-events');
    for (const bad of ['pe', 'goog-events', 'a/b'])
      expect(read('PUBSUB_TOPIC', bad)).toMatch(/^misconfigured: PUBSUB_TOPIC/);
  });
});

describe('PUBSUB_EMULATOR_HOST', () => {
  it('is an emulator on this machine: plain HTTP without credentials goes nowhere else', () => {
    for (const ok of ['127.0.0.1:8085', 'localhost:8085', '[::1]:8085']) {
      expect(read('PUBSUB_EMULATOR_HOST', ok)).toBe(ok);
    }
    // As Google's client reads it.
    expect(read('PUBSUB_EMULATOR_HOST', 'http://localhost:8085/')).toBe('localhost:8085');
    for (const bad of [
      'pubsub.example.com:8085',
      '10.0.0.5:8085',
      '127.0.0.1.evil.example:80',
      'localhost',
      'https://localhost:8085',
      'http://pubsub.example.com:8085',
      'localhost:99999',
      '127.0.0.1:0',
    ]) {
      expect(read('PUBSUB_EMULATOR_HOST', bad)).toBe(
        'misconfigured: PUBSUB_EMULATOR_HOST is invalid: expected host:port of this machine (localhost, 127.x.x.x or [::1])',
      );
    }
  });
});

describe('APP_RETURN_URL', () => {
  it('is an absolute https URL or an app scheme', () => {
    for (const ok of [
      'https://shop.example/orders',
      'myshop://orders',
      'com.example.shop://return',
      'http://127.0.0.1:8787/',
    ]) {
      expect(read('APP_RETURN_URL', ok)).toBe(ok);
    }
  });

  it.each([
    'javascript:alert(document.cookie)',
    'JavaScript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'vbscript:msgbox',
    'file:///etc/passwd',
    'http://shop.example/orders',
    '/orders',
    'orders',
    'mailto:shop@example.com',
    'tel:+15555550100',
    'sms:+15555550100',
    'myshop://',
    'myshop:///',
  ])('refuses %s', (bad) => {
    expect(read('APP_RETURN_URL', bad)).toMatch(/^misconfigured: APP_RETURN_URL is invalid/);
  });

  it('when invalid costs the landing page its link to the app, never the page', async () => {
    const state = await checkedOutCart();
    await deliver(eventsFor(state).completedPaid());
    const res = await callWithEnv(
      { ...stripeEnv, APP_RETURN_URL: '/orders' },
      `/checkout/success?session_id=${state.sessionId}`,
    );
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('Payment received');
    expect(html).not.toContain('class="button"');
  });
});

describe('CORS_ORIGINS and RETENTION_DAYS', () => {
  it('reads origins, comma-separated, http or https, without paths', () => {
    expect(read('CORS_ORIGINS', 'https://shop.example, http://localhost:5173,http://shop.example/')).toEqual([
      'https://shop.example',
      'http://localhost:5173',
      'http://shop.example',
    ]);
    // As a browser sends it in Origin: host in lower case, no default port.
    expect(read('CORS_ORIGINS', 'https://Shop.example:443,http://LOCALHOST:80')).toEqual([
      'https://shop.example',
      'http://localhost',
    ]);
    expect(read('CORS_ORIGINS', 'https://shop.example/app')).toMatch(/^misconfigured: CORS_ORIGINS/);
    expect(read('CORS_ORIGINS', 'https://shop.example?x')).toMatch(/^misconfigured: CORS_ORIGINS/);
    expect(read('CORS_ORIGINS', 'ftp://shop.example')).toMatch(/^misconfigured: CORS_ORIGINS/);
    // A hybrid app's web view on iOS sends its own scheme as its origin (http and https are the system's).
    expect(read('CORS_ORIGINS', 'https://shop.example,capacitor://localhost,Ionic://LocalHost/')).toEqual([
      'https://shop.example',
      'capacitor://localhost',
      'ionic://localhost',
    ]);
    expect(read('CORS_ORIGINS', 'capacitor://localhost/app')).toMatch(/^misconfigured: CORS_ORIGINS/);
    expect(read('CORS_ORIGINS', 'myapp:callback')).toMatch(/^misconfigured: CORS_ORIGINS/);
    expect(read('CORS_ORIGINS', '*')).toMatch(/^misconfigured: CORS_ORIGINS/);
  });

  it('keeps data 90 days by default and never less than the 30 days Stripe may resend an event', () => {
    expect(config({}).optional('RETENTION_DAYS')).toBe(90);
    expect(read('RETENTION_DAYS', '45')).toBe(45);
    expect(read('RETENTION_DAYS', '7')).toBe(
      'misconfigured: RETENTION_DAYS is invalid: expected whole days from 30 to 3650',
    );
  });
});

describe('request bodies', () => {
  it.each([
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/xml',
    'multipart/form-data; boundary=x',
    null,
  ])('answers a JSON body sent as %s with 415 problem+json, changing nothing', async (contentType) => {
    const user = await newUser();
    const product = await createProduct();
    const cart = (await (await call('/v1/carts', { method: 'POST', token: user.token })).json()) as { id: string };
    const headers: Record<string, string> = contentType ? { 'Content-Type': contentType } : {};
    const res = await call(`/v1/carts/${cart.id}/items/${product.id}`, {
      method: 'PUT',
      token: user.token,
      headers,
      body: '{"quantity":1}',
    });
    expect(res.status).toBe(415);
    expect((await problem(res)).code).toBe('unsupported_media_type');
    const after = (await (await call(`/v1/carts/${cart.id}`, { token: user.token })).json()) as { items: unknown[] };
    expect(after.items).toEqual([]);
  });

  // A charset parameter has no effect on JSON (RFC 8259 §11): the bytes decide.
  it.each([
    'application/json; charset=utf-8',
    'application/json;charset="UTF-8"',
    'application/json; charset=iso-8859-1',
  ])('takes a JSON body sent as %s', async (contentType) => {
    const user = await newUser();
    const product = await createProduct();
    const cart = (await (await call('/v1/carts', { method: 'POST', token: user.token })).json()) as { id: string };
    const res = await call(`/v1/carts/${cart.id}/items/${product.id}`, {
      method: 'PUT',
      token: user.token,
      headers: { 'Content-Type': contentType },
      body: '{"quantity":1}',
    });
    expect(res.status).toBe(200);
  });

  it('answers a body that is not UTF-8 with 400 validation_failed, storing nothing (no U+FFFD in its place)', async () => {
    const id = `utf8-${crypto.randomUUID().slice(0, 8)}`;
    const name = new TextEncoder().encode('{"name":"caf?","unitAmount":100,"currency":"usd"}');
    name[name.indexOf(0x3f)] = 0xe9; // é in Latin-1, a lone continuation-less byte in UTF-8
    const res = await call(`/v1/admin/products/${id}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${testEnv.ADMIN_API_KEY}`, 'Content-Type': 'application/json' },
      body: name,
    });
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe('validation_failed');
    expect(await db().query('SELECT 1 FROM products WHERE id = $1', [id])).toHaveLength(0);
  });

  it('answers a missing body with 400 validation_failed', async () => {
    const user = await newUser();
    const res = await call(`/v1/carts/${crypto.randomUUID()}/items/tee`, { method: 'PUT', token: user.token });
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe('validation_failed');
  });
});
