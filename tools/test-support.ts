// Shared by the tools' tests: a ServiceContext for starting one local service on its own, and a
// one-off query on a fresh connection.
import path from 'node:path';
import pg from 'pg';
import type { DevSecrets, Vars } from './dev-env.ts';
import { ProcessGroups } from './dev-processes.ts';
import type { ServiceContext } from './local-service.ts';

export function serviceContext(opts: { configured: Vars; scratch: string; lines: string[]; workerUrl?: string; secrets?: DevSecrets }): ServiceContext {
  return {
    configured: opts.configured,
    provided: {},
    workerUrl: opts.workerUrl ?? 'http://127.0.0.1:8787',
    dataDir: opts.scratch,
    secrets: opts.secrets ?? { AUTH_JWT_SECRET: 'jwt-secret-for-tests-0123456789', ADMIN_API_KEY: 'admin-key-for-tests', STRIPE_WEBHOOK_SECRET: 'whsec_x' },
    persistentDatabase: false,
    ports: { postgres: 0, stripeStandin: 0, pubsubEmulator: 0, relay: 0 },
    notificationTopic: 'notifications',
    stripeAsyncDelayMs: 3_000,
    processes: new ProcessGroups(path.join(opts.scratch, 'processes.json'), () => {}),
    log: (line) => opts.lines.push(line),
    print: (line) => opts.lines.push(line),
  };
}

export async function queryOnce(url: string, text: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}
