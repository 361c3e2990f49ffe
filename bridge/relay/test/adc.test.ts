// The relay's production credentials: Application Default Credentials through google-auth-library.
// A workload-identity credential file lets the whole ADC path run against a local token server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPubSubPublisher } from '@edge-checkout/pubsub';
import { type LocalHandler, type LocalServer, startLocalServer } from '@edge-checkout/test-support/local-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applicationDefaultAccessToken } from '../src/pubsub-connection.ts';

/**
 * A local token server (STS) answering as `answer` does, and Application Default Credentials
 * pointing at it, for the tests of one describe block; a local Pub/Sub that takes every publish.
 */
function localCredentials(answer: LocalHandler) {
  const google = {} as { sts: LocalServer; pubsub: LocalServer };
  const previous = process.env.GOOGLE_APPLICATION_CREDENTIALS;
  let dir: string;
  beforeAll(async () => {
    google.sts = await startLocalServer(answer);
    google.pubsub = await startLocalServer(() => ({ status: 200, body: { messageIds: ['n-1'] } }));
    dir = mkdtempSync(join(tmpdir(), 'adc-'));
    writeFileSync(join(dir, 'subject-token'), 'local-subject-token');
    writeFileSync(
      join(dir, 'credentials.json'),
      JSON.stringify({
        type: 'external_account',
        audience: '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/local/providers/local',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: `${google.sts.url}/v1/token`,
        credential_source: { file: join(dir, 'subject-token') },
      }),
    );
    process.env.GOOGLE_APPLICATION_CREDENTIALS = join(dir, 'credentials.json');
  });
  afterAll(async () => {
    if (previous === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    else process.env.GOOGLE_APPLICATION_CREDENTIALS = previous;
    rmSync(dir, { recursive: true, force: true });
    await Promise.all([google.sts.close(), google.pubsub.close()]);
  });
  return google;
}

const token = (accessToken: string) => ({
  status: 200,
  body: {
    access_token: accessToken,
    issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    token_type: 'Bearer',
    expires_in: 3600,
  },
});

describe('publishing with Application Default Credentials', () => {
  const google = localCredentials(() => token('ya29.local-sts-token'));

  it('asks for the Pub/Sub scope, sends the access token as the bearer and reuses it', async () => {
    const publisher = createPubSubPublisher({
      projectId: 'demo-project',
      topic: 'notifications',
      getAccessToken: applicationDefaultAccessToken('demo-project'),
      apiEndpoint: google.pubsub.url,
    });
    await publisher.publish([{ data: 'one' }]);
    await publisher.publish([{ data: 'two' }]);

    expect(google.pubsub.requests.map((request) => request.headers.authorization)).toEqual([
      'Bearer ya29.local-sts-token',
      'Bearer ya29.local-sts-token',
    ]);
    expect(google.sts.requests).toHaveLength(1);
    expect(new URLSearchParams(google.sts.requests[0].body).get('scope')).toBe(
      'https://www.googleapis.com/auth/pubsub',
    );
  });
});

describe('an access-token request that never ends', () => {
  // The first token request hangs, as a metadata server read without a timeout can; later ones answer.
  const google = localCredentials(() => (google.sts.requests.length === 1 ? 'hang' : token('ya29.second')));

  it('fails only the publish waiting for it: the next one asks again and goes through', async () => {
    const publisher = createPubSubPublisher({
      projectId: 'demo-project',
      topic: 'notifications',
      getAccessToken: applicationDefaultAccessToken('demo-project', 2_000),
      apiEndpoint: google.pubsub.url,
    });
    await expect(publisher.publish([{ data: 'one' }])).rejects.toMatchObject({ retryable: true });
    expect(await publisher.publish([{ data: 'two' }])).toEqual(['n-1']);
    expect(google.pubsub.requests.map((request) => request.headers.authorization)).toEqual(['Bearer ya29.second']);
  });
});
