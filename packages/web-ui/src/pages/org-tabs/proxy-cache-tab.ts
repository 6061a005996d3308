/**
 * The organization's pull-through cache: its configuration (the upstream
 * password is write-only and shown only as "set"/"not set"), validation against
 * the upstream, removal, and flushing what the cache holds.
 */
import type { OnUpstream404, ProxyCacheConfig, ProxyCacheInput } from '../../api/types';
import { alertBox, errorMessage, notAvailable } from '../../ui/alerts';
import { confirmDialog } from '../../ui/confirm-dialog';
import { describeFlush, flushWithConfirm } from '../../ui/flush';
import { checked, field, h, mount } from '../../ui/dom';
import { formatDuration } from '../../ui/format';
import { busy, button, checkboxField, formField, input, select } from '../../ui/forms';
import { toast } from '../../ui/toast';
import type { OrgTabContext } from './org-tab-context';

const ON_404: ReadonlyArray<readonly [OnUpstream404, string]> = [
  ['remove', 'Remove the cached tag'],
  ['keep', 'Keep serving the cached tag'],
];

function configView(config: ProxyCacheConfig): HTMLElement {
  const row = (label: string, value: string | HTMLElement, testId?: string): HTMLElement[] => [h('dt', null, label), h('dd', { 'data-testid': testId }, value)];
  return h(
    'div',
    { class: 'card' },
    h('h2', { class: 'card-title' }, 'Current configuration'),
    h(
      'dl',
      { class: 'details', 'data-testid': 'cache-config' },
      row('Upstream registry', h('span', { class: 'mono' }, config.upstream_registry)),
      row('Upstream endpoint', config.upstream_endpoint ? h('span', { class: 'mono' }, config.upstream_endpoint) : 'default for the registry'),
      row('Username', config.upstream_registry_username ?? h('span', { class: 'muted' }, 'none (anonymous)')),
      row(
        'Password',
        config.upstream_registry_password_set ? h('span', { class: 'badge badge-ok' }, 'set') : h('span', { class: 'badge' }, 'not set'),
        'password-state',
      ),
      row('Staleness period', `${formatDuration(config.expiration_s)} (${config.expiration_s} s)`),
      row('Stale-if-error window', `${formatDuration(config.stale_if_error_s)} (${config.stale_if_error_s} s)`),
      row('On upstream 404', ON_404.find(([v]) => v === config.on_upstream_404)?.[1] ?? config.on_upstream_404),
      config.idle_expiration_s !== undefined
        ? row('Expire tags not pulled for', config.idle_expiration_s ? `${formatDuration(config.idle_expiration_s)} (${config.idle_expiration_s} s)` : 'never')
        : null,
      config.refresh_min_pulls !== undefined
        ? row('Refresh ahead', config.refresh_min_pulls ? `tags pulled ${config.refresh_min_pulls}+ times per staleness period${config.prefetch_changed_tags ? ', prefetching changed images' : ''}` : 'off')
        : null,
      config.low_watermark !== undefined ? row('Evict in the background down to', config.low_watermark ? `${Math.round(config.low_watermark * 100)} % of the quota` : 'the quota limit') : null,
      row('Transport', config.insecure ? h('span', null, h('span', { class: 'badge badge-warn' }, 'insecure'), 'plain HTTP or unverified TLS allowed') : 'TLS, verified'),
      row(
        'Signature policy',
        config.require_signature
          ? h('span', null, h('span', { class: 'badge badge-ok' }, 'signatures required'), `${config.signature_public_keys.length} cosign key(s)`)
          : h('span', { class: 'muted' }, 'off'),
        'signature-policy',
      ),
      row('Cosign keys', config.signature_key_fingerprints.length === 0 ? h('span', { class: 'muted' }, 'none') : h('div', null, config.signature_key_fingerprints.map((f) => h('div', { class: 'mono muted', title: 'sha256 of the public key' }, f)))),
    ),
  );
}

function secondsInput(name: string, value: number | undefined): { control: HTMLInputElement; hint: HTMLElement } {
  const hint = h('span', null, value === undefined ? 'Leave empty for the server default.' : formatDuration(value));
  const control = input({ name, type: 'number', min: 0, step: 1, inputmode: 'numeric', value: value === undefined ? '' : String(value), placeholder: 'server default' });
  control.addEventListener('input', () => {
    hint.textContent = control.value === '' ? 'Leave empty for the server default.' : control.validity.valid ? formatDuration(Number(control.value)) : 'Whole seconds, 0 or more.';
  });
  return { control, hint };
}

/** Reads the form; the password is sent only when typed (or `null` to remove it). */
function readInput(form: HTMLFormElement): ProxyCacheInput {
  const password = (form.elements.namedItem('upstream_registry_password') as HTMLInputElement).value;
  const body: ProxyCacheInput = {
    upstream_registry: field(form, 'upstream_registry'),
    upstream_registry_username: field(form, 'upstream_registry_username') || null,
    upstream_endpoint: field(form, 'upstream_endpoint') || null,
    insecure: checked(form, 'insecure'),
    on_upstream_404: field(form, 'on_upstream_404') === 'keep' ? 'keep' : 'remove',
  };
  if (password !== '') body.upstream_registry_password = password;
  else if (checked(form, 'clear_password')) body.upstream_registry_password = null;
  body.require_signature = checked(form, 'require_signature');
  body.signature_public_keys = splitPemKeys(field(form, 'signature_public_keys'));
  const expiration = field(form, 'expiration_s');
  if (expiration !== '') body.expiration_s = Number(expiration);
  const stale = field(form, 'stale_if_error_s');
  if (stale !== '') body.stale_if_error_s = Number(stale);
  // Empty turns a lifecycle setting off.
  const idle = field(form, 'idle_expiration_s');
  body.idle_expiration_s = idle === '' || Number(idle) === 0 ? null : Number(idle);
  const pulls = field(form, 'refresh_min_pulls');
  body.refresh_min_pulls = pulls === '' || Number(pulls) === 0 ? null : Number(pulls);
  const watermark = field(form, 'low_watermark');
  body.low_watermark = watermark === '' ? null : Number(watermark) / 100;
  body.prefetch_changed_tags = checked(form, 'prefetch_changed_tags');
  return body;
}

/** The PEM blocks pasted into the keys field, one key each. */
function splitPemKeys(text: string): string[] {
  return text.match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g) ?? [];
}

function configForm(tab: OrgTabContext, config: ProxyCacheConfig | null, onSaved: () => Promise<void>): HTMLFormElement {
  const result = h('div', { 'data-testid': 'cache-form-result' });
  const expiration = secondsInput('expiration_s', config?.expiration_s);
  const stale = secondsInput('stale_if_error_s', config?.stale_if_error_s);
  const idle = secondsInput('idle_expiration_s', config?.idle_expiration_s ?? undefined);
  idle.control.placeholder = 'never';
  const passwordHint = config?.upstream_registry_password_set
    ? 'A password is stored (encrypted). Leave empty to keep it.'
    : 'Stored encrypted; it is never shown again.';
  const form = h(
    'form',
    { class: 'card form-card', 'data-testid': 'cache-form', autocomplete: 'off' },
    h('h2', { class: 'card-title' }, config ? 'Change configuration' : 'Make this organization a proxy cache'),
    config ? null : h('p', { class: 'muted' }, 'Clients then pull upstream images through this organization, e.g. ', h('code', null, `${location.host}/${tab.org.name}/library/alpine:latest`), '. The organization must have no repositories.'),
    h(
      'div',
      { class: 'form-grid' },
      formField('Upstream registry', input({ name: 'upstream_registry', required: true, value: config?.upstream_registry ?? '', placeholder: 'docker.io', spellcheck: 'false' }), 'A registry (docker.io, ghcr.io, quay.io) or one namespace of it (docker.io/library).'),
      formField('Upstream endpoint (optional)', input({ name: 'upstream_endpoint', type: 'url', value: config?.upstream_endpoint ?? '', placeholder: 'https://registry-1.docker.io', spellcheck: 'false' }), 'Reach the registry at another URL, e.g. an internal mirror.'),
      formField('Username (optional)', input({ name: 'upstream_registry_username', value: config?.upstream_registry_username ?? '', autocomplete: 'off', spellcheck: 'false' }), 'To lift rate limits or reach private upstream repositories.'),
      formField('Password or token', input({ name: 'upstream_registry_password', type: 'password', autocomplete: 'new-password', placeholder: config?.upstream_registry_password_set ? '•••••••• (unchanged)' : '' }), passwordHint),
      formField('Staleness period (seconds)', expiration.control, expiration.hint),
      formField('Serve stale content on upstream errors for (seconds)', stale.control, stale.hint),
      formField('Expire tags not pulled for (seconds)', idle.control, 'Empty: cached tags never expire. Pinned tags never do.'),
      formField(
        'Refresh tags pulled at least this often per staleness period',
        input({ name: 'refresh_min_pulls', type: 'number', min: 0, step: 1, inputmode: 'numeric', value: config?.refresh_min_pulls ? String(config.refresh_min_pulls) : '', placeholder: 'off' }),
        'Hot tags are revalidated shortly before their period ends, so their pulls never wait for the upstream. Empty: off.',
      ),
      formField(
        'Low watermark (% of the quota)',
        input({ name: 'low_watermark', type: 'number', min: 1, max: 100, step: 1, inputmode: 'numeric', value: config?.low_watermark ? String(Math.round(config.low_watermark * 100)) : '', placeholder: '100' }),
        'Above it, images are evicted in the background down to it, so that pulls rarely wait for eviction. Empty: the limit.',
      ),
      formField('When the upstream answers 404 for a cached tag', select('on_upstream_404', ON_404, config?.on_upstream_404 ?? 'remove')),
      h(
        'div',
        { class: 'field-stack' },
        checkboxField('Insecure upstream (plain HTTP or unverified TLS)', h('input', { type: 'checkbox', name: 'insecure', checked: config?.insecure ?? false })),
        checkboxField('Prefetch changed hot tags (their new images, for the platforms pulled before)', h('input', { type: 'checkbox', name: 'prefetch_changed_tags', checked: config?.prefetch_changed_tags ?? false })),
        config?.upstream_registry_password_set ? checkboxField('Remove the stored password', h('input', { type: 'checkbox', name: 'clear_password' })) : null,
      ),
      h(
        'div',
        { class: 'field-stack' },
        checkboxField(
          'Require a cosign signature by one of these keys',
          h('input', { type: 'checkbox', name: 'require_signature', checked: config?.require_signature ?? false, 'data-testid': 'require-signature' }),
          'Unsigned images are refused (DENIED). Signatures are checked with the keys only: no transparency log.',
        ),
        formField(
          'Cosign public keys (PEM)',
          h('textarea', { name: 'signature_public_keys', class: 'input mono', rows: 5, spellcheck: 'false', 'data-testid': 'signature-keys', placeholder: '-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----' }, (config?.signature_public_keys ?? []).join('\n')),
          'ECDSA P-256 (cosign generate-key-pair) or Ed25519; paste several one after the other.',
        ),
      ),
    ),
    result,
    h(
      'div',
      { class: 'form-actions' },
      button(config ? 'Save changes' : 'Create proxy cache', null, 'primary', { 'data-testid': 'save-cache' }),
      button('Validate', () => void validate(), 'secondary', { 'data-testid': 'validate-cache' }),
    ),
  );

  const validate = async (): Promise<void> => {
    if (!form.reportValidity()) return;
    await busy(form, async () => {
      mount(result, h('div', { class: 'muted' }, 'Checking the upstream…'));
      try {
        const answer = await tab.app.api.validateProxyCache(tab.org.name, readInput(form));
        mount(
          result,
          answer.valid
            ? alertBox('success', answer.anonymous ? 'The upstream answered (no credentials to check).' : 'The upstream answered and accepted the credentials.')
            : alertBox('error', `Validation failed: ${answer.error_message ?? 'the upstream check failed'}`),
        );
      } catch (err) {
        mount(result, alertBox('error', errorMessage(err)));
      }
    });
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(form, async () => {
      try {
        await tab.app.api.saveProxyCache(tab.org.name, readInput(form));
        toast(config ? 'Cache configuration saved' : `${tab.org.name} is now a proxy cache`);
        await onSaved();
      } catch (err) {
        mount(result, alertBox('error', errorMessage(err)));
      }
    });
  });
  return form;
}

function dangerZone(tab: OrgTabContext, onRemoved: () => Promise<void>): HTMLElement {
  const flushResult = h('div');
  const flush = async (): Promise<void> => {
    const outcome = await flushWithConfirm(tab.app.api, tab.org.name);
    if (!outcome) return;
    if (outcome.ok) {
      mount(flushResult, alertBox('success', describeFlush(outcome.result)));
      await tab.refreshHeader();
    } else {
      mount(flushResult, outcome.unavailable ? notAvailable('Flushing the cache') : alertBox('error', outcome.message));
    }
  };
  const remove = async (): Promise<void> => {
    const ok = await confirmDialog({
      title: 'Remove the cache configuration?',
      message: `${tab.org.name} stops being a proxy cache: pulls of uncached images fail and nothing is fetched from the upstream any more. Cached repositories stay until deleted.`,
      confirmLabel: 'Remove configuration',
      danger: true,
    });
    if (!ok) return;
    try {
      await tab.app.api.deleteProxyCache(tab.org.name);
      toast('Cache configuration removed');
      await onRemoved();
    } catch (err) {
      toast(errorMessage(err), 'error');
    }
  };
  return h(
    'div',
    { class: 'card danger-zone' },
    h('h2', { class: 'card-title' }, 'Danger zone'),
    h(
      'div',
      { class: 'danger-row' },
      h('div', null, h('strong', null, 'Flush cache'), h('p', { class: 'muted' }, 'Delete everything this organization has cached and reclaim the storage.')),
      button('Flush cache', () => void flush(), 'danger', { 'data-testid': 'flush-cache' }),
    ),
    flushResult,
    h(
      'div',
      { class: 'danger-row' },
      h('div', null, h('strong', null, 'Remove cache configuration'), h('p', { class: 'muted' }, 'Turn this organization back into a regular one.')),
      button('Remove configuration', () => void remove(), 'danger', { 'data-testid': 'remove-cache' }),
    ),
  );
}

export async function renderProxyCacheTab(tab: OrgTabContext, panel: HTMLElement): Promise<void> {
  const config = await tab.app.api.proxyCache(tab.org.name);
  const redraw = async (): Promise<void> => {
    await tab.refreshHeader();
    await renderProxyCacheTab(tab, panel);
  };
  mount(
    panel,
    config
      ? h('div', { class: 'two-col' }, configView(config), configForm(tab, config, redraw))
      : h('div', null, alertBox('info', `${tab.org.name} is a regular organization: it stores what is pushed to it and fetches nothing from elsewhere.`), configForm(tab, null, redraw)),
    config ? dangerZone(tab, redraw) : null,
  );
}
