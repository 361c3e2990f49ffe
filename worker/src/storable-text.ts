// What Postgres cannot store as it was sent: a NUL (text and jsonb cannot hold it: SQLSTATE 22021
// or 22P05, a 500 on every retry), and a lone surrogate, which has no UTF-8 form and would reach
// the database changed, or not at all (22P02 in jsonb).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const NOT_STORABLE_CHARACTER = new RegExp(`\\0|${LONE_SURROGATE.source}`);
const EVERY_LONE_SURROGATE = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * True for text Postgres can store as it was sent. Checked where our clients' text enters, so
 * that such text is a 4xx naming the field.
 */
export function storableText(text: string): boolean {
  return !NOT_STORABLE_CHARACTER.test(text);
}

export const NOT_STORABLE = 'text without NUL characters or unpaired surrogates';

/**
 * Another system's text (Stripe's, Google's) as Postgres can store it: NUL dropped, a lone surrogate replaced by U+FFFD (as
 * String.prototype.toWellFormed does). A shopper's name is no reason to refuse their payment,
 * and a session read back from Stripe cannot be refused at all: its cart would never settle.
 */
export function storableForm<T extends string | null | undefined>(text: T): T {
  if (typeof text !== 'string') return text;
  return text.replaceAll('\0', '').replace(EVERY_LONE_SURROGATE, '\uFFFD') as T;
}
