// The storefront's one way to the Worker: openapi-fetch on the types generated from the Worker's
// /openapi.json (openapi.ts, `npm run generate:client`), so a call the document does not
// describe, or an answer read the wrong way, does not compile.
import type { ErrorCode } from '@edge-checkout/worker/errors';
import createClient from 'openapi-fetch';
import type { components, paths } from './openapi.ts';

export type Product = components['schemas']['Product'];
export type Cart = components['schemas']['Cart'];
export type CartItem = components['schemas']['CartItem'];
export type CartStatus = components['schemas']['CartStatus'];
export type Checkout = components['schemas']['Checkout'];
type Problem = components['schemas']['Problem'];
/** A product an out_of_stock problem names, with what is left of it. */
export type Shortage = NonNullable<Problem['products']>[number];

/**
 * A problem's code: the Worker's stable one (docs/contract.md §2), or the shop's own for a call
 * the Worker did not answer (timeout, unreachable), an answer not the Worker's (NOT_THE_SHOPS) or
 * an error in the shop itself (client). Typed, so a code misspelt or renamed does not compile.
 */
export type ProblemCode = ErrorCode | 'timeout' | 'unreachable' | 'client' | typeof NOT_THE_SHOPS;

/**
 * A call that did not succeed. Its message is the problem's `detail`, written for developers
 * (it can name the database or a setting): screens show it in the shopper's words (problemView).
 */
export class ApiProblem extends Error {
  constructor(
    /** 0 when the Worker could not be reached at all; -1 for an error in the shop itself (asProblem). */
    readonly status: number,
    readonly code: ProblemCode,
    detail: string,
    more: { shortages?: readonly Shortage[]; productId?: string | null; retryAt?: number | null } = {},
  ) {
    super(detail);
    this.name = 'ApiProblem';
    this.shortages = more.shortages ?? [];
    this.productId = more.productId ?? null;
    this.retryAt = more.retryAt ?? null;
  }

  /** out_of_stock: the products short, by id. */
  readonly shortages: readonly Shortage[];
  /** not_found: the product not found or no longer sold, by id. */
  readonly productId: string | null;
  /** When trying again is worth it (`Retry-After`), as a `Date.now()` time; null when not said. */
  readonly retryAt: number | null;

  /** Trying the same call again may work: the shop was unreachable, busy or failing. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }

  /**
   * A change sent may have been made or not: no answer from the Worker, or a 5xx (an error in
   * the shop itself counts too, as nothing says how far the call went).
   */
  get outcomeUnknown(): boolean {
    return this.status <= 0 || this.status >= 500;
  }
}

/** The code of an answer that is not the Worker's problem+json: a proxy or gateway in between answered. */
export const NOT_THE_SHOPS = 'unknown';

/** Any error as an ApiProblem, so every failure can be shown the same way. */
export function asProblem(error: unknown): ApiProblem {
  if (error instanceof ApiProblem) return error;
  return new ApiProblem(-1, 'client', `Something went wrong in the shop: ${(error as Error)?.message ?? error}`);
}

interface ShopApiOptions {
  /** The bearer token, read at each call. */
  token(): string | null;
  /**
   * The Worker refused the token the call carried, `refused` (null: it carried none): the caller
   * signs the shopper out, unless someone signed in since the call was sent.
   */
  onUnauthorized(problem: ApiProblem, refused: string | null): void;
}

export type ShopApi = ReturnType<typeof createShopApi>;

/**
 * How long a call may take, its answer's body included. Without a deadline a request stalled on
 * a bad network never ends, and holds every cart change queued behind it (CartStore runs them
 * one after another) with nothing said; after it, the call ends as a problem with Retry.
 */
const DEADLINE_MS = 20_000;

const TIMED_OUT = 'TimeoutError';

/**
 * Aborts after DEADLINE_MS. A timer rather than AbortSignal.timeout, so the browser tests can
 * move the page's clock past it. Never cleared: aborting a call that has ended does nothing.
 */
function deadline(): AbortSignal {
  const controller = new AbortController();
  setTimeout(() => controller.abort(new DOMException('The call took too long', TIMED_OUT)), DEADLINE_MS);
  return controller.signal;
}

export function createShopApi(options: ShopApiOptions) {
  const client = createClient<paths>({
    baseUrl: location.origin,
    fetch: (request) => fetch(request, { signal: deadline() }),
  });
  /** The token each refused call carried, for its answer (see onUnauthorized). */
  const refusedToken = new WeakMap<Response, string | null>();
  client.use({
    onRequest({ request }) {
      const token = options.token();
      if (token) request.headers.set('Authorization', `Bearer ${token}`);
      return request;
    },
    onResponse({ request, response }) {
      if (response.status === 401)
        refusedToken.set(response, request.headers.get('Authorization')?.slice('Bearer '.length) ?? null);
    },
  });

  async function answer<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
    let result: Awaited<typeof call>;
    try {
      result = await call;
    } catch (error) {
      // The deadline is the only thing that aborts a call. Safari below 15.4 drops abort's reason
      // and rejects with a plain AbortError (MDN: AbortController.abort, reason since 15.4).
      if (error instanceof DOMException && (error.name === TIMED_OUT || error.name === 'AbortError'))
        throw new ApiProblem(0, 'timeout', 'The shop took too long to answer. Check your connection and try again.');
      throw new ApiProblem(0, 'unreachable', 'The shop could not be reached. Check your connection and try again.');
    }
    if (result.response.ok) return result.data as T;
    const problem = problemOf(result.response, result.error);
    if (problem.status === 401) options.onUnauthorized(problem, refusedToken.get(result.response) ?? null);
    throw problem;
  }

  const cartPath = (cartId: string) => ({ params: { path: { cartId } } });
  const itemPath = (cartId: string, productId: string) => ({ params: { path: { cartId, productId } } });

  return {
    async products(): Promise<Product[]> {
      return (await answer(client.GET('/v1/products'))).products;
    },
    /** The shopper's active cart, created when there is none. */
    activeCart(): Promise<Cart> {
      return answer(client.POST('/v1/carts'));
    },
    cart(cartId: string): Promise<Cart> {
      return answer(client.GET('/v1/carts/{cartId}', cartPath(cartId)));
    },
    /** A page of the order history, newest first: the one after `startingAfter`, or the first. */
    cartPage(startingAfter?: string): Promise<{ carts: Cart[]; hasMore: boolean }> {
      return answer(client.GET('/v1/carts', { params: { query: { startingAfter } } }));
    },
    /** 0 removes the line; refused (quantity_changed) when the line no longer holds `expectedQuantity`. */
    setQuantity(cartId: string, productId: string, quantity: number, expectedQuantity: number): Promise<Cart> {
      return answer(
        client.PUT('/v1/carts/{cartId}/items/{productId}', {
          ...itemPath(cartId, productId),
          body: { quantity, expectedQuantity },
        }),
      );
    },
    removeItem(cartId: string, productId: string): Promise<Cart> {
      return answer(client.DELETE('/v1/carts/{cartId}/items/{productId}', itemPath(cartId, productId)));
    },
    checkout(cartId: string): Promise<Checkout> {
      return answer(client.POST('/v1/carts/{cartId}/checkout', cartPath(cartId)));
    },
    /** Expires the cart's Checkout Session (only if it is `sessionId`, when given); the cart is open again. */
    cancelCheckout(cartId: string, sessionId?: string): Promise<Cart> {
      return answer(
        client.DELETE('/v1/carts/{cartId}/checkout', { params: { path: { cartId }, query: { sessionId } } }),
      );
    },
  };
}

function problemOf(response: Response, body: unknown): ApiProblem {
  // Errors are application/problem+json (RFC 9457); a proxy in between may answer otherwise.
  const problem = (typeof body === 'object' && body !== null ? body : {}) as Partial<Problem>;
  const detail =
    typeof problem.detail === 'string' && problem.detail !== ''
      ? problem.detail
      : `The shop answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}.`;
  return new ApiProblem(
    response.status,
    typeof problem.code === 'string' ? (problem.code as ErrorCode) : NOT_THE_SHOPS,
    detail,
    {
      shortages: Array.isArray(problem.products) ? problem.products : [],
      productId: typeof problem.productId === 'string' ? problem.productId : null,
      retryAt: retryAtOf(response.headers.get('Retry-After')),
    },
  );
}

/** `Retry-After` (RFC 9110 §10.2.3): seconds, which the Worker sends, or an HTTP date. */
function retryAtOf(header: string | null): number | null {
  if (header === null) return null;
  const at = /^\d+$/.test(header) ? Date.now() + Number(header) * 1000 : Date.parse(header);
  return Number.isNaN(at) ? null : at;
}
