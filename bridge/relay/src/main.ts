// Entry of `npm run relay`: the notification relay configured by its environment (docs/contract.md §6).
import { loadRelayConfig, type RelayConfig, RelayConfigError } from './config.ts';
import { jsonLog } from './log.ts';
import { startRelay } from './server.ts';

let config: RelayConfig;
try {
  config = loadRelayConfig(process.env);
} catch (error) {
  if (!(error instanceof RelayConfigError)) throw error;
  jsonLog('ERROR', `relay not started: ${error.message}`, { variable: error.variable });
  process.exit(1);
}

// Unauthenticated pushes are for a local emulator: then do not listen beyond this machine.
const hostname = config.pushAuth === 'none' ? '127.0.0.1' : '0.0.0.0';
const relay = await startRelay(config, { hostname }).catch((error: unknown) => {
  jsonLog('ERROR', `relay could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

// Kept for every signal, not once: Ctrl-C in a terminal reaches the relay twice under npm (the
// terminal's and npm's own), and a second one must not cut the requests in flight short.
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    jsonLog('INFO', `${signal}: finishing requests in flight, then exiting`);
    void relay.close().then(() => {
      jsonLog('INFO', 'relay stopped');
      process.exit(0);
    });
  });
}
