/** Short-lived notifications in a corner of the screen. */
import { h } from './dom';

export type ToastKind = 'success' | 'error' | 'info';

let region: HTMLElement | null = null;

function host(): HTMLElement {
  if (!region || !region.isConnected) {
    region = h('div', { class: 'toasts', 'aria-live': 'polite' });
    document.body.appendChild(region);
  }
  return region;
}

export function toast(message: string, kind: ToastKind = 'success', timeoutMs = kind === 'error' ? 8000 : 4000): void {
  const close = (): void => el.remove();
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, h('span', null, message), h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss', onclick: close }, '×'));
  host().appendChild(el);
  window.setTimeout(close, timeoutMs);
}
