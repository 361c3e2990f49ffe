/**
 * A CPU profile of the Worker's isolate under `wrangler dev`, taken over the Chrome DevTools
 * protocol (Profiler.start / Profiler.stop) through wrangler's inspector proxy — the endpoint
 * `wrangler dev --inspector-port` names; found here from the process tree when it was not set —
 * and a summary of it: self time per function, resolved through the bundle's source map to the
 * original file and line, and per area (our code, each package, native code, GC).
 *
 * Only one DevTools client can be attached to wrangler's proxy at a time (another gets 1013 "Too
 * many clients"), so close Chrome DevTools first. Connecting straight to workerd's own inspector
 * does not work: wrangler already holds that session.
 *
 * The V8 sampler runs on its own thread: on a saturated machine samples come every few ms whatever
 * interval is asked, and a sample's time is wall time while the isolate thread was in that state
 * (also when the OS had it descheduled). Shares between functions are what to read, not absolute ms.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { descendantsOf, isWranglerProxy, readProcs } from './proc-cpu.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
/** Our own code in the Worker's bundle: the Worker and the Pub/Sub publisher it imports. */
const OWN_SOURCE = /^(worker\/src|bridge\/pubsub\/src)\//;

/** The DevTools endpoint wrangler serves for the Worker: a listening port of its proxy workerd. */
export async function findInspector(wranglerLeader: number, publicPort: number): Promise<string> {
  const procs = readProcs();
  const proxy = descendantsOf(procs, [wranglerLeader]).find(
    (pid) => procs.get(pid)!.comm === 'workerd' && isWranglerProxy(pid, publicPort),
  );
  if (!proxy) throw new Error('no wrangler proxy workerd found');
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${proxy}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${proxy}/fd/${fd}`);
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 10 || cols[3] !== '0A' || !inodes.has(cols[9]!)) continue; // 0A: LISTEN
    const port = parseInt(cols[1]!.split(':')[1]!, 16);
    if (port !== publicPort) ports.push(port);
  }
  for (const port of ports) {
    const ws = await debuggerUrlAt(port);
    if (ws) return ws;
  }
  throw new Error(`wrangler's inspector not found among the proxy workerd's ports ${ports.join(', ')}`);
}

/** The WebSocket URL a DevTools endpoint on `port` gives for its target, or null. */
export async function debuggerUrlAt(port: number): Promise<string | null> {
  const list = await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(2_000) })
    .then((res) => (res.ok ? (res.json() as Promise<Array<{ webSocketDebuggerUrl?: string }>>) : null))
    .catch(() => null);
  return list?.[0]?.webSocketDebuggerUrl ?? null;
}

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; scriptId: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export class Profiler {
  private nextId = 1;
  private readonly pending = new Map<number, (message: { result?: unknown; error?: unknown }) => void>();
  /** scriptId → url, from Debugger.scriptParsed (the profile's call frames name scripts only as `index.js`). */
  readonly scripts = new Map<string, string>();
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as {
        id?: number;
        method?: string;
        params?: { scriptId?: string; url?: string };
        result?: unknown;
        error?: unknown;
      };
      if (message.method === 'Debugger.scriptParsed' && message.params?.scriptId && message.params.url) {
        this.scripts.set(message.params.scriptId, message.params.url);
      }
      // workerd answers Profiler.enable by echoing the request (with its id); match ids only.
      if (message.id !== undefined) this.pending.get(message.id)?.(message);
    });
  }

  /**
   * Attaches to the inspector. Attach before the load: wrangler's proxy replays every console
   * message since the last DevTools session when one attaches (see the README).
   */
  static async connect(url: string): Promise<Profiler> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('close', (code, reason) => reject(new Error(`inspector closed: ${code} ${reason}`)));
    });
    const profiler = new Profiler(ws);
    // wrangler's proxy turns Network on for DevTools: workerd would then report every subrequest
    // (SQL over HTTP, Pub/Sub) with its body, which costs the isolate time.
    await profiler.call('Network.disable').catch(() => {});
    return profiler;
  }

  call<T>(method: string, params: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer from the inspector within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, (message) => {
        clearTimeout(timer);
        this.pending.delete(id);
        if (message.error) reject(new Error(`${method}: ${JSON.stringify(message.error)}`));
        else resolve(message.result as T);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async start(intervalUs: number): Promise<void> {
    await this.call('Profiler.enable');
    await this.call('Profiler.setSamplingInterval', { interval: intervalUs });
    await this.call('Profiler.start');
  }

  async stop(): Promise<CpuProfile> {
    const { profile } = await this.call<{ profile: CpuProfile }>('Profiler.stop', {}, 60_000);
    await this.call('Profiler.disable').catch(() => {});
    // Only now, so the debugger is off during the load: Debugger.enable reports every script
    // (with its file:// path) before it answers.
    await this.call('Debugger.enable').catch(() => {});
    await this.call('Debugger.disable').catch(() => {});
    return profile;
  }

  close(): void {
    for (const answer of this.pending.values()) answer({ error: 'closed' });
    this.ws.terminate();
  }
}

export interface ProfileRow {
  selfMs: number;
  selfPct: number;
  hits: number;
  function: string;
  /** Where it is: the original source (through the bundle's source map) or the bundle/builtin. */
  location: string;
}

export interface ProfileSummary {
  samples: number;
  /** Sampled time outside (idle), in ms. */
  nonIdleMs: number;
  /** Share of the profile's sampled time the isolate was not idle. */
  busyPct: number;
  byArea: Array<{ area: string; selfMs: number; selfPct: number }>;
  top: ProfileRow[];
  /**
   * Our own functions (worker/src, bridge/pubsub/src) by total time: their own and what they called,
   * each sample counted once per function on its stack. After an `await` a function resumes on a
   * fresh stack, so an async function's total holds the parts between awaits it ran itself.
   */
  ownTotals: Array<{ totalMs: number; totalPct: number; function: string; location: string }>;
}

/** Self time per function (file:line function), resolved through the bundle's source map; the top `top`. */
export function summariseProfile(profile: CpuProfile, scripts: Map<string, string>, top: number): ProfileSummary {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time from sample i-1 to sample i; that interval is charged to sample i.
  for (let i = 0; i < samples.length; i++)
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, deltas[i] ?? 0));
  const maps = new Map<string, SourceMap | null>();
  const mapFor = (url: string): SourceMap | null => {
    if (!maps.has(url)) {
      let map: SourceMap | null = null;
      try {
        if (url.startsWith('file://')) {
          const file = fileURLToPath(url);
          const mapFile = existsSync(`${file}.map`) ? `${file}.map` : null;
          if (mapFile) map = new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')));
        }
      } catch {
        map = null;
      }
      maps.set(url, map);
    }
    return maps.get(url)!;
  };
  const locate = (frame: CpuProfileNode['callFrame']): string => {
    if (!frame.url) return '(native)';
    const scriptUrl = scripts.get(frame.scriptId) ?? frame.url;
    const map = mapFor(scriptUrl);
    if (map && frame.lineNumber >= 0) {
      const entry = map.findEntry(frame.lineNumber, Math.max(0, frame.columnNumber)) as {
        originalSource?: string;
        originalLine?: number;
        originalColumn?: number;
      };
      if (entry?.originalSource) {
        const source = entry.originalSource.replace(/^file:\/\//, '');
        const relative = path.isAbsolute(source)
          ? path.relative(REPO_ROOT, source)
          : path.normalize(source).replace(/^(\.\.\/)+/, '');
        return `${relative}:${entry.originalLine! + 1}`;
      }
    }
    return `${frame.url}:${frame.lineNumber + 1}`;
  };
  const area = (location: string, fn: string): string => {
    if (fn.startsWith('(native, called from')) return '(native code)';
    if (location === '(native)') return fn.startsWith('(') ? fn : '(native code)';
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(location);
    if (pkg) return pkg[1]!;
    const own = OWN_SOURCE.exec(location);
    if (own) return own[1]!;
    if (location.startsWith('node-internal:') || location.startsWith('node:')) return 'workerd node compat';
    if (location.startsWith('cloudflare:')) return 'workerd builtins';
    return location.split(':')[0]!;
  };

  const parents = new Map<number, CpuProfileNode>();
  for (const node of nodes.values()) for (const child of node.children ?? []) parents.set(child, node);
  const rows = new Map<string, ProfileRow>();
  const areas = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const node of nodes.values()) {
    const us = selfUs.get(node.id) ?? 0;
    const hits = node.hitCount ?? 0;
    if (us === 0 && hits === 0) continue;
    let fn = node.callFrame.functionName || '(anonymous)';
    let location = locate(node.callFrame);
    // A builtin without a name (runtime code called from JS): say who called it.
    if (!node.callFrame.url && !node.callFrame.functionName) {
      const caller = parents.get(node.id);
      if (caller?.callFrame.url) {
        fn = `(native, called from ${caller.callFrame.functionName || '(anonymous)'})`;
        location = locate(caller.callFrame);
      }
    }
    const key = `${location} ${fn}`;
    const row = rows.get(key) ?? { selfMs: 0, selfPct: 0, hits: 0, function: fn, location };
    row.selfMs += us / 1000;
    row.hits += hits;
    rows.set(key, row);
    if (fn === '(idle)') idleUs += us;
    else {
      totalUs += us;
      const a = area(location, fn);
      areas.set(a, (areas.get(a) ?? 0) + us);
    }
  }
  const totalMs = totalUs / 1000;
  const sorted = [...rows.values()]
    .filter((row) => row.function !== '(idle)')
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, top)
    .map((row) => ({
      ...row,
      selfMs: round(row.selfMs, 1),
      selfPct: round((100 * row.selfMs) / Math.max(1e-9, totalMs), 1),
    }));
  // Totals: walk each sample's stack once, counting a function once however often it recurs.
  const keyOf = new Map<number, { key: string; fn: string; location: string }>();
  for (const node of nodes.values()) {
    const fn = node.callFrame.functionName || '(anonymous)';
    const location = locate(node.callFrame);
    keyOf.set(node.id, { key: `${location} ${fn}`, fn, location });
  }
  const totals = new Map<string, { us: number; fn: string; location: string }>();
  for (let i = 0; i < samples.length; i++) {
    const us = Math.max(0, deltas[i] ?? 0);
    const seen = new Set<string>();
    for (let node: CpuProfileNode | undefined = nodes.get(samples[i]!); node; node = parents.get(node.id)) {
      const k = keyOf.get(node.id)!;
      if (seen.has(k.key) || !OWN_SOURCE.test(k.location)) continue;
      seen.add(k.key);
      const t = totals.get(k.key) ?? { us: 0, fn: k.fn, location: k.location };
      t.us += us;
      totals.set(k.key, t);
    }
  }
  const ownTotals = [...totals.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((t) => ({
      totalMs: round(t.us / 1000, 1),
      totalPct: round((100 * t.us) / 1000 / Math.max(1e-9, totalMs), 1),
      function: t.fn,
      location: t.location,
    }));
  const byArea = [...areas.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => ({
      area: name,
      selfMs: round(us / 1000, 1),
      selfPct: round((100 * us) / 1000 / Math.max(1e-9, totalMs), 1),
    }));
  return {
    samples: samples.length,
    nonIdleMs: round(totalMs, 1),
    busyPct: round((100 * totalUs) / Math.max(1, totalUs + idleUs), 1),
    byArea,
    top: sorted,
    ownTotals,
  };
}
