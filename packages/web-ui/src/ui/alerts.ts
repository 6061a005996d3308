/** Inline messages: errors, empty states, "not available on this server". */
import { ApiError } from '../api/client';
import { h, type Child } from './dom';

export type AlertKind = 'info' | 'success' | 'warning' | 'error';

export function alertBox(kind: AlertKind, ...children: Child[]): HTMLDivElement {
  return h('div', { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children);
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 403) return `Permission denied: ${err.message}`;
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The state shown when an endpoint does not exist on this server (yet). */
export function notAvailable(feature: string, detail?: string): HTMLDivElement {
  return h(
    'div',
    { class: 'empty-state not-available', 'data-testid': 'not-available' },
    h('div', { class: 'empty-title' }, `${feature} is not available`),
    h('p', null, detail ?? 'This Entrepot server does not offer this feature yet. It will appear here once the server supports it.'),
  );
}

/** An alert for a failed load or action, with "not available" for missing endpoints. */
export function errorView(err: unknown, feature = 'This feature'): HTMLDivElement {
  if (err instanceof ApiError && err.endpointMissing) {
    return err.type === 'feature_disabled' ? notAvailable(feature, err.message) : notAvailable(feature);
  }
  return alertBox('error', errorMessage(err));
}

export function emptyState(title: string, text?: string, ...actions: Child[]): HTMLDivElement {
  return h('div', { class: 'empty-state' }, h('div', { class: 'empty-title' }, title), text ? h('p', null, text) : null, ...actions);
}

export function spinner(label = 'Loading…'): HTMLDivElement {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), label);
}
