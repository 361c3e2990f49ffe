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
export type Attributes = Record<string, AttributeValue | Listener>;

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
    if (typeof value === 'function')
      element.addEventListener(name.slice(2), (event) => {
        if (element.getAttribute('aria-disabled') !== 'true') value(event);
      });
    else if (value !== false && value !== null && value !== undefined)
      element.setAttribute(name, value !== true ? String(value) : name.startsWith('aria-') ? 'true' : '');
  }
  element.append(...nodes(children));
  return element;
}

function nodes(children: readonly Child[]): (Node | string)[] {
  return children.flatMap((child): (Node | string)[] => {
    if (child === null || child === undefined || child === false) return [];
    if (Array.isArray(child)) return nodes(child);
    return [typeof child === 'number' ? String(child) : (child as Node | string)];
  });
}

/**
 * Replaces what `root` shows. A node of what it shows that the new content hands back (a
 * screen's alert, kept for as long as its problem stands) stays where it is, untouched: taken out
 * and put back, it would be a new live region, and screen readers would say it again.
 * Keyboard focus stays on the control with the same accessible name when the new content still
 * has it (a "+" pressed twice in a row, or now off: see h()) outside the nodes that stayed;
 * otherwise it goes to the screen's heading, so it is never lost at the top of the page.
 * A new alert is scrolled into view (below the sticky header: `scroll-padding-top`), focus left
 * where it is: the control pressed may be far from it (the last product), and the shopper must
 * see what went wrong, where a screen reader says it.
 */
export function show(root: HTMLElement, ...children: Child[]): void {
  const focused = document.activeElement;
  const key = focused instanceof HTMLElement && root.contains(focused) ? focusKey(focused) : undefined;
  const shown = new Set<Node>(root.childNodes);
  const next = nodes(children).map((child) => (typeof child === 'string' ? document.createTextNode(child) : child));
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
    const same = [...root.querySelectorAll<HTMLElement>('a, button, input, textarea')].find(
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

function focusKey(element: HTMLElement): string {
  // An id names a control whose label changes with what it shows (the header's "Cart (3)").
  if (element.id) return `#${element.id}`;
  return `${element.tagName}:${element.getAttribute('aria-label') ?? element.textContent ?? ''}`;
}
