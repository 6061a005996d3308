import type { Request, Router } from 'express';
import { z } from 'zod';
import { RegistryError } from '../../../errors/registry-error';
import type { OrganizationRow } from '../../../services/repository-service';
import type { TeamRow } from '../../../services/team-service';
import type { ApiContext } from './api-context';
import { checkSubjectName } from './permission-routes';
import { parseBody, pathParam, repoRole } from './validation';

/** Quay's team names: lowercase letters and digits, `_` and `-`, 2–255 characters, starting with a letter. */
export const TEAM_NAME = /^[a-z][a-z0-9_-]{1,254}$/;
export const TEAM_NAME_HINT = 'a lowercase letter, then lowercase letters, digits, _ and -, 2 to 255 characters';

export const teamBody = z.strictObject({
  role: z.enum(['member', 'creator', 'admin']),
  description: z.string().max(1024).optional(),
});

export const teamPermissionBody = z.strictObject({ role: repoRole });

/** Quay's team view (`org_view`'s `teams`). */
export function teamView(team: TeamRow) {
  return { name: team.name, description: team.description, role: team.role, can_view: true, repo_count: team.repoCount, member_count: team.memberCount, is_synced: false };
}

/**
 * Teams of an organization (Quay): create or change with a role, delete, members
 * (users and the organization's robots), and the team's repository roles. A team's
 * read, write or admin on "all current and future repositories" is one action.
 */
export function teamRoutes(router: Router, ctx: ApiContext): void {
  const { deps, teams, permissions } = ctx;
  const { asyncHandler } = deps.http;

  const teamName = (req: Request) => pathParam(req.params.team, 'teamname', TEAM_NAME, TEAM_NAME_HINT);

  async function requireTeam(req: Request): Promise<{ org: OrganizationRow; team: TeamRow }> {
    const org = await deps.http.requireOrgAdmin(req);
    const name = teamName(req);
    const team = await teams.find(org.id, name);
    if (!team) throw new RegistryError('NOT_FOUND', `team ${name} not found in ${org.name}`);
    return { org, team };
  }

  async function requireMember(org: OrganizationRow, req: Request) {
    const name = checkSubjectName(String(req.params.member), 'membername');
    const subject = await permissions.resolveSubject(org, name, 'membername');
    if (!subject) throw new RegistryError('NOT_FOUND', `no user or robot named ${name.slice(0, 100)}`);
    return subject;
  }

  router.put('/organization/:org/team/:team', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    const name = teamName(req);
    const body = parseBody(teamBody, req.body);
    const { team, created } = await teams.upsert(org.id, name, body.role, body.description);
    await ctx.audit(req, { orgId: org.id, kind: created ? 'org_create_team' : 'org_set_team_role', metadata: { team: name, role: body.role } });
    res.json(teamView(team));
  }));

  router.delete('/organization/:org/team/:team', asyncHandler(async (req, res) => {
    const { org, team } = await requireTeam(req);
    await teams.delete(team);
    await ctx.audit(req, { orgId: org.id, kind: 'org_delete_team', metadata: { team: team.name } });
    res.status(204).end();
  }));

  router.get('/organization/:org/team/:team/members', asyncHandler(async (req, res) => {
    const { org, team } = await requireTeam(req);
    const members = await teams.members(team, org.name);
    res.json({ name: team.name, members: members.map((m) => ({ name: m.name, kind: 'user', is_robot: m.kind === 'robot', invited: false })), can_edit: true });
  }));

  router.put('/organization/:org/team/:team/members/:member', asyncHandler(async (req, res) => {
    const { org, team } = await requireTeam(req);
    const subject = await requireMember(org, req);
    if (await teams.addMember(team, subject)) {
      await ctx.audit(req, { orgId: org.id, kind: 'org_add_team_member', metadata: { team: team.name, member: subject.name } });
    }
    res.json({ name: subject.name, kind: 'user', is_robot: subject.kind === 'robot', invited: false });
  }));

  router.delete('/organization/:org/team/:team/members/:member', asyncHandler(async (req, res) => {
    const { org, team } = await requireTeam(req);
    const subject = await requireMember(org, req);
    if (!(await teams.removeMember(team, subject))) throw new RegistryError('NOT_FOUND', `${subject.name} is not a member of team ${team.name}`);
    await ctx.audit(req, { orgId: org.id, kind: 'org_remove_team_member', metadata: { team: team.name, member: subject.name } });
    res.status(204).end();
  }));

  router.get('/organization/:org/team/:team/permissions', asyncHandler(async (req, res) => {
    const { org, team } = await requireTeam(req);
    const roles = await teams.repositoryRoles(team);
    res.json({ permissions: roles.map((r) => ({ repository: { name: r.repo, is_public: r.visibility ? r.visibility === 'public' : org.is_public }, role: r.role })) });
  }));

  /** The role on every repository now and on those created later (a default permission for the team): one action. */
  router.put('/organization/:org/permissions/team/:team', asyncHandler(async (req, res) => {
    const { org, team } = await requireTeam(req);
    const body = parseBody(teamPermissionBody, req.body);
    const count = await teams.grantOnAllRepositories(team, body.role);
    await ctx.audit(req, { orgId: org.id, kind: 'org_team_permission_all', metadata: { team: team.name, role: body.role, repositories: count, future: true } });
    res.json({ name: team.name, role: body.role, repositories: count, future_repositories: true });
  }));
}
