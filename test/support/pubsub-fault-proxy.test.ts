import { createPubSubAdmin, type PubSubAdmin } from '@edge-checkout/dev-stack/pubsub-admin';
import { type PubSubEmulator, startPubSubEmulator } from '@edge-checkout/dev-stack/pubsub-emulator';
import { createPubSubPublisher, type PubSubMessage, PubSubPublishError } from '@edge-checkout/pubsub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAULT_MODES, type FaultMode, type PubSubFaultProxy, startPubSubFaultProxy } from './pubsub-fault-proxy.ts';
import { pubsubEmulatorMissing, skipWithout } from './requirements.ts';
import { TopicReader } from './topics.ts';

const PROJECT = 'demo-project';
const skipped = skipWithout("Google's Pub/Sub emulator", pubsubEmulatorMissing());

describe.skipIf(skipped)('Pub/Sub fault proxy in front of the emulator', () => {
  let emulator: PubSubEmulator;
  let proxy: PubSubFaultProxy;
  /** Straight to the emulator: what really got published. */
  let direct: PubSubAdmin;
  /** Through the proxy: admin calls that must pass in every mode. */
  let proxied: PubSubAdmin;
  let topics = 0;

  beforeAll(async () => {
    const lines: string[] = [];
    const started = await startPubSubEmulator({ projectId: PROJECT, log: (line) => lines.push(line) });
    if (!started) throw new Error(`the Pub/Sub emulator is required (CI=${process.env.CI}): ${lines.join('\n')}`);
    emulator = started;
    proxy = await startPubSubFaultProxy({ target: emulator.host });
    direct = createPubSubAdmin({ host: emulator.host, projectId: PROJECT });
    proxied = createPubSubAdmin({ host: proxy.host, projectId: PROJECT });
  });
  afterAll(async () => {
    await proxy?.close();
    await emulator?.stop();
  });

  /** A fresh topic with a pull subscription, and the Worker's publisher pointed at the proxy. */
  async function freshTopic() {
    const topic = `faults-${++topics}`;
    await direct.createTopic(topic);
    await direct.createSubscription(`${topic}-pull`, { topic });
    proxy.reset();
    const publisher = createPubSubPublisher({ projectId: PROJECT, topic, emulatorHost: proxy.host, timeoutMs: 5_000 });
    return {
      topic,
      publish: (...messages: PubSubMessage[]) => publisher.publish(messages),
      /** Publishes a marker straight to the emulator and pulls until it arrives: everything published before it. */
      published: async () => {
        await createPubSubPublisher({ projectId: PROJECT, topic, emulatorHost: emulator.host }).publish([
          { data: 'marker' },
        ]);
        const reader = new TopicReader(direct, `${topic}-pull`);
        await reader.atLeast(1, (message) => message.data === 'marker');
        return reader.received.map((message) => message.data).filter((data) => data !== 'marker');
      },
    };
  }

  async function control(path: string, body?: unknown) {
    const response = await fetch(`${proxy.url}/_proxy/${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  async function publishError(promise: Promise<unknown>): Promise<PubSubPublishError> {
    const error = await promise.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(PubSubPublishError);
    return error as PubSubPublishError;
  }

  async function waitUntilHeld(count: number) {
    await expect.poll(() => proxy.publishCalls.held, { timeout: 5_000, message: 'requests held' }).toBe(count);
  }

  it('listens on 127.0.0.1 and forwards a publish in pass mode; a pull gets it back', async () => {
    expect(proxy.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(proxy.url).toBe(`http://${proxy.host}`);
    const { topic, publish, published } = await freshTopic();
    const [id] = await publish({ data: 'hello', attributes: { cartId: 'c1' }, orderingKey: 'c1' });
    expect(id).toMatch(/\S/);
    const [message] = await new TopicReader(proxied, `${topic}-pull`).atLeast(1);
    expect(message).toMatchObject({ messageId: id, data: 'hello', attributes: { cartId: 'c1' }, orderingKey: 'c1' });
    expect(await published()).toEqual([]);
    expect(proxy.publishCalls).toEqual({ received: 1, forwarded: 1, held: 0 });
  });

  it.each([
    ['unauthenticated', 401, 'UNAUTHENTICATED', false],
    ['forbidden', 403, 'PERMISSION_DENIED', false],
    ['not_found', 404, 'NOT_FOUND', false],
    ['throttled', 429, 'RESOURCE_EXHAUSTED', true],
    ['unavailable', 503, 'UNAVAILABLE', true],
    ['internal', 500, 'INTERNAL', true],
  ] as const)(
    "%s: %i %s with Google's error body, retryable=%s, nothing forwarded",
    async (mode, status, code, retryable) => {
      const { topic, publish, published } = await freshTopic();
      proxy.setMode(mode);
      const error = await publishError(publish({ data: 'refused' }));
      expect(error).toMatchObject({ status, retryable });
      expect(error.message).toContain(`${status} ${code}: `);

      const raw = await fetch(`${proxy.url}/v1/projects/${PROJECT}/topics/${topic}:publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ data: btoa('raw') }] }),
      });
      expect(raw.status).toBe(status);
      expect(raw.headers.get('content-type')).toMatch(/^application\/json/);
      const body = (await raw.json()) as { error: Record<string, unknown> };
      expect(Object.keys(body)).toEqual(['error']);
      expect(body.error).toEqual({ code: status, message: expect.any(String), status: code });
      if (mode === 'not_found') expect(body.error.message).toBe(`Resource not found (resource=${topic}).`);

      expect(proxy.publishCalls).toEqual({ received: 2, forwarded: 0, held: 0 });
      proxy.setMode('pass');
      expect(await published()).toEqual([]);
    },
  );

  it("answers NOT_FOUND in the same shape as the emulator's own missing-topic error", async () => {
    proxy.reset();
    const missing = await fetch(`${proxy.url}/v1/projects/${PROJECT}/topics/no-such-topic:publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ data: btoa('x') }] }),
    });
    const real = (await missing.json()) as { error: Record<string, unknown> };
    proxy.setMode('not_found');
    const fake = (await (
      await fetch(`${proxy.url}/v1/projects/${PROJECT}/topics/no-such-topic:publish`, { method: 'POST', body: '{}' })
    ).json()) as { error: Record<string, unknown> };
    expect(missing.status).toBe(404);
    expect(Object.keys(fake.error).sort()).toEqual(Object.keys(real.error).sort());
    expect(fake.error).toMatchObject({ code: real.error.code, status: real.error.status });
  });

  it('invalid_argument with a match refuses only requests holding a matching message, whole', async () => {
    const { publish, published } = await freshTopic();
    const { status } = await control('mode', {
      mode: 'invalid_argument',
      match: { attribute: 'cartId', value: 'bad' },
    });
    expect(status).toBe(200);

    const refused = await publishError(publish({ data: 'bad alone', attributes: { cartId: 'bad' } }));
    expect(refused).toMatchObject({ status: 400, retryable: false });
    expect(refused.message).toContain('400 INVALID_ARGUMENT: ');
    // One request with a good and a bad message: refused as a whole, as Google refuses a request.
    await publishError(
      publish(
        { data: 'good beside bad', attributes: { cartId: 'good' } },
        { data: 'bad beside good', attributes: { cartId: 'bad' } },
      ),
    );
    await publish({ data: 'good alone', attributes: { cartId: 'good' } }, { data: 'no attributes' });

    expect(proxy.publishCalls).toEqual({ received: 3, forwarded: 1, held: 0 });
    expect(await published()).toEqual(['good alone', 'no attributes']);
  });

  it('with otherwise, the publishes a match leaves meet that mode instead of passing', async () => {
    const { publish, published } = await freshTopic();
    proxy.setMode({ mode: 'invalid_argument', match: { attribute: 'cartId', value: 'bad' }, otherwise: 'unavailable' });
    expect(await publishError(publish({ data: 'bad', attributes: { cartId: 'bad' } }))).toMatchObject({ status: 400 });
    expect(await publishError(publish({ data: 'good', attributes: { cartId: 'good' } }))).toMatchObject({
      status: 503,
      retryable: true,
    });
    proxy.setMode('pass');
    expect(await published()).toEqual([]);
  });

  it('hang with a match holds only the matching publishes, and lets them go when the mode changes', async () => {
    const { publish, published } = await freshTopic();
    proxy.setMode({ mode: 'hang', match: { attribute: 'cartId', value: 'slow' } });
    const held = publish({ data: 'slow', attributes: { cartId: 'slow' } });
    await publish({ data: 'fast', attributes: { cartId: 'fast' } });
    await expect.poll(() => proxy.publishCalls.held).toBe(1);
    expect(await published()).toEqual(['fast']);
    proxy.setMode('pass');
    await held;
    expect(await published()).toEqual(['slow']);
  });

  it('invalid_argument without a match refuses every publish', async () => {
    const { publish, published } = await freshTopic();
    proxy.setMode('invalid_argument');
    await publishError(publish({ data: 'any' }));
    proxy.setMode('pass');
    expect(await published()).toEqual([]);
  });

  it('hang holds a publish until the mode changes over HTTP, then delivers it', async () => {
    const { topic, publish, published } = await freshTopic();
    await control('mode', { mode: 'hang' });
    const pending = publish({ data: 'late' });
    await waitUntilHeld(1);
    expect(await new TopicReader(direct, `${topic}-pull`).arrivingWithin()).toEqual([]);
    expect((await control('stats')).body).toEqual({
      mode: 'hang',
      publishCalls: { received: 1, forwarded: 0, held: 1 },
    });

    const { body } = await control('mode', { mode: 'pass' });
    expect(body).toEqual({ mode: 'pass', publishCalls: { received: 1, forwarded: 1, held: 0 } });
    await expect(pending).resolves.toEqual([expect.any(String)]);
    expect(await published()).toEqual(['late']);
  });

  it('hang: reset() releases held requests; a caller that gave up is dropped, not published later', async () => {
    const { topic, publish, published } = await freshTopic();
    proxy.setMode('hang');
    const impatient = createPubSubPublisher({ projectId: PROJECT, topic, emulatorHost: proxy.host, timeoutMs: 300 });
    const timedOut = await publishError(impatient.publish([{ data: 'abandoned' }]));
    expect(timedOut).toMatchObject({ status: undefined, retryable: true });
    await waitUntilHeld(0);

    const pending = [publish({ data: 'one' }), publish({ data: 'two' })];
    await waitUntilHeld(2);
    proxy.reset();
    await Promise.all(pending);
    expect(proxy.publishCalls).toEqual({ received: 0, forwarded: 0, held: 0 });
    expect((await published()).sort()).toEqual(['one', 'two']);
  });

  it('answer_lost publishes at once and never answers: the caller times out, and its retry is a second copy', async () => {
    const { topic } = await freshTopic();
    proxy.setMode('answer_lost');
    // No answer ever comes, so the caller always times out; its deadline only has to outlast the
    // proxy's reading of the request in this same process, which a busy machine can delay past 300 ms.
    const impatient = createPubSubPublisher({ projectId: PROJECT, topic, emulatorHost: proxy.host, timeoutMs: 2_000 });
    const event = { data: 'paid', attributes: { eventId: 'e1' } };
    const timedOut = await publishError(impatient.publish([event]));
    expect(timedOut).toMatchObject({ status: undefined, retryable: true });
    await waitUntilHeld(0);
    expect(proxy.publishCalls).toEqual({ received: 1, forwarded: 1, held: 0 });

    // The caller cannot know the first went out, so it sends the event again once Pub/Sub answers.
    // (With the default deadline: a real publish through the emulator, on a busy machine.)
    proxy.setMode('pass');
    const patient = createPubSubPublisher({ projectId: PROJECT, topic, emulatorHost: proxy.host });
    const [retryId] = await patient.publish([event]);
    const reader = new TopicReader(direct, `${topic}-pull`);
    const copies = await reader.atLeast(2);
    expect(copies.map((m) => [m.data, m.attributes.eventId])).toEqual([
      ['paid', 'e1'],
      ['paid', 'e1'],
    ]);
    expect(new Set(copies.map((m) => m.messageId)).size).toBe(2);
    expect(copies.map((m) => m.messageId)).toContain(retryId);
    expect(await reader.arrivingWithin()).toEqual([]);
  });

  it('answer_lost: leaving the mode cuts a waiting caller off without an answer; its message stays published', async () => {
    const { publish, published } = await freshTopic();
    await control('mode', { mode: 'answer_lost' });
    const pending = publishError(publish({ data: 'never answered' }));
    await waitUntilHeld(1);
    expect((await control('mode', { mode: 'pass' })).body).toEqual({
      mode: 'pass',
      publishCalls: { received: 1, forwarded: 1, held: 0 },
    });
    expect(await pending).toMatchObject({ status: undefined, retryable: true });
    expect(await published()).toEqual(['never answered']);
  });

  it('close() drops held requests without an answer', async () => {
    const own = await startPubSubFaultProxy({ target: emulator.host });
    own.setMode('hang');
    const publisher = createPubSubPublisher({ projectId: PROJECT, topic: 'faults-1', emulatorHost: own.host });
    const pending = publishError(publisher.publish([{ data: 'never' }]));
    await expect.poll(() => own.publishCalls.held, { timeout: 5_000 }).toBe(1);
    await own.close();
    expect(await pending).toMatchObject({ status: undefined, retryable: true });
    await expect(fetch(`${own.url}/_proxy/stats`)).rejects.toThrow();
  });

  it.each(FAULT_MODES)('admin calls, pull and ack pass through in %s mode', async (mode: FaultMode) => {
    proxy.reset();
    proxy.setMode(mode);
    const topic = `admin-${mode}`;
    await proxied.createTopic(topic);
    await proxied.createSubscription(`${topic}-pull`, { topic, enableMessageOrdering: true });
    const got = await fetch(`${proxy.url}/v1/projects/${PROJECT}/subscriptions/${topic}-pull`);
    expect(await got.json()).toMatchObject({
      topic: `projects/${PROJECT}/topics/${topic}`,
      enableMessageOrdering: true,
    });
    await createPubSubPublisher({ projectId: PROJECT, topic, emulatorHost: emulator.host }).publish([
      { data: 'direct' },
    ]);
    const [message] = await new TopicReader(proxied, `${topic}-pull`).atLeast(1);
    expect(message.data).toBe('direct');
    await proxied.deleteSubscription(`${topic}-pull`);
    expect(proxy.publishCalls).toMatchObject({ received: 0 });
  });

  it('control routes refuse unknown modes and misplaced matches, and say what exists', async () => {
    expect(await control('mode', { mode: 'flaky' })).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/unknown mode "flaky"; one of pass, hang, /) },
    });
    expect((await control('mode', { mode: 'pass', match: { attribute: 'a', value: 'b' } })).status).toBe(400);
    expect((await control('mode', { mode: 'invalid_argument', match: { attribute: 'a' } })).status).toBe(400);
    expect((await control('mode', { mode: 'unavailable', otherwise: 'pass' })).status).toBe(400);
    const match = { attribute: 'a', value: 'b' };
    expect((await control('mode', { mode: 'invalid_argument', match, otherwise: 'hang' })).status).toBe(400);
    expect((await control('mode', { mode: 'invalid_argument', match, otherwise: 'flaky' })).status).toBe(400);
    expect(() => proxy.setMode('flaky' as FaultMode)).toThrow(/unknown mode/);
    expect((await control('nothing', {})).status).toBe(404);

    proxy.setMode({ mode: 'invalid_argument', match: { attribute: 'cartId', value: 'x' } });
    expect((await control('stats')).body).toMatchObject({
      mode: 'invalid_argument',
      match: { attribute: 'cartId', value: 'x' },
    });
    expect((await control('reset', {})).body).toEqual({
      mode: 'pass',
      publishCalls: { received: 0, forwarded: 0, held: 0 },
    });
  });
});
