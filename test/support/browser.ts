// A real browser for the pages (Debian's chromium driven by playwright-core; `npx playwright
// install` cannot download browsers here), sized and behaving like a phone.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

/** chromium on the PATH (Debian: apt-get install chromium), or undefined. */
export function findChromium(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'chromium');
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

// Headless and quiet: no GPU, and nothing that phones home (component updates, sync, field
// trials), since these machines reach 127.0.0.1 only.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

export interface PhoneBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh profile each time (launchPersistentContext is how Playwright takes a user-data-dir). */
export async function launchPhoneBrowser(executablePath: string): Promise<PhoneBrowser> {
  const profile = mkdtempSync(path.join(tmpdir(), 'edge-checkout-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: FLAGS,
    // An iPhone 14-sized screen at 2x, with touch and a mobile viewport meta tag honoured.
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    timeout: 30_000,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
