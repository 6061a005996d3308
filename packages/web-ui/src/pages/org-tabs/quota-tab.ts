/**
 * The organization's storage quota (`/organization/{org}/quota`, Quay's shape).
 * A cache organization evicts least-recently or least-frequently pulled images
 * to stay under it; pinned tags are never evicted.
 */
import { ApiError } from '../../api/client';
import type { Quota, QuotaInput } from '../../api/types';
import { alertBox, errorMessage, notAvailable } from '../../ui/alerts';
import { field, h, mount } from '../../ui/dom';
import { formatBytes, parseBytes } from '../../ui/format';
import { busy, button, formField, input, select } from '../../ui/forms';
import { toast } from '../../ui/toast';
import type { OrgTabContext } from './org-tab-context';

const POLICIES: ReadonlyArray<readonly [string, string]> = [
  ['lru', 'Least recently pulled first'],
  ['lfu', 'Least frequently pulled first'],
];

function usageBar(used: number, limit: number): HTMLElement {
  const percent = limit > 0 ? Math.min(100, Math.round((used / limit) * 100)) : 0;
  const level = percent >= 90 ? 'high' : percent >= 70 ? 'mid' : 'low';
  return h(
    'div',
    { class: 'usage' },
    h('div', { class: 'usage-label' }, `${formatBytes(used)} of ${formatBytes(limit)} used (${percent} %)`),
    h('div', { class: `usage-bar usage-${level}`, role: 'progressbar', 'aria-label': 'Quota usage', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': percent }, h('div', { class: 'usage-fill', style: `width: ${percent}%` })),
  );
}

function quotaView(quota: Quota, used: number | undefined): HTMLElement {
  return h(
    'div',
    { class: 'card' },
    h('h2', { class: 'card-title' }, 'Current quota'),
    h(
      'dl',
      { class: 'details' },
      h('dt', null, 'Limit'),
      h('dd', { 'data-testid': 'quota-limit' }, formatBytes(quota.limit_bytes)),
      quota.eviction_policy ? [h('dt', null, 'Eviction'), h('dd', null, POLICIES.find(([v]) => v === quota.eviction_policy)?.[1] ?? quota.eviction_policy)] : null,
      (quota.limits ?? []).length > 0
        ? [h('dt', null, 'Thresholds'), h('dd', null, (quota.limits ?? []).map((l) => h('span', { class: 'badge' }, `${l.type} at ${l.limit_percent} %`)))]
        : null,
    ),
    used === undefined ? null : usageBar(used, quota.limit_bytes),
  );
}

function quotaForm(tab: OrgTabContext, quota: Quota | null, onSaved: () => Promise<void>): HTMLFormElement {
  const result = h('div');
  const form = h(
    'form',
    { class: 'card form-card', 'data-testid': 'quota-form' },
    h('h2', { class: 'card-title' }, quota ? 'Change quota' : 'Set a quota'),
    h(
      'div',
      { class: 'form-grid' },
      formField('Storage limit', input({ name: 'limit', required: true, value: quota ? formatBytes(quota.limit_bytes) : '', placeholder: 'e.g. 50 GiB' }), 'In bytes or with a unit: KiB, MiB, GiB, TiB.'),
      quota?.eviction_policy !== undefined ? formField('Eviction policy', select('eviction_policy', POLICIES, quota.eviction_policy)) : null,
    ),
    h('p', { class: 'muted' }, 'When a cache organization reaches its limit, cached images are evicted so that usage stays below it. Pinned tags are never evicted.'),
    result,
    h('div', { class: 'form-actions' }, button(quota ? 'Save quota' : 'Set quota', null, 'primary')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const limit = parseBytes(field(form, 'limit'));
    if (limit === null || limit <= 0) {
      mount(result, alertBox('error', 'Enter a size such as 500 MiB or 20 GiB.'));
      return;
    }
    const body: QuotaInput = { limit_bytes: limit };
    if (quota?.eviction_policy !== undefined) body.eviction_policy = field(form, 'eviction_policy') === 'lfu' ? 'lfu' : 'lru';
    void busy(form, async () => {
      try {
        if (quota) await tab.app.api.updateQuota(tab.org.name, quota.id, body);
        else await tab.app.api.createQuota(tab.org.name, body);
        toast('Quota saved');
        await onSaved();
      } catch (err) {
        mount(result, alertBox('error', errorMessage(err)));
      }
    });
  });
  return form;
}

export async function renderQuotaTab(tab: OrgTabContext, panel: HTMLElement): Promise<void> {
  let quotas: Quota[];
  try {
    quotas = await tab.app.api.quotas(tab.org.name);
  } catch (err) {
    if (err instanceof ApiError && err.endpointMissing) {
      mount(panel, notAvailable('Storage quota', 'This Entrepot server does not manage storage quotas yet. Once it does, you can set a limit here and cached images are evicted to stay under it.'));
      return;
    }
    throw err;
  }
  const quota = Array.isArray(quotas) && quotas.length > 0 ? quotas[0] : null;
  const used = tab.org.quota_report?.quota_bytes;
  const redraw = async (): Promise<void> => {
    await tab.refreshHeader();
    await renderQuotaTab(tab, panel);
  };
  mount(panel, h('div', { class: quota ? 'two-col' : '' }, quota ? quotaView(quota, used) : null, quotaForm(tab, quota, redraw)));
}
