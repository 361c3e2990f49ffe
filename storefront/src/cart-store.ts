import { CART_LIMITS, isEditable } from '@edge-checkout/worker/cart-state';
import { ApiProblem, asProblem, type Cart, type Checkout, type ProblemCode, type ShopApi } from './api/client.ts';

/**
 * A cart change that did not go through, with the same request to send again. Its answer may
 * have been lost after the change was made: the API takes absolute quantities, so the same
 * request twice leaves the cart as once, where working "+1" out again would add a second one.
 */
export class FailedChange<T = Cart> extends ApiProblem {
  constructor(
    problem: ApiProblem,
    readonly retry: () => Promise<T>,
    /**
     * Whether `cart` shows the change made after all: its answer lost, or the same change made in
     * another tab; once the cart loaded again shows it, the problem is stale.
     */
    readonly madeIn: (cart: Cart) => boolean = () => false,
  ) {
    super(problem.status, problem.code, problem.message, problem);
  }
}

/**
 * A change or checkout not sent, as one queued before it failed (CartStore.behind): that failure
 * (`cause`), shown with its Retry, is what the shopper needs to see, not this. The screen of the
 * failed change may be gone by then (a tap on another screen was queued behind it).
 */
export class NotSent extends Error {
  constructor(override readonly cause: FailedChange<unknown>) {
    super('Not sent: a change before it failed');
    this.name = 'NotSent';
  }
}

/** A request ready to send (and to send again, as it is). */
type Send<T = Cart> = () => Promise<T>;

/** Works a change out from the cart as it is when its turn comes (null: nothing to change). */
type Plan = (cart: Cart) => Change | null;

/** A change worked out from the cart: its request, and how a cart shows it made. */
interface Change {
  send: Send;
  madeIn(cart: Cart): boolean;
}

export function quantityIn(cart: Cart, productId: string): number {
  return cart.items.find((item) => item.productId === productId)?.quantity ?? 0;
}

/**
 * Refusals that mean the cart moved on meanwhile (emptied, paid or checked out in another tab,
 * replaced by a newer cart, a line changed on another device): what is on screen is stale.
 */
const STALE_CART = new Set<ProblemCode>(['cart_not_editable', 'not_found', 'cart_empty', 'quantity_changed']);

/**
 * How often a tap is worked out again from the cart loaded afresh after its line changed
 * elsewhere meanwhile: more means another device keeps changing the same line.
 */
const REPLANS = 3;

/** Per cart, the session this tab last left for the payment page with (sessionStorage: this tab only). */
const LEFT_FOR = 'edge-checkout.checkout-left-for.';

/**
 * The shopper's active cart, shared by the header's badge and the screens. Changes run one after
 * another, each from the cart the previous one returned: the API takes absolute quantities, so
 * two quick taps on "+" must make 2, not 1 twice. Each names the quantity it was worked out from
 * (expectedQuantity), so that a line changed on another device meanwhile is not overwritten: the
 * cart is loaded again and the tap worked out from it.
 */
export class CartStore {
  private current: Cart | null = null;
  /** The cart on screen may lack a change whose answer never came: the next tap loads it first. */
  private stale = false;
  private lastProblem: ApiProblem | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * How many changes have failed, and how many of them without a known outcome: what was queued
   * behind a failed change is not sent (see `behind`).
   */
  private failures = { any: 0, unknownOutcome: 0 };
  private lastFailure: FailedChange<unknown> | null = null;
  /** A change's failure that came after the screen that made it was left (showElsewhere). */
  private unshown: unknown = null;
  /** Changes sent or waiting their turn; checkouts apart, as they also hold the lines still. */
  private readonly pending = { change: 0, checkout: 0 };
  private readonly listeners = new Set<() => void>();
  /** Tasks of the queue begun so far (run), and which of them last set the cart: see refresh. */
  private begun = 0;
  private setBy = 0;
  /** A refresh queued and not begun, with nothing queued after it: a refresh asked now joins it. */
  private joinable: Promise<Cart> | null = null;

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

  /**
   * Loads the active cart again (POST /v1/carts: created when there is none). Asked for again
   * before one queued has begun (the shell and the cart screen, as the shop opens), it is the
   * same load. Not sent when, by its turn, a call sent after it was asked for has answered with
   * the cart (a change's, a cancel's answer) and no change has failed since: that answer is the
   * cart as it is now. One that began earlier may have been answered before the cart changed
   * elsewhere (the shopper coming back to the tab asks for it then), so it is not joined.
   */
  private refresh(): Promise<Cart> {
    if (this.joinable) return this.joinable;
    const asked = { begun: this.begun, failures: this.failures.any };
    const load = this.run(async () => {
      const answeredSince = this.setBy > asked.begun && this.failures.any === asked.failures;
      if (this.current && !this.stale && answeredSince) return this.current;
      try {
        return this.set(await this.api.activeCart());
      } catch (error) {
        this.lastProblem = asProblem(error);
        // It was asked for because the cart may have changed elsewhere, and may still have: the
        // next change loads it first rather than build on it (a tap worked out from an old line
        // can ask for what another device just made it, which the Worker takes as done).
        this.stale = true;
        this.notify();
        throw error;
      }
    });
    this.joinable = load;
    return load;
  }

  /**
   * Loads the cart again (refresh) for a caller with nothing to do if that fails: the failure is
   * kept in `problem`, which the screens show with their Retry (cartNotLoadedView).
   */
  reload(): Promise<void> {
    return this.refresh().then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * Hands the failure of a change whose screen was left before it came to the screen shown now,
   * which takes it (takeUnshown) as it draws: a tap that failed is never lost without a word.
   */
  showElsewhere(error: unknown): void {
    this.unshown = error;
    this.notify();
  }

  /** The failure handed over by showElsewhere, once. */
  takeUnshown(): unknown {
    const error = this.unshown;
    this.unshown = null;
    return error;
  }

  quantityOf(productId: string): number {
    return this.current ? quantityIn(this.current, productId) : 0;
  }

  /** One more, up to as many as a line holds: a tap queued after that changes nothing. */
  add(productId: string): Promise<Cart> {
    return this.change((cart) => {
      const quantity = quantityIn(cart, productId);
      return quantity < CART_LIMITS.quantity ? this.setQuantity(cart.id, productId, quantity, quantity + 1) : null;
    });
  }

  /** One fewer; the last one takes the line away. A tap queued after that has nothing left to take. */
  decrease(productId: string): Promise<Cart> {
    return this.change((cart) => {
      const quantity = quantityIn(cart, productId);
      return quantity > 0 ? this.setQuantity(cart.id, productId, quantity, quantity - 1) : null;
    });
  }

  remove(productId: string): Promise<Cart> {
    return this.change((cart) => ({
      send: () => this.api.removeItem(cart.id, productId),
      madeIn: (now) => now.id === cart.id && quantityIn(now, productId) === 0,
    }));
  }

  private setQuantity(cartId: string, productId: string, from: number, quantity: number): Change {
    return {
      send: () => this.api.setQuantity(cartId, productId, quantity, from),
      madeIn: (now) => now.id === cartId && quantityIn(now, productId) === quantity,
    };
  }

  /**
   * Starts (or, on a second tap, finds) the Checkout Session of the cart. From the tap until the
   * answer `checkingOut` is true: the lines cannot change meanwhile, on any screen (a change
   * then would be refused, or be left out of the session the shopper is about to pay).
   */
  checkout(): Promise<Checkout> {
    const request = async () => this.api.checkout((await this.loaded()).id);
    // Sent again, it finds the session the first one made.
    const attempt = (): Promise<Checkout> =>
      this.counted(
        'checkout',
        this.behind('any', () => this.send(request, (made) => made, attempt)),
      );
    return attempt();
  }

  /** A checkout is being made: see checkout(). */
  get checkingOut(): boolean {
    return this.pending.checkout > 0;
  }

  /** Changes are on their way or waiting their turn: the shop says so, as a call may be slow. */
  get saving(): boolean {
    return this.pending.change + this.pending.checkout > 0;
  }

  /**
   * This tab leaves for `checkout`'s payment page: a cancel from there (its cancel page's way
   * back) then means that session, not a newer one started since on another device.
   */
  leavingFor(checkout: Checkout): void {
    sessionStorage.setItem(`${LEFT_FOR}${checkout.cartId}`, checkout.sessionId);
  }

  /** The session this tab last left for with the cart, if it remembers one. */
  leftFor(cartId: string): string | null {
    return sessionStorage.getItem(`${LEFT_FOR}${cartId}`);
  }

  /**
   * Back from the Checkout page without paying: the cart can be changed again. `cartId` is the
   * cart whose checkout the shopper means, not whichever is active when the change's turn comes:
   * that cart paid in another tab meanwhile, the active one is a new cart, which must not be
   * taken for it. `sessionId` is the checkout meant (the screen knows which: see cartScreen's
   * cancelLanded); if another is live by now, it is left alone.
   */
  cancelCheckout(cartId: string, sessionId: string | undefined): Promise<Cart> {
    return this.change(() => ({
      send: () => this.cancelling(cartId, sessionId),
      madeIn: (now) => now.id === cartId && isEditable(now.status),
    }));
  }

  private async cancelling(cartId: string, sessionId: string | undefined): Promise<Cart> {
    try {
      return await this.api.cancelCheckout(cartId, sessionId);
    } catch (error) {
      if (asProblem(error).code !== 'cart_not_editable') throw error;
      const now = await this.api.cart(cartId).catch(() => Promise.reject(error));
      // Open to change again, which is all the shopper asked for: a retry whose first answer was
      // lost finds the checkout gone. Or checked out again elsewhere since: the session meant is
      // over, and the live one is not this cancel's to end.
      const checkedOutAgain = sessionId !== undefined && now.checkout !== null && now.checkout.sessionId !== sessionId;
      if (isEditable(now.status) || (now.status === 'checkout_pending' && checkedOutAgain)) return now;
      throw error;
    }
  }

  /**
   * `plan` works the request out from the cart as it is when the change's turn comes (null: nothing
   * to change); that request, not the plan, is what a retry sends.
   */
  private change(plan: Plan): Promise<Cart> {
    return this.counted(
      'change',
      this.behind('unknownOutcome', () => this.planned(plan, REPLANS)),
    );
  }

  /**
   * Queues `task`, unless a change queued before it fails by then in the way `which` names: it
   * is then not sent (NotSent), and the screen goes on showing that change's failure with its Retry.
   * - A checkout behind any failed change: the shopper meant to pay for the cart with it (a line
   *   removed, then Checkout) and would otherwise be sent to pay for the cart without it.
   * - A change behind one whose outcome is unknown (no answer; it may have been made or not): the
   *   next tap, worked out from the cart before it, could undo it or be taken for its resend
   *   (the same quantity twice counts once), losing a tap without a word.
   */
  private behind<T>(which: keyof CartStore['failures'], task: () => Promise<T>): () => Promise<T> {
    const before = this.failures[which];
    return () =>
      this.run(() =>
        this.failures[which] === before || !this.lastFailure ? task() : Promise.reject(new NotSent(this.lastFailure)),
      );
  }

  private async planned(plan: Plan, replans: number): Promise<Cart> {
    const cart = await this.loaded().catch((error) =>
      // Nothing was sent yet: the retry works the request out afresh.
      Promise.reject(this.failed(new FailedChange(asProblem(error), () => this.change(plan)), false)),
    );
    const change = plan(cart);
    return change ? this.sendChange(change, plan, replans) : cart;
  }

  /**
   * `replans`: how often a refusal as quantity_changed may still be worked out again. None for a
   * retry: its first try may have been made before the line changed elsewhere, and "one more"
   * worked out again would then count the tap twice.
   */
  private async sendChange(change: Change, plan: Plan, replans: number): Promise<Cart> {
    const again = () => this.counted('change', () => this.run(() => this.sendChange(change, plan, 0)));
    try {
      return await this.send(change.send, (changed) => this.set(changed), again, change.madeIn);
    } catch (error) {
      // The line changed elsewhere since the cart was loaded, and the cart is loaded again by
      // now (recovering): this request was refused, so "one more" is worked out from what the
      // line holds now.
      if (asProblem(error).code === 'quantity_changed' && replans > 1) return this.planned(plan, replans - 1);
      throw error;
    }
  }

  /**
   * Sends `request`; a failure carries `again`, which sends the very same request again, and
   * `madeIn` (see FailedChange).
   */
  private async send<T>(
    request: Send<T>,
    done: (answer: T) => T,
    again: () => Promise<T>,
    madeIn?: (cart: Cart) => boolean,
  ): Promise<T> {
    try {
      return done(await this.recovering(request));
    } catch (error) {
      throw this.failed(new FailedChange(asProblem(error), again, madeIn), true);
    }
  }

  /**
   * Counts a change that failed, for what is queued behind it (see `behind`). `sent`: its request
   * went out, so with no answer, or a 5xx, it may have been made or not: the cart is loaded again
   * before the next change is worked out.
   */
  private failed<T>(failure: FailedChange<T>, sent: boolean): FailedChange<T> {
    this.failures.any++;
    this.lastFailure = failure;
    if (sent && failure.outcomeUnknown) {
      this.failures.unknownOutcome++;
      this.stale = true;
    }
    return failure;
  }

  /** Counts `attempt` as pending, from now until it ends. */
  private async counted<T>(kind: keyof CartStore['pending'], attempt: () => Promise<T>): Promise<T> {
    this.pending[kind]++;
    this.notify();
    try {
      return await attempt();
    } finally {
      this.pending[kind]--;
      this.notify();
    }
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
    return this.current && !this.stale ? this.current : this.set(await this.api.activeCart());
  }

  private set(cart: Cart): Cart {
    this.current = cart;
    // Every call that sets the cart is made by a task of the queue, the one begun last.
    this.setBy = this.begun;
    this.stale = false;
    this.lastProblem = null;
    this.notify();
    return cart;
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  private run<T>(task: () => Promise<T>): Promise<T> {
    // Queued behind a refresh: a refresh asked for after this one is not the same load.
    this.joinable = null;
    const result = this.queue.then(() => {
      this.begun++;
      // Begun: a refresh asked for from now on might be answered with the cart as it was before.
      if (this.joinable === result) this.joinable = null;
      return task();
    });
    this.queue = result.catch(() => undefined);
    return result;
  }
}
