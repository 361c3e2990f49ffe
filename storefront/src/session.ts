// Signing in by link (docs/contract.md §8): `/#token=JWT`. The token is kept in sessionStorage
// (this tab only, gone when it closes) and taken out of the address bar at once, so it stays out
// of history, bookmarks and screenshots. A fragment is never sent to servers. The Worker checks
// the token on every call; the shop reads only who it names, to tell one shopper's return from
// Stripe's page from another's in this tab (app.ts).

const STORAGE_KEY = 'edge-checkout.token';

interface Session {
  readonly token: string;
  /** The token's `sub`, when it can be read. */
  readonly userId: string | null;
}

/** Stores a token that arrived in the address bar and removes it from there. */
export function takeTokenFromAddress(): void {
  const token = new URLSearchParams(location.hash.slice(1)).get('token')?.trim();
  if (token === undefined) return;
  history.replaceState(null, '', `${location.pathname}${location.search}`);
  if (token) signIn(token);
}

export function signIn(token: string): void {
  sessionStorage.setItem(STORAGE_KEY, token);
}

export function signOut(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

export function currentSession(): Session | null {
  const token = sessionStorage.getItem(STORAGE_KEY);
  return token ? { token, userId: subjectOf(token) } : null;
}

function subjectOf(token: string): string | null {
  try {
    const payload = token.split('.')[1]!.replaceAll('-', '+').replaceAll('_', '/');
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    const { sub } = JSON.parse(new TextDecoder().decode(bytes)) as { sub?: unknown };
    return typeof sub === 'string' ? sub : null;
  } catch {
    return null;
  }
}
