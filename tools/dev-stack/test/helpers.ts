// Shared by the dev stack's tests: a ServiceContext for starting one local service on its own.
import path from 'node:path';
import type { DevSecrets, Vars } from '../src/dev-env.ts';
import { ProcessGroups } from '../src/dev-processes.ts';
import type { ServiceContext } from '../src/local-service.ts';

export function serviceContext(opts: {
  configured: Vars;
  scratch: string;
  lines: string[];
  workerUrl?: string;
  secrets?: DevSecrets;
}): ServiceContext {
  return {
    configured: opts.configured,
    provided: {},
    workerUrl: opts.workerUrl ?? 'http://127.0.0.1:8787',
    dataDir: opts.scratch,
    secrets: opts.secrets ?? {
      AUTH_JWT_SECRET: 'jwt-secret-for-tests-0123456789',
      ADMIN_API_KEY: 'admin-key-for-tests',
      STRIPE_WEBHOOK_SECRET: 'whsec_x',
    },
    persistentDatabase: false,
    ports: { postgres: 0, stripeStandin: 0, pubsubEmulator: 0, relay: 0 },
    notificationTopic: 'notifications',
    stripeAsyncDelayMs: 3_000,
    processes: new ProcessGroups(path.join(opts.scratch, 'processes.json'), () => {}),
    log: (line) => opts.lines.push(line),
    print: (line) => opts.lines.push(line),
  };
}
