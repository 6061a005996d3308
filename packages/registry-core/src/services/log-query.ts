import type { Db } from '../db/database';
import { invalidField } from '../errors/registry-error';

export interface LogFilter {
  orgId: number;
  /** Repository path below the organization. */
  repo?: string;
  kinds?: string[];
  performer?: string;
  /** Inclusive lower bound, epoch milliseconds. */
  start?: number;
  /** Exclusive upper bound, epoch milliseconds. */
  end?: number;
  /** Opaque cursor from a previous page's `next`. */
  cursor?: string;
  limit: number;
}

export interface LogRow {
  id: number;
  kind: string;
  repo: string | null;
  performer_kind: string;
  performer_name: string;
  ip: string | null;
  user_agent: string | null;
  metadata: Record<string, unknown>;
  created_at: number;
}

export interface LogPage {
  rows: LogRow[];
  /** Cursor for the next (older) page, or null at the end. */
  next: string | null;
}

function parseMetadata(raw: unknown): Record<string, unknown> {
  if (typeof raw !== 'string' || raw === '') return {};
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const DAY_MS = 86_400_000;

function encodeCursor(id: number): string {
  return Buffer.from(JSON.stringify({ v: 1, before: id })).toString('base64url');
}

/** Throws INVALID_REQUEST naming `next_page` for a cursor this service did not produce. */
function decodeCursor(cursor: string): number {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    const before = (value as { v?: unknown; before?: unknown }).before;
    if ((value as { v?: unknown }).v === 1 && typeof before === 'number' && Number.isSafeInteger(before) && before > 0) return before;
  } catch {
    // fall through
  }
  throw invalidField('next_page', 'not a page token returned by this endpoint');
}

/** Reads an organization's audit log, newest first, with keyset paging. */
export class LogQuery {
  constructor(private readonly db: Db) {}

  async page(filter: LogFilter): Promise<LogPage> {
    let query = this.db('audit_logs').where({ org_id: filter.orgId });
    if (filter.repo !== undefined) query = query.where({ repo: filter.repo });
    if (filter.kinds && filter.kinds.length > 0) query = query.whereIn('kind', filter.kinds);
    if (filter.performer !== undefined) query = query.where({ performer_name: filter.performer });
    if (filter.start !== undefined) query = query.where('created_at', '>=', filter.start);
    if (filter.end !== undefined) query = query.where('created_at', '<', filter.end);
    if (filter.cursor !== undefined) query = query.where('id', '<', decodeCursor(filter.cursor));
    const rows = (await query.orderBy('id', 'desc').limit(filter.limit + 1)) as Array<Record<string, unknown>>;
    const more = rows.length > filter.limit;
    const page = rows.slice(0, filter.limit).map((r) => ({
      id: Number(r.id),
      kind: String(r.kind),
      repo: r.repo === null || r.repo === undefined ? null : String(r.repo),
      performer_kind: String(r.performer_kind ?? 'anonymous'),
      performer_name: String(r.performer_name ?? ''),
      ip: r.ip === null || r.ip === undefined ? null : String(r.ip),
      user_agent: r.user_agent === null || r.user_agent === undefined ? null : String(r.user_agent),
      metadata: parseMetadata(r.metadata),
      created_at: Number(r.created_at),
    }));
    return { rows: page, next: more && page.length > 0 ? encodeCursor(page[page.length - 1].id) : null };
  }

  /** Counts of entries per kind and UTC day in [start, end), oldest day first. */
  async aggregate(filter: Omit<LogFilter, 'cursor' | 'limit'> & { start: number; end: number }): Promise<Array<{ kind: string; day: number; count: number }>> {
    // `created_at - created_at % DAY` is the day's start in SQLite and MySQL alike.
    let query = this.db('audit_logs').where({ org_id: filter.orgId }).where('created_at', '>=', filter.start).where('created_at', '<', filter.end);
    if (filter.repo !== undefined) query = query.where({ repo: filter.repo });
    if (filter.kinds && filter.kinds.length > 0) query = query.whereIn('kind', filter.kinds);
    if (filter.performer !== undefined) query = query.where({ performer_name: filter.performer });
    const rows = (await query.select('kind', this.db.raw('created_at - (created_at % ?) as day', [DAY_MS])).count({ n: '*' }).groupBy('kind', 'day').orderBy([{ column: 'day' }, { column: 'kind' }])) as Array<Record<string, unknown>>;
    return rows.map((r) => ({ kind: String(r.kind), day: Number(r.day), count: Number(r.n) }));
  }
}
