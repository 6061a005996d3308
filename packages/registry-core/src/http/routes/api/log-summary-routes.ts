import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { invalidField } from '../../../errors/registry-error';
import type { ApiContext } from './api-context';
import { entryView, logKindsQuery, logRange, logTimeQuery } from './log-params';
import { quayDate } from './quay-format';
import type { ApiRepoPath } from './repo-path';
import { parseBody, parseQuery } from './validation';

/** An export holds at most this many entries; a longer range is cut and says so (`truncated`). */
const EXPORT_MAX_ENTRIES = 100_000;
const EXPORT_PAGE = 1000;

export const aggregateLogsQuery = z.strictObject({
  ...logTimeQuery,
  performer: z.string().min(1).max(512).optional(),
  kind: logKindsQuery,
});

export const exportLogsQuery = z.strictObject(logTimeQuery);

/**
 * Quay's export request. Entrepot does not call the URL or send mail (an
 * administrator-chosen URL would let the server reach internal addresses):
 * the export is downloaded from `download_url`.
 */
export const exportLogsBody = z.strictObject({
  callback_url: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  callback_email: z.email().max(255).optional(),
});

/** What an export covers; its id encodes this, so nothing is stored until it is downloaded. */
const exportSpec = z.strictObject({ v: z.literal(1), start: z.number().int().nonnegative(), end: z.number().int().positive(), repo: z.string().max(255).optional() });
type ExportSpec = z.infer<typeof exportSpec>;

function encodeExport(spec: ExportSpec): string {
  return Buffer.from(JSON.stringify(spec)).toString('base64url');
}

/** Throws INVALID_REQUEST naming `export_id` for an id this server did not produce. */
function decodeExport(id: string): ExportSpec {
  try {
    const parsed = exportSpec.safeParse(JSON.parse(Buffer.from(id, 'base64url').toString('utf8')));
    if (parsed.success) return parsed.data;
  } catch {
    // fall through
  }
  throw invalidField('export_id', 'not an export id returned by this server');
}

/** `aggregatelogs` (entries per kind and day, for the usage chart) and `exportlogs` (the whole log of a range). */
export function logSummaryRoutes(router: Router, ctx: ApiContext) {
  const { deps, access, logs } = ctx;
  const { asyncHandler } = deps.http;

  async function aggregate(req: Request, res: Response, orgId: number, repo?: string): Promise<void> {
    const query = parseQuery(aggregateLogsQuery, req.query);
    const now = deps.clock.now();
    const { start, end } = logRange(query, now);
    const counts = await logs.aggregate({ orgId, repo, kinds: query.kind, performer: query.performer, start, end: end ?? now + 1 });
    res.json({ aggregated: counts.map((c) => ({ kind: c.kind, count: c.count, datetime: quayDate(c.day) })) });
  }

  async function queueExport(req: Request, res: Response, org: { id: number; name: string }, repo?: string): Promise<void> {
    const query = parseQuery(exportLogsQuery, req.query);
    const body = parseBody(exportLogsBody, req.body);
    const now = deps.clock.now();
    const { start, end } = logRange(query, now);
    const exportId = encodeExport({ v: 1, start, end: end ?? now + 1, ...(repo === undefined ? {} : { repo }) });
    await ctx.audit(req, { orgId: org.id, repo, kind: 'export_logs_success', metadata: { export_id: exportId.slice(0, 64), url: body.callback_url ?? null, email: body.callback_email ?? null } });
    res.json({ export_id: exportId, download_url: `/api/v1/organization/${org.name}/exportlogs/${exportId}` });
  }

  router.get('/organization/:org/aggregatelogs', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    await aggregate(req, res, org.id);
  }));

  router.post('/organization/:org/exportlogs', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    await queueExport(req, res, org);
  }));

  /** The export as one JSON document; a repository's export needs only that repository's admin rights. */
  router.get('/organization/:org/exportlogs/:id', asyncHandler(async (req, res) => {
    const spec = decodeExport(String(req.params.id));
    const org = spec.repo === undefined ? await deps.http.requireOrgAdmin(req) : (await access.requireRepo(req, String(req.params.org), spec.repo, 'admin')).org;
    const entries = [];
    let cursor: string | undefined;
    let truncated = false;
    for (;;) {
      const page = await logs.page({ orgId: org.id, repo: spec.repo, start: spec.start, end: spec.end, cursor, limit: EXPORT_PAGE });
      entries.push(...page.rows.map((r) => entryView(r, org.name)));
      if (!page.next) break;
      if (entries.length >= EXPORT_MAX_ENTRIES) {
        truncated = true;
        break;
      }
      cursor = page.next;
    }
    res.set('Content-Disposition', `attachment; filename="${org.name}-logs-export.json"`);
    res.json({
      export_id: String(req.params.id),
      details: { namespace: org.name, repository: spec.repo ?? null, start_time: quayDate(spec.start), end_time: quayDate(spec.end) },
      logs: entries,
      truncated,
    });
  }));

  async function repositoryAggregate(req: Request, res: Response, path: ApiRepoPath): Promise<void> {
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    await aggregate(req, res, org.id, repo.name);
  }

  async function repositoryExport(req: Request, res: Response, path: ApiRepoPath): Promise<void> {
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    await queueExport(req, res, org, repo.name);
  }

  return { repositoryAggregate, repositoryExport };
}
