// What global-setup.ts (in Node) provides to the tests and to the pool's bindings (inject).
export {};

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    neonHttpEndpoint: string;
    stripeApiBase: string;
    /** A second Stripe stand-in, for tests that inject faults into endpoints every test calls. */
    faultyStripeApiBase: string;
    /** A third Stripe stand-in whose webhook endpoint receives nothing: all its events are undelivered. */
    lostEventsStripeApiBase: string;
    /** host:port of Google's Pub/Sub emulator, or '' where this machine has none. */
    pubsubEmulatorHost: string;
    /** host:port of a switchable fault proxy in front of the emulator (tools/pubsub-fault-proxy.ts), or ''. */
    pubsubFaultProxyHost: string;
    /** URL of tools/lock-holder.ts, for race tests that hold a lock while requests pile up behind it. */
    lockHolderUrl: string;
    /** How many requests the fuzz test sends (FUZZ_REQUESTS, default 3000), and a seed to replay (FUZZ_SEED). */
    fuzz: { requests: number; seed: number | undefined };
  }
}
