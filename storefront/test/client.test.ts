import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { CLIENT_TYPES_FILE, generateClientTypes } from '../scripts/generate-client.ts';

// The storefront calls the Worker through types generated from its OpenAPI document: once the
// API changes, this fails until the client is generated again, so CI never ships a stale one.
it("the committed client is what the Worker's /openapi.json generates", async () => {
  expect(readFileSync(CLIENT_TYPES_FILE, 'utf8'), 'stale: run `npm run generate:client` and commit the result').toBe(
    await generateClientTypes(),
  );
});
