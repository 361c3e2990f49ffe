// Pieces every screen uses: its heading, what it loads (or the problem, with its retry), a
// product's picture.
import { type ApiProblem, asProblem, type Product } from '../api/client.ts';
import { type Child, h } from '../dom.ts';

/** The screen's one h1; focusable so that moving to a screen can put focus (and a screen reader) there. */
export function heading(text: string): HTMLHeadingElement {
  return h('h1', { tabindex: -1 }, text);
}

/**
 * A failed call in words (the problem's `detail`), with a Retry button when trying again can
 * help: the shop was unreachable, busy or failing. Not for a refusal that would only repeat.
 */
export function problemView(error: unknown, retry?: () => void): HTMLElement {
  const problem: ApiProblem = asProblem(error);
  return h(
    'div',
    { class: 'problem', role: 'alert' },
    h('p', null, problem.message),
    retry && problem.retryable ? h('button', { type: 'button', class: 'secondary', onclick: retry }, 'Retry') : null,
  );
}

export function loadingView(what: string): HTMLElement {
  return h('p', { class: 'loading', 'aria-busy': 'true' }, `Loading ${what}…`);
}

/** What a screen loads from the API once it is shown: loading, then the data or its problem. */
export class Loadable<T> {
  private data: T | undefined;
  private problem: unknown = null;

  /** `changed`: the screen draws itself again. */
  constructor(
    private readonly fetch: () => Promise<T>,
    private readonly changed: () => void,
  ) {}

  readonly load = async (): Promise<void> => {
    this.problem = null;
    this.changed();
    try {
      this.data = await this.fetch();
    } catch (error) {
      this.problem = error;
    }
    this.changed();
  };

  /** "Loading {what}…", the problem with its Retry, or `ready(data)`. */
  view(what: string, ready: (data: T) => Child): Child {
    if (this.problem !== null) return problemView(this.problem, this.load);
    return this.data === undefined ? loadingView(what) : ready(this.data);
  }
}

/** The product's image, or a tile with its initials; decorative either way (the name is next to it). */
export function productPicture(product: Pick<Product, 'id' | 'name' | 'imageUrl'>): Child {
  const tile = h('div', { class: `picture tile-${hue(product.id)}`, 'aria-hidden': 'true' }, initials(product.name));
  if (!product.imageUrl) return tile;
  const image = h('img', { class: 'picture', src: product.imageUrl, alt: '', loading: 'lazy' });
  image.addEventListener('error', () => image.replaceWith(tile), { once: true });
  return image;
}

function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((word) => word[0]!.toUpperCase())
    .join('');
}

/** One of six tile colours, the same for a product every time. */
function hue(id: string): number {
  let sum = 0;
  for (const ch of id) sum = (sum * 31 + ch.charCodeAt(0)) % 6;
  return sum;
}
