import { defineConfig } from 'vitest/config';

// The Workers test pool runs wrangler's code: keep it from phoning home.
process.env.WRANGLER_SEND_METRICS ??= 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';

// Two projects: the Worker's tests run inside workerd (worker/vitest.config.ts); local tooling,
// the GCP bridge and the storefront's scripts run in Node.
export default defineConfig({
  test: {
    // One test file at a time, as vitest already chooses on 2 cores: the Worker's files share one
    // Postgres, Stripe stand-in and emulator, and each e2e file starts a whole stack.
    maxWorkers: 1,
    projects: [
      'worker/vitest.config.ts',
      {
        test: {
          name: 'node',
          environment: 'node',
          include: ['tools/**/*.test.ts', 'bridge/**/*.test.ts', 'test/**/*.test.ts', 'storefront/test/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
          // expect.poll waits for what a stack does (a Worker, Postgres, Chromium): its default of
          // 1 s is tight on a busy 2-core machine.
          expect: { poll: { timeout: 10_000 } },
        },
      },
    ],
  },
});
