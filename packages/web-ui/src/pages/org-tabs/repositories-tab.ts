/** Repositories of the organization with size, tag count and last change. */
import type { RepositorySummary } from '../../api/types';
import { emptyState, errorView } from '../../ui/alerts';
import { h, mount } from '../../ui/dom';
import { formatBytes, formatRelative, formatTime } from '../../ui/format';
import { button } from '../../ui/forms';
import { dataTable } from '../../ui/table';
import type { OrgTabContext } from './org-tab-context';

export async function renderRepositoriesTab(tab: OrgTabContext, panel: HTMLElement): Promise<void> {
  const { app, org, cache } = tab;
  const repos: RepositorySummary[] = [];
  let next: string | undefined;
  const list = h('div');
  const more = h('div', { class: 'load-more' });

  const draw = (): void => {
    if (repos.length === 0) {
      mount(
        list,
        cache
          ? emptyState('Nothing cached yet', `Repositories appear here when clients pull through the cache, e.g. ${location.host}/${org.name}/library/alpine:latest.`)
          : emptyState('No repositories', `Push an image to ${location.host}/${org.name}/<name>:<tag> to create one.`),
      );
      return;
    }
    mount(
      list,
      dataTable<RepositorySummary>(
        [
          { title: 'Repository', cell: (r) => app.link({ page: 'repository', org: org.name, repo: r.name, manifest: null }, { class: 'strong mono' }, r.name) },
          { title: 'Tags', className: 'num', cell: (r) => r.tag_count },
          { title: 'Size', className: 'num', cell: (r) => formatBytes(r.size) },
          { title: 'Last modified', cell: (r) => h('span', { title: formatTime(r.last_modified) }, formatRelative(r.last_modified)) },
          { title: 'Visibility', cell: (r) => (r.is_public ? 'Public' : 'Private') },
        ],
        repos,
        { testId: 'repo-list', rowKey: (r) => r.name },
      ),
    );
  };

  const loadPage = async (): Promise<void> => {
    const page = await app.api.repositories(org.name, next);
    repos.push(...page.repositories);
    next = page.next_page;
    draw();
    mount(more, next ? button('Load more', () => void loadPage().catch((err: unknown) => mount(more, errorView(err)))) : null);
  };

  mount(panel, h('div', { class: 'section-head' }, h('h2', null, 'Repositories'), button('Refresh', () => app.navigate({ page: 'organization', org: org.name, tab: 'repositories' }, { replace: true }), 'ghost')), list, more);
  await loadPage();
}
