import { invalidRequest } from './errors.ts';

// Stripe's v1 API takes `application/x-www-form-urlencoded` bodies (and query strings) with
// bracketed keys: `line_items[0][price_data][product_data][name]=Tee`, `metadata[cart_id]=c1`,
// `expand[]=payment_intent` (curl) or `expand[0]=payment_intent` (stripe-node). This turns the flat
// pairs into a tree. Indexed keys stay hash keys here (`{ "0": … }`): only the reader of a
// parameter knows whether it is a list (line_items) or a hash whose keys happen to be digits
// (metadata[0]), see params.ts.

export type FormValue = string | FormHash | string[];
export interface FormHash {
  [key: string]: FormValue;
}

const KEY = /^([^[\]]+)((?:\[[^[\]]*\])*)$/;

export function decodeForm(pairs: Iterable<[string, string]>): FormHash {
  const root: FormHash = {};
  for (const [key, value] of pairs) {
    const match = KEY.exec(key);
    // A malformed key (`a[b`) is kept whole, so that it is reported as an unknown parameter.
    const path = match ? [match[1], ...[...match[2].matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1])] : [key];
    insert(root, path, value);
  }
  return root;
}

function insert(root: FormHash, path: string[], value: string): void {
  let hash = root;
  for (let i = 0; i < path.length - 1; i++) {
    const name = paramName(path.slice(0, i + 1));
    if (path[i + 1] === '') {
      // `name[]`: append to a list of strings; only allowed as the last segment, as in Stripe.
      if (i + 2 !== path.length) throw invalidRequest('Invalid array', name);
      const list = hash[path[i]] ?? [];
      if (!Array.isArray(list)) throw invalidRequest('Invalid array', name);
      list.push(value);
      hash[path[i]] = list;
      return;
    }
    const next = hash[path[i]] ?? {};
    if (typeof next === 'string' || Array.isArray(next)) throw invalidRequest('Invalid hash', name);
    hash[path[i]] = next;
    hash = next;
  }
  const last = path[path.length - 1];
  if (typeof hash[last] === 'object') throw invalidRequest('Invalid hash', paramName(path));
  hash[last] = value;
}

/** ['line_items', '0', 'quantity'] → `line_items[0][quantity]`, the form Stripe names params in errors. */
export function paramName(path: readonly string[]): string {
  return (
    path[0] +
    path
      .slice(1)
      .map((p) => `[${p}]`)
      .join('')
  );
}
