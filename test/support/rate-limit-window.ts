// Cloudflare's rate limiting binding counts requests per key within a period; wrangler dev and
// the Workers test pool simulate it with miniflare, whose counters start again whenever
// Math.floor(Date.now() / period) changes (miniflare src/workers/ratelimit/ratelimit.worker.ts).
// A test that counts up to a limit must therefore run within one window: had the minute turned
// in the middle, the requests after it would pass again.

/** Resolves at once when at least `needS` seconds of the current window are left; else once the next window begins. */
export async function withinOneWindow(periodS = 60, needS = 30): Promise<void> {
  const periodMs = periodS * 1000;
  const leftMs = periodMs - (Date.now() % periodMs);
  if (leftMs < needS * 1000) await new Promise((resolve) => setTimeout(resolve, leftMs + 100));
}
