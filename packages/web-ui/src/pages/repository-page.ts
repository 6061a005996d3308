/** One repository: its tags with size, pull statistics and pinning, deleting tags, scan results, and (caches) referrers. */
import type { RepositoryDetail, ScanSummary, Tag } from '../api/types';
import type { AppContext } from '../app/context';
import { emptyState, errorMessage, errorView, spinner } from '../ui/alerts';
import { confirmDialog } from '../ui/confirm-dialog';
import { h, mount } from '../ui/dom';
import { formatBytes, formatRelative, formatTime, shortDigest } from '../ui/format';
import { button } from '../ui/forms';
import { flushWithConfirm } from '../ui/flush';
import { dataTable } from '../ui/table';
import { toast } from '../ui/toast';
import { pageHeader } from './layout';
import { renderReferrersPanel } from './referrers-panel';
import { renderSecurityPanel } from './security-panel';

/** The tag's scan in one badge: its highest severity and how many vulnerabilities, or the scan's state. */
function severityBadge(scan: ScanSummary | null | undefined): HTMLElement {
  if (!scan) return h('span', { class: 'muted', 'data-testid': 'severity-badge' }, '—');
  if (scan.status !== 'scanned') {
    const label = scan.status === 'queued' ? 'queued' : scan.status === 'failed' ? 'scan failed' : 'not scannable';
    return h('span', { class: `badge ${scan.status === 'failed' ? 'badge-warn' : ''}`, 'data-testid': 'severity-badge' }, label);
  }
  if (!scan.highest) return h('span', { class: 'badge badge-ok', 'data-testid': 'severity-badge' }, 'no known vulnerabilities');
  const total = Object.values(scan.counts).reduce((a, b) => a + b, 0);
  const title = Object.entries(scan.counts)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  return h('span', { class: `badge sev-${scan.highest.toLowerCase()}`, title, 'data-testid': 'severity-badge' }, `${scan.highest} · ${total}`);
}

function summary(repo: RepositoryDetail, org: string): HTMLElement {
  const stat = (label: string, value: string | number): HTMLElement => h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
  return h(
    'div',
    { class: 'org-summary' },
    h('div', { class: 'org-badges' }, h('span', { class: 'badge' }, repo.is_public ? 'Public' : 'Private'), h('code', { class: 'pull-ref' }, `${location.host}/${org}/${repo.name}`)),
    h('div', { class: 'stats' }, stat('tags', repo.tag_count), stat('size', formatBytes(repo.size)), stat('last modified', formatRelative(repo.last_modified))),
  );
}

export async function renderRepositoryPage(ctx: AppContext, main: HTMLElement, org: string, name: string, manifest: string | null): Promise<void> {
  mount(main, spinner());
  const crumbs = [ctx.link({ page: 'organizations' }, null, 'Organizations'), ctx.link({ page: 'organization', org, tab: 'repositories' }, null, org)];
  let repo: RepositoryDetail;
  let isCache = false;
  try {
    [repo, isCache] = await Promise.all([
      ctx.api.repository(org, name),
      // Only administrators may read the cache configuration; for others flush is not offered anyway.
      ctx.api.proxyCache(org).then((c) => c !== null, () => false),
    ]);
  } catch (err) {
    mount(main, pageHeader(crumbs, name), errorView(err));
    return;
  }

  const security = h('div');
  const referrers = h('div');
  const list = h('div');
  const more = h('div', { class: 'load-more' });
  const tags: Tag[] = [];
  let page = 0;

  const openSecurity = (digest: string | null): void => ctx.navigate({ page: 'repository', org, repo: name, manifest: digest }, { replace: true });

  const removeTag = async (tag: Tag): Promise<void> => {
    const ok = await confirmDialog({ title: `Delete tag ${tag.name}?`, message: `${org}/${name}:${tag.name} is removed. Content no other tag references is reclaimed later.`, confirmLabel: 'Delete tag', danger: true });
    if (!ok) return;
    try {
      await ctx.api.deleteTag(org, name, tag.name);
      toast(`Tag ${tag.name} deleted`);
      tags.splice(tags.indexOf(tag), 1);
      draw();
    } catch (err) {
      toast(errorMessage(err), 'error');
    }
  };

  const flushTag = async (tag: Tag): Promise<void> => {
    const outcome = await flushWithConfirm(ctx.api, org, { repository: name, tag: tag.name });
    if (outcome?.ok) {
      tags.splice(tags.indexOf(tag), 1);
      draw();
    }
  };

  const flushRepo = async (): Promise<void> => {
    const outcome = await flushWithConfirm(ctx.api, org, { repository: name });
    if (outcome?.ok) ctx.navigate({ page: 'organization', org, tab: 'repositories' });
  };

  const removeRepo = async (): Promise<void> => {
    const ok = await confirmDialog({ title: `Delete ${org}/${name}?`, message: 'All its tags are removed. A cache fetches the repository again on the next pull.', confirmLabel: 'Delete repository', danger: true });
    if (!ok) return;
    try {
      await ctx.api.deleteRepository(org, name);
      toast(`${org}/${name} deleted`);
      ctx.navigate({ page: 'organization', org, tab: 'repositories' });
    } catch (err) {
      toast(errorMessage(err), 'error');
    }
  };

  function draw(): void {
    mount(
      list,
      tags.length === 0
        ? emptyState('No tags', 'This repository has no tags.')
        : dataTable<Tag>(
            [
              { title: 'Tag', cell: (t) => [h('span', { class: 'mono strong' }, t.name), t.pinned ? h('span', { class: 'badge badge-pin', title: 'Pinned: never evicted' }, 'pinned') : null] },
              { title: 'Digest', cell: (t) => h('span', { class: 'mono muted', title: t.manifest_digest }, shortDigest(t.manifest_digest)) },
              { title: 'Size', className: 'num', cell: (t) => formatBytes(t.size) },
              { title: 'Last pulled', cell: (t) => h('span', { title: formatTime(t.last_pulled) }, formatRelative(t.last_pulled)) },
              { title: 'Pulls', className: 'num', cell: (t) => t.pull_count },
              { title: 'Last modified', cell: (t) => h('span', { title: formatTime(t.last_modified) }, formatRelative(t.last_modified)) },
              { title: 'Security', cell: (t) => severityBadge(t.security) },
              {
                title: '',
                className: 'actions',
                cell: (t) => [
                  button('Security', () => openSecurity(t.manifest_digest), 'ghost', { class: 'btn btn-sm' }),
                  isCache
                    ? button('Referrers', () => void renderReferrersPanel(ctx, referrers, org, name, t.name, t.manifest_digest, () => mount(referrers)), 'ghost', { class: 'btn btn-sm', 'data-testid': 'show-referrers' })
                    : null,
                  isCache
                    ? button('Flush', () => void flushTag(t), 'ghost', { class: 'btn btn-sm btn-danger-outline', title: 'Remove this tag from the cache' })
                    : repo.can_write
                      ? button('Delete', () => void removeTag(t), 'ghost', { class: 'btn btn-sm btn-danger-outline' })
                      : null,
                ],
              },
            ],
            tags,
            { testId: 'tag-list', rowKey: (t) => t.name },
          ),
    );
  }

  const loadPage = async (): Promise<void> => {
    page += 1;
    const answer = await ctx.api.tags(org, name, page);
    tags.push(...answer.tags);
    draw();
    mount(more, answer.has_additional ? button('Load more tags', () => void loadPage().catch((err: unknown) => mount(more, errorView(err)))) : null);
  };

  mount(
    main,
    pageHeader(
      crumbs,
      h('span', { class: 'mono' }, name),
      isCache ? button('Flush repository', () => void flushRepo(), 'ghost', { class: 'btn btn-danger-outline', 'data-testid': 'flush-repo' }) : null,
      !isCache && repo.can_admin ? button('Delete repository', () => void removeRepo(), 'ghost', { class: 'btn btn-danger-outline' }) : null,
    ),
    summary(repo, org),
    security,
    referrers,
    h('div', { class: 'section-head' }, h('h2', null, 'Tags')),
    list,
    more,
  );
  if (manifest) void renderSecurityPanel(ctx, security, org, name, manifest, () => openSecurity(null));
  await loadPage();
}
