import { invalidRequest, resourceMissing } from './errors.ts';
import type { Params } from './params.ts';

// Stripe's list object and cursor pagination (`limit`, `starting_after`, `ending_before`), which
// stripe-node's auto-pagination drives with the id of the last object of each page.

export interface StripeList<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  url: string;
}

/** `items` are in list order; `kind` names the object in "No such …" errors for a bad cursor. */
export function listPage<T extends { id: string }>(
  items: T[],
  params: Params,
  url: string,
  kind: string,
): StripeList<T> {
  const limit = params.integer('limit', { min: 1 }) ?? 10;
  if (limit > 100)
    throw invalidRequest('This value must be less than or equal to 100.', 'limit', 'parameter_invalid_integer');
  const startingAfter = params.string('starting_after');
  const endingBefore = params.string('ending_before');
  if (startingAfter !== undefined && endingBefore !== undefined) {
    throw invalidRequest('You may only specify one of these parameters: starting_after, ending_before.');
  }
  const cursor = startingAfter ?? endingBefore;
  const at = cursor === undefined ? -1 : items.findIndex((item) => item.id === cursor);
  if (cursor !== undefined && at === -1) {
    throw resourceMissing(kind, cursor, startingAfter !== undefined ? 'starting_after' : 'ending_before');
  }
  if (endingBefore !== undefined) {
    const start = Math.max(0, at - limit);
    return { object: 'list', data: items.slice(start, at), has_more: start > 0, url };
  }
  const start = at + 1;
  return { object: 'list', data: items.slice(start, start + limit), has_more: start + limit < items.length, url };
}
