import type { Router } from 'express';
import { z } from 'zod';
import { RegistryError } from '../../../errors/registry-error';
import type { ApiContext } from './api-context';
import { quayDate } from './quay-format';
import { quotaList, quotaReport } from './quota-routes';
import type { TeamRow } from '../../../services/team-service';
import { teamView } from './team-routes';
import { NAMESPACE_NAME, NAMESPACE_NAME_HINT, parseBody } from './validation';

const email = z.email().max(255);

export const createOrgBody = z.strictObject({
  name: z.string().regex(NAMESPACE_NAME, NAMESPACE_NAME_HINT),
  email: email.optional(),
  is_public: z.boolean().optional(),
  /** Sent by Quay's UI; there is no captcha here. */
  recaptcha_response: z.string().max(4096).optional(),
});

export const changeOrgBody = z.strictObject({
  is_public: z.boolean().optional(),
  email: email.nullable().optional(),
});

/** Deleted tags are not kept for restoring: Quay's "time machine" period is zero here. */
const DELETED_TAGS_KEPT_S = 0;

export const memberBody = z.strictObject({ role: z.enum(['admin', 'member']) });

/** Quay's `teams` (by name) and `ordered_teams` of an organization's description. */
function teamsOf(teams: TeamRow[]) {
  return { teams: Object.fromEntries(teams.map((t) => [t.name, teamView(t)])), ordered_teams: teams.map((t) => t.name) };
}

/** Organizations (create, read, change, delete) and their members. */
export function organizationRoutes(router: Router, ctx: ApiContext): void {
  const { deps, access, accounts, organizations } = ctx;
  const { asyncHandler, principal } = deps.http;

  router.post('/organization/', asyncHandler(async (req, res) => {
    const who = access.requireUser(req);
    const body = parseBody(createOrgBody, req.body);
    // Quay answers a taken name with 400 and this message.
    const taken = () => new RegistryError('INVALID_REQUEST', 'A user or organization with this name already exists', { detail: { field: 'name' } });
    if (await accounts.findUser(body.name)) throw taken();
    const orgId = await organizations.create({ name: body.name, email: body.email ?? null, isPublic: body.is_public ?? false, adminUserId: who.id });
    if (orgId === null) throw taken();
    await ctx.audit(req, { orgId, kind: 'org_create', metadata: { name: body.name, is_public: body.is_public ?? false } });
    res.status(201).json({ name: body.name, is_public: body.is_public ?? false });
  }));

  router.get('/organization/:org', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgReader(req);
    const who = principal(req);
    const isAdmin = await deps.authorizer.isOrgAdmin(who, org.id);
    const isMember = await deps.authorizer.isOrgMember(who, org.id);
    // Readers of a public organization see its name and size; members its membership; administrators its contact.
    res.json({
      name: org.name,
      is_public: org.is_public,
      is_admin: isAdmin,
      is_member: isMember,
      created: quayDate(org.created_at),
      repository_count: await organizations.repositoryCount(org.id),
      ...(isMember ? { member_count: await organizations.memberCount(org.id), robot_count: await organizations.robotCount(org.id) } : {}),
      ...(isAdmin ? { email: await organizations.email(org.id), tag_expiration_s: DELETED_TAGS_KEPT_S } : {}),
      ...(isMember ? teamsOf(await ctx.teams.list(org.id)) : {}),
      ...(isMember && deps.config.flags.FEATURE_QUOTA_MANAGEMENT !== false ? { quotas: await quotaList(ctx, org.id), quota_report: await quotaReport(ctx, org.id) } : {}),
    });
  }));

  router.put('/organization/:org', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    const body = parseBody(changeOrgBody, req.body);
    if (body.is_public !== undefined && body.is_public !== org.is_public) {
      await deps.repositories.setOrgVisibility(org, body.is_public);
      await ctx.audit(req, { orgId: org.id, kind: 'org_change_visibility', metadata: { name: org.name, is_public: body.is_public } });
    }
    if (body.email !== undefined) {
      await organizations.setEmail(org.id, body.email);
      await ctx.audit(req, { orgId: org.id, kind: 'org_change_email', metadata: { name: org.name, email: body.email } });
    }
    res.json({ name: org.name, is_public: body.is_public ?? org.is_public });
  }));

  router.delete('/organization/:org', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    await deps.repositories.deleteOrg(org);
    await ctx.audit(req, { orgId: null, kind: 'org_delete', metadata: { name: org.name } });
    res.status(204).end();
  }));

  router.get('/organization/:org/members', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    const members = await accounts.listMembers(org.id);
    res.json({ members: members.map((m) => ({ name: m.username, kind: 'user', role: m.role })) });
  }));

  router.get('/organization/:org/members/:member', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    const user = await accounts.findUser(String(req.params.member));
    const role = user ? await accounts.memberRole(org.id, user.id) : null;
    if (!user || !role) throw new RegistryError('NOT_FOUND', `${String(req.params.member).slice(0, 100)} is not a member of ${org.name}`);
    res.json({ name: user.username, kind: 'user', role });
  }));

  router.put('/organization/:org/members/:member', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    const body = parseBody(memberBody, req.body);
    const user = await accounts.findUser(String(req.params.member));
    if (!user) throw new RegistryError('NOT_FOUND', `user ${String(req.params.member).slice(0, 100)} not found`);
    const previous = await accounts.setMember(org.id, user.id, body.role);
    if (previous !== body.role) {
      await ctx.audit(req, {
        orgId: org.id,
        kind: previous === null ? 'org_add_member' : 'org_change_member_role',
        metadata: { member: user.username, role: body.role, previous_role: previous },
      });
    }
    res.status(previous === null ? 201 : 200).json({ name: user.username, kind: 'user', role: body.role });
  }));

  router.delete('/organization/:org/members/:member', asyncHandler(async (req, res) => {
    const org = await deps.http.requireOrgAdmin(req);
    const user = await accounts.findUser(String(req.params.member));
    const removed = user ? await accounts.removeMember(org.id, user.id) : null;
    if (!user || removed === null) throw new RegistryError('NOT_FOUND', `${String(req.params.member).slice(0, 100)} is not a member of ${org.name}`);
    await ctx.audit(req, { orgId: org.id, kind: 'org_remove_member', metadata: { member: user.username, role: removed } });
    res.status(204).end();
  }));
}
