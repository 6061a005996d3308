import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { invalidField } from '../../../errors/registry-error';
import type { LogRow } from '../../../services/log-query';
import type { ApiContext } from './api-context';
import { quayDate } from './quay-format';
import type { ApiRepoPath } from './repo-path';
import { isValidRepoName } from './repo-path';
import { parseQuery, queryInt } from './validation';

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

const KIND = /^[a-z0-9_.-]{1,64}$/;

const logQuery = z.strictObject({
  starttime: z.string().max(64).optional(),
  endtime: z.string().max(64).optional(),
  kind: z
    .string()
    .max(2048)
    .optional()
    .transform((v) => (v === undefined ? undefined : v.split(',').filter(Boolean)))
    .refine((kinds) => kinds === undefined || kinds.every((k) => KIND.test(k)), 'comma-separated log kinds (lowercase letters, digits, _ . -)'),
  performer: z.string().min(1).max(512).optional(),
  repository: z.string().min(1).max(255).optional(),
  next_page: z.string().min(1).max(512).optional(),
  format: z.enum(['json', 'csv']).optional(),
  limit: queryInt(1, 1000, 100),
});

/** CSV cell: quoted, and never read as a formula by a spreadsheet. */
function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return `"${safe.replace(/"/g, '""')}"`;
}

function entryView(row: LogRow, namespace: string) {
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

/** Audit logs of an organization (administrators) and of one repository (its administrators), as JSON or CSV. */
export function logRoutes(router: Router, ctx: ApiContext) {
  const { deps, access, logs } = ctx;

  async function send(req: Request, res: Response, orgId: number, namespace: string, fixedRepo?: string): Promise<void> {
    const query = parseQuery(logQuery, req.query);
    if (fixedRepo !== undefined && query.repository !== undefined) throw invalidField('repository', 'not allowed on a repository log');
    if (query.repository !== undefined && !isValidRepoName(namespace, query.repository)) throw invalidField('repository', 'not a repository name below the organization');
    const start = query.starttime === undefined ? undefined : parseLogTime(query.starttime, 'starttime');
    const end = query.endtime === undefined ? undefined : parseLogTime(query.endtime, 'endtime');
    if (start !== undefined && end !== undefined && end < start) throw invalidField('endtime', 'is before starttime');
    const page = await logs.page({
      orgId,
      repo: fixedRepo ?? query.repository,
      kinds: query.kind,
      performer: query.performer,
      start,
      end,
      cursor: query.next_page,
      limit: query.limit,
    });
    if (query.format === 'csv') {
      const header = ['datetime', 'kind', 'performer_kind', 'performer', 'ip', 'repository', 'user_agent', 'metadata'];
      const lines = page.rows.map((r) =>
        [new Date(r.created_at).toISOString(), r.kind, r.performer_kind, r.performer_name, r.ip ?? '', r.repo ?? '', r.user_agent ?? '', JSON.stringify(r.metadata)].map(csvCell).join(','),
      );
      if (page.next) res.set('X-Next-Page', page.next);
      res.type('text/csv; charset=utf-8').set('Content-Disposition', `attachment; filename="${namespace}-logs.csv"`);
      res.send(`${[header.join(','), ...lines].join('\r\n')}\r\n`);
      return;
    }
    res.json({
      start_time: start === undefined ? null : quayDate(start),
      end_time: end === undefined ? null : quayDate(end),
      logs: page.rows.map((r) => entryView(r, namespace)),
      ...(page.next ? { next_page: page.next } : {}),
    });
  }

  router.get('/organization/:org/logs', deps.http.asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    await send(req, res, org.id, org.name);
  }));

  async function repositoryLogs(req: Request, res: Response, path: ApiRepoPath): Promise<void> {
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    await send(req, res, org.id, org.name, repo.name);
  }

  return { repositoryLogs };
}
