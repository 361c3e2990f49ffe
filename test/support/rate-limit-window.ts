// Cloudflare's rate limiting binding counts requests per key within a period; wrangler dev and
// the Workers test pool simulate it with miniflare, whose counters start again whenever
// Math.floor(Date.now() / period) changes (miniflare src/workers/ratelimit/ratelimit.worker.ts).
// A test that counts up to a limit must therefore run within one window: had the minute turned
// in the middle, the requests after it would pass again.

/**
 * Runs `count`, the part of a test that counts up to a limit and checks what the limit does,
 * within one window. It starts at once when at least `needS` seconds of the current window are
 * left, else when the next one begins: a fast machine waits no longer than that. A machine so
 * slow that the window turned while `count` ran and failed runs it once more, from the start of
 * a fresh window, with the whole period to go: it costs a wait there, not a failure. A failure
 * within one window is the test's own, and is thrown as it is.
 */
export async function inOneWindow<T>(count: () => Promise<T>, periodS = 60, needS = 30): Promise<T> {
  const periodMs = periodS * 1000;
  const window = () => Math.floor(Date.now() / periodMs);
  const untilNext = () => new Promise((resolve) => setTimeout(resolve, periodMs - (Date.now() % periodMs) + 100));
  if (periodMs - (Date.now() % periodMs) < needS * 1000) await untilNext();
  const started = window();
  try {
    return await count();
  } catch (err) {
    if (window() === started) throw err;
    await untilNext();
    return await count();
  }
}
