// One Pub/Sub emulator per test file (it takes seconds to start), skipped with a visible
// reason only where the Google Cloud CLI or its emulator component is missing (never in CI).

import { createPubSubAdmin, type PubSubAdmin } from '@edge-checkout/dev-stack/pubsub-admin';
import { type PubSubEmulator, startPubSubEmulator } from '@edge-checkout/dev-stack/pubsub-emulator';
import { afterAll, beforeAll } from 'vitest';
import { pubsubEmulatorMissing, skipWithout } from './requirements.ts';

/** True where the emulator tests skip (see skipWithout). */
export const withoutEmulator = skipWithout("Google's Pub/Sub emulator", pubsubEmulatorMissing());

export type SharedEmulator = { readonly host: string; readonly admin: PubSubAdmin };

/** Registers beforeAll/afterAll that start and stop one emulator for the enclosing describe. */
export function useSharedEmulator(projectId: string): SharedEmulator {
  let emulator: PubSubEmulator | null = null;
  let admin: PubSubAdmin | undefined;
  beforeAll(async () => {
    emulator = await startPubSubEmulator({ projectId });
    if (!emulator) throw new Error('Pub/Sub emulator did not start');
    admin = createPubSubAdmin({ host: emulator.host, projectId });
  });
  afterAll(async () => {
    await emulator?.stop();
  });
  return {
    get host() {
      if (!emulator) throw new Error('emulator not started');
      return emulator.host;
    },
    get admin() {
      if (!admin) throw new Error('emulator not started');
      return admin;
    },
  };
}
