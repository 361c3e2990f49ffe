// Building the page from code, without a framework: elements made with h(), a screen's content
// replaced with show(). Text always goes in as text nodes, never as HTML, so nothing from the
// API can inject markup (and the CSP forbids inline script and style anyway).

export type Child = Node | string | number | null | undefined | false | readonly Child[];
type AttributeValue = string | number | boolean | null | undefined;
type Listener = (event: Event) => void;
/**
 * Attributes by name (false, null and undefined leave one out; true is `""`, or `"true"` for an
 * `aria-` one); `on<event>` adds a listener.
 */
type Attributes = Record<string, AttributeValue | Listener>;

/**
 * A control off for the moment (busy, at a limit, sold out) is `aria-disabled`, never
 * `disabled`: a disabled control loses keyboard focus (to the page, and show() then puts it on
 * the heading, at the top of the page), where an aria-disabled one keeps it and is still said to
 * be off. Its listeners ignore it meanwhile.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes?: Attributes | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (typeof value === 'function') listen(element, name.slice(2), value);
    else if (value !== false && value !== null && value !== undefined)
      element.setAttribute(name, value !== true ? String(value) : name.startsWith('aria-') ? 'true' : '');
  }
  element.append(...nodes(children));
  return element;
}

/**
 * The listener h() gave each element for each event (null: none any more), which the element's
 * one DOM listener for that event calls: show() hands them on (keepFocused).
 */
const listeners = new WeakMap<Element, Map<string, Listener | null>>();

function listen(element: Element, type: string, listener: Listener | null): void {
  const own = listeners.get(element) ?? new Map<string, Listener | null>();
  listeners.set(element, own);
  if (!own.has(type))
    element.addEventListener(type, (event) => {
      if (element.getAttribute('aria-disabled') !== 'true') listeners.get(element)?.get(type)?.(event);
    });
  own.set(type, listener);
}

function nodes(children: readonly Child[]): (Node | string)[] {
  return children.flatMap((child): (Node | string)[] => {
    if (child === null || child === undefined || child === false) return [];
    if (Array.isArray(child)) return nodes(child);
    return [typeof child === 'number' ? String(child) : (child as Node | string)];
  });
}

/** The controls whose focus show() keeps: every kind a screen draws (a new kind is added here). */
const FOCUSABLE = 'a, button, input, textarea';
/** What keepFocused keeps: those, and the screen's heading, which has focus once a screen is shown. */
const KEPT_FOCUSED = `${FOCUSABLE}, h1`;

/**
 * Replaces what `root` shows. A node of what it shows that the new content hands back (a
 * screen's alert, kept for as long as its problem stands) stays where it is, untouched: taken out
 * and put back, it would be a new live region, and screen readers would say it again.
 * Keyboard focus stays on the control with the same accessible name when the new content still
 * has it (a "+" pressed twice in a row, or now off: see h()) outside the nodes that stayed, as
 * the same element where it can (keepFocused); otherwise it goes to the screen's heading, so it
 * is never lost at the top of the page.
 * A new alert is scrolled into view (below the sticky header: `scroll-padding-top`), focus left
 * where it is: the control pressed may be far from it (the last product), and the shopper must
 * see what went wrong, where a screen reader says it.
 */
export function show(root: HTMLElement, ...children: Child[]): void {
  const focused = document.activeElement;
  const key = focused instanceof HTMLElement && root.contains(focused) ? focusKey(focused) : undefined;
  const shown = new Set<Node>(root.childNodes);
  const next = nodes(children).map((child) => (typeof child === 'string' ? document.createTextNode(child) : child));
  if (key !== undefined) keepFocused(focused as HTMLElement, key, next, shown);
  const kept = new Set(next);
  for (const node of [...root.childNodes]) if (!kept.has(node)) node.remove();
  let at = root.firstChild;
  for (const node of next) {
    if (node === at) at = at.nextSibling;
    else root.insertBefore(node, at);
  }
  if (key !== undefined && document.activeElement !== focused) {
    // The control pressed is redrawn among what is new: one of the same name in a node that
    // stayed (another problem's Retry) is another control, which a second Enter would set off.
    const stayed = next.filter((node) => shown.has(node));
    const same = [...root.querySelectorAll<HTMLElement>(FOCUSABLE)].find(
      (e) => focusKey(e) === key && !stayed.some((node) => node.contains(e)),
    );
    (same ?? root.querySelector<HTMLElement>('h1'))?.focus();
  }
  // After the focus, which scrolls to the control it lands on.
  for (const node of next) {
    if (shown.has(node) || !(node instanceof Element)) continue;
    const alert = node.matches('[role="alert"]') ? node : node.querySelector('[role="alert"]');
    if (alert) {
      alert.scrollIntoView({ block: 'nearest' });
      return;
    }
  }
}

/**
 * The control with focus, redrawn (same name, same place in the page's structure), stays the
 * element it is, made what its redrawn self is: a new element focused in its place would be said
 * again by a screen reader after every tap (each Add, each "+"), and one taken out of the page,
 * even for a moment, loses focus. So it and its ancestors are never taken out: their redrawn
 * selves hand over attributes, listeners and the rest of their content, and `next` takes the
 * outermost. The same for the screen's heading. So code that holds on to an element it drew
 * must not hold one that can have focus, or its ancestors: that may be the element kept, not the
 * one it drew (a form's submit reads the form sent, not its field). Alerts hold theirs (Retry,
 * changed by its wait): inside one, and where the structure differs, show() focuses the redrawn
 * control instead.
 */
function keepFocused(focused: HTMLElement, key: string, next: Node[], shown: ReadonlySet<Node>): void {
  // It stays as it is, or it is an alert's.
  if (next.some((node) => node.contains(focused)) || focused.closest('[role="alert"]')) return;
  const redrawn = next.flatMap((node) =>
    node instanceof HTMLElement && !shown.has(node)
      ? [node, ...node.querySelectorAll<HTMLElement>(KEPT_FOCUSED)].filter(
          (e) => e.matches(KEPT_FOCUSED) && focusKey(e) === key && !e.closest('[role="alert"]'),
        )
      : [],
  )[0];
  if (!redrawn) return;
  const [old, fresh] = [lineage(focused, (node) => shown.has(node)), lineage(redrawn, (node) => next.includes(node))];
  if (!old || !fresh || old.length !== fresh.length || old.some((e, i) => e.tagName !== fresh[i]!.tagName)) return;
  for (const [i, element] of old.entries()) {
    const again = fresh[i]!;
    for (const { name } of [...element.attributes]) if (!again.hasAttribute(name)) element.removeAttribute(name);
    for (const { name, value } of [...again.attributes])
      if (element.getAttribute(name) !== value) element.setAttribute(name, value);
    for (const type of listeners.get(element)?.keys() ?? []) listen(element, type, null);
    for (const [type, listener] of listeners.get(again) ?? []) listen(element, type, listener);
    const inner = old[i + 1];
    if (!inner) {
      element.replaceChildren(...again.childNodes);
      continue;
    }
    // Around the next one down, which stays where it is.
    const content = [...again.childNodes].map((node) => (node === fresh[i + 1] ? inner : node));
    for (const node of [...element.childNodes]) if (node !== inner) node.remove();
    const after = content.indexOf(inner);
    inner.before(...content.slice(0, after));
    inner.after(...content.slice(after + 1));
  }
  next[next.indexOf(fresh[0]!)] = old[0]!;
}

/** `element` and its ancestors up to the first that `isTop`, outermost first; null if none is. */
function lineage(element: HTMLElement, isTop: (node: Node) => boolean): HTMLElement[] | null {
  const path = [element];
  while (!isTop(path[0]!)) {
    const parent = path[0]!.parentElement;
    if (!parent) return null;
    path.unshift(parent);
  }
  return path;
}

function focusKey(element: HTMLElement): string {
  // An id names a control whose label changes with what it shows (the header's "Cart (3)").
  if (element.id) return `#${element.id}`;
  // A product's controls by its id: two products may have one name.
  if (element.dataset.key) return `key:${element.dataset.key}`;
  return `${element.tagName}:${element.getAttribute('aria-label') ?? element.textContent ?? ''}`;
}
