import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { invalidField } from '../../../errors/registry-error';
import type { ApiContext } from './api-context';
import { entryView, logKindsQuery, logRange, logTimeQuery } from './log-params';
import { logSummaryRoutes } from './log-summary-routes';
import { quayDate } from './quay-format';
import type { ApiRepoPath } from './repo-path';
import { isValidRepoName } from './repo-path';
import { parseQuery, queryInt } from './validation';

export const logQuery = z.strictObject({
  ...logTimeQuery,
  kind: logKindsQuery,
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

/** Audit logs of an organization (administrators) and of one repository (its administrators), as JSON or CSV. */
export function logRoutes(router: Router, ctx: ApiContext) {
  const { deps, access, logs } = ctx;

  async function send(req: Request, res: Response, orgId: number, namespace: string, fixedRepo?: string): Promise<void> {
    const query = parseQuery(logQuery, req.query);
    if (fixedRepo !== undefined && query.repository !== undefined) throw invalidField('repository', 'not allowed on a repository log');
    if (query.repository !== undefined && !isValidRepoName(namespace, query.repository)) throw invalidField('repository', 'not a repository name below the organization');
    const { start, end } = logRange(query, deps.clock.now());
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
      start_time: quayDate(start),
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

  return { repositoryLogs, ...logSummaryRoutes(router, ctx) };
}
