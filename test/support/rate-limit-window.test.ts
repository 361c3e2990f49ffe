import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { inOneWindow } from './rate-limit-window.ts';

const MINUTE = Date.UTC(2026, 0, 1, 12, 0);

/**
 * A count that takes `takesMs` and fails, as request 301 passing does, when the minute turned
 * while it ran; each start is noted, in seconds from MINUTE.
 */
function countTaking(takesMs: number, starts: number[]) {
  return async () => {
    const started = Date.now();
    starts.push((started - MINUTE) / 1000);
    await new Promise((resolve) => setTimeout(resolve, takesMs));
    if (Math.floor(Date.now() / 60_000) !== Math.floor(started / 60_000)) throw new Error('the minute turned');
    return 'limited';
  };
}

async function run<T>(promise: Promise<T>): Promise<T> {
  const settled = promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  await vi.runAllTimersAsync();
  const result = await settled;
  if ('error' in result) throw result.error;
  return result.value;
}

describe('inOneWindow', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('starts at once with half the minute left, and waits for the next one with less', async () => {
    const starts: number[] = [];
    vi.setSystemTime(MINUTE + 25_000);
    await expect(run(inOneWindow(countTaking(20_000, starts)))).resolves.toBe('limited');
    vi.setSystemTime(MINUTE + 40_000);
    await expect(run(inOneWindow(countTaking(20_000, starts)))).resolves.toBe('limited');
    expect(starts).toEqual([25, 60.1]);
  });

  it('counts once more from the start of a fresh minute when the minute cut a slow count', async () => {
    const starts: number[] = [];
    vi.setSystemTime(MINUTE + 10_000);
    await expect(run(inOneWindow(countTaking(55_000, starts)))).resolves.toBe('limited');
    expect(starts).toEqual([10, 120.1]);
  });

  it('throws a failure within one minute as it is, and a second cut count', async () => {
    vi.setSystemTime(MINUTE + 10_000);
    const wrong = vi.fn(async () => {
      throw new Error('200 instead of 429');
    });
    await expect(run(inOneWindow(wrong))).rejects.toThrow('200 instead of 429');
    expect(wrong).toHaveBeenCalledTimes(1);

    const starts: number[] = [];
    await expect(run(inOneWindow(countTaking(61_000, starts)))).rejects.toThrow('the minute turned');
    expect(starts).toEqual([10, 120.1]);
  });
});
