import { z } from 'zod';
import { aggregateLogsQuery, exportLogsBody, exportLogsQuery } from '../routes/api/log-summary-routes';
import { logQuery } from '../routes/api/log-routes';
import { changeOrgBody, createOrgBody, memberBody } from '../routes/api/organization-routes';
import { roleBody } from '../routes/api/permission-routes';
import { changePrototypeBody, createPrototypeBody } from '../routes/api/prototype-routes';
import { changeQuotaBody, changeQuotaLimitBody, createQuotaBody, quotaLimitBody } from '../routes/api/quota-routes';
import { createRobotBody, robotListQuery, robotQuery } from '../routes/api/robot-routes';
import { teamBody, teamPermissionBody } from '../routes/api/team-routes';
import { createUserBody } from '../routes/api/user-routes';
import type { ApiDocs } from './api-docs';
import * as s from './api-schemas';

const ORG = { org: 'organization name' };
const ADMIN = 'organization administrators and superusers';
const MEMBER = 'members of the organization';
const READER = 'members, and anyone for a public organization';
const json = (description: string, schema?: z.ZodType) => ({ description, ...(schema ? { schema } : {}) });
const noContent = { 204: json('done') };

/** Users, organizations, members, robots, default permissions, quota and logs. */
export function describeOrganizationOperations(docs: ApiDocs): void {
  const op = docs.operation.bind(docs);

  op({ method: 'get', path: '/user/', operationId: 'getLoggedInUser', summary: 'The caller', tag: 'users', access: 'any authenticated caller', responses: { 200: json('the caller', s.currentUserSchema) } });
  op({ method: 'get', path: '/superuser/users/', operationId: 'listAllUsers', summary: 'All users', tag: 'users', access: 'superusers', responses: { 200: json('users', z.object({ users: z.array(s.userSchema) })) } });
  op({ method: 'post', path: '/superuser/users/', operationId: 'createInstallUser', summary: 'Create a user', tag: 'users', access: 'superusers', body: createUserBody, responses: { 201: json('created; a generated password is returned once', s.userSchema) } });
  op({ method: 'delete', path: '/superuser/users/:username', operationId: 'deleteInstallUser', summary: 'Delete a user', tag: 'users', access: 'superusers', responses: noContent });

  op({ method: 'post', path: '/organization/', operationId: 'createOrganization', summary: 'Create an organization', tag: 'organizations', access: 'any user', body: createOrgBody, responses: { 201: json('created; the caller is its administrator', s.createdOrganizationSchema) } });
  op({ method: 'get', path: '/organization/:org', operationId: 'getOrganization', summary: 'An organization', tag: 'organizations', access: READER, params: ORG, responses: { 200: json('the organization', s.organizationSchema) } });
  op({ method: 'put', path: '/organization/:org', operationId: 'changeOrganizationDetails', summary: 'Change visibility or contact', tag: 'organizations', access: ADMIN, params: ORG, body: changeOrgBody, responses: { 200: json('changed', s.createdOrganizationSchema) } });
  op({ method: 'delete', path: '/organization/:org', operationId: 'deleteAdminedOrganization', summary: 'Delete an organization and its content', tag: 'organizations', access: ADMIN, params: ORG, responses: noContent });

  op({ method: 'get', path: '/organization/:org/members', operationId: 'getOrganizationMembers', summary: 'Members', tag: 'members', access: ADMIN, params: ORG, responses: { 200: json('members', z.object({ members: z.array(s.memberSchema) })) } });
  op({ method: 'get', path: '/organization/:org/members/:member', operationId: 'getOrganizationMember', summary: 'One member', tag: 'members', access: ADMIN, params: ORG, responses: { 200: json('the member', s.memberSchema) } });
  op({ method: 'put', path: '/organization/:org/members/:member', operationId: 'setOrganizationMember', summary: 'Add a member or change a role', tag: 'members', access: ADMIN, params: ORG, body: memberBody, responses: { 200: json('role changed', s.memberSchema), 201: json('added', s.memberSchema), 409: json('the last administrator cannot be demoted') } });
  op({ method: 'delete', path: '/organization/:org/members/:member', operationId: 'removeOrganizationMember', summary: 'Remove a member', tag: 'members', access: ADMIN, params: ORG, responses: { ...noContent, 409: json('the last administrator cannot leave') } });

  op({ method: 'get', path: '/organization/:org/robots', operationId: 'getOrgRobots', summary: 'Robot accounts', tag: 'robots', access: `${MEMBER}; tokens and permissions for administrators only`, params: ORG, query: robotListQuery, responses: { 200: json('robots', s.robotListSchema) } });
  op({ method: 'get', path: '/organization/:org/robots/:short', operationId: 'getOrgRobot', summary: 'One robot (with its token unless token=false)', tag: 'robots', access: ADMIN, params: ORG, query: robotQuery, responses: { 200: json('the robot', s.robotSchema) } });
  op({ method: 'put', path: '/organization/:org/robots/:short', operationId: 'createOrgRobot', summary: 'Create a robot', tag: 'robots', access: ADMIN, params: ORG, body: createRobotBody, responses: { 201: json('created, with its token', s.robotSchema), 409: json('exists') } });
  op({ method: 'delete', path: '/organization/:org/robots/:short', operationId: 'deleteOrgRobot', summary: 'Delete a robot', tag: 'robots', access: ADMIN, params: ORG, responses: noContent });
  op({ method: 'post', path: '/organization/:org/robots/:short/regenerate', operationId: 'regenerateOrgRobotToken', summary: 'New token; the old one stops working', tag: 'robots', access: ADMIN, params: ORG, responses: { 200: json('the robot with its new token', s.robotSchema) } });
  op({ method: 'get', path: '/organization/:org/robots/:short/permissions', operationId: 'getOrgRobotPermissions', summary: "A robot's repository permissions", tag: 'robots', access: ADMIN, params: ORG, responses: { 200: json('permissions', s.robotPermissionsSchema) } });

  op({ method: 'put', path: '/organization/:org/permissions/user/:name', operationId: 'setOrganizationPermission', summary: 'A role on every repository that exists now', tag: 'permissions', access: ADMIN, params: ORG, body: roleBody, responses: { 200: json('granted', s.orgPermissionResultSchema) } });
  op({ method: 'get', path: '/organization/:org/prototypes', operationId: 'getOrganizationPrototypePermissions', summary: 'Default permissions', tag: 'permissions', access: ADMIN, params: ORG, responses: { 200: json('prototypes', s.prototypeListSchema) } });
  op({ method: 'post', path: '/organization/:org/prototypes', operationId: 'createOrganizationPrototypePermission', summary: 'A role every repository created later receives', tag: 'permissions', access: ADMIN, params: ORG, body: createPrototypeBody, responses: { 201: json('created', s.prototypeSchema) } });
  op({ method: 'put', path: '/organization/:org/prototypes/:id', operationId: 'updateOrganizationPrototypePermission', summary: 'Change the role', tag: 'permissions', access: ADMIN, params: ORG, body: changePrototypeBody, responses: { 200: json('changed', s.prototypeSchema) } });
  op({ method: 'delete', path: '/organization/:org/prototypes/:id', operationId: 'deleteOrganizationPrototypePermission', summary: 'Remove a default permission', tag: 'permissions', access: ADMIN, params: ORG, responses: noContent });

  const team = { tag: 'teams', params: { ...ORG, team: 'team name', member: 'user name, or robot `<org>+<name>`' }, access: ADMIN };
  op({ ...team, method: 'put', path: '/organization/:org/team/:team', operationId: 'updateOrganizationTeam', summary: 'Create a team or change its role and description', body: teamBody, responses: { 200: json('the team', s.teamSchema) } });
  op({ ...team, method: 'delete', path: '/organization/:org/team/:team', operationId: 'deleteOrganizationTeam', summary: 'Delete a team, its members and its permissions', responses: noContent });
  op({ ...team, method: 'get', path: '/organization/:org/team/:team/members', operationId: 'getOrganizationTeamMembers', summary: "A team's users and robots", responses: { 200: json('members', s.teamMembersSchema) } });
  op({ ...team, method: 'put', path: '/organization/:org/team/:team/members/:member', operationId: 'updateOrganizationTeamMember', summary: 'Add a user or robot', responses: { 200: json('the member', s.teamMemberSchema) } });
  op({ ...team, method: 'delete', path: '/organization/:org/team/:team/members/:member', operationId: 'deleteOrganizationTeamMember', summary: 'Remove a user or robot', responses: noContent });
  op({ ...team, method: 'get', path: '/organization/:org/team/:team/permissions', operationId: 'getOrganizationTeamPermissions', summary: "A team's repository roles", responses: { 200: json('permissions', s.robotPermissionsSchema) } });
  op({ ...team, method: 'put', path: '/organization/:org/permissions/team/:team', operationId: 'setOrganizationTeamPermission', summary: 'A role on every repository now and on those created later, in one action', body: teamPermissionBody, responses: { 200: json('granted', s.teamGrantSchema) } });

  const quota = { tag: 'quota', params: ORG, feature: 'FEATURE_QUOTA_MANAGEMENT' };
  op({ ...quota, method: 'get', path: '/organization/:org/quota', operationId: 'listOrganizationQuota', summary: 'The quota ([] or one)', access: READER, responses: { 200: json('quotas', z.array(s.quotaSchema)) } });
  op({ ...quota, method: 'get', path: '/organization/:org/quota/:id', operationId: 'getOrganizationQuota', summary: 'One quota', access: READER, responses: { 200: json('the quota', s.quotaSchema) } });
  op({ ...quota, method: 'post', path: '/organization/:org/quota', operationId: 'createOrganizationQuota', summary: 'Create the quota', access: ADMIN, body: createQuotaBody, responses: { 201: json('created', s.quotaSchema) } });
  op({ ...quota, method: 'put', path: '/organization/:org/quota/:id', operationId: 'changeOrganizationQuota', summary: 'Change limit or policy', access: ADMIN, body: changeQuotaBody, responses: { 200: json('changed', s.quotaSchema) } });
  op({ ...quota, method: 'delete', path: '/organization/:org/quota/:id', operationId: 'deleteOrganizationQuota', summary: 'Remove the quota', access: ADMIN, responses: noContent });

  const limitOps = { ...quota, params: { ...ORG, id: 'the quota id', limit: 'the limit id' } };
  op({ ...limitOps, method: 'get', path: '/organization/:org/quota/:id/limit', operationId: 'listOrganizationQuotaLimit', summary: 'Warning and Reject thresholds', access: READER, responses: { 200: json('thresholds', z.array(s.quotaLimitSchema)) } });
  op({ ...limitOps, method: 'get', path: '/organization/:org/quota/:id/limit/:limit', operationId: 'getOrganizationQuotaLimit', summary: 'One threshold', access: READER, responses: { 200: json('the threshold', s.quotaLimitSchema) } });
  op({ ...limitOps, method: 'post', path: '/organization/:org/quota/:id/limit', operationId: 'createOrganizationQuotaLimit', summary: 'Add a threshold (one Reject at most)', access: ADMIN, body: quotaLimitBody, responses: { 201: json('created', z.literal('Created')) } });
  op({ ...limitOps, method: 'put', path: '/organization/:org/quota/:id/limit/:limit', operationId: 'changeOrganizationQuotaLimit', summary: 'Change a threshold', access: ADMIN, body: changeQuotaLimitBody, responses: { 200: json('the quota', s.quotaSchema) } });
  op({ ...limitOps, method: 'delete', path: '/organization/:org/quota/:id/limit/:limit', operationId: 'deleteOrganizationQuotaLimit', summary: 'Remove a threshold', access: ADMIN, responses: noContent });
  const userQuota = { tag: 'quota', feature: 'FEATURE_QUOTA_MANAGEMENT', access: 'any user' };
  op({ ...userQuota, method: 'get', path: '/user/quota', operationId: 'listUserQuota', summary: "The caller's quotas: always [] (users have no namespaces of their own)", responses: { 200: json('quotas', z.array(s.quotaSchema)) } });
  op({ ...userQuota, method: 'get', path: '/user/quota/:id', operationId: 'getUserQuota', summary: 'Always 404', responses: {} });
  op({ ...userQuota, method: 'get', path: '/user/quota/:id/limit', operationId: 'listUserQuotaLimit', summary: 'Always 404', responses: {} });
  op({ ...userQuota, method: 'get', path: '/user/quota/:id/limit/:limit', operationId: 'getUserQuotaLimit', summary: 'Always 404', responses: {} });

  op({ method: 'get', path: '/organization/:org/logs', operationId: 'listOrgLogs', summary: 'Audit log (JSON, or CSV with format=csv)', tag: 'logs', access: ADMIN, params: ORG, query: logQuery, responses: { 200: json('a page of entries, newest first', s.logPageSchema) } });
  op({ method: 'get', path: '/organization/:org/aggregatelogs', operationId: 'getAggregateOrgLogs', summary: 'Entries per kind and day', tag: 'logs', access: ADMIN, params: ORG, query: aggregateLogsQuery, responses: { 200: json('counts', s.aggregatedLogsSchema) } });
  op({ method: 'post', path: '/organization/:org/exportlogs', operationId: 'exportOrgLogs', summary: 'Export a range of the log', tag: 'logs', access: ADMIN, params: ORG, query: exportLogsQuery, body: exportLogsBody, responses: { 200: json('where to download it', s.logExportSchema) } });
  op({ method: 'get', path: '/organization/:org/exportlogs/:id', operationId: 'downloadLogExport', summary: 'Download an export', tag: 'logs', access: `${ADMIN}; a repository's export also its administrators`, params: ORG, responses: { 200: json('the export', s.logExportFileSchema) } });
}
