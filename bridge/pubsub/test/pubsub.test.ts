import { closedPort, type LocalServer, startLocalServer } from '@edge-checkout/test-support/local-server';
import { decodeProtectedHeader, exportPKCS8, exportSPKI, generateKeyPair, importSPKI, jwtVerify } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createPubSubPublisher,
  encodeMessage,
  PUBSUB_SCOPE,
  PubSubConfigError,
  PubSubPublishError,
  type PubSubPublisherOptions,
  publishUrl,
  splitIntoBatches,
  topicPath,
  type WireMessage,
} from '../src/pubsub.ts';

const PROJECT = 'demo-project';
const TOPIC = 'payment-events';
const CLIENT_EMAIL = 'publisher@demo-project.iam.gserviceaccount.com';
const KEY_ID = 'key-id-0123456789';

let serviceAccountKey: string;
let privateKeyPem: string;
let publicKeyPem: string;

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  privateKeyPem = await exportPKCS8(privateKey);
  publicKeyPem = await exportSPKI(publicKey);
  serviceAccountKey = JSON.stringify({
    type: 'service_account',
    project_id: PROJECT,
    private_key_id: KEY_ID,
    private_key: privateKeyPem,
    client_email: CLIENT_EMAIL,
  });
});

const servers: LocalServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** A stand-in for pubsub.googleapis.com that numbers the messages it is given. */
async function fakePubSub(answer?: (requestIndex: number) => { status: number; body?: unknown } | 'hang' | undefined) {
  let next = 1;
  const server = await startLocalServer((request) => {
    const custom = answer?.(server.requests.length - 1);
    if (custom) return custom;
    const { messages } = JSON.parse(request.body) as { messages: unknown[] };
    return { status: 200, body: { messageIds: messages.map(() => String(next++)) } };
  });
  servers.push(server);
  return server;
}

function googleError(code: number, status: string, message: string) {
  return { status: code, body: { error: { code, status, message } } };
}

describe('topic paths and URLs', () => {
  it('builds the topic path and the publish URL for Google, a locational endpoint and an emulator', () => {
    const path = topicPath(PROJECT, TOPIC);
    expect(path).toBe('projects/demo-project/topics/payment-events');
    expect(publishUrl(path)).toBe(
      'https://pubsub.googleapis.com/v1/projects/demo-project/topics/payment-events:publish',
    );
    expect(publishUrl(path, { apiEndpoint: 'https://europe-west1-pubsub.googleapis.com/' })).toBe(
      'https://europe-west1-pubsub.googleapis.com/v1/projects/demo-project/topics/payment-events:publish',
    );
    expect(publishUrl(path, { emulatorHost: '127.0.0.1:8085' })).toBe(
      'http://127.0.0.1:8085/v1/projects/demo-project/topics/payment-events:publish',
    );
  });

  it('rejects names Pub/Sub would refuse, saying which one', () => {
    expect(() => topicPath('My_Project', TOPIC)).toThrow(/project id "My_Project"/);
    expect(() => topicPath('shop-', TOPIC)).toThrow(PubSubConfigError);
    expect(() => topicPath('a'.repeat(31), TOPIC)).toThrow(PubSubConfigError);
    expect(() => topicPath(PROJECT, 'ab')).toThrow(/topic name "ab"/);
    expect(() => topicPath(PROJECT, 'google-topic')).toThrow(PubSubConfigError);
    expect(() => topicPath(PROJECT, 'a/b/c')).toThrow(PubSubConfigError);
  });

  it('takes the short project ids emulators are started with, and domain-scoped ones', () => {
    for (const project of ['demo', 'test', 'p1', 'example.com:shop-1']) {
      expect(topicPath(project, TOPIC)).toBe(`projects/${project}/topics/${TOPIC}`);
    }
  });
});

describe('message encoding and batching', () => {
  it('sends text as UTF-8 and bytes as they are, base64-encoded', () => {
    expect(encodeMessage({ data: 'héllo ✓' })).toEqual({ data: Buffer.from('héllo ✓').toString('base64') });
    expect(encodeMessage({ data: '{"a":"plain ASCII"}' })).toEqual({
      data: Buffer.from('{"a":"plain ASCII"}').toString('base64'),
    });
    // Latin-1 but not ASCII: still UTF-8 on the wire (two bytes for é), not btoa's one.
    expect(encodeMessage({ data: 'café' })).toEqual({ data: Buffer.from('café', 'utf8').toString('base64') });
    expect(
      encodeMessage({ data: new Uint8Array([0, 255, 128]), attributes: { a: 'b' }, orderingKey: 'cart-1' }),
    ).toEqual({
      data: 'AP+A',
      attributes: { a: 'b' },
      orderingKey: 'cart-1',
    });
  });

  it('splits more than 1,000 messages into requests of at most 1,000, in order', () => {
    const messages = Array.from({ length: 2500 }, (_, i) => encodeMessage({ data: `m${i}` }));
    const batches = splitIntoBatches(messages);
    expect(batches.map((batch) => batch.length)).toEqual([1000, 1000, 500]);
    expect(batches.flat()).toEqual(messages);
  });

  it('puts one ordering key (or none) in a request, as Pub/Sub requires, keeping the order', () => {
    const m = (data: string, orderingKey?: string) => encodeMessage({ data, orderingKey });
    const messages = [m('1', 'cart-a'), m('2', 'cart-a'), m('3', 'cart-b'), m('4'), m('5'), m('6', 'cart-a')];
    const batches = splitIntoBatches(messages);
    expect(batches.map((batch) => batch.map((w) => w.orderingKey ?? '-'))).toEqual([
      ['cart-a', 'cart-a'],
      ['cart-b'],
      ['-', '-'],
      ['cart-a'],
    ]);
    expect(batches.flat()).toEqual(messages);
  });

  it('keeps every request body under 10 MB, counting the base64 JSON', () => {
    // 3 MB of raw bytes is 4 MB of base64: two per request.
    const big = encodeMessage({ data: new Uint8Array(3_000_000) });
    const batches = splitIntoBatches([big, big, big, big, big]);
    expect(batches.map((batch) => batch.length)).toEqual([2, 2, 1]);
    for (const batch of batches) {
      expect(Buffer.byteLength(JSON.stringify({ messages: batch }))).toBeLessThanOrEqual(10_000_000);
    }
  });

  it('counts multi-byte characters by their UTF-8 size at the exact boundary', () => {
    const limits = { maxMessages: 1000, maxRequestBytes: 200 };
    const message: WireMessage = { data: 'QQ==', attributes: { note: 'é✓😀'.repeat(5) } };
    const batches = splitIntoBatches(
      Array.from({ length: 10 }, () => message),
      limits,
    );
    for (const batch of batches) {
      expect(Buffer.byteLength(JSON.stringify({ messages: batch }))).toBeLessThanOrEqual(200);
    }
    // Filling each request: adding the next message would have crossed the limit.
    const perRequest = batches[0].length;
    expect(Buffer.byteLength(JSON.stringify({ messages: Array(perRequest + 1).fill(message) }))).toBeGreaterThan(200);
  });

  it('refuses a single message too large for any request, without retrying', () => {
    const huge = encodeMessage({ data: new Uint8Array(8_000_000) });
    let thrown: unknown;
    try {
      splitIntoBatches([huge]);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PubSubPublishError);
    expect(thrown).toMatchObject({ retryable: false, message: expect.stringMatching(/over the 10000000-byte/) });
  });
});

/** A publisher authenticating with the test's service-account key. */
function withServiceAccount(opts: Omit<PubSubPublisherOptions, 'projectId' | 'topic' | 'serviceAccountKey'>) {
  return createPubSubPublisher({ projectId: PROJECT, topic: TOPIC, serviceAccountKey, ...opts });
}

describe('service-account authentication (self-signed JWT)', () => {
  it('sends a JWT signed by the key that verifies with its public key, with the claims Google expects', async () => {
    const server = await fakePubSub();
    const publisher = withServiceAccount({ apiEndpoint: server.url });

    await expect(publisher.publish([{ data: 'x' }])).resolves.toEqual(['1']);

    const [request] = server.requests;
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/v1/projects/demo-project/topics/payment-events:publish');
    const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
    const { payload, protectedHeader } = await jwtVerify(token, await importSPKI(publicKeyPem, 'RS256'), {
      issuer: CLIENT_EMAIL,
      subject: CLIENT_EMAIL,
    });
    expect(protectedHeader).toMatchObject({ alg: 'RS256', kid: KEY_ID });
    // The scope and no audience, so that a regional endpoint takes it as the global one does.
    expect(payload.scope).toBe(PUBSUB_SCOPE);
    expect(payload).not.toHaveProperty('aud');
    expect(payload.exp! - payload.iat!).toBe(3600);
  });

  it('rejects a JWT signed by another key', async () => {
    const server = await fakePubSub();
    const publisher = withServiceAccount({ apiEndpoint: server.url });
    await publisher.publish([{ data: 'x' }]);
    const token = (server.requests[0].headers.authorization ?? '').slice('Bearer '.length);
    const other = await generateKeyPair('RS256');
    await expect(jwtVerify(token, other.publicKey)).rejects.toThrow(/signature/);
  });

  it('reuses the token until five minutes before it expires, then signs a new one', async () => {
    const server = await fakePubSub();
    let clock = Date.now();
    // RS256 is deterministic, so a frozen clock would give two separate signings the same token;
    // a clock that moves a second per read makes a second signing visible as a different bearer.
    const publisher = withServiceAccount({ apiEndpoint: server.url, now: () => (clock += 1000) });
    const bearerOf = (i: number) => server.requests[i].headers.authorization;

    await Promise.all([publisher.publish([{ data: 'a' }]), publisher.publish([{ data: 'b' }])]);
    expect(bearerOf(1)).toBe(bearerOf(0));

    clock += 54 * 60_000;
    await publisher.publish([{ data: 'c' }]);
    expect(bearerOf(2)).toBe(bearerOf(0));

    clock += 2 * 60_000; // 56 minutes in: within the 5-minute margin
    await publisher.publish([{ data: 'd' }]);
    expect(bearerOf(3)).not.toBe(bearerOf(0));
    const fresh = (bearerOf(3) ?? '').slice('Bearer '.length);
    const { payload } = await jwtVerify(fresh, await importSPKI(publicKeyPem, 'RS256'), {
      currentDate: new Date(clock),
    });
    expect(payload.iat).toBe(Math.floor(clock / 1000));
    expect(decodeProtectedHeader(fresh).kid).toBe(KEY_ID);
  });

  it('names a bad key without echoing any of it', () => {
    const notJson = `{"private_key": "${privateKeyPem.slice(30, 60)}`;
    expect(() => createPubSubPublisher({ projectId: PROJECT, topic: TOPIC, serviceAccountKey: notJson })).toThrow(
      /^GCP_SERVICE_ACCOUNT_KEY is not valid JSON$/,
    );
    expect(() =>
      createPubSubPublisher({ projectId: PROJECT, topic: TOPIC, serviceAccountKey: '{"client_email":"a@b"}' }),
    ).toThrow(/lacks client_email or private_key/);
  });

  it('fails a publish with an unusable private key as not retryable', async () => {
    const server = await fakePubSub();
    const broken = JSON.stringify({ client_email: CLIENT_EMAIL, private_key: 'not a pem' });
    const publisher = createPubSubPublisher({
      projectId: PROJECT,
      topic: TOPIC,
      serviceAccountKey: broken,
      apiEndpoint: server.url,
    });
    const error = await publisher.publish([{ data: 'x' }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PubSubPublishError);
    expect(error).toMatchObject({ retryable: false, message: expect.stringMatching(/not a usable PKCS#8/) });
    expect(server.requests).toHaveLength(0);
  });

  it('refuses to start without credentials unless an emulator is given', () => {
    expect(() => createPubSubPublisher({ projectId: PROJECT, topic: TOPIC })).toThrow(/no Pub\/Sub credentials/);
    expect(() =>
      createPubSubPublisher({ projectId: PROJECT, topic: TOPIC, emulatorHost: '127.0.0.1:8085' }),
    ).not.toThrow();
  });
});

describe('access-token provider (Application Default Credentials)', () => {
  it('sends the provided token as the bearer', async () => {
    const server = await fakePubSub();
    const publisher = createPubSubPublisher({
      projectId: PROJECT,
      topic: TOPIC,
      getAccessToken: async () => 'ya29.local-token',
      apiEndpoint: server.url,
    });
    await publisher.publish([{ data: 'x' }]);
    expect(server.requests[0].headers.authorization).toBe('Bearer ya29.local-token');
  });

  it('treats a failing token provider as retryable', async () => {
    const publisher = createPubSubPublisher({
      projectId: PROJECT,
      topic: TOPIC,
      getAccessToken: async () => {
        throw new Error('metadata server unreachable');
      },
      apiEndpoint: 'http://127.0.0.1:9',
    });
    await expect(publisher.publish([{ data: 'x' }])).rejects.toMatchObject({
      retryable: true,
      message: expect.stringMatching(/could not get an access token: metadata server unreachable/),
    });
  });

  // The metadata server is read without a timeout of its own: a token that never comes must fail
  // the publish like a call that never answers, or every push of the instance waits behind it.
  it('gives up on a token provider that never answers within the call timeout, as retryable', async () => {
    const publisher = createPubSubPublisher({
      projectId: PROJECT,
      topic: TOPIC,
      getAccessToken: () => new Promise<string>(() => {}),
      apiEndpoint: 'http://127.0.0.1:9',
      timeoutMs: 50,
    });
    await expect(publisher.publish([{ data: 'x' }])).rejects.toMatchObject({
      retryable: true,
      message: expect.stringMatching(/could not get an access token/),
    });
  });
});

describe('error classification', () => {
  const cases = [
    { answer: googleError(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded'), retryable: true, rejected: false },
    { answer: googleError(500, 'INTERNAL', 'Internal error'), retryable: true, rejected: false },
    {
      answer: googleError(503, 'UNAVAILABLE', 'The service is currently unavailable.'),
      retryable: true,
      rejected: false,
    },
    { answer: googleError(400, 'INVALID_ARGUMENT', 'Invalid resource name'), retryable: false, rejected: true },
    // The topic's state, not the message's (a CMEK topic whose key Pub/Sub may not use).
    {
      answer: googleError(400, 'FAILED_PRECONDITION', 'Cloud Pub/Sub did not have the necessary permissions.'),
      retryable: false,
      rejected: false,
    },
    {
      answer: googleError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.'),
      retryable: false,
      rejected: false,
    },
    {
      answer: googleError(403, 'PERMISSION_DENIED', 'User not authorized to perform this action.'),
      retryable: false,
      rejected: false,
    },
    {
      answer: googleError(404, 'NOT_FOUND', 'Resource not found (resource=payment-events).'),
      retryable: false,
      rejected: false,
    },
  ];

  for (const { answer, retryable, rejected } of cases) {
    it(`${answer.status} ${answer.body.error.status} is ${retryable ? '' : 'not '}retryable, ${rejected ? '' : 'not '}a rejection of the message, and carries Google's message`, async () => {
      const server = await fakePubSub(() => answer);
      const publisher = withServiceAccount({ apiEndpoint: server.url });
      const error = (await publisher.publish([{ data: 'x' }]).catch((e: unknown) => e)) as PubSubPublishError;
      expect(error).toBeInstanceOf(PubSubPublishError);
      expect(error.retryable).toBe(retryable);
      expect(error.messageRejected).toBe(rejected);
      expect(error.status).toBe(answer.status);
      expect(error.message).toContain(answer.body.error.message);
      expect(error.message).toContain(answer.body.error.status);
      // Neither the key nor the bearer token ends up in the message.
      const bearer = (server.requests[0].headers.authorization ?? '').slice('Bearer '.length);
      expect(error.message).not.toContain(bearer);
      expect(error.message).not.toContain(privateKeyPem.slice(40, 80));
    });
  }

  it('a refused connection is retryable and has no status', async () => {
    const port = await closedPort();
    const publisher = withServiceAccount({ apiEndpoint: `http://127.0.0.1:${port}` });
    const error = (await publisher.publish([{ data: 'x' }]).catch((e: unknown) => e)) as PubSubPublishError;
    expect(error).toMatchObject({ retryable: true, status: undefined });
    expect(error.message).toMatch(/network error/);
  });

  it('a server that does not answer in time is retryable', async () => {
    const server = await fakePubSub(() => 'hang');
    const publisher = withServiceAccount({ apiEndpoint: server.url, timeoutMs: 200 });
    await expect(publisher.publish([{ data: 'x' }])).rejects.toMatchObject({
      retryable: true,
      message: expect.stringMatching(/no answer within 200 ms/),
    });
  });

  it('reports which messages went out when a later request fails', async () => {
    const server = await fakePubSub((i) => (i === 1 ? googleError(503, 'UNAVAILABLE', 'try later') : undefined));
    const publisher = withServiceAccount({ apiEndpoint: server.url });
    const messages = Array.from({ length: 2500 }, (_, i) => ({ data: `m${i}` }));
    const error = (await publisher.publish(messages).catch((e: unknown) => e)) as PubSubPublishError;
    expect(error).toMatchObject({ retryable: true, status: 503 });
    expect(error.publishedMessageIds).toHaveLength(1000);
    // Requests go one after another: nothing after the failing one was sent.
    expect(server.requests).toHaveLength(2);
  });
});
