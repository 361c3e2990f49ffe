import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresService } from '../src/local-database.ts';
import { postmasterPid } from '../src/postgres.ts';
import { serviceContext } from './helpers.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'local-database-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('Postgres in the local stack', () => {
  it('says when Postgres exits while it runs, naming it, so that npm run dev can stop', async () => {
    const lines: string[] = [];
    const started = await postgresService.start(serviceContext({ configured: {}, scratch, lines }));
    try {
      process.kill(postmasterPid(path.join(scratch, 'postgres'))!, 'SIGKILL');
      expect(await started?.exited).toEqual({ part: 'Postgres', code: null, signal: 'SIGKILL' });
    } finally {
      await started?.stop();
    }
  });
});
