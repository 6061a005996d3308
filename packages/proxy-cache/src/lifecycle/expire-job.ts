import { setImmediate } from 'node:timers/promises';
import { type CorePorts, type OrganizationRow } from '@entrepot/registry-core';
import { ANONYMOUS_PERFORMER } from '../core-types';
import type { Removal } from '../core-types';
import type { CacheConfig } from '../config/cache-config-store';
import type { TagFreshness } from '../freshness/tag-freshness';
import type { StatsRecorder } from '../stats/stats-recorder';
import type { LifecycleMetrics } from './lifecycle-metrics';

/** Removals per transaction. */
const EXPIRY_BATCH = 100;
/** Names listed in one audit entry (the counts are always complete). */
const AUDITED_NAMES = 200;


/**
 * `cache.expire`: removes what nobody pulled for the organization's
 * `idle_expiration_s` — unpinned tags by their last pull (or when they were
 * cached, if never pulled), and manifests cached by digest only that nothing
 * tags or refers to, by when they were cached — then hands what lost its last
 * reference to the garbage collector, which only deletes blobs that no
 * repository of any organization references. Idempotent: a second run finds
 * nothing left to remove.
 */
export class IdleExpiry {
  constructor(
    private readonly core: CorePorts,
    private readonly freshness: TagFreshness,
    private readonly metrics: LifecycleMetrics,
    private readonly stats: StatsRecorder,
  ) {}

  async run(org: OrganizationRow, config: CacheConfig): Promise<Record<string, unknown> | null> {
    if (!config.idleExpirationS) return null;
    // Pulls recorded in memory count: a tag pulled a moment ago is not idle.
    await this.core.pullStats.flush();
    const cutoff = this.core.clock.now() - config.idleExpirationS * 1000;
    const idle = await this.core.usage.idleContent(org.id, cutoff);
    if (idle.length === 0) return null;
    const before = await this.core.quotas.usage(org.id);
    let items = 0;
    let tags = 0;
    let manifests = 0;
    const names: string[] = [];
    for (let i = 0; i < idle.length; i += EXPIRY_BATCH) {
      const batch = idle.slice(i, i + EXPIRY_BATCH);
      const removals: Removal[] = batch.map((c) => (c.tag !== undefined ? { repoId: c.repoId, tag: c.tag, onlyIfDigest: c.digest } : { repoId: c.repoId, manifest: c.digest }));
      const removed = await this.core.removal.removeAll(removals);
      const goneTags: Array<{ repoId: number; tag: string }> = [];
      batch.forEach((c, j) => {
        // A tag pulled or moved since it was listed (another replica, a fill) is kept.
        if (removed[j].tags === 0 && removed[j].manifests === 0) return;
        items++;
        tags += removed[j].tags;
        manifests += removed[j].manifests;
        if (c.tag !== undefined) goneTags.push({ repoId: c.repoId, tag: c.tag });
        if (names.length < AUDITED_NAMES) names.push(c.tag !== undefined ? `${c.repo}:${c.tag}` : `${c.repo}@${c.digest}`);
      });
      await this.freshness.forgetAll(goneTags);
      await setImmediate();
    }
    if (items === 0) return null;
    const freed = Math.max(0, before - (await this.core.quotas.usage(org.id)));
    await this.core.requestGc();
    this.metrics.expired.inc({ org: org.name }, items);
    this.metrics.expiredBytes.inc({ org: org.name }, freed);
    this.stats.expiry(org.id, items, freed);
    const summary = { tags, manifests, bytes: freed, idle_expiration_s: config.idleExpirationS, removed: names };
    await this.core.audit.record({ orgId: org.id, kind: 'expire_cache', performer: ANONYMOUS_PERFORMER, metadata: summary });
    return summary;
  }

}
