import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type RunningPostgres, startPostgres } from '@edge-checkout/dev-stack/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LockHolder, startLockHolder } from './lock-holder.ts';
import { queryOnce } from './query-once.ts';

describe('lock holder', () => {
  let postgres: RunningPostgres;
  let holder: LockHolder;
  beforeAll(async () => {
    postgres = await startPostgres({
      dataDir: mkdtempSync(path.join(tmpdir(), 'lock-holder-test-')),
      persistent: false,
    });
    holder = await startLockHolder(postgres.url);
  });
  afterAll(async () => {
    await holder?.close();
    await postgres?.stop();
  });

  const post = async (route: string, body: unknown) => {
    const response = await fetch(`${holder.url}${route}`, { method: 'POST', body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('answers 500 once Postgres has ended its connections (as at shutdown, 57P01), and keeps running', async () => {
    const { body: held } = await post('/hold', { statements: ['SELECT 1'] });
    // What a shutdown sends every session: "terminating connection due to administrator command".
    const ended = await queryOnce<{ ended: boolean }>(
      postgres.url,
      "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE application_name LIKE 'lock-holder%'",
    );
    expect(ended).toEqual([{ ended: true }, { ended: true }]);

    const waiting = await post('/waiting', { id: held.id, count: 1 });
    expect(waiting.status).toBe(500);
    expect(String(waiting.body.error)).toMatch(/terminat|not queryable/);
    expect((await post('/release', { id: held.id })).status).toBe(500);
    // A transaction held from now on is on a connection of its own, and works.
    const { status, body } = await post('/hold', { statements: ['SELECT 1'] });
    expect(status).toBe(200);
    expect((await post('/release', { id: body.id })).status).toBe(200);
  });
});
