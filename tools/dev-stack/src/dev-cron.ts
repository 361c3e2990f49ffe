/**
 * `wrangler dev` never fires cron triggers by itself; with `--test-scheduled` it exposes
 * `/__scheduled?cron=…`. This ticker calls that on the schedule declared in wrangler.toml, so
 * the scheduled job runs locally as it would in production.
 */
import { readFileSync } from 'node:fs';

/** The `crons = [...]` of wrangler.toml (its only array of that name). */
export function cronsFromWranglerToml(file: string): string[] {
  const match = /^\s*crons\s*=\s*\[([^\]]*)\]/m.exec(readFileSync(file, 'utf8'));
  if (!match) return [];
  return [...match[1]!.matchAll(/"([^"]*)"|'([^']*)'/g)].map((m) => m[1] ?? m[2]!);
}

/** Minutes between runs for `*\/N * * * *` (and `* * * * *`); undefined for anything else. */
export function everyMinutes(cron: string): number | undefined {
  const [minute, ...rest] = cron.trim().split(/\s+/);
  if (rest.length !== 4 || rest.some((field) => field !== '*')) return undefined;
  if (minute === '*') return 1;
  const step = /^\*\/(\d+)$/.exec(minute ?? '');
  const n = step ? Number(step[1]) : NaN;
  return n >= 1 && n <= 60 ? n : undefined;
}

/** Milliseconds from `now` to the next wall-clock minute divisible by `every`. */
export function msUntilNextRun(every: number, now: Date): number {
  const next = new Date(now);
  next.setUTCSeconds(0, 0);
  do next.setUTCMinutes(next.getUTCMinutes() + 1);
  while (next.getUTCMinutes() % every !== 0);
  return next.getTime() - now.getTime();
}

export function startCronTicker(workerUrl: string, crons: string[], log: (line: string) => void): { stop(): void } {
  const timers = new Set<NodeJS.Timeout>();
  for (const cron of crons) {
    const every = everyMinutes(cron);
    if (!every) {
      log(
        `cron "${cron}" is not run automatically; trigger it with GET ${workerUrl}/__scheduled?cron=${encodeURIComponent(cron)}`,
      );
      continue;
    }
    const schedule = () => {
      const timer = setTimeout(
        async () => {
          timers.delete(timer);
          try {
            const res = await fetch(`${workerUrl}/__scheduled?cron=${encodeURIComponent(cron)}`, {
              signal: AbortSignal.timeout(60_000),
            });
            if (!res.ok) log(`cron "${cron}": the Worker answered ${res.status}`);
          } catch (err) {
            log(`cron "${cron}": ${(err as Error).message}`);
          }
          schedule();
        },
        msUntilNextRun(every, new Date()),
      );
      timers.add(timer);
    };
    schedule();
    log(`cron "${cron}" runs every ${every} min via /__scheduled`);
  }
  return {
    stop() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
