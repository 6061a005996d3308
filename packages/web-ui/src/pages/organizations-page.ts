/** The organizations the user belongs to, with their kind (cache or registry), and creating one. */
import { ApiError } from '../api/client';
import type { Organization, ProxyCacheConfig, UserOrganization } from '../api/types';
import type { AppContext } from '../app/context';
import { alertBox, emptyState, errorMessage, spinner } from '../ui/alerts';
import { field, h, mount } from '../ui/dom';
import { busy, button, formField, input } from '../ui/forms';
import { dataTable } from '../ui/table';
import { toast } from '../ui/toast';
import { pageHeader } from './layout';

interface OrgRow {
  membership: UserOrganization;
  detail: Organization | null;
  /** undefined: unknown (not an admin, or the lookup failed). */
  cache: ProxyCacheConfig | null | undefined;
}

async function loadRow(ctx: AppContext, membership: UserOrganization): Promise<OrgRow> {
  const [detail, cache] = await Promise.all([
    ctx.api.organization(membership.name).catch(() => null),
    membership.is_org_admin ? ctx.api.proxyCache(membership.name).catch(() => undefined) : Promise.resolve(undefined),
  ]);
  return { membership, detail, cache };
}

const NAME_PATTERN = '[a-z0-9]+(?:(?:_|__|-+)[a-z0-9]+)*';

function createForm(ctx: AppContext, onCancel: () => void): HTMLFormElement {
  const error = h('div');
  const form = h(
    'form',
    { class: 'card form-card', 'data-testid': 'create-org-form' },
    h('h2', { class: 'card-title' }, 'Create organization'),
    h(
      'div',
      { class: 'form-grid' },
      formField('Name', input({ name: 'name', required: true, pattern: NAME_PATTERN, minlength: 2, maxlength: 255, placeholder: 'e.g. dockerhub', autocomplete: 'off', spellcheck: 'false' }), 'Lowercase letters and digits, separated by _ or -. A cache organization is pulled as entrepot.example/<name>/<image>.'),
      formField('Contact email (optional)', input({ name: 'email', type: 'email', autocomplete: 'off' })),
    ),
    error,
    h('div', { class: 'form-actions' }, button('Create organization', null, 'primary'), button('Cancel', onCancel)),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = field(form, 'name');
    void busy(form, async () => {
      try {
        await ctx.api.createOrganization(name, field(form, 'email') || undefined);
        await ctx.refreshUser();
        toast(`Organization ${name} created`);
        ctx.navigate({ page: 'organization', org: name, tab: 'proxycache' });
      } catch (err) {
        mount(error, alertBox('error', errorMessage(err)));
      }
    });
  });
  return form;
}

/** Superusers may open any organization, including ones they are not a member of. */
function openByName(ctx: AppContext): HTMLFormElement {
  const form = h('form', { class: 'inline-form' }, input({ name: 'org', placeholder: 'Open organization by name…', 'aria-label': 'Organization name', required: true, spellcheck: 'false' }), button('Open', null));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    ctx.navigate({ page: 'organization', org: field(form, 'org'), tab: 'repositories' });
  });
  return form;
}

function kindCell(row: OrgRow): HTMLElement {
  if (row.cache) return h('span', { class: 'badge badge-cache', title: row.cache.upstream_endpoint ?? '' }, `Proxy cache · ${row.cache.upstream_registry}`);
  if (row.cache === null) return h('span', { class: 'badge' }, 'Registry');
  return h('span', { class: 'muted' }, '—');
}

export async function renderOrganizationsPage(ctx: AppContext, main: HTMLElement): Promise<void> {
  const formSlot = h('div');
  const listSlot = h('div', null, spinner());
  const showForm = (): void => {
    mount(formSlot, createForm(ctx, () => mount(formSlot)));
    formSlot.querySelector('input')?.focus();
  };
  mount(
    main,
    pageHeader([], 'Organizations', ctx.user.super_user ? openByName(ctx) : null, button('Create organization', showForm, 'primary', { 'data-testid': 'new-org' })),
    formSlot,
    listSlot,
  );

  const user = await ctx.refreshUser();
  if (user.organizations.length === 0) {
    mount(listSlot, emptyState('No organizations yet', 'An organization holds repositories. Configure one as a proxy cache to mirror an upstream registry such as docker.io.', button('Create organization', showForm, 'primary')));
    return;
  }
  let rows: OrgRow[];
  try {
    rows = await Promise.all(user.organizations.map((m) => loadRow(ctx, m)));
  } catch (err) {
    mount(listSlot, alertBox('error', err instanceof ApiError ? err.message : errorMessage(err)));
    return;
  }
  rows.sort((a, b) => a.membership.name.localeCompare(b.membership.name));
  mount(
    listSlot,
    dataTable<OrgRow>(
      [
        { title: 'Name', cell: (r) => ctx.link({ page: 'organization', org: r.membership.name, tab: 'repositories' }, { class: 'strong' }, r.membership.name) },
        { title: 'Type', cell: kindCell },
        { title: 'Your role', cell: (r) => h('span', { class: r.membership.is_org_admin ? 'badge badge-accent' : 'badge' }, r.membership.role ?? (r.membership.is_org_admin ? 'admin' : 'member')) },
        { title: 'Repositories', className: 'num', cell: (r) => r.detail?.repository_count ?? '—' },
        { title: 'Robots', className: 'num', cell: (r) => r.detail?.robot_count ?? '—' },
        { title: 'Visibility', cell: (r) => (r.membership.public ? 'Public' : 'Private') },
      ],
      rows,
      { testId: 'org-list', rowKey: (r) => r.membership.name },
    ),
  );
}
