import { emptyParam, invalidRequest, missingParam, unknownParam } from './errors.ts';
import type { FormHash, FormValue } from './form.ts';
import { paramName } from './form.ts';

// Reads one level of decoded form parameters the way Stripe validates them: every read records
// the name as known, so `rejectUnknown()` can answer `parameter_unknown` for anything else the
// client sent, exactly as Stripe does. A typo in the Worker (or a parameter the pinned API
// version removed) then fails here as it would in production, instead of being ignored.

export class Params {
  private readonly known = new Set<string>();
  /** Nested hashes handed out by hash()/hashList(), checked by rejectUnknown() too. */
  private readonly children: Params[] = [];

  constructor(
    private readonly values: FormHash,
    private readonly path: readonly string[] = [],
  ) {}

  name(key: string): string {
    return paramName([...this.path, key]);
  }

  private take(key: string): FormValue | undefined {
    this.known.add(key);
    return this.values[key];
  }

  string(key: string, opts: { maxLength?: number } = {}): string | undefined {
    const value = this.take(key);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw invalidRequest(`Invalid string: ${describe(value)}`, this.name(key));
    if (value === '') throw emptyParam(this.name(key));
    if (opts.maxLength !== undefined && value.length > opts.maxLength) {
      throw invalidRequest(
        `Invalid string: ${value.slice(0, 20)}...; must be at most ${opts.maxLength} characters`,
        this.name(key),
        'string_length_exceeds_maximum',
      );
    }
    return value;
  }

  requiredString(key: string, opts: { maxLength?: number } = {}): string {
    const value = this.string(key, opts);
    if (value === undefined) throw missingParam(this.name(key));
    return value;
  }

  integer(key: string, opts: { min?: number } = {}): number | undefined {
    const raw = this.string(key);
    if (raw === undefined) return undefined;
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
      throw invalidRequest(`Invalid integer: ${raw}`, this.name(key), 'parameter_invalid_integer');
    }
    const value = Number(raw);
    if (opts.min !== undefined && value < opts.min) {
      throw invalidRequest(
        `This value must be greater than or equal to ${opts.min}.`,
        this.name(key),
        'parameter_invalid_integer',
      );
    }
    return value;
  }

  requiredInteger(key: string, opts: { min?: number } = {}): number {
    const value = this.integer(key, opts);
    if (value === undefined) throw missingParam(this.name(key));
    return value;
  }

  /** Stripe takes `true` and `false` for booleans. */
  boolean(key: string): boolean | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    if (value !== 'true' && value !== 'false') {
      throw invalidRequest(`Invalid boolean: ${value}`, this.name(key), 'parameter_invalid_boolean');
    }
    return value === 'true';
  }

  requiredBoolean(key: string): boolean {
    const value = this.boolean(key);
    if (value === undefined) throw missingParam(this.name(key));
    return value;
  }

  enumeration<T extends string>(key: string, values: readonly T[]): T | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    const found = values.find((v) => v === value);
    if (found === undefined) {
      throw invalidRequest(`Invalid ${this.name(key)}: must be one of ${values.join(', ')}`, this.name(key));
    }
    return found;
  }

  url(key: string): string | undefined {
    const value = this.string(key, { maxLength: 5000 });
    if (value === undefined) return undefined;
    if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
      throw invalidRequest('Not a valid URL', this.name(key), 'url_invalid');
    }
    return value;
  }

  email(key: string): string | undefined {
    const value = this.string(key, { maxLength: 800 });
    if (value !== undefined && !isEmail(value)) {
      throw invalidRequest(`Invalid email address: ${value}`, this.name(key), 'email_invalid');
    }
    return value;
  }

  /** A nested hash; an empty value (`key=`) means "not set", as Stripe reads it. */
  hash(key: string): Params | undefined {
    const value = this.take(key);
    if (value === undefined || value === '') return undefined;
    if (typeof value === 'string' || Array.isArray(value)) throw invalidRequest('Invalid hash', this.name(key));
    return this.child(value, [...this.path, key]);
  }

  /** A list of hashes sent as `key[0][…]`, `key[1][…]`, in index order. */
  hashList(key: string): Params[] | undefined {
    const value = this.take(key);
    if (value === undefined) return undefined;
    if (typeof value === 'string' || Array.isArray(value)) throw invalidRequest('Invalid array', this.name(key));
    return indexedEntries(value, this.name(key)).map(([index, item]) => {
      if (typeof item === 'string' || Array.isArray(item)) {
        throw invalidRequest('Invalid hash', paramName([...this.path, key, index]));
      }
      return this.child(item, [...this.path, key, index]);
    });
  }

  /** A list of strings, sent as `key[]=a&key[]=b` or `key[0]=a&key[1]=b`. */
  stringList(key: string): string[] | undefined {
    const value = this.take(key);
    if (value === undefined || Array.isArray(value)) return value;
    if (value === '') return [];
    if (typeof value === 'string') throw invalidRequest('Invalid array', this.name(key));
    return indexedEntries(value, this.name(key)).map(([index, item]) => {
      if (typeof item !== 'string') throw invalidRequest('Invalid string', paramName([...this.path, key, index]));
      return item;
    });
  }

  /** Stripe's metadata limits: 50 keys, keys up to 40 characters, values up to 500. */
  metadata(key: string): Record<string, string> | undefined {
    const value = this.take(key);
    if (value === undefined) return undefined;
    if (value === '') return {};
    if (typeof value === 'string' || Array.isArray(value)) throw invalidRequest('Invalid hash', this.name(key));
    const entries = Object.entries(value);
    if (entries.length > 50) {
      throw invalidRequest('Invalid metadata: metadata can have up to 50 keys', this.name(key));
    }
    const metadata: Record<string, string> = {};
    for (const [name, value] of entries) {
      if (typeof value !== 'string') throw invalidRequest('Invalid string', paramName([...this.path, key, name]));
      if (name.length > 40) {
        throw invalidRequest('Metadata keys must be at most 40 characters', paramName([...this.path, key, name]));
      }
      if (value.length > 500) {
        throw invalidRequest('Metadata values must be at most 500 characters', paramName([...this.path, key, name]));
      }
      // An empty value unsets a key; on a new object that simply means "absent".
      if (value !== '') metadata[name] = value;
    }
    return metadata;
  }

  /** Every endpoint accepts `expand`, so it is read here once for all of them. */
  expand(): string[] {
    return this.stringList('expand') ?? [];
  }

  /** Throws Stripe's `parameter_unknown` for the first parameter no reader asked for, at any depth. */
  rejectUnknown(): void {
    const unknown = Object.keys(this.values).find((key) => !this.known.has(key));
    if (unknown !== undefined) throw unknownParam(this.name(unknown), suggest(unknown, this.known));
    for (const child of this.children) child.rejectUnknown();
  }

  private child(values: FormHash, path: string[]): Params {
    const child = new Params(values, path);
    this.children.push(child);
    return child;
  }
}

export function isEmail(value: string): boolean {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value);
}

function indexedEntries(hash: FormHash, name: string): [string, FormValue][] {
  const entries = Object.entries(hash);
  for (const [index] of entries) {
    if (!/^\d+$/.test(index)) throw invalidRequest('Invalid array', name);
  }
  return entries.sort(([a], [b]) => Number(a) - Number(b));
}

function describe(value: FormValue): string {
  return Array.isArray(value) ? 'array' : 'hash';
}

/**
 * Stripe's "Did you mean …?" hint: a known name that contains the unknown one (a parameter the
 * API renamed, e.g. payment_method_types → allowed_payment_method_types) or is one typo away.
 */
function suggest(unknown: string, known: Set<string>): string | undefined {
  const names = [...known];
  return (
    names.find((name) => name.includes(unknown) || unknown.includes(name)) ??
    names.find((name) => editDistance(name, unknown) <= 2)
  );
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
