import { defineConfig } from 'vitest/config';

// The Workers test pool runs wrangler's code: keep it from phoning home.
process.env.WRANGLER_SEND_METRICS ??= 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';

// Two projects: the Worker's tests run inside workerd (worker/vitest.config.ts); local tooling,
// the GCP bridge and the storefront's scripts run in Node.
export default defineConfig({
  test: {
    projects: [
      'worker/vitest.config.ts',
      {
        test: {
          name: 'node',
          environment: 'node',
          include: ['tools/**/*.test.ts', 'bridge/**/*.test.ts', 'test/**/*.test.ts', 'storefront/test/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
