import type { Request, Response } from 'express';
import { RegistryError } from '../../../errors/registry-error';
import type { OrganizationRow } from '../../../services/repository-service';
import type { TeamRow } from '../../../services/team-service';
import type { ApiContext } from './api-context';
import type { ApiRepoPath } from './repo-path';
import { TEAM_NAME, TEAM_NAME_HINT, teamPermissionBody } from './team-routes';
import { parseBody, pathParam } from './validation';

/**
 * A team's role on one repository (Quay's `.../permissions/team/{teamname}`, reached
 * through the repository dispatcher). Authorization on `/v2` and `/api/v1` reads
 * these rows for the team's members, as it does the organization-wide grants.
 */
export function teamPermissionRoutes(ctx: ApiContext) {
  const { access, teams, permissions } = ctx;

  async function requireTeam(org: OrganizationRow, rawName: string): Promise<TeamRow> {
    const name = pathParam(rawName, 'teamname', TEAM_NAME, TEAM_NAME_HINT);
    const team = await teams.find(org.id, name);
    if (!team) throw new RegistryError('NOT_FOUND', `no team ${name} in ${org.name}`);
    return team;
  }

  const grantee = (team: TeamRow) => ({ kind: 'team' as const, id: team.id, name: team.name });

  async function list(req: Request, res: Response, path: ApiRepoPath): Promise<void> {
    const { repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    const rows = await permissions.teamRoles(repo.id);
    res.json({ permissions: Object.fromEntries(rows.map((r) => [r.name, { name: r.name, role: r.role }])) });
  }

  async function get(req: Request, res: Response, path: ApiRepoPath, rawName: string): Promise<void> {
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    const team = await requireTeam(org, rawName);
    const role = await permissions.get(repo.id, grantee(team));
    if (!role) throw new RegistryError('NOT_FOUND', `team ${team.name} has no permission on ${org.name}/${repo.name}`);
    res.json({ name: team.name, role });
  }

  async function put(req: Request, res: Response, path: ApiRepoPath, rawName: string): Promise<void> {
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    const team = await requireTeam(org, rawName);
    const body = parseBody(teamPermissionBody, req.body);
    const previous = await permissions.set(repo.id, grantee(team), body.role);
    await ctx.audit(req, {
      orgId: org.id,
      repo: repo.name,
      kind: 'change_repo_permission',
      metadata: { team: team.name, role: body.role, previous_role: previous, namespace: org.name, repo: repo.name },
    });
    res.json({ name: team.name, role: body.role });
  }

  async function remove(req: Request, res: Response, path: ApiRepoPath, rawName: string): Promise<void> {
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    const team = await requireTeam(org, rawName);
    if (!(await permissions.remove(repo.id, grantee(team)))) throw new RegistryError('NOT_FOUND', `team ${team.name} has no permission on ${org.name}/${repo.name}`);
    await ctx.audit(req, { orgId: org.id, repo: repo.name, kind: 'delete_repo_permission', metadata: { team: team.name, namespace: org.name, repo: repo.name } });
    res.status(204).end();
  }

  return { list, get, put, remove };
}
