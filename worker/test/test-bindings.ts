// The Worker's fixed test settings, read by vitest.config.ts (its bindings) and by global-setup.ts
// (the stand-in's webhook secret, the emulator's project and topic), so the two cannot drift.
export const TEST_BINDINGS = {
  STRIPE_WEBHOOK_SECRET: 'whsec_worker_tests_0123456789',
  GCP_PROJECT_ID: 'edge-checkout-test',
  PUBSUB_TOPIC: 'payment-events',
} as const;
