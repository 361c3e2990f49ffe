import type { Cart } from '../api/client.ts';
import { FailedChange, NotSent } from '../cart-store.ts';
import type { Child } from '../dom.ts';
import type { ScreenContext } from './context.ts';
import { heldByCheckout, heldByCheckoutView, type NameOf, problemView, type Retry } from './parts.ts';

/**
 * What the screen that made a change said of it, for a screen that shows its failure after it
 * (the shopper moved on, or tapped there behind it): which change failed, and what to announce
 * once its Retry has made it (`done` takes what the change answers, as its retry answers it).
 */
const madeBy = new WeakMap<object, { lead: string; done: (answer: unknown) => void }>();

/**
 * The problem of a screen's last change to the cart, with its Retry. A retry sends the change
 * again as it was first sent (FailedChange); its Retry is off until it has ended (tapped twice,
 * it would send the change twice). Another screen's change is shown led by what it was.
 */
export class ChangeProblem {
  private failed: { error: unknown; retry: Retry | undefined; lead: string | null } | null = null;

  /** `changed`: the screen draws itself again; `screen`: whether it is still shown, and its cart. */
  constructor(
    private readonly changed: () => void,
    private readonly screen: Pick<ScreenContext, 'signal' | 'cart'>,
  ) {}

  /** Whether the last change failed: for what the screen shows around it. */
  get error(): unknown {
    return this.failed?.error ?? null;
  }

  /**
   * Runs `change`, then `done` with its answer; or keeps its problem, with the retry it carries.
   * `lead`: the change in words, had it failed ("Ceramic Mug was not added to your cart."), for
   * another screen to say which change its problem is about.
   */
  run<T>(change: () => Promise<T>, done: (answer: T) => void, lead: string): Promise<void> {
    return this.attempt(change, done, lead, false);
  }

  private async attempt<T>(
    change: () => Promise<T>,
    done: (answer: T) => void,
    lead: string,
    elsewhere: boolean,
  ): Promise<void> {
    try {
      const answer = await change();
      this.failed = null;
      done(answer);
    } catch (error) {
      // The change before it failed: its problem is what to show, shown here too when it was
      // another screen's. Its Retry sends that change again; this one's answer is not awaited.
      if (error instanceof NotSent) {
        this.failed ??= this.another(error.cause);
        return this.changed();
      }
      if (typeof error === 'object' && error !== null)
        madeBy.set(error, { lead, done: done as (answer: unknown) => void });
      // The shopper has left the screen meanwhile: the screen shown now says it.
      if (this.screen.signal.aborted) return this.screen.cart.showElsewhere(error);
      const again = error instanceof FailedChange ? (error.retry as () => Promise<T>) : undefined;
      this.failed = {
        error,
        retry: again && (() => this.attempt(again, done, lead, elsewhere)),
        lead: elsewhere ? lead : null,
      };
    }
    this.changed();
  }

  /** Another change's failure, shown here: its Retry sends that change again. */
  private another(error: unknown): NonNullable<ChangeProblem['failed']> {
    const retry = error instanceof FailedChange ? error.retry : undefined;
    const { lead, done } = (typeof error === 'object' && error !== null && madeBy.get(error)) || {
      lead: 'A change to your cart was not made.',
      done: () => undefined,
    };
    return { error, retry: retry && (() => this.attempt(retry, done, lead, true)), lead };
  }

  /** Forgets the problem (a new attempt of the screen's own is on its way). */
  clear(): void {
    this.failed = null;
  }

  /**
   * The problem in words, with Retry where it helps, products named as the cart's lines name
   * them. `cartLink`: a cart held by its checkout is explained with the way to the cart (not
   * wanted on the cart screen itself). It also takes a failure handed over from a screen left
   * (CartStore.takeUnshown), so each screen has one ChangeProblem, whose view() every drawing of
   * the screen calls: another would take failures meant for this one.
   */
  view(cart: Cart | null, cartLink: boolean): Child {
    const nameOf: NameOf = (id) => cart?.items.find((item) => item.productId === id)?.name;
    const handed = this.screen.cart.takeUnshown();
    if (handed !== null) this.failed = this.another(handed);
    // The cart loaded again (on focus, say) shows the change made after all: nothing is wrong
    // any more, and a Retry would only send it again.
    const { error } = this.failed ?? {};
    if (cart && error instanceof FailedChange && error.madeIn(cart)) this.failed = null;
    if (!this.failed) return null;
    if (heldByCheckout(this.failed.error, cart)) return heldByCheckoutView(this.failed.error, cartLink);
    return problemView(this.failed.error, this.failed.retry, { nameOf, cart, lead: this.failed.lead });
  }
}
