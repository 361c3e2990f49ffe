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

// What Checkout and the storefront show as text: a control character (general category Cc:
// U+0000-U+001F, U+007F-U+009F; an escape, a backspace) shows as nothing or garbles the line
// (and the line and paragraph separators U+2028 and U+2029 break one where one line is meant),
// and each is sent back escaped six times its size wherever the text is listed. Written as
// ranges without the `u` flag: OpenAPI documents the pattern as an ECMA-262 pattern without
// flags (JSON Schema 2020-12, "pattern"), which a client validator then compiles as it is.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is its purpose
export const ONE_LINE = /^[^\u0000-\u001F\u007F-\u009F\u2028\u2029]*$/;
export const NOT_ONE_LINE = 'one line of text, without control characters or line separators';
/** As ONE_LINE, but line breaks and tabs are allowed. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is its purpose
export const LINES = /^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$/;
export const NOT_LINES = 'text without control characters other than line breaks and tabs';
