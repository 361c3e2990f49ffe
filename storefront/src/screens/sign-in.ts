import { h, show } from '../dom.ts';
import { heading } from './parts.ts';

/**
 * Shown without a token: where tokens come from. The shop never makes one; it takes the token a
 * sign-in link carries (`/#token=…`), or one pasted here.
 */
export function showSignIn(main: HTMLElement, options: { reason: string | null; onToken(token: string): void }): void {
  const field = h('textarea', {
    id: 'token',
    name: 'token',
    rows: 3,
    required: true,
    autocomplete: 'off',
    spellcheck: 'false',
  });
  // Drawn again (a late 401 says why) with what the shopper typed so far. With focus in the field,
  // show() keeps the field itself; elsewhere (on Sign in) it takes this one.
  field.value = main.querySelector<HTMLTextAreaElement>('textarea#token')?.value ?? '';
  const submit = (event: Event) => {
    event.preventDefault();
    // From the form sent, not `field`: a redraw while the field has focus keeps the field on the
    // page and drops this one (see show()).
    const token = String(new FormData(event.currentTarget as HTMLFormElement).get('token') ?? '').trim();
    if (token) options.onToken(token);
  };
  show(
    main,
    heading('Sign in'),
    options.reason && h('div', { class: 'problem', role: 'alert' }, h('p', null, options.reason)),
    h(
      'p',
      null,
      'Open the shop with your sign-in link. It ends in ',
      h('code', null, '#token=…'),
      ' and signs you in for this tab.',
    ),
    h(
      'ul',
      { class: 'sources' },
      h('li', null, 'In the app, the link comes from your account’s sign-in (the shop’s identity provider).'),
      h(
        'li',
        null,
        'On a developer’s machine, ',
        h('code', null, 'npm run dev'),
        ' prints a ready link (',
        h('code', null, 'shop: http://127.0.0.1:8787/#token=…'),
        '), and ',
        h('code', null, 'npm run token -- USER_ID'),
        ' prints a token for any user.',
      ),
    ),
    h(
      'form',
      { class: 'token-form', onsubmit: submit },
      h('label', { for: 'token' }, 'Or paste a token'),
      field,
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    ),
  );
}
