// The dependency rules of docs/architecture.md, checked on the source: no import cycles, and the
// configuration, database and error modules stay free of HTTP code.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SOURCES = /^(worker|bridge\/[^/]+|tools\/[^/]+|storefront)\/src\/.*\.ts$|^test\/support\/[^/]+\.ts$/;
// Type-only imports are left out: they vanish at runtime and carry no dependency on I/O.
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s(?!type\s)[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
  cwd: ROOT,
  encoding: 'utf8',
})
  .split('\n')
  .filter((f) => SOURCES.test(f) && !f.endsWith('.d.ts'));

/** Each source file's imports of other source files, as repository paths. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const absolute = path.join(ROOT, file);
    const require = createRequire(absolute);
    const targets: string[] = [];
    for (const match of readFileSync(absolute, 'utf8').matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2]!;
      if (!specifier.startsWith('.') && !specifier.startsWith('@edge-checkout/')) continue;
      const resolved = specifier.startsWith('.')
        ? path.resolve(path.dirname(absolute), specifier)
        : require.resolve(specifier);
      targets.push(path.relative(ROOT, resolved));
    }
    graph.set(file, targets);
  }
  return graph;
}

function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): string[] | null => {
    if (state.get(file) === 'done') return null;
    if (state.get(file) === 'open') return [...stack.slice(stack.indexOf(file)), file];
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(file, 'done');
    return null;
  };
  for (const file of graph.keys()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return null;
}

function reachableFrom(graph: Map<string, string[]>, start: string): Set<string> {
  const seen = new Set<string>();
  const walk = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const next of graph.get(file) ?? []) walk(next);
  };
  walk(start);
  return seen;
}

describe('the source follows its dependency rules', () => {
  const graph = importGraph();

  it('reads the sources it checks', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('worker/src/db.ts')).toContain('worker/src/env.ts');
  });

  it('has no import cycles', () => {
    expect(findCycle(graph)).toBeNull();
  });

  it.each(['worker/src/env.ts', 'worker/src/db.ts', 'worker/src/errors.ts', 'worker/src/cart-state.ts'])(
    '%s imports no HTTP code (no Hono, no routes)',
    (file) => {
      for (const reached of reachableFrom(graph, file)) {
        const source = readFileSync(path.join(ROOT, reached), 'utf8');
        expect({ reached, hono: /from ['"]hono|from ['"]@hono\//.test(source) }).toEqual({ reached, hono: false });
        expect(reached).not.toMatch(/routes\//);
      }
    },
  );

  // The modules that talk to an external system, or build what does.
  const IO_MODULE = /\/(db|stripe|outbox|services|fulfilment|pubsub)\.ts$/;

  it.each(['worker/src/cart-state.ts', 'worker/src/stripe-events.ts', 'worker/src/env.ts'])(
    'keeps %s free of I/O: it imports no external system, not even to read a rule',
    (file) => {
      expect([...reachableFrom(graph, file)].filter((f) => IO_MODULE.test(f))).toEqual([]);
    },
  );
});
