/** Flushing a cache organization, repository or tag: confirmation, call, and a summary of what went. */
import { ApiError } from '../api/client';
import type { EntrepotApi } from '../api/entrepot-api';
import type { FlushResult, FlushScope } from '../api/types';
import { errorMessage } from './alerts';
import { confirmDialog } from './confirm-dialog';
import { formatBytes } from './format';
import { toast } from './toast';

export function describeFlush(result: FlushResult): string {
  const { tags, manifests } = result.removed;
  const usage = result.usage_bytes === undefined ? '' : ` The organization now uses ${formatBytes(result.usage_bytes)}; freed storage is reclaimed shortly.`;
  return `Removed ${tags} ${tags === 1 ? 'tag' : 'tags'} and ${manifests} ${manifests === 1 ? 'manifest' : 'manifests'}.${usage}`;
}

function target(org: string, scope: FlushScope): string {
  if (scope.tag !== undefined) return `${org}/${scope.repository ?? ''}:${scope.tag}`;
  if (scope.repository !== undefined) return `${org}/${scope.repository}`;
  return `the whole cache of ${org}`;
}

export type FlushOutcome = { ok: true; result: FlushResult } | { ok: false; unavailable: boolean; message: string } | null;

/** Asks, flushes, and reports with a toast; null when the user cancelled. */
export async function flushWithConfirm(api: EntrepotApi, org: string, scope: FlushScope = {}): Promise<FlushOutcome> {
  const what = target(org, scope);
  const ok = await confirmDialog({
    title: `Flush ${what}?`,
    message: 'Cached content is removed and its storage reclaimed; the cache configuration and permissions stay. The next pull fetches from the upstream again.',
    confirmLabel: 'Flush',
    danger: true,
  });
  if (!ok) return null;
  try {
    const result = await api.flushCache(org, scope);
    toast(`Flushed ${what}. ${describeFlush(result)}`);
    return { ok: true, result };
  } catch (err) {
    const unavailable = err instanceof ApiError && err.endpointMissing;
    const message = unavailable ? 'Flushing is not available on this server yet.' : errorMessage(err);
    toast(message, 'error');
    return { ok: false, unavailable, message };
  }
}
