import { ANONYMOUS_PERFORMER, withLock, yieldToRequests, type CoreServices, type EvictionPolicy, type OrganizationRow } from '@entrepot/registry-core';
import type { TagFreshness } from '../freshness/tag-freshness';
import { nextCandidates, type Candidate, type Protected } from './candidates';

/** Candidates ranked per query during eviction. */
const EVICTION_BATCH = 50;
import type { EvictionMetrics } from './eviction-metrics';
import { OrgLock } from './org-lock';

export interface SizedDigest {
  digest: string;
  size: number;
}

export type Admission = 'admitted' | 'bypass';

/**
 * Keeps cache organizations under their quota (R-QUOTA). Before content is
 * stored, `admit` makes room by evicting whole tags (by the organization's
 * policy) and only then stores it; content larger than the whole quota is
 * refused (`bypass`: served, not kept). Decisions are serialized per
 * organization so concurrent fills cannot overshoot together.
 */
export class QuotaKeeper {
  private readonly lock = new OrgLock();

  constructor(
    private readonly core: CoreServices,
    private readonly freshness: TagFreshness,
    private readonly metrics: EvictionMetrics,
    private readonly enabled: boolean,
  ) {}

  /** Calls `store` once `items` fit; returns 'bypass' without calling it when they never can. */
  async admit(org: OrganizationRow, items: SizedDigest[], store: () => Promise<void>, protect?: Protected): Promise<Admission> {
    if (!this.enabled) {
      await store();
      return 'admitted';
    }
    return this.serialized(org.id, async () => {
      const quota = await this.core.quotas.get(org.id);
      if (!quota) {
        await store();
        return 'admitted';
      }
      const unique = new Map(items.map((i) => [i.digest, i.size]));
      const total = [...unique.values()].reduce((a, b) => a + b, 0);
      if (total > quota.limitBytes) {
        this.metrics.bypasses.inc({ org: org.name });
        return 'bypass';
      }
      const counted = await this.core.quotas.alreadyCounted(org.id, [...unique.keys()]);
      const need = [...unique].filter(([digest]) => !counted.has(digest)).reduce((a, [, size]) => a + size, 0);
      if (need > 0 && !(await this.makeRoom(org, quota.limitBytes - need, quota.evictionPolicy, protect))) {
        this.metrics.bypasses.inc({ org: org.name });
        return 'bypass';
      }
      await store();
      this.metrics.size.set({ org: org.name }, await this.core.quotas.usage(org.id));
      this.metrics.limit.set({ org: org.name }, quota.limitBytes);
      return 'admitted';
    });
  }

  /** Evicts until usage is within the (possibly lowered) limit. */
  async enforce(org: OrganizationRow): Promise<void> {
    if (!this.enabled) return;
    await this.serialized(org.id, async () => {
      const quota = await this.core.quotas.get(org.id);
      if (!quota) return;
      await this.makeRoom(org, quota.limitBytes, quota.evictionPolicy);
      this.metrics.size.set({ org: org.name }, await this.core.quotas.usage(org.id));
      this.metrics.limit.set({ org: org.name }, quota.limitBytes);
    });
  }

  /** One decision at a time per organization: in this process first, then across replicas. */
  private serialized<T>(orgId: number, work: () => Promise<T>): Promise<T> {
    return this.lock.run(orgId, () => withLock(this.core.coordinator, `quota:${orgId}`, work));
  }

  /**
   * Evicts until usage ≤ target; false when nothing evictable is left and it is
   * still above. Candidates come in ranked batches with their declared sizes (an
   * upper bound of what each frees, since content may be shared): a batch stops as
   * soon as its declared sizes cover the excess, then usage is measured again, so
   * a pass over thousands of tags costs a few usage queries, and nothing is evicted
   * that one-at-a-time eviction would have kept.
   */
  private async makeRoom(org: OrganizationRow, target: number, policy: EvictionPolicy, protect?: Protected): Promise<boolean> {
    let usage = await this.core.quotas.usage(org.id);
    if (usage <= target) return true;
    // Rank by up-to-date pull statistics.
    await this.core.pullStats.flush();
    let evicted = false;
    while (usage > target) {
      const batch = await nextCandidates(this.core.db, org.id, policy, this.core.clock.now(), EVICTION_BATCH, protect);
      if (batch.length === 0) break;
      let planned = 0;
      for (const candidate of batch) {
        await this.evict(org, policy, candidate);
        await yieldToRequests();
        evicted = true;
        planned += candidate.bytes;
        if (usage - planned <= target) break;
      }
      const after = await this.core.quotas.usage(org.id);
      this.metrics.evictedBytes.inc({ org: org.name, policy }, Math.max(0, usage - after));
      usage = after;
    }
    if (evicted) await this.core.requestGc();
    return usage <= target;
  }

  private async evict(org: OrganizationRow, policy: EvictionPolicy, candidate: Candidate): Promise<void> {
    const removed =
      candidate.kind === 'tag' ? await this.core.removal.removeTag(candidate.repoId, candidate.tag) : await this.core.removal.removeManifest(candidate.repoId, candidate.digest);
    if (candidate.kind === 'tag') await this.freshness.forget(candidate.repoId, candidate.tag);
    const repo = await this.core.db('repositories').where({ id: candidate.repoId }).first('name');
    this.metrics.evictions.inc({ org: org.name, policy });
    void this.core.audit.record({
      orgId: org.id,
      repo: repo?.name,
      kind: 'evict_cache',
      performer: ANONYMOUS_PERFORMER,
      metadata: { policy, ...(candidate.kind === 'tag' ? { tag: candidate.tag } : {}), manifest_digest: candidate.digest, declared_bytes: candidate.bytes, manifests: removed.manifests, initiated_by: 'quota' },
    });
  }
}
