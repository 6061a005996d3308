import type { Request, RequestHandler, Response, Router } from 'express';
import { z } from 'zod';
import { invalidField, RegistryError } from '../../../errors/registry-error';
import type { RepositoryRow } from '../../../services/repository-service';
import { isRepoPublic } from './access';
import type { ApiContext } from './api-context';
import { logRoutes } from './log-routes';
import { permissionRoutes } from './permission-routes';
import { epochSeconds, quayDate } from './quay-format';
import { securityRoutes } from './security-routes';
import { teamPermissionRoutes } from './team-permission-routes';
import type { HttpMethod } from '../../openapi/api-docs';
import { dispatching } from '../../openapi/route-list';
import { decodeSegments, isValidRepoName, parseApiRepoPath, REPO_ENDPOINT_PATHS, type ApiRepoPath, type RepoEndpoint } from './repo-path';
import { tagHandlers } from './tag-handlers';
import { NAMESPACE_NAME, parseBody, parseQuery, queryInt, visibility } from './validation';

export const listQuery = z.object({
  namespace: z.string({ error: 'required: the organization whose repositories to list' }).max(255),
  next_page: z.string().max(512).optional(),
  limit: queryInt(1, 100, 100),
  // Quay's other parameters (public, starred, last_modified, popularity, repo_kind) are accepted; results always include last_modified.
});

export const createRepoBody = z.strictObject({
  namespace: z.string().regex(NAMESPACE_NAME, 'not an organization name'),
  repository: z.string().min(1).max(255),
  visibility,
  description: z.string().max(4096).optional(),
  repo_kind: z.literal('image').optional(),
});

export const changeVisibilityBody = z.strictObject({ visibility });
export const changeRepoBody = z.strictObject({ description: z.string().max(4096) });

/** Repositories read per query while listing those a caller may see. */
const LIST_BATCH = 500;

type RepoHandler = (req: Request, res: Response, path: ApiRepoPath) => Promise<void>;

function encodeAfter(name: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: name })).toString('base64url');
}

function decodeAfter(token: string): string {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    const after = (value as { after?: unknown }).after;
    if ((value as { v?: unknown }).v === 1 && typeof after === 'string' && after.length <= 255) return after;
  } catch {
    // fall through
  }
  throw invalidField('next_page', 'not a page token returned by this endpoint');
}

/** Rejects `/repository/...` paths with encoded slashes, `.` or `..` segments before any route sees them. */
export function repositoryPathGuard(): RequestHandler {
  return (req, _res, next) => {
    try {
      decodeSegments(req.path);
      next();
    } catch (err) {
      next(err);
    }
  };
}

/**
 * Repositories (`/repository`, `/repository/{org}/{repo...}`) and, through one
 * dispatcher that reads repository paths with slashes, their tags, permissions,
 * visibility and logs. `register` adds the collection routes; `dispatcher` must be
 * mounted on `/repository` after plugin routes so that plugins' repository endpoints win.
 */
export function repositoryRoutes(ctx: ApiContext) {
  const { deps, access, stats } = ctx;
  const tags = tagHandlers(ctx);
  const security = securityRoutes(ctx);
  const teamPermissions = teamPermissionRoutes(ctx);
  const logs = (router: Router) => logRoutes(router, ctx);
  const { asyncHandler } = deps.http;

  async function describe(req: Request, orgName: string, repo: RepositoryRow, isPublic: boolean) {
    const org = await access.requireOrg(orgName);
    const who = access.principal(req);
    const summary = (await stats.summaries([repo.id])).get(repo.id);
    return {
      namespace: org.name,
      name: repo.name,
      kind: 'image',
      state: 'NORMAL',
      description: await deps.repositories.description(repo.id),
      is_public: isPublic,
      is_organization: true,
      is_starred: false,
      can_write: await deps.authorizer.canAccessRepo(who, org.id, repo.id, 'push', isPublic),
      can_admin: await deps.authorizer.canAccessRepo(who, org.id, repo.id, 'admin', isPublic),
      size: summary?.size ?? 0,
      tag_count: summary?.tag_count ?? 0,
      last_modified: summary?.last_modified == null ? null : epochSeconds(summary.last_modified),
      created: quayDate(repo.created_at),
    };
  }

  function register(router: Router): { repositoryLogs: RepoHandler; repositoryAggregate: RepoHandler; repositoryExport: RepoHandler; permissions: ReturnType<typeof permissionRoutes> } {
    router.get('/repository', asyncHandler(async (req, res) => {
      const query = parseQuery(listQuery, req.query);
      const org = await access.requireOrg(query.namespace);
      const who = access.principal(req);
      if (who.kind === 'anonymous' && !org.is_public) {
        if (!(await deps.repositories.hasPublicRepository(org.id))) throw new RegistryError('UNAUTHORIZED', 'authentication required');
      }
      // Members may pull every repository of their organization; others see what they may pull.
      const seesAll = who.kind === 'user' && (await deps.authorizer.isOrgMember(who, org.id));
      const visible: RepositoryRow[] = [];
      let after = query.next_page === undefined ? '' : decodeAfter(query.next_page);
      let more = false;
      scan: for (;;) {
        const batch = await deps.repositories.listAfter(org.id, after, LIST_BATCH);
        for (const repo of batch) {
          if (!seesAll && !(await deps.authorizer.canAccessRepo(who, org.id, repo.id, 'pull', isRepoPublic(org, repo)))) continue;
          if (visible.length === query.limit) {
            more = true;
            break scan;
          }
          visible.push(repo);
        }
        if (batch.length < LIST_BATCH) break;
        after = batch[batch.length - 1].name;
      }
      const summaries = await stats.summaries(visible.map((r) => r.id));
      const descriptions = await deps.repositories.descriptions(visible.map((r) => r.id));
      res.json({
        repositories: visible.map((repo) => {
          const summary = summaries.get(repo.id);
          return {
            namespace: org.name,
            name: repo.name,
            kind: 'image',
            state: 'NORMAL',
            description: descriptions.get(repo.id) ?? '',
            is_public: isRepoPublic(org, repo),
            is_starred: false,
            size: summary?.size ?? 0,
            tag_count: summary?.tag_count ?? 0,
            last_modified: summary?.last_modified == null ? null : epochSeconds(summary.last_modified),
          };
        }),
        ...(more ? { next_page: encodeAfter(visible[visible.length - 1].name) } : {}),
      });
    }));

    router.post('/repository', asyncHandler(async (req, res) => {
      const who = access.principal(req);
      if (who.kind === 'anonymous') throw new RegistryError('UNAUTHORIZED', 'authentication required');
      const body = parseBody(createRepoBody, req.body);
      if (!isValidRepoName(body.namespace, body.repository)) throw invalidField('repository', 'lowercase path components of letters and digits separated by . _ - and /');
      const org = await access.requireOrg(body.namespace);
      if (!(await deps.authorizer.canAccessRepo(who, org.id, null, 'push', false))) throw new RegistryError('DENIED', `you may not create repositories in ${org.name}`);
      if (await deps.repositories.find(org.id, body.repository)) throw new RegistryError('CONFLICT', `repository ${org.name}/${body.repository} already exists`);
      const repo = await deps.repositories.ensure(org.id, body.repository);
      await deps.repositories.setVisibility(org, repo, body.visibility);
      if (body.description !== undefined) await deps.repositories.setDescription(repo.id, body.description);
      await ctx.audit(req, { orgId: org.id, repo: repo.name, kind: 'create_repo', metadata: { namespace: org.name, repo: repo.name, visibility: body.visibility } });
      res.status(201).json({ namespace: org.name, name: repo.name, kind: 'image' });
    }));

    const permissions = permissionRoutes(router, ctx);
    const { repositoryLogs, repositoryAggregate, repositoryExport } = logs(router);
    return { repositoryLogs, repositoryAggregate, repositoryExport, permissions };
  }

  async function getRepository(req: Request, res: Response, path: ApiRepoPath): Promise<void> {
    const { repo, isPublic } = await access.requireRepo(req, path.org, path.repo, 'pull');
    res.json(await describe(req, path.org, repo, isPublic));
  }

  async function changeRepository(req: Request, res: Response, path: ApiRepoPath): Promise<void> {
    const { org, repo, isPublic } = await access.requireRepo(req, path.org, path.repo, 'admin');
    const body = parseBody(changeRepoBody, req.body);
    await deps.repositories.setDescription(repo.id, body.description);
    await ctx.audit(req, { orgId: org.id, repo: repo.name, kind: 'set_repo_description', metadata: { namespace: org.name, repo: repo.name, description: body.description } });
    res.json(await describe(req, path.org, repo, isPublic));
  }

  async function deleteRepository(req: Request, res: Response, path: ApiRepoPath): Promise<void> {
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    await deps.repositories.delete(org, repo);
    await ctx.audit(req, { orgId: org.id, repo: repo.name, kind: 'delete_repo', metadata: { namespace: org.name, repo: repo.name } });
    res.status(204).end();
  }

  async function changeVisibility(req: Request, res: Response, path: ApiRepoPath): Promise<void> {
    const { org, repo, isPublic } = await access.requireRepo(req, path.org, path.repo, 'admin');
    const body = parseBody(changeVisibilityBody, req.body);
    await deps.repositories.setVisibility(org, repo, body.visibility);
    if ((body.visibility === 'public') !== isPublic || repo.visibility !== body.visibility) {
      await ctx.audit(req, { orgId: org.id, repo: repo.name, kind: 'change_repo_visibility', metadata: { namespace: org.name, repo: repo.name, visibility: body.visibility } });
    }
    res.json({ success: true, visibility: body.visibility });
  }

  /** The dispatcher for `/repository/{org}/{repo...}[/endpoint]`; passes on paths it does not serve. */
  function dispatcher(registered: { repositoryLogs: RepoHandler; repositoryAggregate: RepoHandler; repositoryExport: RepoHandler; permissions: ReturnType<typeof permissionRoutes> }): RequestHandler {
    const perms = registered.permissions;
    const table: { [K in RepoEndpoint['kind']]: Record<string, (req: Request, res: Response, path: ApiRepoPath, endpoint: Extract<RepoEndpoint, { kind: K }>) => Promise<void>> } = {
      repository: { GET: getRepository, PUT: changeRepository, DELETE: deleteRepository },
      changevisibility: { POST: changeVisibility },
      logs: { GET: registered.repositoryLogs },
      aggregatelogs: { GET: registered.repositoryAggregate },
      exportlogs: { POST: registered.repositoryExport },
      tags: { GET: tags.list },
      tag: { DELETE: (req, res, path, e) => tags.remove(req, res, path, e.tag) },
      pin: { PUT: (req, res, path, e) => tags.pin(req, res, path, e.tag, true), DELETE: (req, res, path, e) => tags.pin(req, res, path, e.tag, false) },
      permissions: { GET: perms.list },
      security: { GET: (req, res, path, e) => security.manifestSecurity(req, res, path, e.digest) },
      permission: {
        GET: (req, res, path, e) => perms.get(req, res, path, e.name),
        PUT: (req, res, path, e) => perms.put(req, res, path, e.name),
        DELETE: (req, res, path, e) => perms.remove(req, res, path, e.name),
      },
      teampermissions: { GET: teamPermissions.list },
      teampermission: {
        GET: (req, res, path, e) => teamPermissions.get(req, res, path, e.team),
        PUT: (req, res, path, e) => teamPermissions.put(req, res, path, e.team),
        DELETE: (req, res, path, e) => teamPermissions.remove(req, res, path, e.team),
      },
    };
    const endpoints = Object.entries(table).flatMap(([kind, handlers]) =>
      Object.keys(handlers).map((method) => ({ method: method.toLowerCase() as HttpMethod, path: `/repository/{repository}${REPO_ENDPOINT_PATHS[kind as RepoEndpoint['kind']]}` })),
    );
    const dispatch = asyncHandler(async (req, res, next) => {
      if (req.path === '/' || req.path === '') return next();
      const path = parseApiRepoPath(req.path);
      if (!path) return next();
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      const handlers = table[path.endpoint.kind] as Record<string, (req: Request, res: Response, path: ApiRepoPath, endpoint: RepoEndpoint) => Promise<void>>;
      const handler = handlers[method];
      if (!handler) {
        throw new RegistryError('METHOD_NOT_ALLOWED', `${req.method} is not supported here; use ${Object.keys(handlers).join(', ')}`, { headers: { Allow: Object.keys(handlers).join(', ') } });
      }
      await handler(req, res, path, path.endpoint);
    });
    return dispatching(dispatch, endpoints);
  }

  return { register, dispatcher };
}
