/** Default permissions: roles that every repository created later (e.g. by the cache) gives to a user or robot. */
import type { Prototype } from '../../api/types';
import { alertBox, emptyState, errorMessage } from '../../ui/alerts';
import { confirmDialog } from '../../ui/confirm-dialog';
import { field, h, mount } from '../../ui/dom';
import { busy, button, formField, input, select } from '../../ui/forms';
import { dataTable } from '../../ui/table';
import { toast } from '../../ui/toast';
import type { OrgTabContext } from './org-tab-context';
import { parseRepoRole, REPO_ROLES } from './roles';

export async function renderPrototypesTab(tab: OrgTabContext, panel: HTMLElement): Promise<void> {
  const { app, org } = tab;
  const list = h('div');
  const suggestions = h('datalist', { id: 'delegate-suggestions' });

  const changeRole = async (p: Prototype, role: string, control: HTMLSelectElement): Promise<void> => {
    try {
      await app.api.updatePrototype(org.name, p.id, parseRepoRole(role));
      toast(`${p.delegate.name} now gets ${role} on new repositories`);
    } catch (err) {
      control.value = p.role;
      toast(errorMessage(err), 'error');
    }
  };

  const remove = async (p: Prototype): Promise<void> => {
    const ok = await confirmDialog({ title: 'Delete this default permission?', message: `Repositories created from now on no longer give ${p.role} to ${p.delegate.name}. Existing repositories keep their permissions.`, confirmLabel: 'Delete', danger: true });
    if (!ok) return;
    try {
      await app.api.deletePrototype(org.name, p.id);
      toast('Default permission deleted');
      await load();
    } catch (err) {
      toast(errorMessage(err), 'error');
    }
  };

  const roleSelect = (p: Prototype): HTMLSelectElement => {
    const control = select('role', REPO_ROLES, p.role, { 'aria-label': `Role of ${p.delegate.name}`, class: 'input input-sm' });
    control.addEventListener('change', () => void changeRole(p, control.value, control));
    return control;
  };

  async function load(): Promise<void> {
    const { prototypes } = await app.api.prototypes(org.name);
    mount(
      list,
      prototypes.length === 0
        ? emptyState('No default permissions', 'Add one so that repositories the cache creates later are readable by a robot or a user right away.')
        : dataTable<Prototype>(
            [
              { title: 'Applies to', cell: (p) => [h('span', { class: 'mono strong' }, p.delegate.name), ' ', h('span', { class: 'badge' }, p.delegate.kind === 'team' ? 'team' : p.delegate.is_robot ? 'robot' : 'user')] },
              { title: 'Role on new repositories', cell: roleSelect },
              { title: '', className: 'actions', cell: (p) => button('Delete', () => void remove(p), 'ghost', { class: 'btn btn-sm btn-danger-outline' }) },
            ],
            prototypes,
            { testId: 'prototype-list', rowKey: (p) => p.id },
          ),
    );
  }

  const loadSuggestions = async (): Promise<void> => {
    const [robots, members] = await Promise.all([app.api.robots(org.name).catch(() => ({ robots: [] })), app.api.members(org.name).catch(() => ({ members: [] }))]);
    mount(suggestions, [...robots.robots.map((r) => r.name), ...members.members.map((m) => m.name)].map((name) => h('option', { value: name })));
  };

  const result = h('div');
  const form = h(
    'form',
    { class: 'card form-card', 'data-testid': 'create-prototype-form' },
    h('h2', { class: 'card-title' }, 'Add a default permission'),
    h(
      'div',
      { class: 'form-grid form-grid-3' },
      formField('User or robot', input({ name: 'delegate', required: true, list: 'delegate-suggestions', placeholder: `${org.name}+ci_puller`, autocomplete: 'off', spellcheck: 'false' }), 'Robots are written <org>+<name>.'),
      formField('Role', select('role', REPO_ROLES, 'read')),
      h('div', { class: 'field field-button' }, button('Add', null, 'primary')),
    ),
    suggestions,
    result,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = field(form, 'delegate');
    void busy(form, async () => {
      try {
        await app.api.createPrototype(org.name, { kind: name.includes('+') ? 'robot' : 'user', name }, parseRepoRole(field(form, 'role')));
        mount(result);
        form.reset();
        toast('Default permission added');
        await load();
      } catch (err) {
        mount(result, alertBox('error', errorMessage(err)));
      }
    });
  });

  mount(panel, h('p', { class: 'muted intro' }, 'Default permissions apply to every repository created in this organization from now on, including those a proxy cache creates on first pull.'), form, list);
  await Promise.all([load(), loadSuggestions()]);
}
