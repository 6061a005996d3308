/** Organization members and their roles. */
import type { Member } from '../../api/types';
import { alertBox, errorMessage } from '../../ui/alerts';
import { confirmDialog } from '../../ui/confirm-dialog';
import { field, h, mount } from '../../ui/dom';
import { busy, button, formField, input, select } from '../../ui/forms';
import { dataTable } from '../../ui/table';
import { toast } from '../../ui/toast';
import type { OrgTabContext } from './org-tab-context';
import { MEMBER_ROLES, parseMemberRole } from './roles';

export async function renderMembersTab(tab: OrgTabContext, panel: HTMLElement): Promise<void> {
  const { app, org } = tab;
  const list = h('div');

  const changeRole = async (m: Member, control: HTMLSelectElement): Promise<void> => {
    try {
      await app.api.setMember(org.name, m.name, parseMemberRole(control.value));
      toast(`${m.name} is now ${control.value === 'admin' ? 'an administrator' : 'a member'}`);
      await load();
    } catch (err) {
      control.value = m.role;
      toast(errorMessage(err), 'error');
    }
  };

  const remove = async (m: Member): Promise<void> => {
    const self = m.name === app.user.username;
    const ok = await confirmDialog({
      title: `Remove ${m.name} from ${org.name}?`,
      message: self ? 'You are removing yourself: unless you are a superuser you lose access to this organization.' : `${m.name} loses the access that membership gives.`,
      confirmLabel: 'Remove member',
      danger: true,
    });
    if (!ok) return;
    try {
      await app.api.removeMember(org.name, m.name);
      toast(`${m.name} removed`);
      await load();
      await tab.refreshHeader();
    } catch (err) {
      toast(errorMessage(err), 'error');
    }
  };

  async function load(): Promise<void> {
    const { members } = await app.api.members(org.name);
    members.sort((a, b) => a.name.localeCompare(b.name));
    mount(
      list,
      dataTable<Member>(
        [
          { title: 'User', cell: (m) => [h('span', { class: 'strong' }, m.name), m.name === app.user.username ? h('span', { class: 'muted' }, ' (you)') : null] },
          {
            title: 'Role',
            cell: (m) => {
              const control = select('role', MEMBER_ROLES, m.role, { 'aria-label': `Role of ${m.name}`, class: 'input input-sm' });
              control.addEventListener('change', () => void changeRole(m, control));
              return control;
            },
          },
          { title: '', className: 'actions', cell: (m) => button('Remove', () => void remove(m), 'ghost', { class: 'btn btn-sm btn-danger-outline' }) },
        ],
        members,
        { testId: 'member-list', rowKey: (m) => m.name },
      ),
    );
  }

  const result = h('div');
  const form = h(
    'form',
    { class: 'card form-card' },
    h('h2', { class: 'card-title' }, 'Add a member'),
    h(
      'div',
      { class: 'form-grid form-grid-3' },
      formField('Username', input({ name: 'username', required: true, autocomplete: 'off', spellcheck: 'false' })),
      formField('Role', select('role', MEMBER_ROLES, 'member')),
      h('div', { class: 'field field-button' }, button('Add member', null, 'primary')),
    ),
    result,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = field(form, 'username');
    void busy(form, async () => {
      try {
        await app.api.setMember(org.name, name, parseMemberRole(field(form, 'role')));
        mount(result);
        form.reset();
        toast(`${name} added`);
        await load();
        await tab.refreshHeader();
      } catch (err) {
        mount(result, alertBox('error', errorMessage(err)));
      }
    });
  });

  mount(panel, h('div', { class: 'section-head' }, h('h2', null, 'Members')), list, form);
  await load();
}
