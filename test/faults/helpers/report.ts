// The table the fault suite prints at the end: one row per scenario, in words a reader of the
// contract can check (what the webhooks answered, where the carts ended, what reached Pub/Sub).
import type { DeliveredEvent } from '@edge-checkout/test-support/standin';

export interface ScenarioRow {
  scenario: string;
  fault: string;
  webhookAnswers: string;
  finalCarts: string;
  published: string;
  fiveXxAfterRecovery: string;
}

const COLUMNS: Array<[keyof ScenarioRow, string]> = [
  ['scenario', 'scenario'],
  ['fault', 'fault'],
  ['webhookAnswers', 'webhook answers'],
  ['finalCarts', 'final carts'],
  ['published', 'published'],
  ['fiveXxAfterRecovery', '5xx after recovery'],
];

export class ResultsTable {
  private readonly rows: ScenarioRow[] = [];

  constructor(private readonly scenarios: readonly string[]) {}

  add(row: ScenarioRow): void {
    this.rows.push(row);
  }

  /** A Markdown table in scenario order; a scenario that did not get to its end says so. */
  render(): string {
    const rows = this.scenarios.map(
      (scenario) =>
        this.rows.find((row) => row.scenario === scenario) ?? {
          scenario,
          fault: '(did not finish: see the failure above)',
          webhookAnswers: '',
          finalCarts: '',
          published: '',
          fiveXxAfterRecovery: '',
        },
    );
    const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
    return [
      line(COLUMNS.map(([, title]) => title)),
      line(COLUMNS.map(() => '---')),
      ...rows.map((row) => line(COLUMNS.map(([key]) => row[key].replaceAll('|', '\\|')))),
    ].join('\n');
  }
}

/** `200 ×5, 503 ×2`, in order of first appearance. */
export function tally(values: readonly string[]): string {
  if (values.length === 0) return 'none';
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].map(([value, n]) => `${value} ×${n}`).join(', ');
}

/** Every delivery attempt's answer; an attempt the stand-in gave up on (timeout, network) is "no answer". */
export function webhookAnswers(events: readonly DeliveredEvent[]): string {
  return tally(
    events.flatMap((e) => e.delivery.attempts.map((a) => (a.status === null ? 'no answer' : String(a.status)))),
  );
}

/** Attempts made at or after `since` (ms) that the Worker answered with a 5xx. */
export function fiveXxSince(events: readonly DeliveredEvent[], since: number): { fiveXx: number; attempts: number } {
  const after = events.flatMap((e) => e.delivery.attempts).filter((a) => Date.parse(a.at) >= since);
  return { fiveXx: after.filter((a) => a.status !== null && a.status >= 500).length, attempts: after.length };
}
