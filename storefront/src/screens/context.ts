import type { ShopApi } from '../api/client.ts';
import type { CartStore } from '../cart-store.ts';

/** What a screen works with while it is shown. */
export interface ScreenContext {
  /** Where the screen draws itself. */
  readonly main: HTMLElement;
  /** Aborts when the shopper leaves the screen: stop polling, stop listening, draw nothing more. */
  readonly signal: AbortSignal;
  readonly api: ShopApi;
  readonly cart: CartStore;
  /** Said by screen readers without moving focus (a polite live region). */
  announce(message: string): void;
  /**
   * Calls `listener`, while the screen is shown, when what it loaded may be out of date or may
   * have failed to load: the shopper came back to this tab (stock may have gone to another
   * shopper meanwhile), or the network came back (the browser's `online` event). The cart is
   * loaded again then in any case.
   */
  onBack(listener: () => void): void;
  /**
   * The cart loaded again (CartStore.reload) as this screen's Retry for it: one per screen, so a
   * problem drawn again is the alert it was, and on the next screen a new one, said there.
   */
  readonly reloadCart: () => Promise<void>;
  /**
   * The checkout the shopper just cancelled on the payment page (the cancel landing page's way
   * back): its cart, and the session the page named. The cart screen cancels it here too, so the
   * cart can be changed again.
   */
  readonly cancelledCheckout: { cartId: string; sessionId: string | null } | null;
}

export type Screen = (ctx: ScreenContext) => void;
