import { setImmediate } from 'node:timers/promises';
import { type CorePorts, type OrganizationRow } from '@entrepot/registry-core';
import { ANONYMOUS_PERFORMER, type EvictionCandidate, type ProtectedContent } from '../core-types';
import type { EvictionPolicy, OrgQuota, Removal, Removed } from '../core-types';
import type { TagFreshness } from '../freshness/tag-freshness';
import type { EvictionMetrics } from './eviction-metrics';
import { OrgLock } from './org-lock';

/** Candidates ranked per query during eviction. */
const EVICTION_BATCH = 50;

export interface SizedDigest {
  digest: string;
  size: number;
}

export type Admission = 'admitted' | 'bypass';

/** Room counted for content until it is stored (or will not be). Safe to release twice. */
export interface QuotaHold {
  release(): Promise<void>;
}

export const NOTHING_HELD: QuotaHold = { release: async () => undefined };

export interface QuotaHooks {
  /** Told the counted usage after each admission (to queue background eviction above a watermark). */
  afterAdmission?(org: OrganizationRow, counted: number, limit: number): void;
  /** Told what evictions removed (count of tags and manifests, or bytes freed) for statistics. */
  evicted?(org: OrganizationRow, count: number, bytes: number): void;
}

/** How old the counted figure may be before an admission measures the organization again. */
const REMEASURE_AFTER_MS = 60_000;

/**
 * Keeps cache organizations under their quota (R-QUOTA). Before content is
 * stored, `admit` makes room by evicting whole tags (by the organization's
 * policy) and reserves what the content counts; content larger than the whole
 * quota is refused (`bypass`: served, not kept). Decisions are serialized per
 * organization so concurrent fills cannot overshoot together; the stores
 * themselves run in parallel under their reservations.
 */
export class QuotaKeeper {
  private readonly lock = new OrgLock();

  constructor(
    private readonly core: CorePorts,
    private readonly freshness: TagFreshness,
    private readonly metrics: EvictionMetrics,
    private readonly enabled: boolean,
    private readonly hooks: QuotaHooks = {},
  ) {}

  /** Calls `store` once `items` fit; returns 'bypass' without calling it when they never can. */
  async admit(org: OrganizationRow, items: SizedDigest[], store: () => Promise<void>, protect?: ProtectedContent): Promise<Admission> {
    const hold = await this.hold(org, items, protect);
    if (hold === 'bypass') return 'bypass';
    try {
      await store();
    } finally {
      await hold.release();
    }
    return 'admitted';
  }

  /**
   * Makes room for `items` and counts them against the quota until `release`:
   * for content stored later than the decision (a blob linked once its download
   * ends), so that decisions meanwhile see it. 'bypass' when they never fit.
   */
  async hold(org: OrganizationRow, items: SizedDigest[], protect?: ProtectedContent): Promise<QuotaHold | 'bypass'> {
    // Without a quota there is nothing to decide, so fills need not wait for each other.
    if (!this.enabled || !(await this.core.quotas.get(org.id))) return NOTHING_HELD;
    const sizes = new Map(items.map((i) => [i.digest, i.size]));
    const decision = await this.serialized(org.id, () => this.reserveRoom(org, sizes, protect));
    if (decision === 'bypass') {
      this.metrics.bypasses.inc({ org: org.name });
      return 'bypass';
    }
    const reservation = decision.reservation;
    if (!reservation) return NOTHING_HELD;
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        await this.release(reservation);
      },
    };
  }

  /**
   * Evicts until usage is within the (possibly lowered) limit, or within
   * `fraction` of it (a low watermark). Returns the usage before and after, or
   * null without a quota.
   */
  async enforce(org: OrganizationRow, fraction = 1): Promise<{ before: number; after: number; target: number } | null> {
    if (!this.enabled) return null;
    return this.serialized(org.id, async () => {
      const quota = await this.core.quotas.get(org.id);
      if (!quota) return null;
      const target = Math.floor(quota.hardLimitBytes * Math.min(1, fraction));
      const before = await this.core.quotas.measure(org.id);
      const after = await this.makeRoom(org, target, quota.evictionPolicy);
      this.metrics.size.set({ org: org.name }, after);
      this.metrics.limit.set({ org: org.name }, quota.hardLimitBytes);
      await this.reportWarnings(org, quota, after);
      return { before, after, target };
    });
  }

  /**
   * The decision, under the organization's lock: room for what the organization
   * does not count yet, then a reservation of everything the content references
   * (shared content another tag counts now may be evicted before the store; a
   * measurement counts a digest once, referenced or reserved).
   */
  private async reserveRoom(org: OrganizationRow, sizes: Map<string, number>, protect?: ProtectedContent): Promise<'bypass' | { reservation: string | null }> {
    const quota = await this.core.quotas.get(org.id);
    if (!quota) return { reservation: null };
    const total = [...sizes.values()].reduce((a, b) => a + b, 0);
    if (total > quota.hardLimitBytes) return 'bypass';
    const counted = await this.core.quotas.alreadyCounted(org.id, [...sizes.keys()]);
    const need = [...sizes].filter(([digest]) => !counted.has(digest)).reduce((a, [, size]) => a + size, 0);
    let current = await this.core.quotas.counted(quota, REMEASURE_AFTER_MS);
    if (need > 0 && current + need > quota.hardLimitBytes) {
      current = await this.makeRoom(org, quota.hardLimitBytes - need, quota.evictionPolicy, protect);
      if (current + need > quota.hardLimitBytes) return 'bypass';
    }
    const reservation = await this.core.quotas.reserve(org.id, [...sizes].map(([digest, size]) => ({ digest, size })), need);
    this.metrics.size.set({ org: org.name }, current + need);
    this.metrics.limit.set({ org: org.name }, quota.hardLimitBytes);
    this.hooks.afterAdmission?.(org, current + need, quota.hardLimitBytes);
    await this.reportWarnings(org, quota, current + need);
    return { reservation };
  }

  /** A Warning threshold usage has just crossed: one audit entry and one count per crossing. */
  private async reportWarnings(org: OrganizationRow, quota: OrgQuota, usageBytes: number): Promise<void> {
    const crossed = await this.core.quotas.crossedWarnings(org.id, quota.limitBytes, usageBytes);
    for (const limit of crossed) {
      this.metrics.quotaWarnings.inc({ org: org.name });
      await this.core.audit.record({
        orgId: org.id,
        kind: 'quota_warning',
        performer: ANONYMOUS_PERFORMER,
        metadata: { limit_id: limit.id, threshold_percent: limit.percent, usage_bytes: usageBytes, limit_bytes: quota.limitBytes },
      });
    }
  }

  /** A reservation left behind (the database is unreachable) only counts until it expires: not the fill's failure. */
  private async release(reservation: string): Promise<void> {
    try {
      await this.core.quotas.release(reservation);
    } catch (err) {
      this.core.logger.warn('quota reservation not released; it expires on its own', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** One decision at a time per organization: in this process first, then across replicas. */
  private serialized<T>(orgId: number, work: () => Promise<T>): Promise<T> {
    return this.lock.run(orgId, () => this.core.coordinator.withLock(`quota:${orgId}`, work));
  }

  /**
   * Evicts until the counted usage ≤ target, or nothing evictable is left;
   * returns the counted usage measured at the end. Candidates come in ranked
   * batches with their declared sizes, an upper bound of what each frees
   * (content may be shared): a batch takes candidates until their declared
   * sizes cover the excess, so nothing is evicted that one-at-a-time eviction
   * would have kept. What a batch really freed is worked out from what it
   * released (the digests the organization no longer counts), so a pass over
   * thousands of tags measures the whole organization only at its start and
   * end; changes others made meanwhile show in that last measurement, and
   * the pass goes on if they left usage above the target.
   */
  private async makeRoom(org: OrganizationRow, target: number, policy: EvictionPolicy, protect?: ProtectedContent): Promise<number> {
    const before = await this.core.quotas.measure(org.id);
    let usage = before;
    if (usage <= target) return usage;
    // Rank by up-to-date pull statistics.
    await this.core.pullStats.flush();
    let from: EvictionCandidate['kind'] = 'blob';
    let evicted = false;
    for (;;) {
      let exhausted = false;
      while (usage > target) {
        const batch = await this.core.usage.evictionCandidates(org.id, policy, this.core.clock.now(), EVICTION_BATCH, protect, from);
        if (batch.length === 0) {
          exhausted = true;
          break;
        }
        // Kinds come in order; one ranked before the last offered has run out for this pass.
        from = batch[batch.length - 1].kind;
        const chosen: EvictionCandidate[] = [];
        let planned = 0;
        for (const candidate of batch) {
          chosen.push(candidate);
          planned += candidate.bytes;
          if (usage - planned <= target) break;
        }
        usage -= await this.freedBy(org, await this.evict(org, policy, chosen));
        await setImmediate();
        evicted = true;
      }
      usage = await this.core.quotas.measure(org.id);
      if (usage <= target || exhausted) break;
    }
    this.metrics.evictedBytes.inc({ org: org.name, policy }, Math.max(0, before - usage));
    this.hooks.evicted?.(org, 0, Math.max(0, before - usage));
    if (evicted) await this.core.requestGc();
    return usage;
  }

  /** What removals freed: the digests they released that the organization no longer counts, at the size each was counted. */
  private async freedBy(org: OrganizationRow, removed: Removed[]): Promise<number> {
    const sizes = new Map<string, number>();
    for (const r of removed) for (const [digest, size] of r.released) sizes.set(digest, Math.max(sizes.get(digest) ?? 0, size));
    const still = await this.core.quotas.alreadyCounted(org.id, [...sizes.keys()]);
    let freed = 0;
    for (const [digest, size] of sizes) if (!still.has(digest)) freed += size;
    return freed;
  }

  /** Removes `chosen` in one transaction, then forgets their tag checks and records each eviction; returns what each removed. */
  private async evict(org: OrganizationRow, policy: EvictionPolicy, chosen: EvictionCandidate[]): Promise<Removed[]> {
    const removed = await this.core.removal.removeAll(chosen.map(removalOf), { referrers: true });
    // Taken since it was ranked (a fill stores outside the lock): a tag moved to another image, a blob now referenced by a manifest.
    const done = chosen.map((candidate, i) => ({ candidate, removed: removed[i] })).filter(({ candidate, removed }) => wasRemoved(candidate, removed));
    await this.freshness.forgetAll(done.flatMap(({ candidate }) => (candidate.kind === 'tag' ? [{ repoId: candidate.repoId, tag: candidate.tag }] : [])));
    const repoIds = [...new Set(done.map(({ candidate }) => candidate.repoId))];
    const names = await this.core.usage.repositoryNames(repoIds);
    if (done.length > 0) this.hooks.evicted?.(org, done.length, 0);
    for (const { candidate, removed: what } of done) {
      this.metrics.evictions.inc({ org: org.name, policy });
      void this.core.audit.record({
        orgId: org.id,
        repo: names.get(candidate.repoId),
        kind: 'evict_cache',
        performer: ANONYMOUS_PERFORMER,
        metadata: {
          policy,
          ...(candidate.kind === 'tag' ? { tag: candidate.tag } : {}),
          ...(candidate.kind === 'blob' ? { blob_digest: candidate.digest } : { manifest_digest: candidate.digest, manifests: what.manifests }),
          declared_bytes: candidate.bytes,
          initiated_by: 'quota',
        },
      });
    }
    return removed;
  }
}

function removalOf(candidate: EvictionCandidate): Removal {
  switch (candidate.kind) {
    case 'tag':
      return { repoId: candidate.repoId, tag: candidate.tag, onlyIfDigest: candidate.digest };
    case 'manifest':
      return { repoId: candidate.repoId, manifest: candidate.digest };
    case 'blob':
      return { repoId: candidate.repoId, blobLink: candidate.digest };
  }
}

function wasRemoved(candidate: EvictionCandidate, removed: Removed): boolean {
  switch (candidate.kind) {
    case 'tag':
      return removed.tags > 0;
    case 'manifest':
      return true;
    case 'blob':
      return removed.blobLinks > 0;
  }
}
