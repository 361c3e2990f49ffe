// `npm run redrive` against Google's Pub/Sub emulator: dead-lettered payment events back to
// their topic, acknowledged only once published. Rather than nack a message until its delivery
// attempts run out (the emulator's pull answered 500 once a pulled message was due for the
// dead-letter topic), the tests publish to the dead-letter topic what Pub/Sub would forward:
// the event with Pub/Sub's CloudPubSubDeadLetter* attributes added.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createPubSubPublisher, type PubSubMessage, PubSubPublishError } from '@edge-checkout/pubsub';
import { createPubSubSubscriber, type PulledMessage } from '@edge-checkout/pubsub/subscriber';
import { useSharedEmulator, withoutEmulator } from '@edge-checkout/test-support/shared-emulator';
import { TopicReader } from '@edge-checkout/test-support/topics';
import { describe, expect, it } from 'vitest';
import { type RedriveOptions, redrive } from '../src/redrive.ts';
import { loadRedriveConfig, RedriveArgumentError } from '../src/redrive-config.ts';

const PROJECT = 'demo-project';
const MAIN = fileURLToPath(new URL('../src/redrive-main.ts', import.meta.url));

type Run = { code: number | null; stdout: string; stderr: string };

function runRedrive(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error.code as number | undefined) ?? null) : 0, stdout, stderr }),
    );
  });
}

/** The attributes Pub/Sub adds when it forwards a message to a dead-letter topic. */
function deadLetterAttributes(publishTime: string): Record<string, string> {
  return {
    CloudPubSubDeadLetterSourceDeliveryCount: '5',
    CloudPubSubDeadLetterSourceSubscription: 'payment-events-relay',
    CloudPubSubDeadLetterSourceSubscriptionProject: PROJECT,
    CloudPubSubDeadLetterSourceTopicPublishTime: publishTime,
  };
}

function paymentEvent(id: string, type: string, cartId: string) {
  return {
    data: JSON.stringify({ id, type, cart: { id: cartId } }),
    attributes: { eventType: type, eventId: id, cartId, stripeEventId: `evt_stripe_${id}` },
  };
}

describe.skipIf(withoutEmulator)('npm run redrive against the Pub/Sub emulator', () => {
  const emulator = useSharedEmulator(PROJECT);
  let names = 0;

  /** A payment topic read through an ordered subscription, and its dead-letter topic with its pull subscription. */
  async function layout() {
    const topic = `payments-${++names}`;
    const deadLetterTopic = `${topic}-dead-letter`;
    const deadLetters = `${deadLetterTopic}-pull`;
    for (const name of [topic, deadLetterTopic]) await emulator.admin.createTopic(name);
    await emulator.admin.createSubscription(deadLetters, { topic: deadLetterTopic, ackDeadlineSeconds: 10 });
    const target = await TopicReader.subscribe(emulator.admin, topic);
    const deadLetterTopicPublisher = createPubSubPublisher({
      projectId: PROJECT,
      topic: deadLetterTopic,
      emulatorHost: emulator.host,
    });
    const env = { GCP_PROJECT_ID: PROJECT, PUBSUB_EMULATOR_HOST: emulator.host };
    return { topic, deadLetters, target, deadLetterTopicPublisher, env };
  }

  /** Three events of two carts, as dead-lettered: cart_a's refund first, then its payment published before it. */
  async function deadLetterThree(publisher: ReturnType<typeof createPubSubPublisher>) {
    const paid = paymentEvent('evt_a_paid', 'cart.paid', 'cart_a');
    const refunded = paymentEvent('evt_a_refunded', 'cart.refunded', 'cart_a');
    const other = paymentEvent('evt_b_paid', 'cart.paid', 'cart_b');
    await publisher.publish([
      // Pub/Sub kept the ordering key on this one…
      {
        ...refunded,
        attributes: { ...refunded.attributes, ...deadLetterAttributes('2026-05-01T10:00:02.000Z') },
        orderingKey: 'cart_a',
      },
    ]);
    // …and not on these: the cartId attribute names the cart.
    const [, otherId] = await publisher.publish([
      { ...paid, attributes: { ...paid.attributes, ...deadLetterAttributes('2026-05-01T10:00:01.000Z') } },
      { ...other, attributes: { ...other.attributes, ...deadLetterAttributes('2026-05-01T10:00:03.000Z') } },
    ]);
    return { paid, refunded, other, otherId: otherId! };
  }

  it('republishes data, attributes (less the dead-letter ones) and ordering key, each cart in order, and acknowledges them', async () => {
    const { topic, deadLetters, target, deadLetterTopicPublisher } = await layout();
    const { paid, refunded, other } = await deadLetterThree(deadLetterTopicPublisher);
    const subscriber = createPubSubSubscriber({
      projectId: PROJECT,
      subscription: deadLetters,
      emulatorHost: emulator.host,
    });
    const pulledAckIds: string[] = [];

    const report = await redrive({
      subscriber: {
        ...subscriber,
        pull: async (maxMessages) => {
          const pulled = await subscriber.pull(maxMessages);
          pulledAckIds.push(...pulled.map((message) => message.ackId));
          return pulled;
        },
      },
      publisher: createPubSubPublisher({ projectId: PROJECT, topic, emulatorHost: emulator.host }),
    });

    expect(report).toEqual({ total: 3, byType: { 'cart.paid': 2, 'cart.refunded': 1 }, dropped: [] });
    const arrived = await target.exactly(3);
    expect(arrived.map(({ data, attributes, orderingKey }) => ({ data, attributes, orderingKey }))).toEqual(
      expect.arrayContaining([
        { ...paid, orderingKey: 'cart_a' },
        { ...refunded, orderingKey: 'cart_a' },
        { ...other, orderingKey: 'cart_b' },
      ]),
    );
    // cart_a's events in the order they were first published, whatever the dead-letter order.
    expect(arrived.filter((m) => m.orderingKey === 'cart_a').map((m) => m.attributes.eventId)).toEqual([
      'evt_a_paid',
      'evt_a_refunded',
    ]);
    // Acknowledged, not merely leased: handed back, they would be pulled again.
    expect(pulledAckIds).toHaveLength(3);
    await subscriber.modifyAckDeadline(pulledAckIds, 0);
    expect(await new TopicReader(emulator.admin, deadLetters).exactly(0)).toEqual([]);
  });

  it('prints each message and the count per event type, and exits 0', async () => {
    const { topic, deadLetters, target, deadLetterTopicPublisher, env } = await layout();
    await deadLetterThree(deadLetterTopicPublisher);

    const run = await runRedrive(['--topic', topic, '--subscription', deadLetters], env);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      `republished 3 message(s) from projects/${PROJECT}/subscriptions/${deadLetters} to projects/${PROJECT}/topics/${topic}: cart.paid 2, cart.refunded 1`,
    );
    expect(run.stdout).toMatch(
      /republished \d+: cart\.refunded event evt_a_refunded cart cart_a, dead-lettered after 5 deliveries/,
    );
    expect(await target.exactly(3)).toHaveLength(3);
  });

  it('leaves every message on the dead-letter subscription and exits 1 naming the problem when publishing fails', async () => {
    const { deadLetters, deadLetterTopicPublisher, env } = await layout();
    await deadLetterThree(deadLetterTopicPublisher);

    const run = await runRedrive(['--topic', 'no-such-topic', '--subscription', deadLetters], env);

    expect(run.code).toBe(1);
    expect(run.stdout).toContain('republished 0 message(s)');
    expect(run.stderr).toMatch(
      new RegExp(`redrive stopped: Pub/Sub publish to projects/${PROJECT}/topics/no-such-topic failed: 404 NOT_FOUND`),
    );
    expect(run.stderr).toContain(`3 message(s) of that pull left on projects/${PROJECT}/subscriptions/${deadLetters}`);
    const left = await new TopicReader(emulator.admin, deadLetters).exactly(3);
    expect(left.map((m) => m.attributes.eventId).sort()).toEqual(['evt_a_paid', 'evt_a_refunded', 'evt_b_paid']);
  });

  it('--dry-run lists the messages, publishes nothing and leaves them on the subscription', async () => {
    const { topic, deadLetters, target, deadLetterTopicPublisher, env } = await layout();
    await deadLetterThree(deadLetterTopicPublisher);

    const run = await runRedrive(['--dry-run', '--topic', topic, '--subscription', deadLetters], env);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout.match(/^would republish \d+: /gm)).toHaveLength(3);
    expect(run.stdout).toContain('would republish (dry run, nothing published or acknowledged) 3 message(s)');
    expect(await target.exactly(0)).toEqual([]);
    expect(await new TopicReader(emulator.admin, deadLetters).exactly(3)).toHaveLength(3);
  });

  it('--limit N republishes N and leaves the rest', async () => {
    const { topic, deadLetters, target, deadLetterTopicPublisher, env } = await layout();
    await deadLetterThree(deadLetterTopicPublisher);

    const run = await runRedrive(['--limit', '2', '--topic', topic, '--subscription', deadLetters], env);

    expect(run.code).toBe(0);
    expect(run.stdout).toContain('republished 2 message(s)');
    expect(await target.exactly(2)).toHaveLength(2);
    expect(await new TopicReader(emulator.admin, deadLetters).exactly(1)).toHaveLength(1);
  });

  it('--drop ID acknowledges that message without publishing it', async () => {
    const { topic, deadLetters, target, deadLetterTopicPublisher, env } = await layout();
    const { otherId } = await deadLetterThree(deadLetterTopicPublisher);

    const run = await runRedrive(['--drop', otherId, '--topic', topic, '--subscription', deadLetters], env);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`dropped ${otherId}: cart.paid event evt_b_paid cart cart_b`);
    expect(run.stdout).toContain('republished 2 message(s)');
    expect((await target.exactly(2)).map((m) => m.attributes.eventId).sort()).toEqual(['evt_a_paid', 'evt_a_refunded']);
  });

  it('a message Pub/Sub refuses stops every run, pointing at --drop, which gets past it', async () => {
    const { topic, deadLetters, target, deadLetterTopicPublisher, env } = await layout();
    // Nothing left once the dead-letter attributes go: Pub/Sub refuses an empty message.
    const [emptyId] = await deadLetterTopicPublisher.publish([
      { data: '', attributes: deadLetterAttributes('2026-05-01T10:00:00.000Z') },
    ]);
    const args = ['--topic', topic, '--subscription', deadLetters];

    const refused = await runRedrive(args, env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/failed: 400 INVALID_ARGUMENT/);
    expect(refused.stderr).toContain(
      `1 message(s) of that pull left on projects/${PROJECT}/subscriptions/${deadLetters}, not acknowledged, first the failed request's: ${emptyId}`,
    );
    expect(refused.stderr).toContain('with --drop MESSAGE_ID');

    const dropped = await runRedrive(['--drop', emptyId!, ...args], env);
    expect(dropped.stderr).toBe('');
    expect(dropped.code).toBe(0);
    expect(dropped.stdout).toContain(`dropped ${emptyId}: `);
    expect(await target.exactly(0)).toEqual([]);
  });

  it('exits 1 naming a missing GCP_PROJECT_ID, before touching Pub/Sub', async () => {
    const run = await runRedrive([], { PUBSUB_EMULATOR_HOST: emulator.host });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^redrive: GCP_PROJECT_ID is required\nusage: npm run redrive/);
  });
});

describe('redrive, when a publish fails part-way', () => {
  it('acknowledges only the messages of the requests that went out, and hands back the others', async () => {
    const pulled: PulledMessage[] = ['cart_a', 'cart_b', 'cart_c'].map((cartId, i) => ({
      ackId: `ack_${cartId}`,
      messageId: String(i),
      data: new TextEncoder().encode(cartId),
      attributes: { cartId, eventType: 'cart.paid' },
      publishTime: '2026-05-01T10:00:00Z',
    }));
    const acknowledged: string[] = [];
    const deadlines: Array<[string[], number]> = [];
    const subscriber: RedriveOptions['subscriber'] = {
      pull: async () => pulled.splice(0),
      acknowledge: async (ackIds) => void acknowledged.push(...ackIds),
      modifyAckDeadline: async (ackIds, seconds) => void deadlines.push([ackIds, seconds]),
    };
    // One request per cart: the first (cart_a's) went out, the second failed.
    const published: PubSubMessage[][] = [];
    const publisher = {
      publish: async (messages: PubSubMessage[]) => {
        published.push(messages);
        throw new PubSubPublishError('Pub/Sub publish failed: 503', { retryable: true, publishedMessageIds: ['m1'] });
      },
    };

    const report = await redrive({ subscriber, publisher });

    expect(published.map((messages) => messages.map((message) => message.orderingKey))).toEqual([
      ['cart_a', 'cart_b', 'cart_c'],
    ]);
    expect(acknowledged).toEqual(['ack_cart_a']);
    expect(deadlines).toEqual([
      // Leased for the run right after the pull, whatever the subscription's deadline…
      [['ack_cart_a', 'ack_cart_b', 'ack_cart_c'], 600],
      // …and what was not published handed back at once.
      [['ack_cart_b', 'ack_cart_c'], 0],
    ]);
    expect(report).toMatchObject({ total: 1, byType: { 'cart.paid': 1 }, failure: { unpublished: ['1', '2'] } });
  });
});

describe('redrive --drop', () => {
  const pulledOf = (...ids: string[]): PulledMessage[] =>
    ids.map((id) => ({
      ackId: `ack_${id}`,
      messageId: id,
      data: new TextEncoder().encode(id),
      attributes: { cartId: `cart_${id}`, eventId: `evt_${id}`, eventType: 'cart.paid' },
      publishTime: '2026-05-01T10:00:00Z',
    }));

  /** Runs redrive on messages 1 and 2 with --drop 2: what it called, printed and reported. */
  async function dropping(dryRun: boolean) {
    const pulled = pulledOf('1', '2');
    const calls: string[] = [];
    // As the subscriber does, a call for no message is none.
    const call = (line: string, ackIds: string[]) =>
      void (ackIds.length > 0 && calls.push(`${line} ${ackIds.join(' ')}`));
    const printed: string[] = [];
    const report = await redrive({
      subscriber: {
        pull: async () => pulled.splice(0),
        acknowledge: async (ackIds) => call('acknowledge', ackIds),
        modifyAckDeadline: async (ackIds, seconds) => call(`lease ${seconds}`, ackIds),
      },
      publisher: {
        publish: async (messages) => {
          calls.push(`publish ${messages.map((message) => message.attributes?.eventId).join(' ')}`);
          return messages.map((_, i) => `m${i}`);
        },
      },
      drop: new Set(['2']),
      dryRun,
      print: (line) => printed.push(line),
      sleep: async () => {},
    });
    expect(report).toMatchObject({ total: 1, dropped: ['2'] });
    return { calls, printed };
  }

  it('acknowledges the message without publishing it, and prints it', async () => {
    const { calls, printed } = await dropping(false);
    expect(calls).toEqual(['lease 600 ack_1 ack_2', 'acknowledge ack_2', 'publish evt_1', 'acknowledge ack_1']);
    expect(printed).toContain('dropped 2: cart.paid event evt_2 cart cart_2');
  });

  it('with dryRun only lists it', async () => {
    const { calls, printed } = await dropping(true);
    expect(calls).toEqual(['lease 600 ack_1 ack_2', 'lease 0 ack_1 ack_2']);
    expect(printed).toEqual([
      'would drop 2: cart.paid event evt_2 cart cart_2',
      'would republish 1: cart.paid event evt_1 cart cart_1',
    ]);
  });
});

describe('redrive, the order of one pull', () => {
  it("republishes each cart's events by dead-letter publish time, then by occurredAt where those tie", async () => {
    const sameRequest = '2026-05-01T10:00:05.000Z';
    const event = (id: string, cartId: string, publishTime: string, occurredAt: string): PulledMessage => ({
      ackId: `ack_${id}`,
      messageId: id,
      data: new TextEncoder().encode(JSON.stringify({ id, type: 'cart.paid', occurredAt, cart: { id: cartId } })),
      attributes: { cartId, eventId: id, eventType: 'cart.paid', ...deadLetterAttributes(publishTime) },
      publishTime: '2026-05-01T10:05:00Z',
    });
    const pulled = [
      event('a3', 'cart_a', sameRequest, '2026-05-01T09:00:03Z'),
      event('b1', 'cart_b', '2026-05-01T10:00:01.000Z', '2026-05-01T09:00:00Z'),
      event('a2', 'cart_a', sameRequest, '2026-05-01T09:00:02Z'),
      event('a1', 'cart_a', '2026-05-01T10:00:04.000Z', '2026-05-01T09:00:09Z'),
    ];
    const published: string[] = [];
    await redrive({
      subscriber: {
        pull: async () => pulled.splice(0),
        acknowledge: async () => {},
        modifyAckDeadline: async () => {},
      },
      publisher: {
        publish: async (messages) => {
          published.push(...messages.map((message) => message.attributes?.eventId ?? '?'));
          return messages.map((_, i) => `m${i}`);
        },
      },
      sleep: async () => {},
    });

    expect(published).toEqual(['a1', 'a2', 'a3', 'b1']);
  });
});

describe('npm run redrive: flags and environment', () => {
  const env = { GCP_PROJECT_ID: 'my-project' };

  it('defaults to the payment-events topic and its dead-letter pull subscription', () => {
    expect(loadRedriveConfig([], env)).toEqual({
      projectId: 'my-project',
      topic: 'payment-events',
      subscription: 'payment-events-dead-letter-pull',
      limit: undefined,
      drop: [],
      dryRun: false,
      emulatorHost: undefined,
    });
    expect(loadRedriveConfig(['--topic', 'payments-staging'], env)?.subscription).toBe(
      'payments-staging-dead-letter-pull',
    );
    expect(loadRedriveConfig(['--drop', '17', '--drop', '18'], env)?.drop).toEqual(['17', '18']);
  });

  it.each([
    [['--limit', '0'], '--limit must be a whole number above 0'],
    [['--limit', 'ten'], '--limit must be a whole number above 0'],
    [['--topic', 'goog-events'], '--topic is not a Pub/Sub topic id'],
    [['--subscription', 'x'], '--subscription is not a Pub/Sub subscription id'],
    [['--drop', ' '], '--drop needs a message id'],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
  ])('refuses %j', (args, message) => {
    expect(() => loadRedriveConfig(args, env)).toThrow(RedriveArgumentError);
    expect(() => loadRedriveConfig(args, env)).toThrow(message);
  });

  it('refuses an emulator host without a port', () => {
    expect(() => loadRedriveConfig([], { ...env, PUBSUB_EMULATOR_HOST: 'localhost' })).toThrow(
      'PUBSUB_EMULATOR_HOST must be host:port',
    );
  });
});
