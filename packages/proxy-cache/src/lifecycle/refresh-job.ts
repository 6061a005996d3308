import { type CorePorts, type Digest, type LookupContext, type ManifestHit, type OrganizationRow, type RepositoryRow, oci } from '@entrepot/registry-core';
import { ANONYMOUS_PERFORMER } from '../core-types';
import type { CacheConfig } from '../config/cache-config-store';
import type { CacheSource } from '../source/cache-source';
import type { LifecycleMetrics } from './lifecycle-metrics';

/** Hot tags refreshed per run at most (the next run takes the rest). */
const REFRESH_BATCH = 500;

interface HotTag {
  repoId: number;
  repo: string;
  tag: string;
}

type Outcome = 'unchanged' | 'changed' | 'removed' | 'failed';

/**
 * `cache.refresh` (stale-while-revalidate ahead of time): a tag pulled at least
 * `refresh_min_pulls` times since its last check is revalidated once its
 * staleness period is within `leadMs` of its end, so pulls of hot tags find it
 * fresh and never wait for the upstream. The revalidation is the pull path's
 * own (coalesced with pulls, through the upstream's circuit breaker): one HEAD,
 * and the new manifest when the tag changed. With `prefetch_changed_tags`, a
 * changed tag's image is also fetched for the platforms pulled before, within
 * the quota, so the first pull after an upstream update is warm.
 */
export class RefreshAhead {
  constructor(
    private readonly core: CorePorts,
    private readonly source: CacheSource,
    private readonly metrics: LifecycleMetrics,
    /** How long before the end of its staleness period a hot tag is refreshed. */
    private readonly leadMs: (config: CacheConfig) => number,
  ) {}

  async run(org: OrganizationRow, config: CacheConfig): Promise<Record<string, unknown> | null> {
    if (!config.refreshMinPulls) return null;
    await this.core.pullStats.flush();
    const due = this.core.clock.now() - (config.expirationS * 1000 - this.leadMs(config));
    const hot = await this.hotTags(org.id, due, config.refreshMinPulls);
    if (hot.length === 0) return null;
    const counts: Record<Outcome, number> = { unchanged: 0, changed: 0, removed: 0, failed: 0 };
    let prefetchedBytes = 0;
    const changed: string[] = [];
    for (const tag of hot) {
      const { outcome, bytes } = await this.refreshOne(org, config, tag);
      counts[outcome]++;
      prefetchedBytes += bytes;
      if (outcome === 'changed') changed.push(`${tag.repo}:${tag.tag}`);
      this.metrics.refreshes.inc({ org: org.name, result: outcome });
    }
    if (prefetchedBytes > 0) this.metrics.prefetchedBytes.inc({ org: org.name }, prefetchedBytes);
    const summary = { tags: hot.length, ...counts, prefetched_bytes: prefetchedBytes, changed_tags: changed.slice(0, 200) };
    if (counts.changed > 0 || counts.removed > 0) {
      await this.core.audit.record({ orgId: org.id, kind: 'refresh_cache', performer: ANONYMOUS_PERFORMER, metadata: summary });
    }
    return summary;
  }

  /**
   * Tags checked before `due` and pulled at least `minPulls` times since that
   * check, longest unchecked first: the checks are the cache's rows, the pull
   * counts the core's.
   */
  private async hotTags(orgId: number, due: number, minPulls: number): Promise<HotTag[]> {
    const repos = new Map((await this.core.repositories.listByOrg(orgId)).map((r) => [r.id, r.name]));
    if (repos.size === 0) return [];
    const checks = (await this.core
      .db('proxy_cache_tags')
      .whereIn('repo_id', [...repos.keys()])
      .where('checked_at', '<=', due)
      .orderBy('checked_at')
      .select('repo_id', 'tag', 'pulls_at_check')) as Array<{ repo_id: number; tag: string; pulls_at_check: number }>;
    const byRepo = new Map<number, Array<{ tag: string; pullsAtCheck: number }>>();
    for (const c of checks) {
      const list = byRepo.get(Number(c.repo_id)) ?? [];
      list.push({ tag: c.tag, pullsAtCheck: Number(c.pulls_at_check) });
      byRepo.set(Number(c.repo_id), list);
    }
    const hot = new Set<string>();
    for (const [repoId, list] of byRepo) {
      const pulls = await this.core.usage.tagPullCounts(repoId, list.map((c) => c.tag));
      for (const c of list) if ((pulls.get(c.tag) ?? -Infinity) - c.pullsAtCheck >= minPulls) hot.add(`${repoId}|${c.tag}`);
    }
    return checks
      .filter((c) => hot.has(`${Number(c.repo_id)}|${c.tag}`))
      .slice(0, REFRESH_BATCH)
      .map((c) => ({ repoId: Number(c.repo_id), repo: repos.get(Number(c.repo_id))!, tag: c.tag }));
  }


  private async refreshOne(org: OrganizationRow, config: CacheConfig, hot: HotTag): Promise<{ outcome: Outcome; bytes: number }> {
    const repository = await this.core.repositories.find(org.id, hot.repo);
    const local = repository ? await this.core.content.getManifest(repository.id, { kind: 'tag', tag: hot.tag }) : null;
    if (!repository || !local) return { outcome: 'removed', bytes: 0 };
    const ctx = jobContext(org, repository);
    let fresh: ManifestHit | null;
    try {
      fresh = await this.source.refreshTag(hot.tag, local, ctx);
    } catch (err) {
      const gone = !(await this.core.content.tagDigest(repository.id, hot.tag));
      if (!gone) this.core.logger.info('refresh of a hot tag failed; pulls revalidate it', { org: org.name, repo: hot.repo, tag: hot.tag, error: String(err) });
      return { outcome: gone ? 'removed' : 'failed', bytes: 0 };
    }
    if (!fresh || fresh.digest === local.digest) return { outcome: 'unchanged', bytes: 0 };
    const bytes = config.prefetchChangedTags ? await this.prefetch(local, fresh, ctx) : 0;
    return { outcome: 'changed', bytes };
  }

  /**
   * Fetches the changed image: for an index, the children of the platforms
   * whose manifests were cached under the old index; then their blobs not
   * stored yet. Fills go through the quota like pulls; a failure leaves the
   * rest to the first pull.
   */
  private async prefetch(previous: ManifestHit, current: ManifestHit, ctx: LookupContext): Promise<number> {
    let bytes = 0;
    try {
      const parsed = oci.parseManifest(current.body, current.mediaType);
      const images: Array<{ body: Buffer; mediaType: string }> = [];
      if (!parsed.isIndex) images.push(current);
      else {
        const wanted = await this.pulledPlatforms(previous, ctx.repository!.id);
        for (const child of parsed.manifests) {
          if (!wanted.has(platformKey(child))) continue;
          const fetched = await this.source.fetchManifest(child.digest, ctx);
          if (fetched) images.push(fetched);
        }
      }
      for (const image of images) {
        for (const blob of oci.parseManifest(image.body, image.mediaType).blobs) {
          if (oci.isNonDistributable(blob) || (await this.core.storage.blobs.stat(blob.digest))) continue;
          bytes += await this.source.warmBlob(blob.digest, ctx);
        }
      }
    } catch (err) {
      this.core.logger.info('prefetch of a changed tag stopped; pulls fetch the rest', { org: ctx.target.org.name, repo: ctx.target.repoName, error: String(err) });
    }
    return bytes;
  }

  /** Platforms of the previous index whose child manifests were cached (pulled). An image manifest counts as every platform. */
  private async pulledPlatforms(previous: ManifestHit, repoId: number): Promise<Set<string>> {
    const parsed = oci.parseManifest(previous.body, previous.mediaType);
    const keys = new Set<string>();
    for (const child of parsed.manifests) {
      if (await this.core.content.getManifest(repoId, { kind: 'digest', digest: child.digest as Digest })) keys.add(platformKey(child));
    }
    return keys;
  }
}

function platformKey(d: oci.Descriptor): string {
  return `${d.platform?.os ?? ''}/${d.platform?.architecture ?? ''}/${d.platform?.variant ?? ''}`;
}

/** A lookup context for work the cache does by itself (no client behind it). */
export function jobContext(org: OrganizationRow, repository: RepositoryRow): LookupContext {
  return {
    target: { org, repoName: repository.name, fullName: `${org.name}/${repository.name}`, route: 'explicit' },
    repository,
    principal: ANONYMOUS_PERFORMER,
    requestId: `cache-job-${org.id}-${repository.id}`,
    clientIp: '',
    userAgent: 'entrepot-cache-job',
    headOnly: false,
  };
}
