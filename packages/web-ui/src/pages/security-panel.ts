/** Clair scan results of one manifest (`.../manifest/{digest}/security`, Quay's shape). */
import { ApiError } from '../api/client';
import type { SecurityReport, Vulnerability } from '../api/types';
import type { AppContext } from '../app/context';
import { alertBox, emptyState, errorMessage, notAvailable, spinner } from '../ui/alerts';
import { h, mount } from '../ui/dom';
import { shortDigest } from '../ui/format';
import { dataTable } from '../ui/table';

const SEVERITIES = ['Critical', 'High', 'Medium', 'Low', 'Negligible', 'Unknown'];

interface Finding {
  vulnerability: Vulnerability;
  pkg: string;
  version: string;
}

function findings(report: SecurityReport): Finding[] {
  const out: Finding[] = [];
  for (const feature of report.data?.Layer.Features ?? []) {
    for (const v of feature.Vulnerabilities ?? []) out.push({ vulnerability: v, pkg: feature.Name, version: feature.Version });
  }
  const rank = (s: string): number => {
    const i = SEVERITIES.indexOf(s);
    return i < 0 ? SEVERITIES.length : i;
  };
  return out.sort((a, b) => rank(a.vulnerability.Severity) - rank(b.vulnerability.Severity) || a.vulnerability.Name.localeCompare(b.vulnerability.Name));
}

function safeLink(url: string | undefined, text: string): HTMLElement {
  const first = url?.split(/\s+/)[0];
  return first && /^https?:\/\//.test(first) ? h('a', { href: first, target: '_blank', rel: 'noopener noreferrer' }, text) : h('span', null, text);
}

function reportView(report: SecurityReport): HTMLElement {
  if (report.status === 'queued') return alertBox('info', 'The scan is queued. Results appear here once the scanner has indexed this image.');
  if (report.status === 'unsupported') return alertBox('info', report.reason ? `Not scanned: ${report.reason}.` : 'The scanner does not support this image (e.g. no known package manager or an unsupported base).');
  if (report.status === 'failed') return alertBox('error', report.reason ? `The scan failed: ${report.reason}` : 'The scan failed.');
  const list = findings(report);
  if (list.length === 0) return emptyState('No known vulnerabilities', `${report.data?.Layer.Features.length ?? 0} packages scanned.`);
  const counts = SEVERITIES.map((s) => [s, list.filter((f) => f.vulnerability.Severity === s).length] as const).filter(([, n]) => n > 0);
  return h(
    'div',
    null,
    h('div', { class: 'severity-summary' }, counts.map(([s, n]) => h('span', { class: `badge sev-${s.toLowerCase()}` }, `${n} ${s}`))),
    dataTable<Finding>(
      [
        { title: 'Severity', cell: (f) => h('span', { class: `badge sev-${f.vulnerability.Severity.toLowerCase()}` }, f.vulnerability.Severity) },
        { title: 'Vulnerability', cell: (f) => safeLink(f.vulnerability.Link, f.vulnerability.Name) },
        { title: 'Package', cell: (f) => h('span', { class: 'mono' }, f.pkg) },
        { title: 'Installed', cell: (f) => h('span', { class: 'mono' }, f.version) },
        { title: 'Fixed in', cell: (f) => (f.vulnerability.FixedBy ? h('span', { class: 'mono' }, f.vulnerability.FixedBy) : h('span', { class: 'muted' }, 'no fix yet')) },
      ],
      list,
      { testId: 'vulnerability-list' },
    ),
  );
}

export async function renderSecurityPanel(ctx: AppContext, el: HTMLElement, org: string, repo: string, digest: string, onClose: () => void): Promise<void> {
  const body = h('div', null, spinner('Loading scan results…'));
  mount(
    el,
    h(
      'div',
      { class: 'card', 'data-testid': 'security-panel' },
      h('div', { class: 'card-head' }, h('h2', { class: 'card-title' }, 'Security scan ', h('span', { class: 'mono muted', title: digest }, shortDigest(digest))), h('button', { type: 'button', class: 'btn btn-ghost btn-sm', onclick: onClose }, 'Close')),
      body,
    ),
  );
  try {
    mount(body, reportView(await ctx.api.security(org, repo, digest)));
  } catch (err) {
    if (err instanceof ApiError && err.endpointMissing) mount(body, notAvailable('Security scanning', 'This Entrepot server does not report scan results yet. Once Clair scanning is enabled, vulnerabilities of each cached image are listed here.'));
    else mount(body, alertBox('error', errorMessage(err)));
  }
}
