import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cronsFromWranglerToml, everyMinutes, msUntilNextRun } from '../src/dev-cron.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'dev-cron-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('dev cron ticker schedule', () => {
  it("reads the project's wrangler.toml crons", () => {
    expect(cronsFromWranglerToml(path.resolve(import.meta.dirname, '../../../wrangler.toml'))).toEqual(['*/5 * * * *']);
    const file = path.join(scratch, 'wrangler.toml');
    writeFileSync(file, 'name = "x"\n[triggers]\ncrons = [ "*/15 * * * *", \'0 3 * * *\' ]\n');
    expect(cronsFromWranglerToml(file)).toEqual(['*/15 * * * *', '0 3 * * *']);
  });

  it('understands every-N-minutes schedules only', () => {
    expect(everyMinutes('*/5 * * * *')).toBe(5);
    expect(everyMinutes('* * * * *')).toBe(1);
    expect(everyMinutes('0 3 * * *')).toBeUndefined();
    expect(everyMinutes('*/5 * * * 1')).toBeUndefined();
  });

  it('waits until the next wall-clock multiple of N minutes', () => {
    expect(msUntilNextRun(5, new Date('2026-01-01T10:03:30Z'))).toBe(90_000);
    expect(msUntilNextRun(5, new Date('2026-01-01T10:05:00Z'))).toBe(300_000);
    expect(msUntilNextRun(1, new Date('2026-01-01T10:05:59.500Z'))).toBe(500);
  });
});
