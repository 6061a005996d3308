import type { Request, Router } from 'express';
import { z } from 'zod';
import { invalidField, RegistryError } from '../../../errors/registry-error';
import type { OrganizationRow } from '../../../services/repository-service';
import type { RobotRow } from '../../../services/robot-service';
import type { ApiContext } from './api-context';
import { quayDate } from './quay-format';
import { parseBody, parseQuery, pathParam, queryFlag, queryInt, ROBOT_SHORT_NAME, ROBOT_SHORT_NAME_HINT } from './validation';

export const createRobotBody = z.strictObject({
  description: z.string().max(255).optional(),
  /** Quay accepts arbitrary metadata; Entrepot does not keep it, so only an empty object is accepted. */
  unstructured_metadata: z.strictObject({}).optional(),
});

/** A query flag that is on unless given as `false`/`0` (Quay's `token` default). */
const queryFlagOn = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === undefined || v === 'true' || v === '1');

export const robotQuery = z.object({ token: queryFlagOn });
export const robotListQuery = z.object({ token: queryFlagOn, permissions: queryFlag, limit: queryInt(1, 100_000, 100_000) });

/**
 * Robot accounts `<org>+<short>` of an organization, managed by its administrators.
 * Members may list them (names and descriptions); only administrators see tokens and permissions.
 */
export function robotRoutes(router: Router, ctx: ApiContext): void {
  const { deps, robots } = ctx;
  const { asyncHandler } = deps.http;

  function view(org: OrganizationRow, robot: RobotRow, token?: string | null) {
    return {
      name: `${org.name}+${robot.short_name}`,
      description: robot.description,
      created: quayDate(robot.created_at),
      last_accessed: null,
      unstructured_metadata: {},
      ...(token === undefined ? {} : { token }),
    };
  }

  function shortName(req: Request): string {
    return pathParam(req.params.short, 'robot_shortname', ROBOT_SHORT_NAME, ROBOT_SHORT_NAME_HINT);
  }

  async function requireRobot(req: Request): Promise<{ org: OrganizationRow; robot: RobotRow }> {
    const org = await deps.http.requireOrgAdmin(req);
    const short = shortName(req);
    const robot = await robots.find(org.id, short);
    if (!robot) throw new RegistryError('NOT_FOUND', `robot ${org.name}+${short} not found`);
    return { org, robot };
  }

  async function repositoriesOf(org: OrganizationRow, robot: RobotRow) {
    return ctx.permissions.subjectPermissions(org.id, { kind: 'robot', id: robot.id, name: `${org.name}+${robot.short_name}` });
  }

  router.get('/organization/:org/robots', asyncHandler(async (req, res) => {
    ctx.access.requireUser(req);
    const { org, isAdmin } = await deps.http.requireOrgMember(req);
    const query = parseQuery(robotListQuery, req.query);
    const list = (await robots.list(org.id)).slice(0, query.limit);
    const out = [];
    for (const robot of list) {
      const token = isAdmin && query.token ? await robots.revealToken(robot) : undefined;
      const subject = { kind: 'robot' as const, id: robot.id, name: `${org.name}+${robot.short_name}` };
      const permissions =
        isAdmin && query.permissions
          ? { teams: (await ctx.teams.teamsOf(org.id, subject)).map((name) => ({ name })), repositories: (await repositoriesOf(org, robot)).map((p) => p.repo) }
          : {};
      out.push({ ...view(org, robot, token), ...permissions });
    }
    res.json({ robots: out });
  }));

  router.get('/organization/:org/robots/:short', asyncHandler(async (req, res) => {
    const { org, robot } = await requireRobot(req);
    const query = parseQuery(robotQuery, req.query);
    res.json(view(org, robot, query.token ? await robots.revealToken(robot) : undefined));
  }));

  router.get('/organization/:org/robots/:short/permissions', asyncHandler(async (req, res) => {
    const { org, robot } = await requireRobot(req);
    const permissions = await repositoriesOf(org, robot);
    res.json({
      permissions: permissions.map((p) => ({
        repository: { name: p.repo, is_public: p.visibility ? p.visibility === 'public' : org.is_public },
        role: p.role,
      })),
    });
  }));

  router.put('/organization/:org/robots/:short', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    const short = shortName(req);
    // The full name is stored as performer and login key (255 characters).
    if (org.name.length + 1 + short.length > 255) throw invalidField('robot_shortname', `${org.name}+<name> must be at most 255 characters`);
    const body = parseBody(createRobotBody, req.body);
    const { robot, token } = await robots.create(org.id, short, body.description ?? '');
    await ctx.audit(req, { orgId: org.id, kind: 'create_robot', metadata: { robot: `${org.name}+${short}`, description: robot.description } });
    res.status(201).json(view(org, robot, token));
  }));

  router.post('/organization/:org/robots/:short/regenerate', asyncHandler(async (req, res) => {
    const { org, robot } = await requireRobot(req);
    const token = await robots.regenerate(robot);
    await ctx.audit(req, { orgId: org.id, kind: 'regenerate_robot_token', metadata: { robot: `${org.name}+${robot.short_name}` } });
    res.json(view(org, robot, token));
  }));

  router.delete('/organization/:org/robots/:short', asyncHandler(async (req, res) => {
    const { org, robot } = await requireRobot(req);
    await robots.delete(robot);
    await ctx.audit(req, { orgId: org.id, kind: 'delete_robot', metadata: { robot: `${org.name}+${robot.short_name}` } });
    res.status(204).end();
  }));
}
