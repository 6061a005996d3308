import type { Db } from '../db/database';
import { isUniqueViolation } from '../db/database';
import { RegistryError } from '../errors/registry-error';
import type { Clock } from './clock';

export type QuotaLimitType = 'Warning' | 'Reject';

export interface QuotaLimit {
  id: number;
  orgId: number;
  type: QuotaLimitType;
  /** Percent of the quota's limit_bytes, 1–100. */
  percent: number;
  /** A Warning already reported for the current crossing. */
  crossed: boolean;
}

function toLimit(row: Record<string, unknown>): QuotaLimit {
  return { id: Number(row.id), orgId: Number(row.org_id), type: row.type === 'Reject' ? 'Reject' : 'Warning', percent: Number(row.percent), crossed: Boolean(row.crossed) };
}

/** The bytes a threshold stands for. */
export function thresholdBytes(limitBytes: number, percent: number): number {
  return Math.floor((limitBytes * percent) / 100);
}

/**
 * Quay's quota limits: thresholds on an organization's quota. At most one
 * `Reject`; no two thresholds of the same type and percent (both are 400 in Quay).
 */
export class QuotaLimitService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async list(orgId: number): Promise<QuotaLimit[]> {
    return (await this.db('quota_limits').where({ org_id: orgId }).orderBy('id')).map(toLimit);
  }

  /** Throws NOT_FOUND for an unknown id. */
  async get(orgId: number, id: number): Promise<QuotaLimit> {
    const row = await this.db('quota_limits').where({ org_id: orgId, id }).first();
    if (!row) throw new RegistryError('NOT_FOUND', `quota limit ${id} not found`);
    return toLimit(row);
  }

  /** The smallest Reject percent, or null. */
  async rejectPercent(orgId: number): Promise<number | null> {
    const row = await this.db('quota_limits').where({ org_id: orgId, type: 'Reject' }).min({ p: 'percent' }).first();
    return row?.p === null || row?.p === undefined ? null : Number(row.p);
  }

  /** Throws INVALID_REQUEST for a second Reject or a duplicate threshold. */
  async add(orgId: number, type: QuotaLimitType, percent: number): Promise<QuotaLimit> {
    await this.checkAllowed(orgId, type, percent, null);
    try {
      const [id] = await this.db('quota_limits').insert({ org_id: orgId, type, percent, crossed: false, created_at: this.clock.now() });
      return this.get(orgId, Number(id));
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicate(type, percent);
      throw err;
    }
  }

  /** Throws NOT_FOUND or INVALID_REQUEST (as `add`). */
  async update(orgId: number, id: number, changes: { type?: QuotaLimitType; percent: number }): Promise<QuotaLimit> {
    const existing = await this.get(orgId, id);
    const type = changes.type ?? existing.type;
    await this.checkAllowed(orgId, type, changes.percent, id);
    try {
      await this.db('quota_limits').where({ org_id: orgId, id }).update({ type, percent: changes.percent, crossed: false });
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicate(type, changes.percent);
      throw err;
    }
    return this.get(orgId, id);
  }

  async delete(orgId: number, id: number): Promise<boolean> {
    return (await this.db('quota_limits').where({ org_id: orgId, id }).delete()) > 0;
  }

  /**
   * The Warning thresholds `usageBytes` has newly crossed (each reported once until
   * usage falls back under it). Thresholds usage is under again are re-armed.
   */
  async crossedWarnings(orgId: number, limitBytes: number, usageBytes: number): Promise<QuotaLimit[]> {
    const warnings = (await this.list(orgId)).filter((l) => l.type === 'Warning');
    const crossed = warnings.filter((l) => !l.crossed && usageBytes >= thresholdBytes(limitBytes, l.percent));
    const rearmed = warnings.filter((l) => l.crossed && usageBytes < thresholdBytes(limitBytes, l.percent));
    if (crossed.length > 0) await this.db('quota_limits').whereIn('id', crossed.map((l) => l.id)).where({ crossed: false }).update({ crossed: true });
    if (rearmed.length > 0) await this.db('quota_limits').whereIn('id', rearmed.map((l) => l.id)).update({ crossed: false });
    return crossed;
  }

  private async checkAllowed(orgId: number, type: QuotaLimitType, percent: number, exceptId: number | null): Promise<void> {
    const others = (await this.list(orgId)).filter((l) => l.id !== exceptId);
    if (type === 'Reject' && others.some((l) => l.type === 'Reject')) throw new RegistryError('INVALID_REQUEST', "Only one quota limit of type 'Reject' allowed.", { detail: { field: 'type' } });
    if (others.some((l) => l.type === type && l.percent === percent)) throw duplicate(type, percent);
  }
}

function duplicate(type: QuotaLimitType, percent: number): RegistryError {
  return new RegistryError('INVALID_REQUEST', `a ${type} limit at ${percent} % already exists`, { detail: { field: 'threshold_percent' } });
}
