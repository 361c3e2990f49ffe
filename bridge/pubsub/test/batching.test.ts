import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { batchingPublisher, PUBLISH_BATCH, type PubSubMessage, PubSubPublishError } from '../src/pubsub.ts';

type Call = { messages: PubSubMessage[]; settle: { resolve(): void; reject(error: unknown): void } };

/** An inner publisher that numbers messages in order and answers each call only when the test says so. */
function heldPublisher() {
  const calls: Call[] = [];
  let next = 1;
  return {
    calls,
    /** What each call carried, as the messages' data. */
    carried: () => calls.map((call) => call.messages.map((message) => String(message.data))),
    publish(messages: PubSubMessage[]) {
      return new Promise<string[]>((resolve, reject) => {
        calls.push({
          messages,
          settle: { resolve: () => resolve(messages.map(() => `id-${next++}`)), reject },
        });
      });
    },
  };
}

/** An inner publisher that answers at once. */
function instantPublisher() {
  const calls: PubSubMessage[][] = [];
  let next = 1;
  return {
    calls,
    async publish(messages: PubSubMessage[]) {
      calls.push(messages);
      return messages.map(() => `id-${next++}`);
    },
  };
}

const message = (data: string): PubSubMessage => ({ data, orderingKey: 'cart-1' });

describe('batching publisher', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends concurrent publishes in one call once the delay is over, each caller getting its own ids', async () => {
    const inner = instantPublisher();
    const publisher = batchingPublisher(inner);
    const published = Array.from({ length: 8 }, (_, i) => publisher.publish([message(`m${i}`)]));

    expect(inner.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(PUBLISH_BATCH.maxDelayMs);

    expect(inner.calls.map((call) => call.map((m) => m.data))).toEqual([
      ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'],
    ]);
    // Messages go as given, ordering keys included.
    expect(inner.calls[0]?.[0]).toEqual(message('m0'));
    expect(await Promise.all(published)).toEqual(Array.from({ length: 8 }, (_, i) => [`id-${i + 1}`]));
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sends as soon as maxMessages are queued, without waiting for the delay', async () => {
    const inner = instantPublisher();
    const publisher = batchingPublisher(inner, { maxMessages: 3, maxDelayMs: 60_000 });
    const first = publisher.publish([message('a')]);
    const second = publisher.publish([message('b'), message('c')]);

    expect(await Promise.all([first, second])).toEqual([['id-1'], ['id-2', 'id-3']]);
    expect(inner.calls).toHaveLength(1);
    // The pending delay was cancelled with the call.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects every caller of a failed call with its error, and publishes again afterwards', async () => {
    const inner = heldPublisher();
    const publisher = batchingPublisher(inner);
    const failing = [publisher.publish([message('a')]), publisher.publish([message('b'), message('c')])];
    const outcomes = Promise.allSettled(failing);
    await vi.advanceTimersByTimeAsync(PUBLISH_BATCH.maxDelayMs);

    const error = new PubSubPublishError('Pub/Sub publish failed: 503 UNAVAILABLE', { retryable: true, status: 503 });
    inner.calls[0]?.settle.reject(error);
    expect(await outcomes).toEqual([
      { status: 'rejected', reason: error },
      { status: 'rejected', reason: error },
    ]);

    const later = publisher.publish([message('d')]);
    await vi.advanceTimersByTimeAsync(PUBLISH_BATCH.maxDelayMs);
    inner.calls[1]?.settle.resolve();
    expect(await later).toEqual(['id-1']);
    expect(inner.carried()).toEqual([['a', 'b', 'c'], ['d']]);
  });

  it('rejects the callers when the inner publisher throws before returning a promise', async () => {
    const error = new PubSubPublishError('message 0 is over the limit', { retryable: false });
    const publisher = batchingPublisher({
      publish: () => {
        throw error;
      },
    });
    const outcome = publisher.publish([message('a')]).catch((reason: unknown) => reason);
    await vi.advanceTimersByTimeAsync(PUBLISH_BATCH.maxDelayMs);
    expect(await outcome).toBe(error);
  });

  it('keeps one call in flight, sends what queued meanwhile right after, at most maxMessages a call, callers kept whole', async () => {
    const inner = heldPublisher();
    const publisher = batchingPublisher(inner, { maxMessages: 5, maxDelayMs: 10 });
    const sizes = [2, 2, 2, 3, 1];
    const published = sizes.map((size, caller) =>
      publisher.publish(Array.from({ length: size }, (_, i) => message(`c${caller}.${i}`))),
    );

    // The third caller brought the queue to 6: a call goes at once with the first two callers
    // (the third would have made it 6), and the rest waits for it without a timer.
    expect(inner.carried()).toEqual([['c0.0', 'c0.1', 'c1.0', 'c1.1']]);
    expect(vi.getTimerCount()).toBe(0);

    // Once a call is answered, the next goes without waiting for a timer.
    inner.calls[0]?.settle.resolve();
    await published[1];
    await vi.advanceTimersByTimeAsync(0);
    expect(inner.carried()).toHaveLength(2);
    expect(inner.carried()[1]).toEqual(['c2.0', 'c2.1', 'c3.0', 'c3.1', 'c3.2']);

    inner.calls[1]?.settle.resolve();
    await published[3];
    await vi.advanceTimersByTimeAsync(0);
    expect(inner.carried()[2]).toEqual(['c4.0']);
    inner.calls[2]?.settle.resolve();

    expect(await Promise.all(published)).toEqual([
      ['id-1', 'id-2'],
      ['id-3', 'id-4'],
      ['id-5', 'id-6'],
      ['id-7', 'id-8', 'id-9'],
      ['id-10'],
    ]);
    expect(inner.calls.map((call) => call.messages.length)).toEqual([4, 5, 1]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sends each ordering key in a call of its own, side by side; a failed call rejects only its callers', async () => {
    const inner = heldPublisher();
    const publisher = batchingPublisher(inner);
    const keyed = (data: string, orderingKey?: string): PubSubMessage => ({ data, orderingKey });
    const callers = {
      a: publisher.publish([keyed('a', 'cart-1')]),
      b: publisher.publish([keyed('b', 'cart-2')]),
      c: publisher.publish([keyed('c', 'cart-1')]),
      d: publisher.publish([keyed('d')]),
      e: publisher.publish([keyed('e')]),
      // A request holds one key: a caller with two goes alone, and the inner publisher splits it.
      f: publisher.publish([keyed('f1', 'cart-3'), keyed('f2', 'cart-4')]),
    };
    const outcomes = Promise.allSettled(Object.values(callers));
    await vi.advanceTimersByTimeAsync(PUBLISH_BATCH.maxDelayMs);
    expect(inner.carried()).toEqual([['a', 'c'], ['b'], ['d', 'e'], ['f1', 'f2']]);

    // What queues for cart-1 while its call is out waits for that call, so cart-1 stays in order.
    const later = publisher.publish([keyed('g', 'cart-1')]);
    await vi.advanceTimersByTimeAsync(PUBLISH_BATCH.maxDelayMs);
    expect(inner.calls).toHaveLength(4);

    const refused = new PubSubPublishError('Pub/Sub publish failed: 400 INVALID_ARGUMENT', {
      retryable: false,
      status: 400,
    });
    inner.calls[1]?.settle.reject(refused);
    for (const i of [0, 2, 3]) inner.calls[i]?.settle.resolve();
    expect(await outcomes).toEqual([
      { status: 'fulfilled', value: ['id-1'] },
      { status: 'rejected', reason: refused },
      { status: 'fulfilled', value: ['id-2'] },
      { status: 'fulfilled', value: ['id-3'] },
      { status: 'fulfilled', value: ['id-4'] },
      { status: 'fulfilled', value: ['id-5', 'id-6'] },
    ]);
    await vi.advanceTimersByTimeAsync(0);
    expect(inner.carried()[4]).toEqual(['g']);
    inner.calls[4]?.settle.resolve();
    expect(await later).toEqual(['id-7']);
  });

  it('does not hold one key back behind another key’s call that hangs', async () => {
    const inner = heldPublisher();
    const publisher = batchingPublisher(inner);
    const keyed = (data: string, orderingKey: string): PubSubMessage => ({ data, orderingKey });
    const stuck = publisher.publish([keyed('a', 'cart-1')]);
    await vi.advanceTimersByTimeAsync(PUBLISH_BATCH.maxDelayMs);
    expect(inner.carried()).toEqual([['a']]);

    // cart-1's call never answers; cart-2's goes after its own delay, and is answered.
    const other = publisher.publish([keyed('b', 'cart-2')]);
    const sameKey = publisher.publish([keyed('c', 'cart-1')]);
    await vi.advanceTimersByTimeAsync(PUBLISH_BATCH.maxDelayMs);
    expect(inner.carried()).toEqual([['a'], ['b']]);
    inner.calls[1]?.settle.resolve();
    expect(await other).toEqual(['id-1']);

    // cart-1's next call waits for its first, and goes right after it.
    inner.calls[0]?.settle.resolve();
    expect(await stuck).toEqual(['id-2']);
    await vi.advanceTimersByTimeAsync(0);
    expect(inner.carried()[2]).toEqual(['c']);
    inner.calls[2]?.settle.resolve();
    expect(await sameKey).toEqual(['id-3']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sends a caller with more than maxMessages whole, in a call of its own', async () => {
    const inner = instantPublisher();
    const publisher = batchingPublisher(inner, { maxMessages: 2, maxDelayMs: 10 });
    const big = publisher.publish([message('a'), message('b'), message('c')]);
    const small = publisher.publish([message('d')]);
    await vi.advanceTimersByTimeAsync(10);

    expect(await Promise.all([big, small])).toEqual([['id-1', 'id-2', 'id-3'], ['id-4']]);
    expect(inner.calls.map((call) => call.length)).toEqual([3, 1]);
  });

  it('answers an empty publish at once, without a call', async () => {
    const inner = instantPublisher();
    expect(await batchingPublisher(inner).publish([])).toEqual([]);
    expect(inner.calls).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
