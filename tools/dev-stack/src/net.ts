/** Small TCP helpers shared by the local tooling. */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

// A port the kernel hands out for listen(0) or for an outgoing connection comes from its ephemeral
// range (ip_local_port_range). Handing such a port to a server that binds it seconds later loses it
// now and then to one of the many connections a test run opens meanwhile: CI saw wrangler fail with
// "Address already in use" that way. Below that range only an explicit bind takes a port, so ports
// are picked there; a reservation file keeps two of our own processes from picking the same one
// before either has bound it.
const LOWEST_PORT = 15_000;
const EPHEMERAL_RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range';
/** One empty file per reserved port, named after it. */
const RESERVATIONS_DIR = path.join(tmpdir(), 'edge-checkout-ports');
// Long enough for the slowest start (wrangler under load); once the server listens, the bind probe
// turns the port away on its own.
const RESERVATION_MS = 10 * 60_000;

/** A port that is free on 127.0.0.1 right now and that nothing but an explicit bind will take. */
export async function freePort(): Promise<number> {
  const ephemeralLow = firstEphemeralPort();
  if (ephemeralLow === undefined || ephemeralLow - LOWEST_PORT < 1_000) return listenOnce(0);
  return reservePortIn(LOWEST_PORT, ephemeralLow - 1);
}

/**
 * A free port in [first, last], reserved for this caller; `dir` holds the reservations (its own
 * for a test).
 */
export async function reservePortIn(
  first: number,
  last: number,
  { attempts = 200, dir = RESERVATIONS_DIR }: { attempts?: number; dir?: string } = {},
): Promise<number> {
  for (let i = 0; i < attempts; i++) {
    const port = first + Math.floor(Math.random() * (last - first + 1));
    if (reserve(dir, port) && (await canListen(port))) return port;
  }
  throw new Error(`no free port between ${first} and ${last} on 127.0.0.1 after ${attempts} tries`);
}

function firstEphemeralPort(): number | undefined {
  try {
    const low = Number(readFileSync(EPHEMERAL_RANGE_FILE, 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : undefined;
  } catch {
    return undefined;
  }
}

function reserve(dir: string, port: number): boolean {
  const file = path.join(dir, String(port));
  try {
    mkdirSync(dir, { recursive: true });
    closeSync(openSync(file, 'wx'));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Another user's reservation directory: the bind probe alone decides.
    if (code === 'EACCES' || code === 'EPERM') return true;
    if (code !== 'EEXIST') throw err;
  }
  const age = Date.now() - mtimeMs(file);
  if (age < RESERVATION_MS) return false;
  try {
    rmSync(file, { force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // An expired reservation in another user's directory: the bind probe alone decides.
    if (code === 'EACCES' || code === 'EPERM') return true;
    throw err;
  }
  return reserve(dir, port);
}

function mtimeMs(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** Binds 127.0.0.1:port (0: any) and lets it go again: the port bound, or the bind's error. */
function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(port, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function canListen(port: number): Promise<boolean> {
  return listenOnce(port).then(
    () => true,
    () => false,
  );
}

/** Fails with a plain message when something already listens on 127.0.0.1:port. */
export async function assertPortFree(port: number, hint = 'choose another port'): Promise<void> {
  await listenOnce(port).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'EADDRINUSE'
      ? new Error(`port ${port} on 127.0.0.1 is already in use by another process; ${hint}`)
      : err;
  });
}

/** True for 127.0.0.0/8, ::1 and localhost: a database or server on this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
