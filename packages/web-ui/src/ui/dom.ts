/**
 * A tiny typed element builder. Text is always inserted as text nodes (never as
 * HTML), so values from the API cannot inject markup.
 */

export type Child = Node | string | number | null | undefined | false | readonly Child[];

type Handler = (event: Event) => void;

/** Attributes; `on<event>` keys take listeners; `value`, `checked`, `disabled`, `selected` set properties. */
export interface Attrs {
  [name: string]: string | number | boolean | null | undefined | Handler;
}

const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected']);

export function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child as readonly Child[]);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/** Creates `<tag>` with attributes, listeners and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) {
      if (PROPERTIES.has(name)) Reflect.set(el, name, name === 'value' ? '' : false);
      continue;
    }
    if (typeof value === 'function') {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (PROPERTIES.has(name)) {
      Reflect.set(el, name, value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Replaces the children of `el`. */
export function mount(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** The value of an input, select or textarea found by `name` inside a form. */
export function field(form: HTMLFormElement, name: string): string {
  const el = form.elements.namedItem(name);
  if (el instanceof HTMLInputElement || el instanceof HTMLSelectElement || el instanceof HTMLTextAreaElement) return el.value.trim();
  throw new Error(`form has no field ${name}`);
}

/** Whether a checkbox found by `name` inside a form is checked. */
export function checked(form: HTMLFormElement, name: string): boolean {
  const el = form.elements.namedItem(name);
  return el instanceof HTMLInputElement && el.checked;
}
