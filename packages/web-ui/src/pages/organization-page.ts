/** One organization: a summary header and its tabs. */
import type { Organization, ProxyCacheConfig } from '../api/types';
import type { AppContext } from '../app/context';
import type { OrgTab } from '../app/routes';
import { errorMessage, errorView, spinner } from '../ui/alerts';
import { confirmDialog } from '../ui/confirm-dialog';
import { h, mount } from '../ui/dom';
import { button } from '../ui/forms';
import { toast } from '../ui/toast';
import { pageHeader } from './layout';
import { renderDashboardTab } from './org-tabs/dashboard-tab';
import { renderLogsTab } from './org-tabs/logs-tab';
import { renderMembersTab } from './org-tabs/members-tab';
import type { OrgTabContext, OrgTabRenderer } from './org-tabs/org-tab-context';
import { renderPrototypesTab } from './org-tabs/prototypes-tab';
import { renderProxyCacheTab } from './org-tabs/proxy-cache-tab';
import { renderQuotaTab } from './org-tabs/quota-tab';
import { renderRepositoriesTab } from './org-tabs/repositories-tab';
import { renderRobotsTab } from './org-tabs/robots-tab';
import { renderSecurityPolicyTab } from './org-tabs/security-policy-tab';

/** `cacheOnly` tabs are shown for proxy-cache organizations only. */
const TABS: ReadonlyArray<{ id: OrgTab; label: string; render: OrgTabRenderer; adminOnly: boolean; cacheOnly?: boolean }> = [
  { id: 'dashboard', label: 'Dashboard', render: (tab, panel) => renderDashboardTab(tab, panel), adminOnly: true, cacheOnly: true },
  { id: 'repositories', label: 'Repositories', render: renderRepositoriesTab, adminOnly: false },
  { id: 'proxycache', label: 'Proxy cache', render: renderProxyCacheTab, adminOnly: true },
  { id: 'quota', label: 'Quota', render: renderQuotaTab, adminOnly: true },
  { id: 'security', label: 'Security policy', render: renderSecurityPolicyTab, adminOnly: true },
  { id: 'robots', label: 'Robot accounts', render: renderRobotsTab, adminOnly: true },
  { id: 'permissions', label: 'Default permissions', render: renderPrototypesTab, adminOnly: true },
  { id: 'members', label: 'Members', render: renderMembersTab, adminOnly: true },
  { id: 'logs', label: 'Logs', render: renderLogsTab, adminOnly: true },
];

function summary(org: Organization, cache: ProxyCacheConfig | null | undefined): HTMLElement {
  const stat = (label: string, value: number | undefined): HTMLElement | null =>
    value === undefined ? null : h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
  return h(
    'div',
    { class: 'org-summary' },
    h(
      'div',
      { class: 'org-badges' },
      cache
        ? h('span', { class: 'badge badge-cache', 'data-testid': 'org-kind' }, `Proxy cache of ${cache.upstream_registry}`)
        : cache === null
          ? h('span', { class: 'badge', 'data-testid': 'org-kind' }, 'Registry organization')
          : null,
      h('span', { class: 'badge' }, org.is_public ? 'Public' : 'Private'),
      org.is_admin ? h('span', { class: 'badge badge-accent' }, 'You are an administrator') : null,
    ),
    h('div', { class: 'stats' }, stat('repositories', org.repository_count), stat('members', org.member_count), stat('robots', org.robot_count)),
  );
}

export async function renderOrganizationPage(ctx: AppContext, main: HTMLElement, name: string, tabId: OrgTab): Promise<void> {
  mount(main, spinner());
  const load = async (): Promise<{ org: Organization; cache: ProxyCacheConfig | null | undefined }> => {
    const org = await ctx.api.organization(name);
    const cache = org.is_admin ? await ctx.api.proxyCache(name).catch(() => undefined) : undefined;
    return { org, cache };
  };
  let state: { org: Organization; cache: ProxyCacheConfig | null | undefined };
  try {
    state = await load();
  } catch (err) {
    mount(main, pageHeader([ctx.link({ page: 'organizations' }, null, 'Organizations')], name), errorView(err));
    return;
  }

  const header = h('div');
  const drawHeader = (): void => {
    const remove = async (): Promise<void> => {
      const ok = await confirmDialog({
        title: `Delete ${name}?`,
        message: 'This deletes the organization with all its repositories, robot accounts, permissions and cache configuration. It cannot be undone.',
        confirmLabel: 'Delete organization',
        danger: true,
      });
      if (!ok) return;
      try {
        await ctx.api.deleteOrganization(name);
        await ctx.refreshUser();
        toast(`Organization ${name} deleted`);
        ctx.navigate({ page: 'organizations' });
      } catch (err) {
        toast(errorMessage(err), 'error');
      }
    };
    mount(
      header,
      pageHeader([ctx.link({ page: 'organizations' }, null, 'Organizations')], name, state.org.is_admin ? button('Delete organization', () => void remove(), 'ghost', { class: 'btn btn-danger-outline' }) : null),
      summary(state.org, state.cache),
    );
  };
  drawHeader();

  const visible = TABS.filter((t) => (!t.adminOnly || state.org.is_admin) && (!t.cacheOnly || state.cache));
  const active = visible.find((t) => t.id === tabId) ?? visible[0];
  const tabBar = h(
    'nav',
    { class: 'tabs', role: 'tablist', 'aria-label': `${name} sections` },
    visible.map((t) =>
      ctx.link({ page: 'organization', org: name, tab: t.id }, { class: t.id === active.id ? 'tab active' : 'tab', role: 'tab', 'aria-selected': t.id === active.id ? 'true' : 'false', 'data-tab': t.id }, t.label),
    ),
  );
  const panel = h('section', { class: 'tab-panel', role: 'tabpanel', 'data-testid': `tab-${active.id}` }, spinner());
  mount(main, header, tabBar, panel);

  const tabCtx: OrgTabContext = {
    app: ctx,
    get org() {
      return state.org;
    },
    get cache() {
      return state.cache;
    },
    refreshHeader: async () => {
      state = await load();
      drawHeader();
    },
  };
  try {
    await active.render(tabCtx, panel);
  } catch (err) {
    mount(panel, errorView(err, active.label));
  }
}
