// A real browser for the pages (Debian's chromium driven by playwright-core; `npx playwright
// install` cannot download browsers here), sized and behaving like a phone.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page, type Route } from 'playwright-core';

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
  // Below the tests' own 30 s: a wait that never ends fails naming its locator or event, not as
  // "Test timed out" with no step named. expect.poll does not bound its callback, so a
  // textContent() inside it would otherwise wait Playwright's 30 s, past the poll's 10 s.
  context.setDefaultTimeout(20_000);
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Stops the clock `clock.install()` gave the browser, which runs on real time until paused: from
 * then on only the test moves it (`runFor` fires the timers due in order), so no timer of the
 * page fires by itself, however slow the machine.
 */
export async function pauseClock(browser: PhoneBrowser): Promise<void> {
  // Not this process's Date.now(): a page opened after install() replays it and can run seconds
  // ahead of real time (microsoft/playwright#33926), and pauseAt refuses a time a page's clock
  // has passed ("Cannot fast-forward to the past"). Every page of the context is paused, so the
  // time is the latest of their clocks, plus the round trip to them on a loaded machine; the
  // shop is idle by then, so the timers that come due in between fire once without harm.
  const pages = browser.context.pages();
  const latest = Math.max(...(await Promise.all(pages.map((page) => page.evaluate(() => Date.now())))));
  await browser.context.clock.pauseAt(latest + 5_000);
}

/** A call of the page's held on its way to the server, until the test says what becomes of it. */
export interface HeldCall {
  /** The request's JSON body, if it has one. */
  readonly body: unknown;
  /** Sent on to the server, its answer back to the page. */
  pass(): Promise<void>;
  /** Never reaches the server: the network is gone. */
  fail(): Promise<void>;
  /** Reaches the server, which does what it asks, but the answer never reaches the page. */
  loseAnswer(): Promise<void>;
}

/**
 * Holds every `method` call of `page` to a path `path` matches, handing each to the test in
 * order (`next()`): races are forced by releasing calls when the test says, never by timing.
 */
export async function holdCalls(
  page: Page,
  method: string,
  path: RegExp,
): Promise<{ next(): Promise<HeldCall>; stop(): Promise<void> }> {
  const held: HeldCall[] = [];
  const waiting: ((call: HeldCall) => void)[] = [];
  const matches = (url: URL) => path.test(url.pathname);
  const handler = async (route: Route) => {
    if (route.request().method() !== method) return route.fallback();
    const call: HeldCall = {
      body: route.request().postDataJSON(),
      pass: () => route.continue(),
      fail: () => route.abort('internetdisconnected'),
      async loseAnswer() {
        await route.fetch();
        await route.abort('connectionreset');
      },
    };
    const taker = waiting.shift();
    if (taker) taker(call);
    else held.push(call);
  };
  await page.route(matches, handler);
  return {
    next: () => {
      const call = held.shift();
      return call ? Promise.resolve(call) : new Promise((resolve) => waiting.push(resolve));
    },
    stop: () => page.unroute(matches, handler),
  };
}
