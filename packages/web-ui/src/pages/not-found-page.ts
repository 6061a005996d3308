import type { AppContext } from '../app/context';
import { emptyState } from '../ui/alerts';
import { mount } from '../ui/dom';

export function renderNotFoundPage(ctx: AppContext, main: HTMLElement, path: string): Promise<void> {
  mount(main, emptyState('Page not found', `Nothing lives at ${path}.`, ctx.link({ page: 'organizations' }, { class: 'btn' }, 'Back to organizations')));
  return Promise.resolve();
}
