import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineProject } from 'vitest/config';
import { TEST_BINDINGS } from './test/test-bindings.ts';

// The Worker's tests run inside workerd. global-setup.ts (in Node) starts a real Postgres and
// the local services, and provides their addresses, which become the Worker's bindings here.
export default defineProject({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: '../wrangler.toml' },
      miniflare: {
        bindings: {
          DATABASE_URL: inject('databaseUrl'),
          NEON_HTTP_ENDPOINT: inject('neonHttpEndpoint'),
          AUTH_JWT_SECRET: 'test-secret-for-hs256-tokens-0123456789',
          ADMIN_API_KEY: 'test-admin-key-0123456789',
          PUBLIC_BASE_URL: 'http://127.0.0.1:8787',
          STRIPE_SECRET_KEY: 'sk_test_worker_tests',
          ...TEST_BINDINGS,
          STRIPE_API_BASE: inject('stripeApiBase'),
          PUBSUB_EMULATOR_HOST: inject('pubsubEmulatorHost'),
        },
      },
    })),
  ],
  test: {
    name: 'worker',
    include: ['test/**/*.test.ts'],
    globalSetup: ['./test/global-setup.ts'],
    // As the node project's: at a stop the CI machine has run tests 3-4 times slower than usual.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // expect.poll waits for work after the answer (waitUntil): its default of 1 s is tight on a
    // busy 2-core machine.
    expect: { poll: { timeout: 10_000 } },
  },
});
