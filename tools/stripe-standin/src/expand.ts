import { invalidRequest } from './errors.ts';

// `expand[]=payment_intent`, `expand[]=line_items`, `expand[]=data.payment_intent` on lists,
// `expand[]=payment_intent.latest_charge`: replaces ids (or absent fields) in a response with the
// objects they name, as Stripe does. Works on the JSON form of the response, so expanded objects
// are copies and nothing stored is changed.

export type JsonObject = { [key: string]: unknown };

export interface Expander {
  /** The `object` value of what the field expands to (`list` for lists). */
  type: string;
  load(parent: JsonObject): unknown;
}

/** Per object type (`checkout.session`, …), the fields that can be expanded. */
export type Expanders = Record<string, Record<string, Expander>>;

// Stripe refuses deeper expansions than this.
const MAX_DEPTH = 4;

function toJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

/**
 * Checks `paths` against what an object of `type` can expand, before a POST acts: a bad
 * `expand` is a validation error, so it must not leave a half-done request behind.
 */
export function checkExpand(type: string, paths: readonly string[], expanders: Expanders): void {
  for (const path of paths) {
    let current = type;
    for (const field of segments(path)) current = expanderFor(expanders, current, field).type;
  }
}

export function expandResponse(value: unknown, paths: readonly string[], expanders: Expanders): unknown {
  const json = toJson(value);
  for (const path of paths) expandPath(json, segments(path), expanders);
  return json;
}

function segments(path: string): string[] {
  const parts = path.split('.');
  if (parts.length > MAX_DEPTH) {
    throw invalidRequest(`You cannot expand more than ${MAX_DEPTH} levels of a property. Property: ${path}`, 'expand');
  }
  return parts;
}

function expandPath(node: unknown, parts: string[], expanders: Expanders): void {
  if (!isObject(node) || parts.length === 0) return;
  const [field, ...rest] = parts;
  if (node.object === 'list' && field === 'data' && Array.isArray(node.data)) {
    for (const item of node.data) expandPath(item, rest, expanders);
    return;
  }
  const expander = expanderFor(expanders, String(node.object), field);
  // Ids and fields left out until expanded are loaded; null stays null.
  if (typeof node[field] === 'string' || node[field] === undefined) node[field] = toJson(expander.load(node));
  expandPath(node[field], rest, expanders);
}

function expanderFor(expanders: Expanders, type: string, field: string): Expander {
  const expander = expanders[type]?.[field];
  if (!expander) throw invalidRequest(`This property cannot be expanded (${field}).`, 'expand');
  return expander;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
