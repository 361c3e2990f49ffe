// Property-based fuzzing of every route of /openapi.json (fast-check): random and boundary
// values from each route's own schema, wrong types, huge and unicode strings, broken JSON,
// wrong content types, odd headers, bad and foreign credentials, signed webhooks with strange
// payloads. Whatever arrives: never a 5xx; every 4xx is a problem (problem+json, or an HTML
// page on the landing pages) and changes nothing in the database.
//
// `npm test` sends FUZZ_REQUESTS (default 3000); FUZZ_REQUESTS=50000 npx vitest run --project
// worker test/fuzz.test.ts sends more, FUZZ_SEED=… replays a run (fast-check prints the seed
// of a failing one).
import fc from 'fast-check';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { HANDLED_EVENT_TYPES } from '../src/stripe-events.ts';
import { call, callWithEnv, createProduct, db, newUser, testEnv, tokenFor } from './helpers.ts';
import { checkedOutCart, signatureFor } from './stripe-helpers.ts';

type Schema = {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
};
type Parameter = { name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema: Schema };
type Operation = {
  method: string;
  path: string;
  parameters: Parameter[];
  body: Schema | null;
  security: 'user' | 'admin' | null;
  /** The statuses the document declares for it. */
  statuses: string[];
};
type Sent = { method: string; url: string; headers: Record<string, string>; body?: string | Uint8Array };

// Routes whose successful call changes rows no test owns (every failed outbox row): the fuzz
// sends them only without valid credentials, so other test files' rows stay as they are.
const GLOBAL_EFFECTS = new Set(['post /v1/admin/outbox/retry']);

let ops: Operation[] = [];
let components: Record<string, Schema> = {};
const actors: { id: string; token: string; carts: string[] }[] = [];
const productIds: string[] = [];
const sessionIds: string[] = [];
/** Everything the fuzz may touch, for the database fingerprint. */
const touched = { products: new Set<string>(), events: new Set<string>() };

beforeAll(async () => {
  const doc = (await (await call('/openapi.json')).json()) as {
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: Parameter[];
          requestBody?: { content: Record<string, { schema: Schema }> };
          security?: Record<string, unknown>[];
          responses: Record<string, unknown>;
        }
      >
    >;
    components: { schemas: Record<string, Schema> };
  };
  components = doc.components.schemas;
  ops = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      parameters: op.parameters ?? [],
      body: op.requestBody?.content['application/json']?.schema ?? null,
      security: op.security ? (Object.keys(op.security[0]!)[0] === 'adminKey' ? 'admin' : 'user') : null,
      statuses: Object.keys(op.responses),
    })),
  );
  for (const p of await Promise.all([
    createProduct(),
    createProduct({ unitAmount: 99_999_999 }),
    createProduct({ currency: 'eur' }),
  ])) {
    productIds.push(p.id);
  }
  // Shoppers with something in every state the fuzz can reach from: an empty cart, a cart with
  // items, a cart in checkout.
  for (let i = 0; i < 6; i++) {
    const user = await newUser();
    const cart = (await (await call('/v1/carts', { method: 'POST', token: user.token })).json()) as { id: string };
    if (i % 2) {
      await call(`/v1/carts/${cart.id}/items/${productIds[0]}`, {
        method: 'PUT',
        token: user.token,
        json: { quantity: 2 },
      });
    }
    actors.push({ ...user, carts: [cart.id] });
  }
  for (let i = 0; i < 3; i++) {
    const state = await checkedOutCart();
    actors.push({ ...state.user, carts: [state.cartId] });
    sessionIds.push(state.sessionId);
    productIds.push(...state.products.map((p) => p.id));
  }
});

/** Every row the fuzz's actors, products and events own (outbox publishing state aside: it moves by itself), as `kind text`. */
const OWNED_ROWS = `
  WITH c AS (SELECT * FROM carts WHERE user_id = ANY($1))
  -- Checkout claims its Stripe idempotency key in the round trip that reads the cart, before
  -- it can refuse the cart (checkout.ts); the next checkout reuses that claim. Not a change.
  SELECT 'cart' AS kind, (to_jsonb(c) - 'checkout_attempt' - 'checkout_attempt_expires_at')::text AS x FROM c
  UNION ALL SELECT 'item', row(i.*)::text FROM cart_items i JOIN c ON c.id = i.cart_id
  UNION ALL SELECT 'checkout', row(k.session_id, k.cart_id, k.customer, k.amount_total, k.items)::text
    FROM checkouts k JOIN c ON c.id = k.cart_id
  UNION ALL SELECT 'outbox', row(o.id, o.cart_id, o.event_type, o.discarded_at, o.failed_at)::text
    FROM outbox o JOIN c ON c.id = o.cart_id
  UNION ALL SELECT 'event', row(e.*)::text FROM payment_events e WHERE e.cart_id IN (SELECT id FROM c) OR e.id = ANY($3)
  UNION ALL SELECT 'product', row(p.*)::text FROM products p WHERE p.id = ANY($2)`;

const ownedParams = () => [actors.map((a) => a.id), [...touched.products], [...touched.events]];

/** One hash per owned row, in order: equal lists, nothing changed. */
async function fingerprint(): Promise<string> {
  const [row] = (await db().query(
    `SELECT string_agg(kind || ' ' || md5(x), ',' ORDER BY kind, md5(x)) AS h FROM (${OWNED_ROWS}) r`,
    ownedParams(),
  )) as [{ h: string }];
  return row.h;
}

/** The rows that are not as they were in `before` (a fingerprint): what a failure message shows. */
async function changedRows(before: string): Promise<string[]> {
  const known = new Set(before.split(','));
  const rows = (await db().query(`SELECT kind, x, md5(x) AS h FROM (${OWNED_ROWS}) r`, ownedParams())) as {
    kind: string;
    x: string;
    h: string;
  }[];
  const now = new Set(rows.map((r) => `${r.kind} ${r.h}`));
  const gone = [...known].filter((k) => !now.has(k)).map((k) => `gone: ${k}`);
  return [...rows.filter((r) => !known.has(`${r.kind} ${r.h}`)).map((r) => `${r.kind}: ${r.x.slice(0, 500)}`), ...gone];
}

// ---- values -------------------------------------------------------------------------------

const huge = fc.constantFrom('x'.repeat(70_000), '9'.repeat(5_000), '💳'.repeat(20_000));
const wildString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '0',
      '-1',
      'null',
      'true',
      '[]',
      '{}',
      'NaN',
      '1e309',
      '../..',
      '%00',
      'a\u0000b',
      'x\uD800',
      '\uDFFF',
      "' OR 1=1 --",
      '<script>',
    ),
  },
  { weight: 1, arbitrary: huge },
);
const wildValue: fc.Arbitrary<unknown> = fc.oneof(
  wildString,
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 2 ** 31, 2 ** 53, -(2 ** 53), 1.5, 1e308, null, true, false),
  fc.array(fc.anything(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.anything(), { maxKeys: 3 }),
);

/** Values that fit `schema` (boundaries included), sometimes just outside it, sometimes anything. */
function fromSchema(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  if (schema.$ref) return fromSchema(components[schema.$ref.split('/').at(-1)!]!, depth);
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) return fc.oneof(...variants.map((s) => fromSchema(s, depth)));
  if (schema.enum)
    return fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...schema.enum) }, { weight: 1, arbitrary: wildValue });
  const types = Array.isArray(schema.type) ? schema.type : [schema.type ?? 'string'];
  const fitting = types.map((type): fc.Arbitrary<unknown> => {
    switch (type) {
      case 'null':
        return fc.constant(null);
      case 'boolean':
        return fc.boolean();
      case 'integer':
      case 'number': {
        const min = schema.minimum ?? -(2 ** 31);
        const max = schema.maximum ?? 2 ** 31;
        return fc.oneof(
          fc.integer({ min, max }),
          fc.constantFrom(min, max, min - 1, max + 1),
          type === 'number' ? fc.double({ min, max, noNaN: true }) : fc.constant(min + 0.5),
        );
      }
      case 'array':
        return depth > 2 ? fc.constant([]) : fc.array(fromSchema(schema.items ?? {}, depth + 1), { maxLength: 4 });
      case 'object': {
        const props = Object.entries(schema.properties ?? {});
        const required = new Set(schema.required ?? []);
        if (depth > 2) return fc.constant({});
        return fc.record(
          Object.fromEntries([
            ...props.map(([name, s]) => [name, fromSchema(s, depth + 1)] as const),
            ['unexpected', wildValue] as const,
          ]),
          { requiredKeys: props.filter(([name]) => required.has(name)).map(([name]) => name) },
        );
      }
      default:
        return stringFor(schema);
    }
  });
  return fc.oneof({ weight: 6, arbitrary: fc.oneof(...fitting) }, { weight: 1, arbitrary: wildValue });
}

function stringFor(schema: Schema): fc.Arbitrary<string> {
  if (schema.format === 'uuid') return fc.uuid();
  if (schema.format === 'uri') return fc.webUrl();
  if (schema.format === 'date-time') return fc.date({ noInvalidDate: true }).map((d) => d.toISOString());
  if (schema.pattern) {
    const fitting = fc.stringMatching(new RegExp(schema.pattern));
    return schema.maxLength ? fitting.filter((s) => s.length <= schema.maxLength!) : fitting;
  }
  return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 60, 60) });
}

// ---- requests -------------------------------------------------------------------------------

const actor = () => fc.nat(actors.length - 1).map((i) => actors[i]!);

/** A value for a path or query parameter: ours (a real cart, product, session), from its schema, or wild. */
function parameterValue(param: Parameter, owner: (typeof actors)[number]): fc.Arbitrary<string> {
  const ours: Record<string, () => fc.Arbitrary<string>> = {
    cartId: () => fc.oneof(fc.constantFrom(...owner.carts), fc.constantFrom(...actors.flatMap((a) => a.carts))),
    cart_id: () => fc.constantFrom(...actors.flatMap((a) => a.carts)),
    productId: () => fc.constantFrom(...productIds),
    session_id: () => fc.constantFrom(...sessionIds),
  };
  const options: fc.Arbitrary<unknown>[] = [fromSchema(param.schema), wildString];
  if (ours[param.name]) options.unshift(ours[param.name]!(), ours[param.name]!());
  return fc.oneof(...options).map((v) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? '')));
}

/** Printable ASCII: what a header carries (workerd sends anything beyond as UTF-8, which no client does). */
const headerText = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 200,
});

/** `text` with lone surrogates replaced, as a URL can only carry well-formed text. */
function wellFormed(text: string): string {
  return text.replace(/[\uD800-\uDFFF]/gu, '\uFFFD');
}

function pathSegment(value: string): fc.Arbitrary<string> {
  const encoded = encodeURIComponent(wellFormed(value));
  return fc.oneof(
    { weight: 8, arbitrary: fc.constant(encoded) },
    { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%00', '..', '%2F', '%2e%2e', '%C0%AF', ';x=1', 'a%20b') },
  );
}

async function credential(kind: string, owner: (typeof actors)[number]): Promise<string | undefined> {
  switch (kind) {
    case 'user':
      return `Bearer ${owner.token}`;
    case 'admin':
      return `Bearer ${testEnv.ADMIN_API_KEY}`;
    case 'expired':
      return `Bearer ${await tokenFor(owner.id, { expiresIn: Math.floor(Date.now() / 1000) - 60 })}`;
    case 'foreign':
      return `Bearer ${await tokenFor(owner.id, { secret: 'another-tenant-secret-0123456789' })}`;
    case 'no-sub':
      return `Bearer ${await tokenFor('', {})}`;
    default:
      return kind === 'none' ? undefined : kind;
  }
}

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=zz',
  'application/xml',
  'application/json;;',
  '',
];

function body(op: Operation): fc.Arbitrary<string | Uint8Array | undefined> {
  const json = op.body
    ? fromSchema(op.body).map((v) => JSON.stringify(v))
    : fc.jsonValue().map((v) => JSON.stringify(v));
  return fc.oneof(
    { weight: op.body ? 8 : 1, arbitrary: json },
    { weight: op.body ? 2 : 6, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: json.map((s) => s.slice(0, Math.max(0, s.length - 1 - (s.length % 3)))) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 50 }) },
    // Bytes that are not UTF-8 (0xFF never is), which a JavaScript string cannot carry.
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 20 }).map((bytes) => Uint8Array.from([...bytes, 0xff])) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '',
        'null',
        '[]',
        '{"quantity":1,"quantity":2}',
        '{"__proto__":{"x":1}}',
        '{"a":'.repeat(200),
      ),
    },
    { weight: 1, arbitrary: huge.map((s) => JSON.stringify({ name: s, quantity: 1 })) },
  );
}

/** A Stripe event of a type we handle, with a payload that may be anything: signed, so it gets past verification. */
const strangeEvent = () =>
  fc
    .record({
      id: fc.oneof(
        fc.uuid().map((u) => `evt_fuzz_${u}`),
        fc.string({ maxLength: 30 }),
      ),
      // The types we act on, and one we do not.
      type: fc.constantFrom(...HANDLED_EVENT_TYPES, 'customer.created'),
      object: fc.oneof(
        fc.record({
          id: fc.oneof(fc.constantFrom(...sessionIds), fc.string({ maxLength: 20 })),
          object: fc.constantFrom('checkout.session', 'charge', 'dispute'),
          client_reference_id: fc.oneof(fc.uuid(), wildValue),
          metadata: fc.oneof(fc.record({ cart_id: fc.oneof(fc.uuid(), wildValue) }), wildValue),
          payment_status: fc.oneof(fc.constantFrom('paid', 'unpaid', 'no_payment_required'), wildValue),
          status: fc.oneof(fc.constantFrom('complete', 'expired', 'open'), wildValue),
          amount_total: fromSchema({ type: 'integer', minimum: 0, maximum: 99_999_999 }),
          amount_refunded: fromSchema({ type: 'integer', minimum: 0, maximum: 99_999_999 }),
          currency: fc.oneof(fc.constantFrom('usd', 'eur'), wildValue),
          payment_intent: fc.oneof(fc.string({ maxLength: 20 }), wildValue),
          customer_details: fc.oneof(fc.record({ email: wildValue, name: wildValue }), wildValue),
        }),
        fc.dictionary(fc.string({ maxLength: 10 }), fc.anything(), { maxKeys: 5 }),
      ),
      created: fc.oneof(fc.integer({ min: 0, max: 2 ** 31 }), wildValue),
    })
    .map((e) => ({ id: e.id, object: 'event', type: e.type, created: e.created, data: { object: e.object } }));

/** What gets signed: mostly such an event, sometimes any text or JSON (signed, yet no event at all). */
const signedBody = () =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: strangeEvent().map((event) => ({ id: event.id as unknown, payload: JSON.stringify(event) })),
    },
    {
      weight: 1,
      arbitrary: fc
        .oneof(fc.string({ maxLength: 40 }), fc.json({ maxDepth: 2 }))
        .map((payload) => ({ id: undefined as unknown, payload })),
    },
  );

/** A request to one of the routes; built once the routes and the actors are known. */
const requests = (): fc.Arbitrary<{ op: Operation; build: () => Promise<Sent> }> =>
  fc.constantFrom(...ops).chain((op) =>
    actor().chain((owner) => {
      const params = op.parameters.filter((p) => p.in !== 'header');
      const credentials = GLOBAL_EFFECTS.has(`${op.method.toLowerCase()} ${op.path}`)
        ? fc.constantFrom('none', 'Bearer nope', 'expired')
        : fc.oneof(
            { weight: 6, arbitrary: fc.constant(op.security ?? 'none') },
            { weight: 3, arbitrary: fc.constantFrom('none', 'user', 'admin', 'expired', 'foreign', 'no-sub') },
            {
              weight: 1,
              arbitrary: fc.oneof(
                headerText,
                headerText.map((t) => `Bearer ${t}`),
                fc.constant('Bearer '),
              ),
            },
          );
      return fc
        .record({
          op: fc.constant(op),
          method: fc.oneof(
            { weight: 12, arbitrary: fc.constant(op.method) },
            { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS') },
          ),
          values: fc.tuple(
            ...params.map((p) =>
              fc.option(
                parameterValue(p, owner).chain((v) => (p.in === 'path' ? pathSegment(v) : fc.constant(v))),
                { freq: p.required ? 12 : 2 },
              ),
            ),
          ),
          extraQuery: fc.option(fc.tuple(fc.string({ maxLength: 10 }), wildString), { freq: 4 }),
          credential: credentials,
          contentType: fc.oneof(
            { weight: 6, arbitrary: fc.constant('application/json') },
            { weight: 3, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
            { weight: 1, arbitrary: headerText },
          ),
          body: body(op),
          signed: op.path === '/v1/webhooks/stripe' ? fc.option(signedBody(), { freq: 2 }) : fc.constant(null),
          extraHeaders: fc.dictionary(
            fc.constantFrom(
              'Accept',
              'Origin',
              'X-Request-Id',
              'Stripe-Signature',
              'Idempotency-Key',
              'Accept-Encoding',
              'X-Forwarded-For',
              'Cookie',
            ),
            headerText,
            { maxKeys: 3 },
          ),
        })
        .map((r) => ({
          op,
          // What fast-check prints for a failing request: what was drawn, not the code that sends it.
          [fc.toStringMethod]: () => fc.stringify({ ...r, op: `${op.method} ${op.path}`, owner: owner.id }),
          build: async (): Promise<Sent> => {
            let path = op.path;
            const query = new URLSearchParams();
            for (const [i, p] of params.entries()) {
              const value = r.values[i];
              if (p.in === 'path') path = path.replace(`{${p.name}}`, value ?? '');
              else if (value !== null) query.append(p.name, wellFormed(value));
            }
            if (r.extraQuery) query.append(wellFormed(r.extraQuery[0]), wellFormed(r.extraQuery[1]));
            if (path.startsWith('/v1/admin/products/'))
              watch(touched.products, decodeURIComponentSafe(path.split('/')[4]!));
            const headers: Record<string, string> = { ...r.extraHeaders };
            const auth = await credential(r.credential, owner);
            if (auth !== undefined) headers.Authorization = auth;
            if (r.contentType !== '') headers['Content-Type'] = r.contentType;
            let payload = r.method === 'GET' ? undefined : r.body;
            if (r.signed && r.method !== 'GET') {
              payload = r.signed.payload;
              watch(touched.events, r.signed.id);
              headers['Content-Type'] = 'application/json';
              headers['Stripe-Signature'] = await signatureFor(payload);
            }
            const qs = query.toString();
            return { method: r.method, url: `${path}${qs ? `?${qs}` : ''}`, headers, body: payload };
          },
        }));
    }),
  );

/** Watches a row id; text with NUL cannot be a row's id in Postgres (nor a query parameter). */
function watch(ids: Set<string>, id: unknown): void {
  if (typeof id === 'string' && !id.includes('\0')) ids.add(id);
}

function decodeURIComponentSafe(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

// ---- the property -----------------------------------------------------------------------

const { requests: numRuns, seed } = inject('fuzz');

describe('fuzzing every route of /openapi.json', () => {
  // About 8 ms a request here, several times that on a busy machine: room for runs of any size.
  it('never answers 5xx; every 4xx is a problem and changes nothing', {
    timeout: Math.max(600_000, numRuns * 50),
  }, async () => {
    const totals = { requests: 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
    const codes = new Map<string, number>();
    const routes = new Set<string>();
    let before = await fingerprint();

    await fc.assert(
      fc.asyncProperty(requests(), async ({ op, build }) => {
        const watched = touched.products.size + touched.events.size;
        const sent = await build();
        // The request names a product or event not watched yet: watch it from before the request on.
        if (touched.products.size + touched.events.size !== watched) before = await fingerprint();
        // Through the app with an execution context of its own, waiting for its waitUntil work, so
        // the fingerprint sees all a request did. (exports.default.fetch slows down with every
        // request a test makes: hundreds are fine, thousands are not.)
        const res = await callWithEnv(testEnv, sent.url, {
          method: sent.method,
          headers: sent.headers,
          body: sent.body,
        });
        const text = await res.text();
        const after = await fingerprint();
        const changed = after === before ? null : res.status >= 400 ? (await changedRows(before)).join('\n') : '';
        before = after;
        const what = wellFormed(
          `${sent.method} ${sent.url.slice(0, 200)} ${JSON.stringify(sent.headers).slice(0, 300)} ${sent.body?.slice(0, 300)} → ${res.status} ${text.slice(0, 300)}`,
        );
        totals.requests++;
        totals[`${Math.floor(res.status / 100)}xx` as keyof typeof totals]++;
        routes.add(`${op.method} ${op.path}`);

        expect(res.status, what).toBeLessThan(500);
        // A client generated from the document knows every answer its operation can give. A
        // parameter made empty can leave the route (that answer is no route's), and so can one
        // that is a dot segment, "." or "..", which every URL parser removes (RFC 3986 §5.2.4):
        // /v1/carts/./checkout is /v1/carts/checkout, another route's path.
        const noRoute = res.status === 404 && text.includes('"detail":"No such route"');
        const leftRoute = new URL(sent.url, 'http://fuzz').pathname.split('/').length !== op.path.split('/').length;
        if (sent.method === op.method && !noRoute && !leftRoute)
          expect(op.statuses, what).toContain(String(res.status));
        if (res.status >= 400) {
          const type = res.headers.get('Content-Type') ?? '';
          // The landing pages answer people, with pages; another method there is no route (problem+json).
          if (op.path.startsWith('/checkout/') && sent.method === op.method) {
            expect(type, what).toMatch(/^text\/html/);
            expect(text, what).toContain('Reference:');
            codes.set(`page ${res.status}`, (codes.get(`page ${res.status}`) ?? 0) + 1);
          } else {
            expect(type, what).toBe('application/problem+json');
            const problem = JSON.parse(text) as { status: number; code: string; requestId: string };
            expect(problem.status, what).toBe(res.status);
            expect(problem.requestId, what).toBe(res.headers.get('X-Request-Id'));
            codes.set(problem.code, (codes.get(problem.code) ?? 0) + 1);
          }
          // Well-formed text only: the message travels to vitest over a WebSocket, which refuses lone surrogates.
          if (changed !== null) expect.fail(`a rejected request changed the database: ${what}\n${wellFormed(changed)}`);
        }
      }),
      // The state moves with every request: a shrunk request would run against another state, so
      // the first failing one is reported as it was.
      { numRuns, seed, endOnFailure: true },
    );

    console.log(
      `fuzz: ${totals.requests} requests over ${routes.size} of ${ops.length} routes: 2xx ${totals['2xx']}, 3xx ${totals['3xx']}, ` +
        `4xx ${totals['4xx']}, 5xx ${totals['5xx']}; 4xx by code: ${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')}`,
    );
    expect(totals['5xx']).toBe(0);
    expect(routes.size).toBe(ops.length);
    expect(totals['4xx']).toBeGreaterThan(0);
    expect(totals['2xx']).toBeGreaterThan(0);
  });
});
