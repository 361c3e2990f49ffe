import { CART_LIMITS } from '@edge-checkout/worker/cart-state';
import { ApiProblem, asProblem, type Cart, type Checkout, type ShopApi } from './api/client.ts';

/**
 * Refusals that mean the cart moved on meanwhile (emptied, paid or checked out in another tab,
 * replaced by a newer cart): what is on screen is stale.
 */
const STALE_CART = new Set(['cart_not_editable', 'not_found', 'cart_empty']);

/**
 * The shopper's active cart, shared by the header's badge and the screens. Changes run one after
 * another, each from the cart the previous one returned: the API takes absolute quantities, so
 * two quick taps on "+" must make 2, not 1 twice.
 */
export class CartStore {
  private current: Cart | null = null;
  private lastProblem: ApiProblem | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly api: ShopApi) {}

  /** null until the first answer. */
  get cart(): Cart | null {
    return this.current;
  }

  /** Why the cart could not be loaded, while it could not. */
  get problem(): ApiProblem | null {
    return this.lastProblem;
  }

  /** Calls `listener` after every change (until `signal` aborts). */
  subscribe(listener: () => void, signal?: AbortSignal): void {
    this.listeners.add(listener);
    signal?.addEventListener('abort', () => this.listeners.delete(listener));
  }

  /** Loads the active cart again (POST /v1/carts: created when there is none). */
  refresh(): Promise<Cart> {
    return this.run(async () => {
      try {
        return this.set(await this.api.activeCart());
      } catch (error) {
        this.lastProblem = asProblem(error);
        this.notify();
        throw error;
      }
    });
  }

  quantityOf(productId: string): number {
    return this.current?.items.find((item) => item.productId === productId)?.quantity ?? 0;
  }

  /** One more, up to as many as a line holds: a tap queued after that changes nothing. */
  add(productId: string): Promise<Cart> {
    return this.change(async (cart) => {
      const quantity = this.quantityOf(productId);
      return quantity < CART_LIMITS.quantity ? this.api.setQuantity(cart.id, productId, quantity + 1) : cart;
    });
  }

  /** One fewer; the last one takes the line away. A tap queued after that has nothing left to take. */
  decrease(productId: string): Promise<Cart> {
    return this.change(async (cart) => {
      const quantity = this.quantityOf(productId);
      return quantity > 0 ? this.api.setQuantity(cart.id, productId, quantity - 1) : cart;
    });
  }

  remove(productId: string): Promise<Cart> {
    return this.change((cart) => this.api.removeItem(cart.id, productId));
  }

  /** Starts (or, on a second tap, finds) the Checkout Session of the cart. */
  checkout(): Promise<Checkout> {
    return this.run(() => this.recovering(async () => this.api.checkout((await this.loaded()).id)));
  }

  /** Back from the Checkout page without paying: the cart can be changed again. */
  cancelCheckout(): Promise<Cart> {
    return this.change((cart) => this.api.cancelCheckout(cart.id));
  }

  private change(edit: (cart: Cart) => Promise<Cart>): Promise<Cart> {
    return this.run(() => this.recovering(async () => this.set(await edit(await this.loaded()))));
  }

  private async recovering<T>(task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } catch (error) {
      // Load the cart as it is now: what the screens show, and what the next tap should change.
      if (error instanceof ApiProblem && STALE_CART.has(error.code)) {
        await this.api.activeCart().then(
          (cart) => this.set(cart),
          () => undefined,
        );
      }
      throw error;
    }
  }

  private async loaded(): Promise<Cart> {
    return this.current ?? this.set(await this.api.activeCart());
  }

  private set(cart: Cart): Cart {
    this.current = cart;
    this.lastProblem = null;
    this.notify();
    return cart;
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  private run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }
}
