import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { invalidField, RegistryError } from '../../../errors/registry-error';
import type { Subject } from '../../../services/permission-service';
import type { OrganizationRow } from '../../../services/repository-service';
import type { ApiContext } from './api-context';
import type { ApiRepoPath } from './repo-path';
import { NAMESPACE_NAME, parseBody, repoRole, ROBOT_SHORT_NAME } from './validation';

export const roleBody = z.strictObject({ role: repoRole });

/** Checks the grammar of a user or robot name given in a path. Throws INVALID_REQUEST naming `field`. */
export function checkSubjectName(name: string, field: string): string {
  const plus = name.indexOf('+');
  const valid = plus < 0 ? NAMESPACE_NAME.test(name) : NAMESPACE_NAME.test(name.slice(0, plus)) && ROBOT_SHORT_NAME.test(name.slice(plus + 1));
  if (!valid) throw invalidField(field, 'must be a user name or a robot name <org>+<name>');
  return name;
}

/** Quay's shape for one permission entry. */
export function subjectView(subject: Subject, isOrgMember: boolean) {
  return { name: subject.name, kind: 'user', is_robot: subject.kind === 'robot', is_org_member: isOrgMember };
}

/**
 * Repository permissions for users and robots (`.../permissions/user/...`, reached
 * through the repository dispatcher) and the organization-wide grant
 * `PUT /organization/{org}/permissions/user/{name}` covering every existing repository.
 */
export function permissionRoutes(router: Router, ctx: ApiContext) {
  const { deps, access, permissions, accounts } = ctx;

  async function requireSubject(org: OrganizationRow, rawName: string, field: string): Promise<Subject> {
    const name = checkSubjectName(rawName, field);
    const subject = await permissions.resolveSubject(org, name, field);
    if (!subject) throw new RegistryError('NOT_FOUND', `no user or robot named ${name}`);
    return subject;
  }

  async function isMember(org: OrganizationRow, subject: Subject): Promise<boolean> {
    if (subject.kind === 'robot') return true;
    return (await accounts.memberRole(org.id, subject.id)) !== null;
  }

  router.put('/organization/:org/permissions/user/:name', deps.http.asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    const subject = await requireSubject(org, String(req.params.name), 'username');
    const body = parseBody(roleBody, req.body);
    const count = await permissions.setOnAll(org.id, subject, body.role);
    await ctx.audit(req, {
      orgId: org.id,
      kind: 'change_repo_permission',
      metadata: { username: subject.name, role: body.role, namespace: org.name, repo: '*', repositories: count },
    });
    res.json({ name: subject.name, role: body.role, repositories: count });
  }));

  async function list(req: Request, res: Response, path: ApiRepoPath): Promise<void> {
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    const entries = await permissions.list(org, repo.id);
    const out: Record<string, unknown> = {};
    for (const entry of entries) out[entry.subject.name] = { ...subjectView(entry.subject, entry.isOrgMember), role: entry.role };
    res.json({ permissions: out });
  }

  async function get(req: Request, res: Response, path: ApiRepoPath, name: string): Promise<void> {
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    const subject = await requireSubject(org, name, 'username');
    const role = await permissions.get(repo.id, subject);
    if (!role) throw new RegistryError('NOT_FOUND', `${subject.name} has no permission on ${org.name}/${repo.name}`);
    res.json({ ...subjectView(subject, await isMember(org, subject)), role });
  }

  async function put(req: Request, res: Response, path: ApiRepoPath, name: string): Promise<void> {
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    const subject = await requireSubject(org, name, 'username');
    const body = parseBody(roleBody, req.body);
    const previous = await permissions.set(repo.id, subject, body.role);
    await ctx.audit(req, {
      orgId: org.id,
      repo: repo.name,
      kind: 'change_repo_permission',
      metadata: { username: subject.name, role: body.role, previous_role: previous, namespace: org.name, repo: repo.name },
    });
    res.json({ ...subjectView(subject, await isMember(org, subject)), role: body.role });
  }

  async function remove(req: Request, res: Response, path: ApiRepoPath, name: string): Promise<void> {
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    const subject = await requireSubject(org, name, 'username');
    if (!(await permissions.remove(repo.id, subject))) throw new RegistryError('NOT_FOUND', `${subject.name} has no permission on ${org.name}/${repo.name}`);
    await ctx.audit(req, { orgId: org.id, repo: repo.name, kind: 'delete_repo_permission', metadata: { username: subject.name, namespace: org.name, repo: repo.name } });
    res.status(204).end();
  }

  return { list, get, put, remove };
}

export type PermissionHandlers = ReturnType<typeof permissionRoutes>;
