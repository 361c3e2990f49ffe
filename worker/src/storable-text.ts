/**
 * Text Postgres can store as it was sent: no NUL (text and jsonb cannot hold it: SQLSTATE 22021
 * or 22P05, a 500 on every retry) and no lone surrogate, which has no UTF-8 form and would reach
 * the database changed, or not at all. Checked where client or Stripe text enters, so that such
 * text is a 4xx naming the field.
 */
export function storableText(text: string): boolean {
  return !/\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

export const NOT_STORABLE = 'text without NUL characters or unpaired surrogates';
