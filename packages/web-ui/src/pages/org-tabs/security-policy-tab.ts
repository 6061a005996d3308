/**
 * The organization's security pull policy (`/organization/{org}/securitypolicy`):
 * refuse pulls of images with a vulnerability at or above a severity, except
 * those on the allow-list, and optionally images not scanned yet.
 */
import { ApiError } from '../../api/client';
import type { SecurityPolicy, SecurityPolicyInput } from '../../api/types';
import { alertBox, errorMessage, notAvailable } from '../../ui/alerts';
import { checked, field, h, mount } from '../../ui/dom';
import { busy, button, checkboxField, formField, select } from '../../ui/forms';
import { toast } from '../../ui/toast';
import type { OrgTabContext } from './org-tab-context';

type Level = NonNullable<SecurityPolicyInput['block_pulls_at_severity']>;

const LEVELS: ReadonlyArray<readonly [Level, string]> = [
  ['off', 'Off: never refuse a pull'],
  ['Critical', 'Critical'],
  ['High', 'High and above'],
  ['Medium', 'Medium and above'],
  ['Low', 'Low and above'],
  ['Negligible', 'Negligible and above'],
  ['Unknown', 'Any vulnerability'],
];

function policyForm(tab: OrgTabContext, policy: SecurityPolicy): HTMLFormElement {
  const result = h('div');
  const allowlist = h('textarea', { name: 'allowlist', class: 'input', rows: 4, placeholder: 'CVE-2024-1234' }, policy.allowlist.join('\n'));
  const unscanned = h('input', { type: 'checkbox', name: 'block_unscanned', checked: policy.block_unscanned });
  const form = h(
    'form',
    { class: 'card form-card', 'data-testid': 'security-policy-form' },
    h('h2', { class: 'card-title' }, 'Pull policy'),
    policy.scanner_enabled === false ? alertBox('warning', 'Security scanning is not enabled on this server: the policy takes effect once it is.') : null,
    h(
      'div',
      { class: 'form-grid' },
      formField('Refuse pulls at severity', select('block_pulls_at_severity', LEVELS, policy.block_pulls_at_severity ?? 'off')),
      formField('Allow-list', allowlist, 'Vulnerability names, one per line, that never refuse a pull.'),
      checkboxField('Refuse images not scanned yet', unscanned, 'Off by default: an image is served while its scan is queued.'),
    ),
    result,
    h('div', { class: 'form-actions' }, button('Save policy', null, 'primary')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = field(form, 'block_pulls_at_severity');
    const body: SecurityPolicyInput = {
      block_pulls_at_severity: LEVELS.find(([level]) => level === chosen)?.[0] ?? 'off',
      block_unscanned: checked(form, 'block_unscanned'),
      allowlist: allowlist.value
        .split(/[\s,]+/)
        .map((s) => s.trim())
        .filter(Boolean),
    };
    void busy(form, async () => {
      try {
        await tab.app.api.setSecurityPolicy(tab.org.name, body);
        toast('Security policy saved');
        mount(result);
      } catch (err) {
        mount(result, alertBox('error', errorMessage(err)));
      }
    });
  });
  return form;
}

export async function renderSecurityPolicyTab(tab: OrgTabContext, panel: HTMLElement): Promise<void> {
  let policy: SecurityPolicy;
  try {
    policy = await tab.app.api.securityPolicy(tab.org.name);
  } catch (err) {
    if (err instanceof ApiError && err.endpointMissing) {
      mount(panel, notAvailable('Security policy', 'This Entrepot server has no security pull policy.'));
      return;
    }
    throw err;
  }
  mount(panel, policyForm(tab, policy));
}
