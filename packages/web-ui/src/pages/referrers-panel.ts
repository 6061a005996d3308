/** A cached manifest's referrers (signatures, SBOMs, attestations) and its signature state under the organization's keys. */
import type { Referrer, ReferrersReport } from '../api/types';
import type { AppContext } from '../app/context';
import { alertBox, emptyState, errorMessage, spinner } from '../ui/alerts';
import { h, mount } from '../ui/dom';
import { formatBytes, shortDigest } from '../ui/format';
import { dataTable } from '../ui/table';

function signatureBadge(signature: ReferrersReport['signature']): HTMLElement {
  if (signature.verified === null) return h('span', { class: 'badge', 'data-testid': 'signature-state' }, 'no signature keys configured');
  if (signature.verified) {
    return h(
      'span',
      { 'data-testid': 'signature-state' },
      h('span', { class: 'badge badge-ok' }, 'signature verified'),
      h('span', { class: 'mono muted', title: 'sha256 of the public key' }, ` by key ${shortDigest(signature.key_fingerprint ?? '')}`),
    );
  }
  return h('span', { class: signature.require_signature ? 'badge badge-danger' : 'badge badge-warn', 'data-testid': 'signature-state' }, signature.require_signature ? 'not signed: pulls refused' : 'not signed');
}

function reportView(report: ReferrersReport): HTMLElement {
  return h(
    'div',
    null,
    h('p', null, 'Signature: ', signatureBadge(report.signature)),
    report.referrers.length === 0
      ? emptyState('No referrers', 'Nothing upstream or in the cache refers to this manifest.')
      : dataTable<Referrer>(
          [
            { title: 'Type', cell: (r) => h('span', { class: 'mono' }, r.artifact_type ?? r.media_type) },
            { title: 'Digest', cell: (r) => h('span', { class: 'mono muted', title: r.digest }, shortDigest(r.digest)) },
            { title: 'Size', className: 'num', cell: (r) => formatBytes(r.size) },
          ],
          report.referrers,
          { testId: 'referrer-list', rowKey: (r) => r.digest },
        ),
  );
}

export async function renderReferrersPanel(ctx: AppContext, el: HTMLElement, org: string, repo: string, tag: string, digest: string, onClose: () => void): Promise<void> {
  const body = h('div', null, spinner('Loading referrers…'));
  mount(
    el,
    h(
      'div',
      { class: 'card', 'data-testid': 'referrers-panel' },
      h(
        'div',
        { class: 'card-head' },
        h('h2', { class: 'card-title' }, `Referrers of ${tag} `, h('span', { class: 'mono muted', title: digest }, shortDigest(digest))),
        h('button', { type: 'button', class: 'btn btn-ghost btn-sm', onclick: onClose }, 'Close'),
      ),
      body,
    ),
  );
  try {
    mount(body, reportView(await ctx.api.referrers(org, repo, digest)));
  } catch (err) {
    mount(body, alertBox('error', errorMessage(err)));
  }
}
