// The notification relay (docs/contract.md §6): receives payment events from the topic's push
// subscription and publishes one email notification per paid, failed, refunded or partly refunded
// cart, with what was charged and where the order goes.
// Stateless: repeats are deduplicated downstream by the notification's `id` (the event id).

import { PubSubPublishError, type PubSubPublisher } from '@edge-checkout/pubsub';
import { type PaymentEventType, ReceivedPaymentEvent } from '@edge-checkout/pubsub/payment-event';
import { Hono } from 'hono';
import { z } from 'zod';
import { type RelayLog, silentLog } from './log.ts';
import type { PushVerifier } from './oidc.ts';

export type RelayDeps = {
  /** Publisher bound to NOTIFICATION_TOPIC; `startRelay` gives a `batchingPublisher`, so concurrent pushes share calls. */
  publisher: Pick<PubSubPublisher, 'publish'>;
  /** OIDC check of the push request, or `acceptEveryPush` for the emulator. */
  verifier: PushVerifier;
  log?: RelayLog;
};

const PUBSUB_VALUE_MAX_BYTES = 1024;

// Disputes are the shop's business with the bank, not news for the shopper.
const NOTIFIED_EVENT_TYPES = [
  'cart.paid',
  'cart.payment_failed',
  'cart.refunded',
  'cart.partially_refunded',
] as const satisfies readonly PaymentEventType[];
type NotifiedEventType = (typeof NOTIFIED_EVENT_TYPES)[number];

// Pub/Sub's push envelope (https://cloud.google.com/pubsub/docs/push). Google sends the message
// id as `messageId` and as `message_id` (its guide's example shows only the latter); the emulator
// sends no orderingKey. The id only labels the logs, so either will do.
const pushEnvelopeSchema = z.object({
  message: z
    .object({
      data: z.string(),
      attributes: z.record(z.string(), z.string()).optional(),
      messageId: z.string().optional(),
      message_id: z.string().optional(),
      publishTime: z.string().optional(),
      orderingKey: z.string().optional(),
    })
    .transform(({ message_id, ...message }) => ({ ...message, messageId: message.messageId ?? message_id ?? '' })),
  subscription: z.string(),
});

/** What the email (or SMS) sender consumes from NOTIFICATION_TOPIC. */
export type Notification = {
  /** The payment event's id: the same notification may be published twice, senders drop repeats. */
  id: string;
  type: NotifiedEventType;
  userId: string;
  /** From Checkout's customer details; null when Stripe had none. */
  email: string | null;
  cartId: string;
  totalAmount: number;
  currency: string;
  items: ReceivedPaymentEvent['cart']['items'];
  /** What Stripe charged: items, discount, shipping, tax and total; null before the payment completed. */
  amounts: ReceivedPaymentEvent['amounts'];
  /** What has been refunded so far (for refund notifications, how much comes back). */
  refundedAmount: number;
  /** Where the order goes and the shipping rate chosen; null when no address was collected. */
  shipping: ReceivedPaymentEvent['shipping'];
};

export function createRelayApp(deps: RelayDeps): Hono {
  const log = deps.log ?? silentLog;
  const app = new Hono();

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  // Not acknowledged, so Pub/Sub redelivers; said as a log line like every other outcome.
  app.onError((error, c) => {
    log('ERROR', 'push handling failed', { error: error instanceof Error ? error.message : String(error) });
    return c.json({ error: 'internal error' }, 500);
  });

  app.post('/pubsub/push', async (c) => {
    const auth = await deps.verifier.verify(c.req.header('authorization'));
    if (!auth.ok) {
      log(auth.status === 503 ? 'ERROR' : 'WARNING', 'push rejected', {
        status: auth.status,
        reason: auth.reason,
      });
      if (auth.status === 401) c.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      return c.json({ error: auth.reason }, auth.status);
    }

    const body = await c.req.text();
    const parsed = parsePush(body);
    if (!parsed.ok) {
      // A subscription with payload unwrapping sends the data itself as the body, its metadata
      // (if written at all) in x-goog-pubsub-* headers
      // (https://cloud.google.com/pubsub/docs/payload-unwrapping): every event would go to the
      // dead-letter topic, so it is said as the configuration error it is.
      if (c.req.header('x-goog-pubsub-message-id') || isPaymentEventJson(body)) {
        log(
          'ERROR',
          'push without an envelope: the subscription unwraps payloads; create it without --push-no-wrapper',
          {
            reason: parsed.reason,
            messageId: c.req.header('x-goog-pubsub-message-id') ?? '',
          },
        );
      } else {
        log('WARNING', 'malformed push message, left to the dead-letter policy', {
          reason: parsed.reason,
          ...parsed.context,
        });
      }
      return c.json({ error: parsed.reason }, 400);
    }
    const { event, messageId, subscription } = parsed;
    const context = { eventId: event.id, eventType: event.type, cartId: event.cart.id, messageId, subscription };

    if (!isNotified(event.type)) {
      log('INFO', 'event needs no notification', context);
      return c.json({ status: 'ignored' }, 200);
    }
    if (event.cart.currency === null) {
      log('WARNING', 'malformed payment event: no currency', context);
      return c.json({ error: 'cart.currency is required for a notification' }, 400);
    }
    // The notification's eventId attribute and ordering key: Pub/Sub refuses either over 1,024
    // bytes (https://cloud.google.com/pubsub/quotas#resource_limits), so no redelivery could
    // publish it.
    if (
      Buffer.byteLength(event.id) > PUBSUB_VALUE_MAX_BYTES ||
      Buffer.byteLength(event.cart.id) > PUBSUB_VALUE_MAX_BYTES
    ) {
      log('WARNING', 'malformed payment event: id or cart id too long to publish', {
        ...context,
        eventId: event.id.slice(0, 100),
        cartId: event.cart.id.slice(0, 100),
      });
      return c.json({ error: `id and cart.id must be at most ${PUBSUB_VALUE_MAX_BYTES} bytes` }, 400);
    }

    const notification: Notification = {
      id: event.id,
      type: event.type,
      userId: event.cart.userId,
      email: event.customer?.email ?? null,
      cartId: event.cart.id,
      totalAmount: event.cart.totalAmount,
      currency: event.cart.currency,
      items: event.cart.items,
      amounts: event.amounts,
      refundedAmount: event.refundedAmount,
      shipping: event.shipping,
    };
    try {
      const [notificationMessageId] = await deps.publisher.publish([
        {
          data: JSON.stringify(notification),
          attributes: { channel: 'email', eventId: event.id },
          orderingKey: event.cart.id,
        },
      ]);
      log('INFO', 'notification published', { ...context, notificationMessageId });
      return c.json({ status: 'published', messageId: notificationMessageId }, 200);
    } catch (error) {
      const details =
        error instanceof PubSubPublishError
          ? { error: error.message, retryable: error.retryable, status: error.status }
          : { error: error instanceof Error ? error.message : String(error) };
      log('ERROR', 'could not publish notification', { ...context, ...details });
      // Pub/Sub refused the notification itself (400 INVALID_ARGUMENT, or over its size limit):
      // no redelivery can publish it, so it is answered as a malformed message is. Pub/Sub
      // redelivers any non-2xx alike until the dead-letter policy takes it.
      if (error instanceof PubSubPublishError && error.messageRejected) {
        return c.json({ error: 'Pub/Sub refuses this notification' }, 400);
      }
      // Not acknowledged: Pub/Sub redelivers with backoff, then to the dead-letter topic.
      return c.json({ error: 'could not publish the notification' }, 503);
    }
  });

  return app;
}

type ParsedPush =
  | { ok: true; event: ReceivedPaymentEvent; messageId: string; subscription: string }
  | { ok: false; reason: string; context: Record<string, string> };

function parsePush(body: string): ParsedPush {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'body is not JSON', context: {} };
  }
  const envelope = pushEnvelopeSchema.safeParse(json);
  if (!envelope.success) {
    return { ok: false, reason: `not a Pub/Sub push envelope: ${describeIssues(envelope.error)}`, context: {} };
  }
  const { message, subscription } = envelope.data;
  // The dead-letter copy of a refused message has a message id of its own (Pub/Sub publishes it
  // to the dead-letter topic, https://cloud.google.com/pubsub/docs/reference/rest/v1/PubsubMessage:
  // "unique within the topic"), but the same attributes: the operator finds it by those.
  const { eventId, eventType, cartId } = message.attributes ?? {};
  const context = {
    messageId: message.messageId,
    subscription,
    ...(eventId && { eventId }),
    ...(eventType && { eventType }),
    ...(cartId && { cartId }),
  };

  const text = decodeBase64Utf8(message.data);
  if (text === undefined) return { ok: false, reason: 'message.data is not base64 of UTF-8 text', context };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'message.data is not JSON', context };
  }
  const event = ReceivedPaymentEvent.safeParse(data);
  if (!event.success) {
    return { ok: false, reason: `not a payment event: ${describeIssues(event.error)}`, context };
  }
  return { ok: true, event: event.data, messageId: message.messageId, subscription };
}

function isPaymentEventJson(text: string): boolean {
  try {
    return ReceivedPaymentEvent.safeParse(JSON.parse(text)).success;
  } catch {
    return false;
  }
}

function isNotified(type: string): type is NotifiedEventType {
  return (NOTIFIED_EVENT_TYPES as readonly string[]).includes(type);
}

function decodeBase64Utf8(data: string): string | undefined {
  // Buffer.from(…, 'base64') skips invalid characters silently: only text that encodes back to
  // itself is base64 (a pattern over the whole text would overflow the regex stack for data of
  // a few MB, while Pub/Sub carries up to 10 MB).
  const bytes = Buffer.from(data, 'base64');
  if (bytes.toString('base64') !== data) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}
