// wrangler.toml as wrangler itself reads it: logs kept, a staging environment of its own, and
// every rate limit the Worker counts with declared in both, as the README states them.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RATE_LIMITS } from '@edge-checkout/worker/rate-limits';
import { describe, expect, it } from 'vitest';
import { unstable_readConfig } from 'wrangler';

const ROOT = path.resolve(import.meta.dirname, '../..');
const configPath = path.join(ROOT, 'wrangler.toml');
type RateLimitConfig = { name: string; namespace_id: string; simple: { limit: number; period: number } };
const production = unstable_readConfig({ config: configPath });
const staging = unstable_readConfig({ config: configPath, env: 'staging' });

const limitsOf = (config: typeof production) => config.ratelimits as RateLimitConfig[];

describe('wrangler.toml', () => {
  it('keeps the logs of both environments (Workers Logs) and runs the cron in both', () => {
    for (const config of [production, staging]) {
      expect(config.observability?.enabled).toBe(true);
      expect(config.triggers.crons).toEqual(production.triggers.crons);
    }
  });

  it('has a staging Worker of its own, with its own rate-limit counters', () => {
    expect(staging.name).toBe(`${production.name}-staging`);
    const namespaces = (config: typeof production) => limitsOf(config).map((r) => r.namespace_id);
    expect(namespaces(staging).filter((id) => namespaces(production).includes(id))).toEqual([]);
  });

  it.each(Object.entries(RATE_LIMITS))(
    'declares %s in both environments with the period the Worker tells clients to wait',
    (name, { periodSeconds }) => {
      for (const config of [production, staging]) {
        const binding = limitsOf(config).find((r) => r.name === name);
        expect(binding?.simple.period, `${config.name}: ${name}`).toBe(periodSeconds);
      }
      const [prod, stage] = [production, staging].map((c) => limitsOf(c).find((r) => r.name === name)!.simple);
      expect(stage).toEqual(prod);
    },
  );

  it("states every limit in the README's table", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const { name, simple } of limitsOf(production)) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\``));
      expect(row, name).toContain(`${simple.limit} / ${simple.period === 60 ? 'min' : `${simple.period} s`}`);
    }
  });
});
