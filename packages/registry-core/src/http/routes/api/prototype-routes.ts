import type { Request, Router } from 'express';
import { z } from 'zod';
import { invalidField, RegistryError } from '../../../errors/registry-error';
import type { PrototypeRow } from '../../../services/permission-service';
import type { ApiContext } from './api-context';
import { checkSubjectName, subjectView } from './permission-routes';
import { parseBody, repoRole } from './validation';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const createPrototypeBody = z.strictObject({
  role: repoRole,
  /** Quay names robots as kind `user` with name `org+short`; kind `robot` is accepted too; `team` names a team of the organization. */
  delegate: z.strictObject({
    kind: z.enum(['user', 'robot', 'team']),
    name: z.string().min(1).max(512),
  }),
  /** Quay can restrict a default permission to repositories one user creates; Entrepot applies them to every new repository. */
  activating_user: z.null({ error: 'not supported: default permissions apply to every repository created later' }).optional(),
});

export const changePrototypeBody = z.strictObject({ role: repoRole });

function view(p: PrototypeRow) {
  const delegate = p.delegate.kind === 'team' ? { name: p.delegate.name, kind: 'team' } : subjectView(p.delegate, p.isOrgMember);
  return { id: p.id, role: p.role, activating_user: null, delegate };
}

/** Default permissions ("prototypes"): roles every repository created later in the organization receives. */
export function prototypeRoutes(router: Router, ctx: ApiContext): void {
  const { deps, permissions } = ctx;
  const { asyncHandler } = deps.http;

  function prototypeId(req: Request): string {
    const id = String(req.params.id);
    if (!UUID.test(id)) throw invalidField('prototypeid', 'must be a prototype id (UUID)');
    return id;
  }

  router.get('/organization/:org/prototypes', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    res.json({ prototypes: (await permissions.listPrototypes(org)).map(view) });
  }));

  router.post('/organization/:org/prototypes', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    const body = parseBody(createPrototypeBody, req.body);
    const name = checkSubjectName(body.delegate.name, 'delegate.name');
    if (body.delegate.kind === 'robot' && !name.includes('+')) throw invalidField('delegate.name', 'a robot name is <org>+<name>');
    const team = body.delegate.kind === 'team' ? await ctx.teams.find(org.id, name) : null;
    if (body.delegate.kind === 'team' && !team) throw invalidField('delegate.name', `no team named ${name}`);
    const delegate = team ? { kind: 'team' as const, id: team.id, name: team.name } : await permissions.resolveSubject(org, name, 'delegate.name');
    if (!delegate) throw invalidField('delegate.name', `no user or robot named ${name}`);
    const id = await permissions.createPrototype(org.id, delegate, body.role);
    const created = await permissions.findPrototype(org, id);
    if (!created) throw new RegistryError('NOT_FOUND', `prototype ${id} was deleted concurrently`);
    await ctx.audit(req, { orgId: org.id, kind: 'create_prototype_permission', metadata: { id, role: body.role, delegate: name, delegate_kind: delegate.kind } });
    res.status(201).json(view(created));
  }));

  router.put('/organization/:org/prototypes/:id', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    const id = prototypeId(req);
    const body = parseBody(changePrototypeBody, req.body);
    const existing = await permissions.findPrototype(org, id);
    if (!existing || !(await permissions.updatePrototype(org.id, id, body.role))) throw new RegistryError('NOT_FOUND', `prototype ${id} not found`);
    await ctx.audit(req, {
      orgId: org.id,
      kind: 'modify_prototype_permission',
      metadata: { id, role: body.role, original_role: existing.role, delegate: existing.delegate.name, delegate_kind: existing.delegate.kind },
    });
    res.json(view({ ...existing, role: body.role }));
  }));

  router.delete('/organization/:org/prototypes/:id', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    const id = prototypeId(req);
    const existing = await permissions.findPrototype(org, id);
    if (!existing || !(await permissions.deletePrototype(org.id, id))) throw new RegistryError('NOT_FOUND', `prototype ${id} not found`);
    await ctx.audit(req, { orgId: org.id, kind: 'delete_prototype_permission', metadata: { id, role: existing.role, delegate: existing.delegate.name, delegate_kind: existing.delegate.kind } });
    res.status(204).end();
  }));
}
