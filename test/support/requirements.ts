// What some tests need from the machine (Google's Pub/Sub emulator, Chromium). Where it is
// missing those tests skip, and say so; under CI=true a missing one fails the run instead, so a
// green CI always means every test ran. .ci/run installs what it can before that.
import { locatePubSubEmulator } from '@edge-checkout/dev-stack/pubsub-emulator';
import { findChromium } from './browser.ts';

const inCi = process.env.CI === 'true';

/**
 * True when the tests that need `what` must skip (it is missing here: the reason is printed).
 * Under CI=true a missing `what` throws instead, failing the test file with the reason.
 */
export function skipWithout(what: string, missing: string | undefined): boolean {
  if (missing === undefined) return false;
  if (inCi) throw new Error(`${what} is required in CI (CI=true) but missing: ${missing}`);
  console.warn(`SKIPPING the tests that need ${what}: ${missing}`);
  return true;
}

/** Why Google's Pub/Sub emulator cannot run here, or undefined when it can. */
export function pubsubEmulatorMissing(): string | undefined {
  const located = locatePubSubEmulator();
  return located.ok ? undefined : located.reason;
}

/** Why Chromium cannot run here, or undefined when it can. */
export function chromiumMissing(): string | undefined {
  return findChromium() ? undefined : 'no chromium on the PATH (Debian: apt-get install chromium)';
}
