/** Robot accounts `<org>+<name>`: create (token shown once), list, regenerate, delete, grant on every repository. */
import type { Robot } from '../../api/types';
import { alertBox, emptyState, errorMessage } from '../../ui/alerts';
import { confirmDialog } from '../../ui/confirm-dialog';
import { field, h, mount } from '../../ui/dom';
import { formatTime } from '../../ui/format';
import { busy, button, formField, input, select } from '../../ui/forms';
import { secretReveal } from '../../ui/secret-reveal';
import { dataTable } from '../../ui/table';
import { toast } from '../../ui/toast';
import type { OrgTabContext } from './org-tab-context';
import { parseRepoRole, REPO_ROLES } from './roles';

const shortName = (robot: Robot): string => robot.name.slice(robot.name.indexOf('+') + 1);

export async function renderRobotsTab(tab: OrgTabContext, panel: HTMLElement): Promise<void> {
  const { app, org } = tab;
  const reveal = h('div');
  const list = h('div');
  const grantSlot = h('div');

  const showToken = (robot: Robot, title: string): void => {
    if (!robot.token) return;
    mount(reveal, secretReveal(title, robot.name, robot.token, () => mount(reveal)));
    reveal.scrollIntoView({ block: 'nearest' });
  };

  const regenerate = async (robot: Robot): Promise<void> => {
    const ok = await confirmDialog({ title: `Regenerate the token of ${robot.name}?`, message: 'The current token stops working immediately; clients using it must log in again with the new one.', confirmLabel: 'Regenerate token', danger: true });
    if (!ok) return;
    try {
      showToken(await app.api.regenerateRobot(org.name, shortName(robot)), `New token for ${robot.name}`);
    } catch (err) {
      toast(errorMessage(err), 'error');
    }
  };

  const remove = async (robot: Robot): Promise<void> => {
    const ok = await confirmDialog({ title: `Delete ${robot.name}?`, message: 'Its token stops working and its permissions are removed.', confirmLabel: 'Delete robot', danger: true });
    if (!ok) return;
    try {
      await app.api.deleteRobot(org.name, shortName(robot));
      toast(`${robot.name} deleted`);
      await load();
    } catch (err) {
      toast(errorMessage(err), 'error');
    }
  };

  const grantForm = (robots: Robot[]): HTMLFormElement | null => {
    if (robots.length === 0) return null;
    const result = h('div');
    const form = h(
      'form',
      { class: 'card form-card' },
      h('h2', { class: 'card-title' }, 'Grant access to every repository'),
      h('p', { class: 'muted' }, 'Sets the role on all repositories that exist now. Use default permissions for repositories created later.'),
      h(
        'div',
        { class: 'form-grid form-grid-3' },
        formField('Robot', select('robot', robots.map((r) => [r.name, r.name] as const))),
        formField('Role', select('role', REPO_ROLES, 'read')),
        h('div', { class: 'field field-button' }, button('Apply to all repositories', null, 'primary')),
      ),
      result,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const role = parseRepoRole(field(form, 'role'));
      const name = field(form, 'robot');
      void busy(form, async () => {
        try {
          const answer = await app.api.grantOnAllRepositories(org.name, name, role);
          mount(result, alertBox('success', `${answer.name} now has ${answer.role} on ${answer.repositories} ${answer.repositories === 1 ? 'repository' : 'repositories'}.`));
        } catch (err) {
          mount(result, alertBox('error', errorMessage(err)));
        }
      });
    });
    return form;
  };

  async function load(): Promise<void> {
    const { robots } = await app.api.robots(org.name);
    robots.sort((a, b) => a.name.localeCompare(b.name));
    mount(
      list,
      robots.length === 0
        ? emptyState('No robot accounts', 'Robots are service accounts for CI systems and clusters; they log in with a token.')
        : dataTable<Robot>(
            [
              { title: 'Name', cell: (r) => h('span', { class: 'mono strong' }, r.name) },
              { title: 'Description', cell: (r) => r.description || h('span', { class: 'muted' }, '—') },
              { title: 'Created', cell: (r) => formatTime(r.created) },
              {
                title: '',
                className: 'actions',
                cell: (r) => [button('Regenerate token', () => void regenerate(r), 'ghost', { class: 'btn btn-sm' }), button('Delete', () => void remove(r), 'ghost', { class: 'btn btn-sm btn-danger-outline' })],
              },
            ],
            robots,
            { testId: 'robot-list', rowKey: (r) => r.name },
          ),
    );
    mount(grantSlot, grantForm(robots));
  }

  const createResult = h('div');
  const form = h(
    'form',
    { class: 'card form-card', 'data-testid': 'create-robot-form' },
    h('h2', { class: 'card-title' }, 'Create robot account'),
    h(
      'div',
      { class: 'form-grid form-grid-3' },
      formField('Name', input({ name: 'short', required: true, pattern: '[a-z][a-z0-9_]{1,254}', placeholder: 'ci_puller', autocomplete: 'off', spellcheck: 'false' }), h('span', null, 'Full name: ', h('code', null, `${org.name}+<name>`))),
      formField('Description (optional)', input({ name: 'description', maxlength: 1024, autocomplete: 'off' })),
      h('div', { class: 'field field-button' }, button('Create robot', null, 'primary')),
    ),
    createResult,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const short = field(form, 'short');
    void busy(form, async () => {
      try {
        const robot = await app.api.createRobot(org.name, short, field(form, 'description'));
        mount(createResult);
        form.reset();
        toast(`${robot.name} created`);
        showToken(robot, `Robot ${robot.name} created`);
        await load();
        await tab.refreshHeader();
      } catch (err) {
        mount(createResult, alertBox('error', errorMessage(err)));
      }
    });
  });

  mount(panel, form, reveal, h('div', { class: 'section-head' }, h('h2', null, 'Robot accounts')), list, grantSlot);
  await load();
}
