/** Form building blocks: labelled fields, buttons, a busy state while a request runs. */
import { h, type Attrs, type Child } from './dom';

let nextId = 0;

/** A label + control + optional hint, wired together by id. */
export function formField(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: Child): HTMLDivElement {
  if (!control.id) control.id = `f${++nextId}`;
  const hintEl = hint ? h('div', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

/** A checkbox with its label to the right. */
export function checkboxField(label: string, input: HTMLInputElement, hint?: Child): HTMLDivElement {
  if (!input.id) input.id = `f${++nextId}`;
  return h('div', { class: 'field field-check' }, h('label', { for: input.id }, input, h('span', null, label)), hint ? h('div', { class: 'hint' }, hint) : null);
}

export function input(attrs: Attrs): HTMLInputElement {
  return h('input', { type: 'text', class: 'input', ...attrs });
}

export function select(name: string, options: ReadonlyArray<readonly [value: string, label: string]>, selected?: string, attrs: Attrs = {}): HTMLSelectElement {
  return h('select', { name, class: 'input', ...attrs }, options.map(([value, label]) => h('option', { value, selected: value === selected }, label)));
}

export type ButtonKind = 'primary' | 'secondary' | 'danger' | 'ghost';

export function button(label: Child, onclick: ((event: Event) => void) | null, kind: ButtonKind = 'secondary', attrs: Attrs = {}): HTMLButtonElement {
  const cls = kind === 'secondary' ? 'btn' : `btn btn-${kind}`;
  return h('button', { type: onclick ? 'button' : 'submit', class: cls, ...(onclick ? { onclick } : {}), ...attrs }, label);
}

/**
 * Runs `action` with every button of `scope` disabled, so a slow request cannot be
 * sent twice; re-enables them afterwards whatever happens.
 */
export async function busy<T>(scope: HTMLElement, action: () => Promise<T>): Promise<T> {
  const buttons = Array.from(scope.querySelectorAll('button')).filter((b) => !b.disabled);
  for (const b of buttons) b.disabled = true;
  scope.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } finally {
    for (const b of buttons) b.disabled = false;
    scope.removeAttribute('aria-busy');
  }
}
