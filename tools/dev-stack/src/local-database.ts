/**
 * The database part of the local stack: embedded Postgres (unless DATABASE_URL is configured),
 * migrations and demo products, and the Neon SQL-over-HTTP proxy the Worker's driver talks to.
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { migrate } from '@edge-checkout/migrate';
import { isNeonEndpointHost } from '@edge-checkout/worker/env';
import { effective, type LocalService } from './local-service.ts';
import { startNeonHttpProxy } from './neon-http-proxy.ts';
import { isLoopbackHost } from './net.ts';
import { startPostgres } from './postgres.ts';
import { seedDemoProducts } from './seed.ts';

export const postgresService: LocalService = {
  name: 'postgres',
  async start(ctx) {
    if (ctx.configured.DATABASE_URL) {
      ctx.log(
        `database: DATABASE_URL is configured (${redactUrl(ctx.configured.DATABASE_URL)}); not starting Postgres`,
      );
      return undefined;
    }
    const logFile = path.join(ctx.dataDir, 'postgres.log');
    const server = await startPostgres({
      dataDir: path.join(ctx.dataDir, 'postgres'),
      port: ctx.ports.postgres,
      persistent: ctx.persistentDatabase,
      portHint: 'set PG_PORT to run Postgres on another port',
      log: (line) => {
        appendFileSync(logFile, `${line}\n`);
        // Postgres' routine chatter goes to the file; problems and our own notes to the terminal
        // (not the disconnects every shutdown causes).
        const notable =
          /(FATAL|PANIC|ERROR|WARNING):|Postgres ready|stopping a Postgres|removing (stale|.*cut short)|traverse permission/;
        if (notable.test(line) && !line.includes('terminating connection due to administrator command')) {
          ctx.log(`postgres: ${line}`);
        }
      },
    });
    return {
      vars: { DATABASE_URL: server.url },
      exited: server.exited.then((exit) => ({ part: 'Postgres', ...exit })),
      stop: server.stop,
    };
  },
};

export const schemaService: LocalService = {
  name: 'migrations and demo data',
  async start(ctx) {
    const url = effective(ctx, 'DATABASE_URL')!;
    const { applied } = await migrate(url, { log: (line) => ctx.log(`migrate: ${line}`) });
    if (applied.length === 0) ctx.log('migrate: up to date');
    // Demo rows only ever go into a database on this machine, never a shared or production one.
    if (isLoopbackHost(new URL(url).hostname)) {
      const written = await seedDemoProducts(url);
      ctx.log(`seed: demo products ${written ? `written (${written})` : 'already present'}`);
    } else {
      ctx.log('seed: skipped (the database is not on this machine)');
    }
    return undefined;
  },
};

export const neonProxyService: LocalService = {
  name: 'neon http proxy',
  async start(ctx) {
    const url = effective(ctx, 'DATABASE_URL')!;
    // Neon itself serves SQL over HTTP; any other Postgres (this machine's, or one elsewhere)
    // needs the stand-in in front of it.
    if (ctx.configured.NEON_HTTP_ENDPOINT || isNeonEndpointHost(new URL(url).hostname)) return undefined;
    const proxy = await startNeonHttpProxy({ databaseUrl: url });
    ctx.log(`neon http proxy: ${proxy.endpoint}`);
    return { vars: { NEON_HTTP_ENDPOINT: proxy.endpoint }, stop: proxy.close };
  },
};

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}
