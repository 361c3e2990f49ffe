import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../tools/migrate.ts';
import { startNeonHttpProxy } from '../../tools/neon-http-proxy.ts';
import { startPostgres } from '../../tools/postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    neonHttpEndpoint: string;
  }
}

// Runs in Node, once for the Worker test project: a throwaway Postgres with every migration.
export default async function setup({ provide }: TestProject) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'edge-checkout-test-pg-'));
  const postgres = await startPostgres({ dataDir, persistent: false });
  await migrate(postgres.url, { dir: path.resolve(import.meta.dirname, '../../migrations') });
  const proxy = await startNeonHttpProxy({ databaseUrl: postgres.url });
  provide('databaseUrl', postgres.url);
  provide('neonHttpEndpoint', proxy.endpoint);
  return async () => {
    await proxy.close();
    await postgres.stop();
  };
}
