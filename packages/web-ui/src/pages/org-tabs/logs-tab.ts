/** The organization's audit log: filters, paging, and CSV download. */
import type { LogEntry, LogFilter } from '../../api/types';
import { alertBox, emptyState, errorMessage, errorView } from '../../ui/alerts';
import { field, h, mount, type Child } from '../../ui/dom';
import { formatTime, shortDigest } from '../../ui/format';
import { busy, button, formField, input } from '../../ui/forms';
import { dataTable } from '../../ui/table';
import type { OrgTabContext } from './org-tab-context';

const KNOWN_KINDS = [
  'pull_repo', 'push_repo', 'delete_tag', 'create_repo', 'delete_repo', 'change_repo_visibility', 'set_repo_description',
  'create_proxy_cache_config', 'change_proxy_cache_config', 'delete_proxy_cache_config',
  'create_robot', 'delete_robot', 'regenerate_robot_token',
  'change_repo_permission', 'delete_repo_permission',
  'create_prototype_permission', 'modify_prototype_permission', 'delete_prototype_permission',
  'org_create', 'org_add_member', 'org_change_member_role', 'org_remove_member', 'org_change_visibility', 'org_change_email',
  'org_create_quota', 'org_change_quota', 'org_delete_quota',
];

/** `YYYY-MM-DD` from a date input → Quay's `MM/DD/YYYY` (whole UTC days, end day inclusive). */
function quayDay(value: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  return m ? `${m[2]}/${m[3]}/${m[1]}` : undefined;
}

function readFilter(form: HTMLFormElement): LogFilter {
  return {
    kind: field(form, 'kind').replace(/\s+/g, '') || undefined,
    performer: field(form, 'performer') || undefined,
    repository: field(form, 'repository') || undefined,
    starttime: quayDay(field(form, 'start')),
    endtime: quayDay(field(form, 'end')),
  };
}

function cacheResultBadge(value: unknown): HTMLElement | null {
  if (typeof value !== 'string') return null;
  return h('span', { class: `badge cache-${value}`, 'data-testid': 'cache-result', title: 'cache result' }, value);
}

function metaValue(value: unknown): Child {
  if (typeof value === 'string' && /^sha(256|512):[0-9a-f]{32,}$/.test(value)) return h('span', { class: 'mono', title: value }, shortDigest(value));
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function metadataView(entry: LogEntry): Child {
  const items = Object.entries(entry.metadata).filter(([key, value]) => key !== 'cache_result' && value !== null && value !== undefined && value !== '');
  return h(
    'div',
    { class: 'meta' },
    cacheResultBadge(entry.metadata.cache_result),
    items.map(([key, value]) => h('span', { class: 'meta-item' }, h('span', { class: 'meta-key' }, key), metaValue(value))),
  );
}

function performerView(entry: LogEntry): Child {
  const { performer } = entry;
  if (performer.kind === 'anonymous') return h('span', { class: 'muted' }, 'anonymous');
  return [h('span', { class: 'strong' }, performer.name), performer.is_robot ? h('span', { class: 'badge badge-sm' }, 'robot') : null];
}

async function downloadCsv(tab: OrgTabContext, filter: LogFilter, status: HTMLElement): Promise<void> {
  try {
    const csv = await tab.app.api.logsCsv(tab.org.name, filter);
    const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv;charset=utf-8' }));
    const a = h('a', { href: url, download: `${tab.org.name}-logs.csv`, hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
    mount(status);
  } catch (err) {
    mount(status, alertBox('error', errorMessage(err)));
  }
}

export async function renderLogsTab(tab: OrgTabContext, panel: HTMLElement): Promise<void> {
  const entries: LogEntry[] = [];
  let next: string | undefined;
  let filter: LogFilter = {};
  const list = h('div');
  const more = h('div', { class: 'load-more' });
  const status = h('div');

  const draw = (): void => {
    mount(
      list,
      entries.length === 0
        ? emptyState('No log entries', 'Nothing matches these filters.')
        : dataTable<LogEntry>(
            [
              { title: 'Time', cell: (e) => h('span', { class: 'nowrap', title: e.timestamp }, formatTime(e.timestamp)) },
              { title: 'Action', cell: (e) => h('span', { class: 'kind', 'data-kind': e.kind }, e.kind) },
              { title: 'Performer', cell: performerView },
              { title: 'IP', cell: (e) => h('span', { class: 'mono' }, e.ip ?? '—') },
              { title: 'Repository', cell: (e) => (e.repository ? h('span', { class: 'mono' }, e.repository) : h('span', { class: 'muted' }, '—')) },
              { title: 'Details', cell: metadataView },
            ],
            entries,
            { testId: 'log-list' },
          ),
    );
  };

  const loadPage = async (reset: boolean): Promise<void> => {
    if (reset) {
      entries.length = 0;
      next = undefined;
    }
    const page = await tab.app.api.logs(tab.org.name, filter, next);
    entries.push(...page.logs);
    next = page.next_page;
    draw();
    mount(more, next ? button('Load older entries', () => void loadPage(false).catch((err: unknown) => mount(more, errorView(err)))) : null);
  };

  const kinds = h('datalist', { id: 'log-kinds' }, KNOWN_KINDS.map((k) => h('option', { value: k })));
  const csvLink = h('a', { href: '#', class: 'btn', 'data-testid': 'logs-csv', role: 'button' }, 'Download CSV');
  const form = h(
    'form',
    { class: 'filters', 'data-testid': 'log-filters' },
    formField('Action', input({ name: 'kind', list: 'log-kinds', placeholder: 'any (comma-separated)', autocomplete: 'off', spellcheck: 'false' })),
    formField('Performer', input({ name: 'performer', placeholder: 'user or org+robot', autocomplete: 'off', spellcheck: 'false' })),
    formField('Repository', input({ name: 'repository', placeholder: 'library/alpine', autocomplete: 'off', spellcheck: 'false' })),
    formField('From', input({ name: 'start', type: 'date' })),
    formField('To', input({ name: 'end', type: 'date' })),
    h('div', { class: 'filter-actions' }, button('Apply', null, 'primary'), button('Reset', null, 'ghost', { type: 'reset' }), csvLink),
    kinds,
  );
  const apply = (): void => {
    filter = readFilter(form);
    mount(status);
    void busy(form, () => loadPage(true)).catch((err: unknown) => mount(status, errorView(err)));
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply();
  });
  form.addEventListener('reset', () => window.setTimeout(apply, 0));
  csvLink.addEventListener('click', (event) => {
    event.preventDefault();
    void downloadCsv(tab, readFilter(form), status);
  });

  mount(panel, form, status, list, more);
  await loadPage(true);
}
