import { randomBytes } from 'node:crypto';
import type { Router } from 'express';
import { z } from 'zod';
import { RegistryError } from '../../../errors/registry-error';
import type { UserRow } from '../../../services/account-service';
import type { ApiContext } from './api-context';
import { quayDate } from './quay-format';
import { NAMESPACE_NAME, NAMESPACE_NAME_HINT, parseBody } from './validation';

export const createUserBody = z.strictObject({
  username: z.string().regex(NAMESPACE_NAME, NAMESPACE_NAME_HINT),
  /** Generated and returned once when absent, as Quay does. */
  password: z.string().min(8, 'at least 8 characters').max(1024).optional(),
  email: z.email().max(255).optional(),
  superuser: z.boolean().optional(),
});

function userView(user: UserRow) {
  return { username: user.username, email: user.email, super_user: user.is_superuser, kind: 'user', created: quayDate(user.created_at) };
}

/** The current user, and superuser-only user management. */
export function userRoutes(router: Router, ctx: ApiContext): void {
  const { deps, access, accounts } = ctx;
  const { asyncHandler } = deps.http;

  router.get('/user/', asyncHandler(async (req, res) => {
    const who = access.principal(req);
    if (who.kind === 'anonymous') throw new RegistryError('UNAUTHORIZED', 'authentication required');
    if (who.kind === 'scanner') throw new RegistryError('DENIED', 'scanner tokens only pull layers');
    if (who.kind === 'robot') {
      const org = await deps.repositories.findOrgById(who.orgId);
      res.json({ anonymous: false, username: who.name, kind: 'robot', is_robot: true, super_user: false, organizations: org ? [{ name: org.name, is_org_admin: false, public: org.is_public }] : [] });
      return;
    }
    const user = await accounts.findUser(who.username);
    if (!user) throw new RegistryError('UNAUTHORIZED', 'this account no longer exists');
    const memberships = await accounts.membershipsOf(user.id);
    res.json({
      anonymous: false,
      ...userView(user),
      is_robot: false,
      organizations: memberships.map((m) => ({ name: m.org, role: m.role, is_org_admin: m.role === 'admin', public: m.is_public })),
    });
  }));

  router.get('/superuser/users/', asyncHandler(async (req, res) => {
    access.requireSuperuser(req);
    const users = await accounts.listUsers();
    res.json({ users: users.map(userView) });
  }));

  router.post('/superuser/users/', asyncHandler(async (req, res) => {
    access.requireSuperuser(req);
    const body = parseBody(createUserBody, req.body);
    const password = body.password ?? randomBytes(18).toString('base64url');
    const user = await accounts.createUser({ username: body.username, password, email: body.email, superuser: body.superuser });
    await ctx.audit(req, { orgId: null, kind: 'user_create', metadata: { username: user.username, superuser: user.is_superuser } });
    res.status(201).json({ ...userView(user), ...(body.password === undefined ? { password } : {}) });
  }));

  router.delete('/superuser/users/:username', asyncHandler(async (req, res) => {
    const who = access.requireSuperuser(req);
    const user = await accounts.findUser(String(req.params.username));
    if (!user) throw new RegistryError('NOT_FOUND', `user ${String(req.params.username).slice(0, 100)} not found`);
    if (user.id === who.id) throw new RegistryError('CONFLICT', 'you cannot delete your own account');
    await accounts.deleteUser(user);
    await ctx.audit(req, { orgId: null, kind: 'user_delete', metadata: { username: user.username } });
    res.status(204).end();
  }));
}
