// How the relay's processes (the relay, `npm run redrive`) reach Pub/Sub: an emulator without
// credentials, else Application Default Credentials.
import { PUBSUB_SCOPE, type PubSubConnectionOptions } from '@edge-checkout/pubsub';
import { GoogleAuth } from 'google-auth-library';
import type { RelayConfig } from './config.ts';

/** The emulator when PUBSUB_EMULATOR_HOST names one, else ADC: one token source for every client made with it. */
export function pubSubConnection(config: Pick<RelayConfig, 'projectId' | 'emulatorHost'>): PubSubConnectionOptions {
  return config.emulatorHost
    ? { emulatorHost: config.emulatorHost }
    : { getAccessToken: applicationDefaultAccessToken(config.projectId) };
}

/**
 * Access tokens for Pub/Sub from Application Default Credentials: on Cloud Run the service's
 * own service account (metadata server), elsewhere GOOGLE_APPLICATION_CREDENTIALS or gcloud's
 * login. google-auth-library caches the token until shortly before it expires.
 *
 * The library shares one token request among all callers until it ends, and on Cloud Run it
 * reads the metadata server without a timeout: a request that never ends would hold every
 * later push. So a request not answered within `timeoutMs` fails its caller, and the next
 * caller starts afresh with a new client.
 */
export function applicationDefaultAccessToken(projectId: string, timeoutMs = 10_000): () => Promise<string> {
  // Naming the project spares the library a project-id lookup (metadata or Resource Manager).
  const newAuth = () => new GoogleAuth({ scopes: [PUBSUB_SCOPE], projectId });
  let auth = newAuth();
  return async () => {
    const asked = auth;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (auth === asked) auth = newAuth();
        reject(new Error(`Application Default Credentials gave no access token within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      const token = await Promise.race([asked.getAccessToken(), late]);
      if (!token) throw new Error('Application Default Credentials gave no access token');
      return token;
    } finally {
      clearTimeout(timer);
    }
  };
}
