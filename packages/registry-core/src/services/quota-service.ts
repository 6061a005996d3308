import { randomUUID } from 'node:crypto';
import { inTransaction, rawRowsOf, type Db } from '../db/database';
import { RegistryError } from '../errors/registry-error';
import type { Logger } from '../logging/logger';
import type { Clock } from './clock';
import { QuotaLimitService, thresholdBytes } from './quota-limit-service';

export type EvictionPolicy = 'lru' | 'lfu';

export interface OrgQuota {
  id: string;
  orgId: number;
  limitBytes: number;
  /** What eviction keeps usage under: the Reject threshold when there is one, else `limitBytes`. */
  hardLimitBytes: number;
  evictionPolicy: EvictionPolicy;
  createdAt: number;
  /** What admissions count against the limit (see `QuotaService.counted`); null until first measured. */
  counted: { bytes: number; at: number } | null;
}

/** Digests checked per `alreadyCounted` query (each takes ten parameters). */
const COUNTED_CHECKS_PER_QUERY = 100;

/**
 * Whether the organization counts the digest: it references it (a manifest, a
 * manifest's blob, a linked blob) or a live reservation holds it. Parameters:
 * (digest, org) four times, then the time now. Each looks the digest up first,
 * then the organization of its repository: joined, SQLite walked every
 * repository of the organization for every digest asked about.
 */
const COUNTED_IN_ORG = [
  'EXISTS (SELECT 1 FROM manifests m WHERE m.digest = ? AND (SELECT r.org_id FROM repositories r WHERE r.id = m.repo_id) = ?)',
  "EXISTS (SELECT 1 FROM manifest_refs mr WHERE mr.child_digest = ? AND mr.child_kind = 'blob' AND (SELECT r.org_id FROM repositories r WHERE r.id = mr.repo_id) = ?)",
  'EXISTS (SELECT 1 FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.digest = ? AND (SELECT r.org_id FROM repositories r WHERE r.id = rb.repo_id) = ?)',
  'EXISTS (SELECT 1 FROM quota_reserved_digests qd JOIN quota_reservations q ON q.id = qd.reservation_id WHERE qd.digest = ? AND qd.org_id = ? AND q.expires_at > ?)',
].join(' OR ');

/**
 * How long a reservation counts without being renewed. Its process renews it
 * every RESERVATION_RENEW_MS while the store runs, however long that takes, so
 * one left by a process that died stops counting within this time.
 */
export const RESERVATION_TTL_MS = 2 * 60_000;
const RESERVATION_RENEW_MS = 30_000;
/** Reservations renewed per UPDATE. */
const RENEWALS_PER_QUERY = 500;
/** Reserved digests written per INSERT (four parameters each). */
const RESERVED_ROWS_PER_INSERT = 200;

function toQuota(row: Record<string, unknown>, rejectPercent: number | null): OrgQuota {
  const limitBytes = Number(row.limit_bytes);
  return {
    id: String(row.id),
    orgId: Number(row.org_id),
    limitBytes,
    hardLimitBytes: rejectPercent === null ? limitBytes : thresholdBytes(limitBytes, rejectPercent),
    evictionPolicy: row.eviction_policy === 'lfu' ? 'lfu' : 'lru',
    createdAt: Number(row.created_at),
    counted: row.counted_bytes === null || row.counted_bytes === undefined ? null : { bytes: Number(row.counted_bytes), at: Number(row.counted_at) },
  };
}

/**
 * Organization quotas and usage. Usage counts every distinct manifest and blob
 * the organization references once, at its declared size, whether its bytes
 * are fetched yet or not: an image counts whole from the moment it is admitted,
 * so concurrent fills can never take an organization past its limit.
 *
 * Measuring usage reads the whole organization, so admission decisions use a
 * counted figure kept beside the quota instead (see `counted`).
 */
export class QuotaService {
  private readonly rowsOf: <Row>(result: unknown) => Row[];
  /** Reservations this process made and has not released: renewed until released. */
  private readonly held = new Set<string>();
  private renewTimer: NodeJS.Timeout | null = null;
  /** Warning and Reject thresholds of each quota. */
  readonly limits: QuotaLimitService;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.rowsOf = rawRowsOf(db);
    this.limits = new QuotaLimitService(db, clock);
  }

  async get(orgId: number): Promise<OrgQuota | null> {
    const row = await this.db('org_quotas').where({ org_id: orgId }).first();
    return row ? toQuota(row, await this.limits.rejectPercent(orgId)) : null;
  }

  /** Throws INVALID_REQUEST (Quay's 400) when the organization already has a quota (Quay allows one). */
  async create(orgId: number, limitBytes: number, evictionPolicy: EvictionPolicy): Promise<OrgQuota> {
    if (await this.get(orgId)) throw new RegistryError('INVALID_REQUEST', 'the organization already has a quota; change it with PUT');
    const id = randomUUID();
    await this.db('org_quotas').insert({ id, org_id: orgId, limit_bytes: limitBytes, eviction_policy: evictionPolicy, created_at: this.clock.now() });
    return (await this.get(orgId))!;
  }

  /** Throws NOT_FOUND for an unknown quota id. */
  async update(orgId: number, id: string, changes: { limitBytes?: number; evictionPolicy?: EvictionPolicy }): Promise<OrgQuota> {
    const patch: Record<string, unknown> = {};
    if (changes.limitBytes !== undefined) patch.limit_bytes = changes.limitBytes;
    if (changes.evictionPolicy !== undefined) patch.eviction_policy = changes.evictionPolicy;
    const updated = Object.keys(patch).length === 0 ? 1 : await this.db('org_quotas').where({ id, org_id: orgId }).update(patch);
    const quota = await this.get(orgId);
    if (updated === 0 || !quota || quota.id !== id) throw new RegistryError('NOT_FOUND', `quota ${id.slice(0, 40)} not found`);
    return quota;
  }

  /** Removes the quota and its thresholds. */
  async delete(orgId: number, id: string): Promise<boolean> {
    const deleted = (await this.db('org_quotas').where({ id, org_id: orgId }).delete()) > 0;
    if (deleted) await this.db('quota_limits').where({ org_id: orgId }).delete();
    return deleted;
  }

  /** Bytes referenced by the organization, each distinct digest counted once. */
  /** Warning limits the usage crossed since it was last told (each is reported once). */
  crossedWarnings(orgId: number, limitBytes: number, usageBytes: number): ReturnType<QuotaLimitService['crossedWarnings']> {
    return this.limits.crossedWarnings(orgId, limitBytes, usageBytes);
  }

  async usage(orgId: number): Promise<number> {
    return this.distinctTotal(this.referencedDigests(orgId));
  }

  /**
   * What admission decisions count against the limit: usage plus the
   * reservations of admissions still storing, as last measured and grown by
   * every reservation since. Removals only lower the truth, so it is an upper
   * bound; it is measured again when older than `maxAgeMs`. Callers hold the
   * organization's quota lock, as for `reserve` and `measure`.
   */
  async counted(quota: OrgQuota, maxAgeMs: number): Promise<number> {
    const now = this.clock.now();
    if (quota.counted && quota.counted.at <= now && now - quota.counted.at < maxAgeMs) return quota.counted.bytes;
    return this.measure(quota.orgId);
  }

  /**
   * Measures the counted figure exactly and records it: every digest the
   * organization references or a live reservation holds, once. Reservations
   * past their time are dropped.
   */
  async measure(orgId: number): Promise<number> {
    const now = this.clock.now();
    const expired = (await this.db('quota_reservations').where({ org_id: orgId }).where('expires_at', '<=', now).pluck('id')) as string[];
    if (expired.length > 0) await this.forget(expired);
    const reserved = this.db('quota_reserved_digests').select('digest', 'size').where({ org_id: orgId });
    const counted = await this.distinctTotal(this.referencedDigests(orgId).unionAll([reserved], false));
    await this.db('org_quotas').where({ org_id: orgId }).update({ counted_bytes: counted, counted_at: now });
    return counted;
  }

  /**
   * Counts an admission's content (`items`, everything it references) until
   * `release`, so that its store can run outside the quota lock: measurements
   * meanwhile count each item unless the organization counts it already, and
   * `newBytes` (what the organization did not count yet) is added to the
   * counted figure for good. A reservation never released stops counting after
   * RESERVATION_TTL_MS.
   */
  async reserve(orgId: number, items: ReadonlyArray<{ digest: string; size: number }>, newBytes: number): Promise<string> {
    const id = randomUUID();
    const distinct = new Map(items.map((i) => [i.digest, i.size]));
    const bytes = [...distinct.values()].reduce((a, b) => a + b, 0);
    await inTransaction(this.db, async (trx) => {
      await trx('quota_reservations').insert({ id, org_id: orgId, bytes, expires_at: this.clock.now() + RESERVATION_TTL_MS });
      const rows = [...distinct].map(([digest, size]) => ({ reservation_id: id, org_id: orgId, digest, size }));
      for (let i = 0; i < rows.length; i += RESERVED_ROWS_PER_INSERT) await trx('quota_reserved_digests').insert(rows.slice(i, i + RESERVED_ROWS_PER_INSERT));
      if (newBytes > 0) await trx('org_quotas').where({ org_id: orgId }).whereNotNull('counted_bytes').increment('counted_bytes', newBytes);
    });
    this.held.add(id);
    if (!this.renewTimer) {
      this.renewTimer = setInterval(() => void this.renewHeld(), RESERVATION_RENEW_MS);
      this.renewTimer.unref();
    }
    return id;
  }

  /** Ends a reservation once its content is stored (and counted by usage) or was not stored. */
  async release(reservationId: string): Promise<void> {
    this.held.delete(reservationId);
    if (this.held.size === 0) this.stopRenewing();
    await this.forget([reservationId]);
  }

  private async forget(reservationIds: string[]): Promise<void> {
    await inTransaction(this.db, async (trx) => {
      await trx('quota_reserved_digests').whereIn('reservation_id', reservationIds).delete();
      await trx('quota_reservations').whereIn('id', reservationIds).delete();
    });
  }

  /** Extends every reservation this process holds by RESERVATION_TTL_MS from now (the renewal timer calls it). */
  async renewHeld(): Promise<void> {
    const ids = [...this.held];
    const expiresAt = this.clock.now() + RESERVATION_TTL_MS;
    try {
      for (let i = 0; i < ids.length; i += RENEWALS_PER_QUERY) {
        await this.db('quota_reservations').whereIn('id', ids.slice(i, i + RENEWALS_PER_QUERY)).update({ expires_at: expiresAt });
      }
    } catch (err) {
      // The next renewal tries again; until the database answers, the reservations count as long as they were last renewed for.
      this.logger.warn('quota reservations not renewed', { reservations: ids.length, error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Stops renewing (shutdown): what is still held then stops counting within RESERVATION_TTL_MS. */
  stopRenewing(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
  }

  /**
   * Which of `digests` the organization already counts: it references them
   * (the same three sources as `usage`) or another admission's live reservation
   * holds them while it stores them. Each digest is an existence check that
   * stops at its first reference in the organization, so the cost follows the
   * image, not how many tags share its content.
   */
  async alreadyCounted(orgId: number, digests: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    const unique = [...new Set(digests)];
    const now = this.clock.now();
    for (let i = 0; i < unique.length; i += COUNTED_CHECKS_PER_QUERY) {
      const batch = unique.slice(i, i + COUNTED_CHECKS_PER_QUERY);
      const sql = batch.map(() => `SELECT ? AS digest, (${COUNTED_IN_ORG}) AS counted`).join(' UNION ALL ');
      const result = await this.db.raw(sql, batch.flatMap((digest) => [digest, digest, orgId, digest, orgId, digest, orgId, digest, orgId, now]));
      for (const row of this.rowsOf<{ digest: string; counted: unknown }>(result)) if (Number(row.counted) === 1) found.add(row.digest);
    }
    return found;
  }

  /** (digest, size) rows for manifests, referenced blobs and linked blobs of the organization's repositories. */
  private referencedDigests(orgId: number) {
    const db = this.db;
    const repos = db('repositories').select('id').where({ org_id: orgId });
    const manifests = db('manifests').select('digest', 'size').whereIn('repo_id', repos.clone());
    const referenced = db('manifest_refs as mr')
      .leftJoin('blobs as b', 'b.digest', 'mr.child_digest')
      .select({ digest: 'mr.child_digest' }, db.raw('COALESCE(mr.size, b.size, 0) AS size'))
      .whereIn('mr.repo_id', repos.clone())
      .where('mr.child_kind', 'blob');
    const linked = db('repo_blobs as rb').join('blobs as b', 'b.digest', 'rb.digest').select({ digest: 'rb.digest' }, { size: 'b.size' }).whereIn('rb.repo_id', repos.clone());
    // Unwrapped: SQLite refuses parenthesised members of a compound SELECT.
    return manifests.unionAll([referenced, linked], false);
  }

  /** The sum of sizes of (digest, size) rows, each digest counted once at its largest size. */
  private async distinctTotal(rows: ReturnType<QuotaService['referencedDigests']>): Promise<number> {
    const row = await this.db
      .select(this.db.raw('COALESCE(SUM(size), 0) AS total'))
      .from(this.db.select('digest', this.db.raw('MAX(size) AS size')).from(rows.as('refs')).groupBy('digest').as('distinct_refs'))
      .first();
    return Number((row as { total?: unknown } | undefined)?.total ?? 0);
  }
}
