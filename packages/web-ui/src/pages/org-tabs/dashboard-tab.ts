/**
 * What a cache organization is worth (`/proxycache/stats`): hit ratios, bytes
 * saved, upstream health, quota, evictions and expiries, the busiest
 * repositories, and charts over a time window, each with its table.
 */
import type { CacheStats, CacheStatsRepository, StatsWindow } from '../../api/types';
import { barChart } from '../../ui/bar-chart';
import { emptyState, errorView, notAvailable, spinner } from '../../ui/alerts';
import { h, mount, type Child } from '../../ui/dom';
import { formatBytes, formatRelative, formatTime } from '../../ui/format';
import { dataTable } from '../../ui/table';
import type { OrgTabContext } from './org-tab-context';

const WINDOWS: ReadonlyArray<readonly [StatsWindow, string]> = [
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
];

function percent(ratio: number | null): string {
  return ratio === null ? '—' : `${(ratio * 100).toFixed(1)} %`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** A headline figure; `data-value` carries the exact number the text shows. */
function figure(id: string, label: string, text: string, value: number | null, detail?: Child): HTMLElement {
  return h(
    'div',
    { class: 'figure', 'data-testid': `figure-${id}`, 'data-value': value === null ? '' : String(value) },
    h('div', { class: 'figure-value' }, text),
    h('div', { class: 'figure-label' }, label),
    detail ? h('div', { class: 'figure-detail' }, detail) : null,
  );
}

function bucketLabel(start: string, bucketSeconds: number): string {
  const date = new Date(start);
  return bucketSeconds >= 86400
    ? date.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' })
    : date.toLocaleString('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
}

function healthCard(stats: CacheStats): HTMLElement {
  const u = stats.upstream;
  const breaker = u.breaker === 'closed' ? h('span', { class: 'badge badge-ok' }, 'closed (healthy)') : h('span', { class: 'badge badge-warn' }, u.breaker);
  const errors = Object.entries(u.errors);
  return h(
    'div',
    { class: 'card', 'data-testid': 'upstream-health' },
    h('h2', { class: 'card-title' }, 'Upstream health'),
    h(
      'dl',
      { class: 'details' },
      h('dt', null, 'Upstream'),
      h('dd', { class: 'mono' }, u.host),
      h('dt', null, 'Circuit breaker'),
      h('dd', { 'data-testid': 'breaker' }, breaker),
      h('dt', null, 'Last error'),
      h('dd', { 'data-testid': 'last-error' }, u.last_error ? `${u.last_error.kind}, ${formatRelative(u.last_error.at)}` : 'none'),
      h('dt', null, 'Errors in the window'),
      h('dd', null, errors.length === 0 ? 'none' : errors.map(([kind, n]) => h('span', { class: 'badge' }, `${kind}: ${count(n)}`))),
      h('dt', null, 'Rate limit remaining'),
      h('dd', { 'data-testid': 'rate-limit' }, u.rate_limit ? `${count(u.rate_limit.remaining)} pulls, reported ${formatRelative(u.rate_limit.at)}` : 'not reported by the upstream'),
    ),
  );
}

function quotaCard(stats: CacheStats): HTMLElement {
  const q = stats.quota;
  const ratio = q.usage_ratio === null ? null : Math.min(1, q.usage_ratio);
  const pct = ratio === null ? 0 : Math.round(ratio * 100);
  return h(
    'div',
    { class: 'card', 'data-testid': 'quota-gauge' },
    h('h2', { class: 'card-title', id: 'quota-gauge-title' }, 'Storage'),
    q.limit_bytes === null
      ? h('p', null, `${formatBytes(q.usage_bytes)} cached, no quota set.`)
      : [
          h('p', null, `${formatBytes(q.usage_bytes)} of ${formatBytes(q.limit_bytes)} used (${pct} %)`),
          h(
            'div',
            { class: `usage-bar usage-${pct >= 90 ? 'high' : pct >= 70 ? 'mid' : 'low'}`, role: 'progressbar', 'aria-labelledby': 'quota-gauge-title', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct, 'aria-valuetext': `${pct} % of the quota used` },
            h('div', { class: 'usage-fill', style: `width: ${pct}%` }),
          ),
        ],
    h(
      'dl',
      { class: 'details' },
      h('dt', null, 'Evicted'),
      h('dd', { 'data-testid': 'evictions', 'data-value': String(stats.evictions.count) }, `${count(stats.evictions.count)} images, ${formatBytes(stats.evictions.bytes)}`),
      h('dt', null, 'Expired (idle)'),
      h('dd', { 'data-testid': 'expiries', 'data-value': String(stats.expiries.count) }, `${count(stats.expiries.count)} images, ${formatBytes(stats.expiries.bytes)}`),
    ),
  );
}

function topTable(title: string, rows: CacheStatsRepository[], testId: string): HTMLElement {
  return h(
    'div',
    { class: 'card' },
    h('h2', { class: 'card-title' }, title),
    rows.length === 0
      ? h('p', { class: 'muted' }, 'No repository yet.')
      : dataTable(
          [
            { title: 'Repository', cell: (r: CacheStatsRepository) => h('span', { class: 'mono' }, r.repository) },
            { title: 'Pulls', cell: (r: CacheStatsRepository) => count(r.pulls), className: 'num' },
            { title: 'Bytes saved', cell: (r: CacheStatsRepository) => formatBytes(r.bytes_saved), className: 'num' },
          ],
          rows,
          { testId, rowKey: (r) => r.repository },
        ),
  );
}

function dashboard(stats: CacheStats, windowLabel: string): Child[] {
  const total = stats.requests.cache + stats.requests.upstream;
  const figures = h(
    'div',
    { class: 'figures' },
    figure('hit-ratio', 'Hit ratio (requests)', percent(stats.requests.hit_ratio), stats.requests.hit_ratio, `${count(stats.requests.cache)} of ${count(total)} from the cache`),
    figure('byte-hit-ratio', 'Hit ratio (bytes)', percent(stats.bytes.hit_ratio), stats.bytes.hit_ratio, `${formatBytes(stats.bytes.upstream)} fetched upstream`),
    figure('bytes-saved', 'Bytes saved', formatBytes(stats.bytes.saved), stats.bytes.saved, 'served from the cache'),
    figure('pulls', 'Image pulls', count(stats.pulls), stats.pulls, `${count(stats.stale_serves)} served stale while the upstream failed`),
    figure('revalidations', 'Revalidations', count(stats.revalidations.unchanged + stats.revalidations.changed), stats.revalidations.unchanged + stats.revalidations.changed, `${count(stats.revalidations.changed)} found a new image`),
  );
  const health = h('div', { class: 'two-col dashboard-cols' }, healthCard(stats), quotaCard(stats));
  if (total === 0) {
    return [emptyState(`No pulls through this cache in the ${windowLabel.toLowerCase()}`, 'Figures and charts appear once clients pull images through this organization.'), health];
  }
  const buckets = stats.series.map((b) => bucketLabel(b.start, stats.bucket_seconds));
  return [
    figures,
    health,
    barChart({
      title: 'Requests: from the cache and from the upstream',
      summary: `${count(stats.requests.cache)} from the cache, ${count(stats.requests.upstream)} from the upstream`,
      buckets,
      series: [
        { label: 'From the cache', className: 'series-cache', values: stats.series.map((b) => b.cache_requests) },
        { label: 'From the upstream', className: 'series-upstream', values: stats.series.map((b) => b.upstream_requests) },
      ],
      format: count,
      testId: 'chart-requests',
    }),
    barChart({
      title: 'Bytes: served from the cache and fetched from the upstream',
      summary: `${formatBytes(stats.bytes.cache)} from the cache, ${formatBytes(stats.bytes.upstream)} from the upstream`,
      buckets,
      series: [
        { label: 'From the cache', className: 'series-cache', values: stats.series.map((b) => b.cache_bytes) },
        { label: 'From the upstream', className: 'series-upstream', values: stats.series.map((b) => b.upstream_bytes) },
      ],
      format: formatBytes,
      testId: 'chart-bytes',
    }),
    barChart({
      title: 'Evictions and expiries',
      summary: `${count(stats.evictions.count)} evicted, ${count(stats.expiries.count)} expired`,
      buckets,
      series: [
        { label: 'Evicted', className: 'series-evicted', values: stats.series.map((b) => b.evictions) },
        { label: 'Expired', className: 'series-expired', values: stats.series.map((b) => b.expiries) },
      ],
      format: count,
      testId: 'chart-removals',
    }),
    h('div', { class: 'two-col dashboard-cols' }, topTable('Most pulled repositories', stats.top_repositories.by_pulls, 'top-by-pulls'), topTable('Repositories that saved the most', stats.top_repositories.by_bytes_saved, 'top-by-bytes')),
  ];
}

export async function renderDashboardTab(tab: OrgTabContext, panel: HTMLElement, window: StatsWindow = '24h'): Promise<void> {
  if (!tab.cache) {
    mount(panel, notAvailable('The cache dashboard', 'This organization is not a proxy cache.'));
    return;
  }
  const label = WINDOWS.find(([w]) => w === window)?.[1] ?? window;
  const switcher = h(
    'div',
    { class: 'window-switch', role: 'group', 'aria-label': 'Time window', 'data-testid': 'window-switch' },
    WINDOWS.map(([w, text]) =>
      h('button', { type: 'button', class: w === window ? 'btn btn-sm btn-primary' : 'btn btn-sm', 'aria-pressed': w === window ? 'true' : 'false', 'data-window': w, onclick: () => void renderDashboardTab(tab, panel, w) }, text),
    ),
  );
  const body = h('div', { 'data-testid': 'dashboard', 'data-window': window }, spinner());
  mount(panel, h('div', { class: 'section-head' }, h('h2', null, `${label}`), switcher), body);
  try {
    const stats = await tab.app.api.cacheStats(tab.org.name, window);
    mount(body, h('p', { class: 'muted' }, `From ${formatTime(stats.from)} to ${formatTime(stats.to)}.`), dashboard(stats, label));
    body.setAttribute('data-loaded', 'true');
  } catch (err) {
    mount(body, errorView(err, 'The cache dashboard'));
  }
}
