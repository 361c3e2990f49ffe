/**
 * `npm run build -w @edge-checkout/storefront`: bundles the storefront into storefront/dist, the
 * Worker's static assets (wrangler.toml [assets]), and prints its size, gzipped as it travels.
 *
 * wrangler runs this before `wrangler dev` and `wrangler deploy` ([build] in wrangler.toml), and
 * the Worker tests' global setup runs it too: several local stacks may build at the same moment,
 * so each file is written whole and renamed into place, never seen half-written.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const ROOT = path.resolve(import.meta.dirname, '..');
const DIST_DIR = path.join(ROOT, 'dist');
/**
 * Served as they are: the page, its icon (also what browsers ask for on the Worker's own pages:
 * /favicon.ico, a 404 in their console otherwise) and Cloudflare's response headers for the
 * assets (the CSP).
 */
const STATIC_FILES = ['index.html', 'favicon.ico', '_headers'];
/** Configuration for Cloudflare, not sent to browsers. */
const NOT_SERVED = new Set(['_headers']);

export interface BuiltFile {
  name: string;
  bytes: number;
  gzipBytes: number;
}

/** Builds dist/ and returns the size of each file a browser loads. */
export async function buildStorefront(): Promise<BuiltFile[]> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { app: 'src/main.ts', styles: 'src/styles.css' },
    bundle: true,
    minify: true,
    format: 'esm',
    // Phones from about 2021 on (Safari 15, Chrome 100) and every current desktop browser.
    target: ['es2021', 'safari15', 'chrome100'],
    outdir: DIST_DIR,
    write: false,
    logLevel: 'warning',
  });
  const files = new Map<string, Uint8Array>(result.outputFiles.map((f) => [path.basename(f.path), f.contents]));
  for (const name of STATIC_FILES) files.set(name, readFileSync(path.join(ROOT, name)));

  mkdirSync(DIST_DIR, { recursive: true });
  for (const [name, contents] of files) {
    const target = path.join(DIST_DIR, name);
    const temporary = `${target}.${process.pid}.tmp`;
    writeFileSync(temporary, contents);
    renameSync(temporary, target);
  }
  // What an earlier build made and this one did not (a renamed entry) is not served any more.
  for (const name of readdirSync(DIST_DIR)) {
    if (!files.has(name) && !name.endsWith('.tmp')) rmSync(path.join(DIST_DIR, name), { force: true });
  }
  return [...files]
    .filter(([name]) => !NOT_SERVED.has(name))
    .map(([name, contents]) => ({ name, bytes: contents.byteLength, gzipBytes: gzipSync(contents).byteLength }));
}

export function sizeReport(files: BuiltFile[]): string {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  const sum = (key: 'bytes' | 'gzipBytes') => files.reduce((total, f) => total + f[key], 0);
  const each = files.map((f) => `${f.name} ${kib(f.bytes)} / gzip ${kib(f.gzipBytes)}`).join(', ');
  return `storefront: ${kib(sum('bytes'))} / gzip: ${kib(sum('gzipBytes'))} (${each})`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  buildStorefront().then(
    (files) => console.log(sizeReport(files)),
    (err: unknown) => {
      console.error(`storefront build failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
