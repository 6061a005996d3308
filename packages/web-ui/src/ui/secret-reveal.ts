/** Shows a freshly issued secret once, with copy buttons; "Done" removes it from the page. */
import { h } from './dom';
import { toast } from './toast';

function copyable(label: string, value: string, testId: string): HTMLElement {
  const box = h('input', { class: 'input mono', readonly: true, value, 'aria-label': label, 'data-testid': testId });
  box.addEventListener('focus', () => box.select());
  const copy = async (): Promise<void> => {
    try {
      await navigator.clipboard.writeText(value);
      toast(`${label} copied`, 'info');
    } catch {
      box.focus();
      toast('Select the text and copy it with Ctrl+C', 'info');
    }
  };
  return h('div', { class: 'field' }, h('label', null, label), h('div', { class: 'copy-row' }, box, h('button', { type: 'button', class: 'btn', onclick: () => void copy() }, 'Copy')));
}

export function secretReveal(title: string, username: string, token: string, onDone: () => void): HTMLElement {
  return h(
    'div',
    { class: 'card secret-card', 'data-testid': 'robot-token', role: 'status' },
    h('h2', { class: 'card-title' }, title),
    h('p', null, 'Copy the token now: it is not shown again. Use it as the password of ', h('code', null, username), ' with docker, podman or skopeo login.'),
    copyable('Username', username, 'robot-token-username'),
    copyable('Token', token, 'robot-token-value'),
    h('div', { class: 'form-actions' }, h('button', { type: 'button', class: 'btn btn-primary', onclick: onDone }, 'Done')),
  );
}
