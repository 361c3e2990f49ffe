// The publisher against Google's real Pub/Sub emulator.

import { useSharedEmulator, withoutEmulator } from '@edge-checkout/test-support/shared-emulator';
import { TopicReader } from '@edge-checkout/test-support/topics';
import { describe, expect, it } from 'vitest';
import { createPubSubPublisher, PubSubPublishError } from '../src/pubsub.ts';

const PROJECT = 'demo-project';

describe.skipIf(withoutEmulator)('publishing to the Pub/Sub emulator', () => {
  const emulator = useSharedEmulator(PROJECT);

  async function topicWithSubscription(name: string) {
    await emulator.admin.createTopic(name);
    await emulator.admin.createSubscription(`${name}-pull`, { topic: name, enableMessageOrdering: true });
    return createPubSubPublisher({ projectId: PROJECT, topic: name, emulatorHost: emulator.host });
  }

  it('delivers data, attributes and ordering key, with the ids Pub/Sub assigned', async () => {
    const publisher = await topicWithSubscription('payment-events');
    const ids = await publisher.publish([
      {
        data: JSON.stringify({ id: 'evt_1', type: 'cart.paid' }),
        attributes: { eventType: 'cart.paid', eventId: 'evt_1' },
        orderingKey: 'cart_1',
      },
      { data: new Uint8Array([0, 1, 254, 255]), attributes: { eventId: 'evt_2' } },
    ]);
    expect(ids).toHaveLength(2);

    const received = await new TopicReader(emulator.admin, 'payment-events-pull').exactly(2);
    expect(received).toHaveLength(2);
    const byId = new Map(received.map((message) => [message.messageId, message]));
    expect(byId.get(ids[0])).toMatchObject({
      data: '{"id":"evt_1","type":"cart.paid"}',
      attributes: { eventType: 'cart.paid', eventId: 'evt_1' },
      orderingKey: 'cart_1',
    });
    expect(byId.get(ids[1])).toMatchObject({
      base64Data: 'AAH+/w==',
      attributes: { eventId: 'evt_2' },
      orderingKey: undefined,
    });
  });

  it('keeps the order of messages that share an ordering key', async () => {
    const publisher = await topicWithSubscription('ordered-events');
    const transitions = ['checkout_pending', 'awaiting_payment', 'paid', 'refunded'];
    await publisher.publish(transitions.map((status) => ({ data: status, orderingKey: 'cart_7' })));
    const received = await new TopicReader(emulator.admin, 'ordered-events-pull').exactly(transitions.length);
    expect(received.map((message) => message.data)).toEqual(transitions);
  });

  it('splits over 1,000 messages into several requests and every message arrives once', async () => {
    let requests = 0;
    const countingFetch: typeof fetch = (input, init) => {
      requests++;
      return fetch(input, init);
    };
    await emulator.admin.createTopic('bulk-events');
    await emulator.admin.createSubscription('bulk-events-pull', { topic: 'bulk-events' });
    const publisher = createPubSubPublisher({
      projectId: PROJECT,
      topic: 'bulk-events',
      emulatorHost: emulator.host,
      fetch: countingFetch,
    });

    const ids = await publisher.publish(Array.from({ length: 2345 }, (_, i) => ({ data: `message ${i}` })));

    expect(requests).toBe(3);
    expect(new Set(ids).size).toBe(2345);
    const received = await new TopicReader(emulator.admin, 'bulk-events-pull').exactly(2345);
    expect(received).toHaveLength(2345);
    const dataById = new Map(received.map((message) => [message.messageId, message.data]));
    expect(ids.map((id) => dataById.get(id))).toEqual(Array.from({ length: 2345 }, (_, i) => `message ${i}`));
  });

  it('reports a missing topic as a non-retryable 404 with the emulator’s message', async () => {
    const publisher = createPubSubPublisher({
      projectId: PROJECT,
      topic: 'no-such-topic',
      emulatorHost: emulator.host,
    });
    const error = await publisher.publish([{ data: 'x' }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PubSubPublishError);
    expect(error).toMatchObject({ status: 404, retryable: false, message: expect.stringMatching(/Topic not found/) });
  });
});
