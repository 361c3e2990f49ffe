// Pieces every screen uses: its heading, what it loads (or the problem, with its retry), a
// product's picture.
import { CART_LIMITS } from '@edge-checkout/worker/cart-state';
import {
  ApiProblem,
  asProblem,
  type Cart,
  NOT_THE_SHOPS,
  type ProblemCode,
  type Product,
  type Shortage,
} from '../api/client.ts';
import { quantityIn } from '../cart-store.ts';
import { type Child, h } from '../dom.ts';
import { links } from '../router.ts';
import type { ScreenContext } from './context.ts';

/** The screen's one h1; focusable so that moving to a screen can put focus (and a screen reader) there. */
export function heading(text: string): HTMLHeadingElement {
  return h('h1', { tabindex: -1 }, text);
}

/** Why a product cannot be added to a line holding as many as one can (products' Add, the cart's "+"). */
const MOST_PER_ORDER = `${CART_LIMITS.quantity} is the most per order`;

/**
 * Why no more of a product can go in a cart holding `inCart` of it (products' Add, the cart's
 * "+"), or null when more can: a tap could only be refused. `available` is what the products list
 * said is left; null when it is not counted, or not known.
 */
export function whyNoMore(inCart: number, available: number | null): string | null {
  if (available === 0) return 'Sold out';
  if (inCart >= CART_LIMITS.quantity) return MOST_PER_ORDER;
  if (available === null || inCart < available) return null;
  if (inCart > available) return `Only ${available} left`;
  return available === 1 ? 'The last one is in your cart' : `All ${available} left are in your cart`;
}

/**
 * A refusal that means the products list on screen is out of date: a product taken off sale,
 * or fewer left than it says. The screen loads it again.
 */
export function listOutOfDate(error: unknown): boolean {
  return (
    error instanceof ApiProblem &&
    (error.code === 'out_of_stock' || (error.code === 'not_found' && error.productId !== null))
  );
}

/** A product's name, where the screen knows it. */
export type NameOf = (productId: string) => string | undefined;

/**
 * The name of every product listed so far in this tab: a refusal naming a product by its id is
 * said with its name on any screen, whether the cart there holds it or not.
 */
const listedNames = new Map<string, string>();

/**
 * The cart not loaded at all (as the shop opened, or reloaded): the header's count is not the
 * cart's, so the screen says why, with Retry. Nothing once any load has answered.
 */
export function cartNotLoadedView(ctx: Pick<ScreenContext, 'cart' | 'reloadCart'>): Child {
  return !ctx.cart.cart && ctx.cart.problem && problemView(ctx.cart.problem, ctx.reloadCart);
}

/**
 * The products on sale (GET /v1/products) as a screen shows them, their names kept for the
 * problems that name them. Loaded again, quietly, when the shopper or the network comes back
 * (ScreenContext.onBack): what is left may have changed meanwhile.
 */
export function productsOnSale(ctx: ScreenContext, changed: () => void): Loadable<Product[]> {
  const products = new Loadable(async () => {
    const list = await ctx.api.products();
    for (const { id, name } of list) listedNames.set(id, name);
    return list;
  }, changed);
  ctx.onBack(() => void products.reload());
  return products;
}

/**
 * Sends a failed call again; Retry is off until it has ended. The same function at every redraw
 * of a screen (a screen's own, made once): a problem is drawn once per retry (see drawnOnce), so
 * a new one at each redraw would put up a new alert, said again and scrolled to.
 */
export type Retry = () => Promise<unknown>;

/**
 * A failed call in words (the problem's `detail`), with a Retry button when trying again can
 * help: the shop was unreachable, busy or failing. Not for a refusal that would only repeat.
 * `nameOf` names the products an out_of_stock problem gives by id; `cart`, the cart the refused
 * change was for, tells what to do about them; `lead`, said first, which change it was.
 */
export function problemView(
  error: unknown,
  retry?: Retry,
  about: { nameOf?: NameOf; cart?: Cart | null; lead?: string | null } = {},
): HTMLElement {
  return drawnOnce(error, retry, () => {
    const problem: ApiProblem = asProblem(error);
    return h(
      'div',
      { class: 'problem', role: 'alert' },
      h('p', null, about.lead && `${about.lead} `, inWords(problem, about.nameOf, about.cart ?? null)),
      retry && problem.retryable ? retryView(problem, retry, error) : null,
    );
  });
}

const drawn = new WeakMap<object, { how: unknown; view: HTMLElement }>();

/**
 * One alert per problem. Screens are drawn again for many reasons (the cart loaded on focus, a
 * change made elsewhere on the screen); drawn again, a problem is the element it was, which
 * show() leaves in place, so a screen reader says it once. A new problem (a retry that failed
 * too) is a new element, said again. `how` tells apart the ways one problem is drawn (with
 * which retry, or as a cart held by its checkout).
 */
function drawnOnce(error: unknown, how: unknown, draw: () => HTMLElement): HTMLElement {
  if (typeof error !== 'object' || error === null) return draw();
  const earlier = drawn.get(error);
  if (earlier && earlier.how === how) return earlier.view;
  const view = draw();
  drawn.set(error, { how, view });
  return view;
}

/**
 * What a shopper can make of the problems whose detail is written for developers (it names the
 * database, Stripe's error classes, limits in minor units): by their stable code.
 */
const SHOPPER_WORDS: Readonly<Partial<Record<ProblemCode, string>>> = {
  service_unavailable: 'The shop could not do that just now. Try again in a moment.',
  internal: 'Something went wrong in the shop. Try again in a moment.',
  // Its detail names a setting or a secret (contract §1): for the shop's operator, not the shopper.
  misconfigured: 'The shop cannot do that right now because of a problem on our side. Try again later.',
  cart_limit_exceeded: 'Your cart holds as much as one order can. Remove something to add more.',
  cart_not_editable:
    'That cart was paid or closed meanwhile, so it can no longer be changed. Your cart as it is now is shown.',
  currency_mismatch:
    'These products are priced in different currencies and cannot be paid together. Remove one of them.',
  quantity_changed: 'Your cart was changed on another device meanwhile. Your cart as it is now is shown.',
};

/**
 * In the shopper's words where the detail is not: products out of stock or no longer sold by
 * name (the Worker's problem names them by id); an answer that is not the Worker's (a proxy's
 * error page, whose status means nothing to a shopper) by whether trying again can help.
 */
function inWords(problem: ApiProblem, screenNameOf: NameOf = () => undefined, cart: Cart | null = null): string {
  const nameOf: NameOf = (id) => screenNameOf(id) ?? listedNames.get(id);
  const words = SHOPPER_WORDS[problem.code];
  if (words) return words;
  if (problem.code === 'out_of_stock' && problem.shortages.length > 0) {
    const short = problem.shortages.map(
      ({ id, available }) => `${nameOf(id) ?? id} (${available === 0 ? 'sold out' : `${available} left`})`,
    );
    return `Not enough in stock: ${short.join(', ')}.${whatToDoWhenShort(problem.shortages, nameOf, cart)}`;
  }
  if (problem.code === 'not_found' && problem.productId !== null)
    return `${nameOf(problem.productId) ?? 'That product'} is no longer sold. It cannot be added; if it is in your cart, remove it to check out.`;
  if (problem.code === NOT_THE_SHOPS)
    return problem.retryable
      ? SHOPPER_WORDS.service_unavailable!
      : 'Something went wrong in the shop. Reload the page and try again.';
  return problem.message;
}

/**
 * A cart holding more than is left cannot be checked out: what to lower or remove. One holding
 * all that is left (an Add refused) needs nothing done: it says so, rather than leave the
 * shopper to wonder whether the cart is at fault.
 */
function whatToDoWhenShort(shortages: readonly Shortage[], nameOf: NameOf, cart: Cart | null): string {
  const inCart = (id: string) => (cart ? quantityIn(cart, id) : 0);
  const over = shortages.filter(({ id, available }) => inCart(id) > available);
  if (over.length > 0)
    return over.every(({ available }) => available === 0)
      ? ` To check out, remove ${over.map(({ id }) => nameOf(id) ?? id).join(' and ')} from your cart.`
      : ' To check out, lower your cart to what is left.';
  return shortages.every(({ id, available }) => available > 0 && inCart(id) === available)
    ? ' Your cart holds all that is left.'
    : '';
}

/** Waits drawn so far: each names its Retry's description (another problem may show one too). */
let waitsDrawn = 0;
/** How each problem's Retry is held back again (holdRetry). */
const holds = new WeakMap<object, (until: number | null) => void>();

/**
 * Holds the Retry drawn for `error` back again, until `until`: the same problem answered again
 * (a read by itself) with a later `Retry-After`, which the alert keeps, not said again.
 */
export function holdRetry(error: unknown, until: number | null): void {
  if (typeof error === 'object' && error !== null) holds.get(error)?.(until);
}

/**
 * Retry, held back until the time the shop asked for (`Retry-After`): a rate limit lasts its
 * whole window, and a try sooner only counts against it again. Then off while the retry is on
 * its way: tapped twice, it would send the call twice. Kept in the alert, which lives as long as
 * its problem, so the screen drawn again meanwhile shows it as it is.
 */
function retryView(problem: ApiProblem, retry: Retry, error: unknown): Child {
  const off = (why: 'waiting' | 'busy' | null) => {
    button.setAttribute('aria-disabled', String(why !== null));
    button.setAttribute('aria-busy', String(why === 'busy'));
  };
  const button = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      async onclick() {
        off('busy');
        await retry();
        off(null);
      },
    },
    'Retry',
  );
  let wait: HTMLElement | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const holdUntil = (until: number | null) => {
    const waitMs = (until ?? 0) - Date.now();
    if (waitMs <= 0) return;
    const seconds = Math.ceil(waitMs / 1000);
    const words = `You can retry in ${seconds} ${seconds === 1 ? 'second' : 'seconds'}.`;
    if (!wait) {
      wait = h('p', { class: 'wait', id: `retry-wait-${++waitsDrawn}` }, words);
      // Off, and why, said with the button (as Add and "+" say theirs), not only in the alert's words.
      button.setAttribute('aria-describedby', wait.id);
      button.before(wait);
    } else wait.textContent = words;
    off('waiting');
    clearTimeout(timer);
    timer = setTimeout(() => {
      off(null);
      if (wait) wait.textContent = 'You can retry now.';
    }, waitMs);
  };
  holdUntil(problem.retryAt);
  if (typeof error === 'object' && error !== null) holds.set(error, holdUntil);
  return [wait, button];
}

/**
 * A change refused because the cart is being paid: 409 cart_not_editable, and the cart store,
 * having loaded the cart again, finds its checkout open (started in another tab or in the app).
 * The Worker's detail names a status; the shopper is told what it means.
 */
export function heldByCheckout(error: unknown, cart: Cart | null): boolean {
  return asProblem(error).code === 'cart_not_editable' && cart?.status === 'checkout_pending';
}

/**
 * Why the cart cannot be changed now (`error`: the refusal that found it so). `cartLink`: the
 * way to the cart screen, which offers to continue or cancel the checkout (not wanted there
 * itself).
 */
export function heldByCheckoutView(error: unknown, cartLink: boolean): HTMLElement {
  return drawnOnce(error, heldByCheckoutView, () =>
    h(
      'div',
      { class: 'problem', role: 'alert' },
      h(
        'p',
        null,
        'Your cart is locked while its checkout is open. Finish paying, or cancel the checkout to change it.',
      ),
      cartLink && h('a', { class: 'button secondary', href: links.cart }, 'Go to cart'),
    ),
  );
}

export function loadingView(what: string): HTMLElement {
  return h('p', { class: 'loading', 'aria-busy': 'true' }, `Loading ${what}…`);
}

/**
 * What a screen loads from the API once it is shown: loading, then the data or its problem.
 * `fetch` reads the same data again each time, and changes nothing: loaded twice at once, only
 * the latest answer is kept.
 */
export class Loadable<T> {
  private data: T | undefined;
  private problem: unknown = null;
  /**
   * Loads sent so far, and the latest sent of those whose answer was taken: two can be on their
   * way at once (the shopper and the network coming back together), and an answer to one sent
   * before the answer shown is older than it, whenever it arrives.
   */
  private sent = 0;
  private shown = 0;

  /** `changed`: the screen draws itself again. */
  constructor(
    private readonly fetch: () => Promise<T>,
    private readonly changed: () => void,
  ) {}

  /** The data, once loaded. */
  get loaded(): T | undefined {
    return this.data;
  }

  readonly load = async (): Promise<void> => {
    this.problem = null;
    this.changed();
    await this.take({ quiet: false });
  };

  /**
   * Loads again without a word: what was loaded stays shown if that fails (asked for by nothing
   * the shopper did, a problem would be said out of the blue, and scrolled to). Without anything
   * loaded yet, it is load().
   */
  readonly reload = async (): Promise<void> => {
    if (this.data === undefined) return this.load();
    await this.take({ quiet: true });
  };

  private async take({ quiet }: { quiet: boolean }): Promise<void> {
    const mine = ++this.sent;
    try {
      const data = await this.fetch();
      if (mine < this.shown) return;
      this.data = data;
      this.problem = null;
    } catch (error) {
      if (quiet || mine < this.shown) return;
      this.problem = error;
    }
    this.shown = mine;
    this.changed();
  }

  /**
   * "Loading {what}…", the problem with its Retry, or `ready(data)`; both when what was loaded
   * before stays (a next page failing leaves the pages shown as they were, its problem after them).
   */
  view(what: string, ready: (data: T) => Child): Child {
    if (this.data === undefined)
      return this.problem !== null ? problemView(this.problem, this.load) : loadingView(what);
    return this.problem !== null ? [ready(this.data), problemView(this.problem, this.load)] : ready(this.data);
  }
}

/**
 * The product's image, or a tile with its initials; decorative either way (the name is next to it).
 * Only an image on the shop's own origin is shown: the storefront loads nothing from another
 * (contract §8), so one hosted elsewhere (Stripe Checkout still shows it) gets the tile.
 */
export function productPicture(product: Pick<Product, 'id' | 'name' | 'imageUrl'>): Child {
  const tile = h('div', { class: `picture tile-${hue(product.id)}`, 'aria-hidden': 'true' }, initials(product.name));
  if (!product.imageUrl || new URL(product.imageUrl, location.href).origin !== location.origin) return tile;
  const image = h('img', { class: 'picture', src: product.imageUrl, alt: '', loading: 'lazy' });
  image.addEventListener('error', () => image.replaceWith(tile), { once: true });
  return image;
}

// A word's first grapheme, not its first UTF-16 unit: that is half of an emoji (drawn as �), or
// a letter without the combining accent that follows it in NFD (Ō as O).
const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((word) => graphemes.segment(word).containing(0)!.segment.toUpperCase())
    .join('');
}

/** One of six tile colours, the same for a product every time. */
function hue(id: string): number {
  let sum = 0;
  for (const ch of id) sum = (sum * 31 + ch.charCodeAt(0)) % 6;
  return sum;
}
