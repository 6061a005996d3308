/** Sign-in form: HTTP Basic credentials checked against the API. */
import type { Credentials } from '../api/client';
import { alertBox, errorMessage } from '../ui/alerts';
import { field, h } from '../ui/dom';
import { busy, formField, input } from '../ui/forms';
import { logo } from './layout';

export interface LoginOptions {
  onSubmit(creds: Credentials): Promise<void>;
  error?: unknown;
  notice?: string | null;
  username?: string;
}

export function renderLoginPage(options: LoginOptions): HTMLElement {
  const form = h(
    'form',
    { class: 'login-form', 'data-testid': 'login-form' },
    formField('Username', input({ name: 'username', autocomplete: 'username', required: true, autofocus: !options.username, spellcheck: 'false', autocapitalize: 'off', value: options.username ?? '' })),
    formField('Password', input({ name: 'password', type: 'password', autocomplete: 'current-password', required: true, autofocus: Boolean(options.username) })),
    options.error ? alertBox('error', errorMessage(options.error)) : null,
    options.notice && !options.error ? alertBox('info', options.notice) : null,
    h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const creds = { username: field(form, 'username'), password: (form.elements.namedItem('password') as HTMLInputElement).value };
    void busy(form, () => options.onSubmit(creds));
  });
  return h(
    'div',
    { class: 'login-page' },
    h(
      'div',
      { class: 'login-card' },
      h('div', { class: 'login-brand' }, logo(), h('span', null, 'Entrepot')),
      h('p', { class: 'login-sub' }, 'Container registry and pull-through cache'),
      form,
    ),
  );
}
