import { randomBytes } from 'node:crypto';

// Stripe object ids are a type prefix and a random base62 tail. Ours look the same so that code
// (and people) that recognise ids by prefix (`cs_test_`, `pi_`, `evt_`) treat them alike.

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function randomId(prefix: string, length = 24): string {
  // 248 = 4 × 62: bytes at or above it are skipped so every character is equally likely.
  let tail = '';
  while (tail.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && tail.length < length) tail += BASE62[byte % 62];
    }
  }
  return prefix + tail;
}

/** Test-mode Checkout Session ids: `cs_test_a1…`, 66 characters like Stripe's. */
export function sessionId(): string {
  return randomId('cs_test_a1', 56);
}

export function requestId(): string {
  return randomId('req_', 14);
}
