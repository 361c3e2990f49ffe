// The documentation stays true to the repository: the configuration table lists exactly the
// Worker's variables, the README's layout matches the tree, and nothing points outside.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { WORKER_VARIABLES } from '@edge-checkout/worker/env';
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const tracked = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
  cwd: ROOT,
  encoding: 'utf8',
})
  .split('\n')
  .filter(Boolean);

describe('the documentation', () => {
  it('lists exactly the variables worker/src/env.ts declares, in docs/contract.md', () => {
    const contract = read('docs/contract.md');
    const start = contract.indexOf('<!-- worker-variables');
    const table = contract.slice(start, contract.indexOf('\n\n', start));
    const documented = [...table.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...WORKER_VARIABLES].sort());
  });

  it("names every top-level folder and every package in the README's layout, and only folders that exist", () => {
    const readme = read('README.md');
    const layout = readme.slice(readme.indexOf('## Layout'), readme.indexOf('\n## ', readme.indexOf('## Layout') + 1));
    const named = new Set([...layout.matchAll(/^\s*- `([a-z0-9-]+(?:\/[a-z0-9-]+)*)\/`/gm)].map((m) => m[1]!));
    for (const m of layout.matchAll(/`(test\/[a-z0-9-]+)\/`/g)) named.add(m[1]!);
    const topLevel = new Set(tracked.filter((f) => f.includes('/') && !f.startsWith('.')).map((f) => f.split('/')[0]!));
    const workspaces = (JSON.parse(read('package.json')) as { workspaces: string[] }).workspaces;
    for (const folder of [...topLevel, ...workspaces])
      expect(named, `README layout lacks ${folder}/`).toContain(folder);
    for (const folder of named)
      expect(existsSync(path.join(ROOT, folder)), `README names ${folder}/, which does not exist`).toBe(true);
  });

  it("names the API version of the Worker's Stripe library for the webhook endpoint", () => {
    expect(read('README.md')).toContain(
      `with the API version the Worker's Stripe\nlibrary uses (\`${Stripe.API_VERSION}\``,
    );
  });

  it('points to nothing outside the repository', () => {
    const outside = /\/work\/shared|\.\.\/shared\/|CONTRACT\.md|the shared folder/;
    const offenders = tracked
      .filter(
        (f) =>
          /\.(ts|md|json|toml|yaml|sh)$|^\.ci\//.test(f) &&
          !f.startsWith('bench/results/') &&
          f !== 'test/repo/docs.test.ts',
      )
      .filter((f) => outside.test(read(f)));
    expect(offenders).toEqual([]);
  });
});
