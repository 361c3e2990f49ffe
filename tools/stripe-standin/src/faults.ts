import { invalidRequest, resourceMissing } from './errors.ts';
import { randomId } from './ids.ts';

// Stripe's unhappy paths on demand, for tests (POST /_standin/faults): a failure of Stripe's own
// (500), an object Stripe does not know (404), another request holding the idempotency key (409),
// the rate limiter (429), and slowness (delayMs). A fault matches /v1 requests by method and path,
// affects `times` of them, then disappears.
//
// Each kind acts at the point of a request's life where Stripe's own would arise, which decides
// what an Idempotency-Key saves (api.ts asks at each point):
// - arrival (429, 404): after authentication, before the idempotency layer, as Stripe's rate
//   limiter runs; never saved.
// - conflict (409): in the idempotency layer, so only for requests that carry a key; not saved.
// - execution (500, or delayMs alone): once the endpoint began executing, with the key in flight;
//   the 500 is saved and replayed like any result. A replay, or a request refused by validation,
//   never gets this far, so it neither sees nor uses up such a fault.

export type FaultStatus = 404 | 409 | 429 | 500;
export type Stage = 'arrival' | 'conflict' | 'execution';

export interface Fault {
  id: string;
  /** Any method when null. */
  method: string | null;
  /** Exact, or a prefix when it ends in `*`. */
  path: string;
  /** Null: only the delay, then the request acts normally. */
  status: FaultStatus | null;
  delayMs: number;
  times: number;
  /** How many more requests it affects. */
  remaining: number;
}

export type FaultSpec = Omit<Fault, 'id' | 'remaining'>;

const STATUSES: readonly FaultStatus[] = [404, 409, 429, 500];
// The methods of the endpoints the stand-in serves.
const METHODS = ['GET', 'POST'];
// setTimeout fires at once for delays above 2^31-1 ms.
const MAX_DELAY_MS = 2 ** 31 - 1;

export class Faults {
  private faults: Fault[] = [];
  /** Each held request's timer, with what resumes it. */
  private readonly holds = new Map<NodeJS.Timeout, () => void>();

  add(spec: FaultSpec): Fault {
    const fault = { id: randomId('fault_', 14), ...spec, remaining: spec.times };
    this.faults.push(fault);
    return fault;
  }

  /** Active faults, oldest first. */
  list(): readonly Fault[] {
    return this.faults;
  }

  remove(id: string): Fault {
    const fault = this.faults.find((f) => f.id === id);
    if (!fault) throw resourceMissing('fault', id, 'id');
    this.faults = this.faults.filter((f) => f !== fault);
    return fault;
  }

  /** Clears every fault; requests already held stay held. Answers how many there were. */
  clear(): number {
    const count = this.faults.length;
    this.faults = [];
    return count;
  }

  /** The oldest fault of this stage matching the request, counted as used. */
  take(method: string, path: string, stage: Stage): Fault | undefined {
    const fault = this.faults.find((f) => stageOf(f) === stage && matches(f, method, path));
    if (fault && --fault.remaining === 0) this.faults = this.faults.filter((f) => f !== fault);
    return fault;
  }

  /** Holds a request for a fault's delay. */
  hold(ms: number): Promise<void> {
    if (ms === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.holds.delete(timer);
        resolve();
      }, ms);
      this.holds.set(timer, resolve);
    });
  }

  /**
   * Ends every hold now: each held request goes on as when its delay is over. With a long delay a
   * test holds a request exactly until it has seen what should happen meanwhile, instead of
   * hoping a fixed delay outlasts it. Answers how many were held.
   */
  release(): number {
    const held = [...this.holds];
    this.holds.clear();
    for (const [timer, resume] of held) {
      clearTimeout(timer);
      resume();
    }
    return held.length;
  }

  /** Drops held requests (their connections close with the server), so nothing acts after close. */
  close(): void {
    for (const timer of this.holds.keys()) clearTimeout(timer);
    this.holds.clear();
  }
}

function stageOf(fault: Fault): Stage {
  if (fault.status === 429 || fault.status === 404) return 'arrival';
  return fault.status === 409 ? 'conflict' : 'execution';
}

function matches(fault: Fault, method: string, path: string): boolean {
  if (fault.method !== null && fault.method !== method) return false;
  return fault.path.endsWith('*') ? path.startsWith(fault.path.slice(0, -1)) : path === fault.path;
}

/** The JSON body of POST /_standin/faults, checked. */
export function parseFault(body: Record<string, unknown>): FaultSpec {
  const method = absent(body.method) ? null : METHODS.find((m) => m === String(body.method).toUpperCase());
  if (method === undefined) throw invalidRequest(`method must be one of ${METHODS.join(', ')}`, 'method');
  const { path } = body;
  if (typeof path !== 'string' || !/^\/v[12]\//.test(path) || path.slice(0, -1).includes('*')) {
    throw invalidRequest('path must be a /v1/ or /v2/ path, exact or ending in * for a prefix', 'path');
  }
  const status = absent(body.status) ? null : STATUSES.find((s) => s === body.status);
  if (status === undefined) throw invalidRequest(`status must be one of ${STATUSES.join(', ')}`, 'status');
  const delayMs = body.delayMs ?? 0;
  if (typeof delayMs !== 'number' || !Number.isInteger(delayMs) || delayMs < 0 || delayMs > MAX_DELAY_MS) {
    throw invalidRequest(`delayMs must be a whole number of milliseconds from 0 to ${MAX_DELAY_MS}`, 'delayMs');
  }
  const times = body.times ?? 1;
  if (typeof times !== 'number' || !Number.isInteger(times) || times < 1) {
    throw invalidRequest('times must be a whole number of at least 1', 'times');
  }
  if (status === null && delayMs === 0) throw invalidRequest('A fault needs a status, a delayMs, or both.', 'status');
  if (status === 409 && method === 'GET') {
    throw invalidRequest('A 409 acts on requests with an Idempotency-Key, and GET requests have none.', 'status');
  }
  return { method, path, status, delayMs, times };
}

function absent(value: unknown): boolean {
  return value === undefined || value === null;
}
