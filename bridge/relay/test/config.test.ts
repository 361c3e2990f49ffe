import { describe, expect, it } from 'vitest';
import { loadRelayConfig, RelayConfigError } from '../src/config.ts';

const production = {
  GCP_PROJECT_ID: 'demo-project',
  NOTIFICATION_TOPIC: 'notifications',
  PUSH_AUDIENCE: 'https://relay.example.run.app/pubsub/push',
  PUSH_SERVICE_ACCOUNT: 'pubsub-push@demo-project.iam.gserviceaccount.com',
};

function errorFor(env: Record<string, string | undefined>): RelayConfigError {
  try {
    loadRelayConfig(env);
  } catch (error) {
    if (error instanceof RelayConfigError) return error;
    throw error;
  }
  throw new Error('expected a configuration error');
}

describe('relay configuration', () => {
  it('defaults to port 8080 and OIDC verification', () => {
    expect(loadRelayConfig(production)).toEqual({
      port: 8080,
      projectId: 'demo-project',
      notificationTopic: 'notifications',
      pushAuth: 'oidc',
      pushAudience: production.PUSH_AUDIENCE,
      pushServiceAccount: production.PUSH_SERVICE_ACCOUNT,
      emulatorHost: undefined,
    });
    expect(loadRelayConfig({ ...production, PORT: '9000' }).port).toBe(9000);
  });

  it('names the missing variable', () => {
    for (const name of ['GCP_PROJECT_ID', 'NOTIFICATION_TOPIC', 'PUSH_AUDIENCE']) {
      const error = errorFor({ ...production, [name]: undefined });
      expect(error.variable).toBe(name);
      expect(error.message).toBe(`${name} is required`);
    }
    expect(errorFor({ ...production, GCP_PROJECT_ID: '   ' }).variable).toBe('GCP_PROJECT_ID');
  });

  it("takes NOTIFICATION_TOPIC as the topic's id or its full name in the project", () => {
    expect(
      loadRelayConfig({ ...production, NOTIFICATION_TOPIC: 'projects/demo-project/topics/notify' }).notificationTopic,
    ).toBe('notify');
    expect(errorFor({ ...production, NOTIFICATION_TOPIC: 'projects/other/topics/notify' }).variable).toBe(
      'NOTIFICATION_TOPIC',
    );
  });

  it('rejects a bad PORT or PUSH_AUTH without echoing secrets', () => {
    expect(errorFor({ ...production, PORT: 'eighty' }).message).toMatch(/^PORT must be a port number/);
    expect(errorFor({ ...production, PORT: '70000' }).variable).toBe('PORT');
    expect(errorFor({ ...production, PUSH_AUTH: 'off' }).message).toBe('PUSH_AUTH must be "oidc" or "none"');
  });

  it('names an invalid project id, topic id or emulator address, without echoing it', () => {
    for (const [name, bad] of [
      ['GCP_PROJECT_ID', 'My_Project'],
      ['NOTIFICATION_TOPIC', 'ab'],
      ['PUBSUB_EMULATOR_HOST', '127.0.0.1:notaport'],
      ['PUBSUB_EMULATOR_HOST', '127.0.0.1:70000'],
      ['PUBSUB_EMULATOR_HOST', 'localhost'],
    ] as const) {
      const error = errorFor({ ...production, [name]: bad });
      expect(error.variable).toBe(name);
      expect(error.message).not.toContain(bad);
    }
    for (const good of ['127.0.0.1:8085', 'http://localhost:8085/', '[::1]:8085']) {
      expect(loadRelayConfig({ ...production, PUBSUB_EMULATOR_HOST: good }).emulatorHost).toBe(good);
    }
  });

  it('verifies OIDC tokens without PUSH_SERVICE_ACCOUNT too: the contract makes it optional', () => {
    expect(loadRelayConfig({ ...production, PUSH_SERVICE_ACCOUNT: undefined })).toMatchObject({
      pushAuth: 'oidc',
      pushAudience: production.PUSH_AUDIENCE,
      pushServiceAccount: undefined,
    });
  });

  it('refuses PUSH_AUTH=none unless an emulator is configured', () => {
    expect(errorFor({ ...production, PUSH_AUTH: 'none' }).message).toMatch(/only allowed with PUBSUB_EMULATOR_HOST/);
    const local = loadRelayConfig({
      GCP_PROJECT_ID: 'demo-project',
      NOTIFICATION_TOPIC: 'notifications',
      PUSH_AUTH: 'none',
      PUBSUB_EMULATOR_HOST: '127.0.0.1:8085',
    });
    expect(local).toMatchObject({ pushAuth: 'none', pushAudience: undefined, emulatorHost: '127.0.0.1:8085' });
  });
});
