import type { Router } from 'express';
import { z } from 'zod';
import { RegistryError } from '../../../errors/registry-error';
import { isUniqueViolation } from '../../../db/database';
import type { ApiDeps } from './api-deps';
import { parseBody } from './validation';

const ORG_NAME = /^[a-z0-9][a-z0-9_-]{1,254}$/;
const createOrgBody = z.object({
  name: z.string().regex(ORG_NAME, 'lowercase letters, digits, _ and -, 2 to 255 characters'),
  email: z.string().email().optional(),
  is_public: z.boolean().optional(),
});

/** Organizations: create (superusers and any user, who becomes admin), read, delete. */
export function organizationRoutes(router: Router, deps: ApiDeps): void {
  const { asyncHandler, principal, requireAuthenticated } = deps.http;

  router.post('/organization/', requireAuthenticated, asyncHandler(async (req, res) => {
    const who = principal(req);
    if (who.kind !== 'user') throw new RegistryError('DENIED', 'only users can create organizations');
    const body = parseBody(createOrgBody, req.body);
    if (await deps.db('users').where({ username: body.name }).first('id')) {
      throw new RegistryError('CONFLICT', `name ${body.name} is taken by a user`);
    }
    try {
      await deps.db.transaction(async (trx) => {
        const [id] = await trx('organizations').insert({ name: body.name, email: body.email ?? null, is_public: body.is_public ?? false, created_at: deps.clock.now() });
        await trx('org_members').insert({ org_id: Number(id), user_id: who.id, role: 'admin' });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new RegistryError('CONFLICT', `organization ${body.name} already exists`);
      throw err;
    }
    const org = await deps.repositories.findOrg(body.name);
    await deps.audit.record({ orgId: org?.id ?? null, kind: 'org_create', performer: who, ip: deps.http.clientIp(req), metadata: { name: body.name } });
    res.status(201).json({ name: body.name });
  }));

  router.get('/organization/:org', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgReader(req);
    res.json({ name: org.name, is_public: org.is_public, is_admin: await deps.authorizer.isOrgAdmin(principal(req), org.id) });
  }));

  router.delete('/organization/:org', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    await deps.db('organizations').where({ id: org.id }).delete();
    await deps.audit.record({ orgId: null, kind: 'org_delete', performer: principal(req), ip: deps.http.clientIp(req), metadata: { name: org.name } });
    res.status(204).end();
  }));
}
