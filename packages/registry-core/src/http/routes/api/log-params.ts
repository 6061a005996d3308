import { z } from 'zod';
import { invalidField } from '../../../errors/registry-error';
import type { LogRow } from '../../../services/log-query';
import { quayDate } from './quay-format';

/** Query parameters and the entry shape shared by the log endpoints (list, aggregate, export). */

const DAY_MS = 86_400_000;
const QUAY_DATE = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/;

/**
 * Parses `starttime`/`endtime`: Quay's `MM/DD/YYYY` (UTC days; an end day is
 * inclusive), an ISO 8601 date or time, or seconds since the epoch.
 * Returns epoch milliseconds; throws INVALID_REQUEST naming the parameter.
 */
export function parseLogTime(value: string, field: 'starttime' | 'endtime'): number {
  const quay = QUAY_DATE.exec(value);
  if (quay) {
    const [month, day, year] = [Number(quay[1]), Number(quay[2]), Number(quay[3])];
    const ms = Date.UTC(year, month - 1, day);
    const check = new Date(ms);
    if (month < 1 || month > 12 || check.getUTCDate() !== day || check.getUTCMonth() !== month - 1) throw invalidField(field, 'not a valid date');
    return field === 'endtime' ? ms + DAY_MS : ms;
  }
  if (/^\d{1,11}$/.test(value)) return Number(value) * 1000;
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return ms;
  }
  throw invalidField(field, 'expected MM/DD/YYYY, an ISO 8601 date or time, or seconds since the epoch');
}

/**
 * The time range of a log request: Quay's default is the last day. Returns epoch
 * milliseconds; `end` undefined means up to now. Throws INVALID_REQUEST naming the parameter.
 */
export function logRange(query: { starttime?: string; endtime?: string }, now: number): { start: number; end: number | undefined } {
  const start = query.starttime === undefined ? now - DAY_MS : parseLogTime(query.starttime, 'starttime');
  const end = query.endtime === undefined ? undefined : parseLogTime(query.endtime, 'endtime');
  if (end !== undefined && end < start) throw invalidField('endtime', 'is before starttime');
  return { start, end };
}

const KIND = /^[a-z0-9_.-]{1,64}$/;

export const logTimeQuery = {
  starttime: z.string().max(64).optional(),
  endtime: z.string().max(64).optional(),
};

export const logKindsQuery = z
  .string()
  .max(2048)
  .optional()
  .transform((v) => (v === undefined ? undefined : v.split(',').filter(Boolean)))
  .refine((kinds) => kinds === undefined || kinds.every((k) => KIND.test(k)), 'comma-separated log kinds (lowercase letters, digits, _ . -)');

export function entryView(row: LogRow, namespace: string) {
  return {
    kind: row.kind,
    metadata: row.metadata,
    performer: { kind: row.performer_kind, name: row.performer_name, is_robot: row.performer_kind === 'robot' },
    ip: row.ip,
    datetime: quayDate(row.created_at),
    timestamp: new Date(row.created_at).toISOString(),
    namespace,
    repository: row.repo,
    user_agent: row.user_agent,
  };
}

