import { z } from 'zod';
import { aggregateLogsQuery, exportLogsBody, exportLogsQuery } from '../routes/api/log-summary-routes';
import { logQuery } from '../routes/api/log-routes';
import { roleBody } from '../routes/api/permission-routes';
import { changeRepoBody, changeVisibilityBody, createRepoBody, listQuery } from '../routes/api/repository-routes';
import { tagQuery } from '../routes/api/tag-handlers';
import { teamPermissionBody } from '../routes/api/team-routes';
import type { ApiDocs } from './api-docs';
import * as s from './api-schemas';

const REPO = { repository: '`org/path`; the path may contain slashes (`library/postgres`)' };
const PULLER = 'callers who may pull the repository';
const ADMIN = 'administrators of the repository';
const json = (description: string, schema?: z.ZodType) => ({ description, ...(schema ? { schema } : {}) });

/** Repositories, their tags, permissions and logs (`/repository/{org}/{path...}/...`). */
export function describeRepositoryOperations(docs: ApiDocs): void {
  const op = docs.operation.bind(docs);
  const repo = { tag: 'repositories', params: REPO };

  op({ method: 'get', path: '/repository', operationId: 'listRepos', summary: "An organization's repositories the caller may pull", tag: 'repositories', access: 'members, and anyone for public repositories', query: listQuery, responses: { 200: json('a page of repositories', s.repositoryListSchema) } });
  op({ method: 'post', path: '/repository', operationId: 'createRepo', summary: 'Create an empty repository', tag: 'repositories', access: 'callers who may push to the organization', body: createRepoBody, responses: { 201: json('created', s.createdRepositorySchema), 409: json('exists') } });
  op({ ...repo, method: 'get', path: '/repository/{repository}', operationId: 'getRepo', summary: 'A repository', access: PULLER, responses: { 200: json('the repository', s.repositoryDetailSchema) } });
  op({ ...repo, method: 'put', path: '/repository/{repository}', operationId: 'updateRepo', summary: 'Change the description', access: ADMIN, body: changeRepoBody, responses: { 200: json('the repository', s.repositoryDetailSchema) } });
  op({ ...repo, method: 'delete', path: '/repository/{repository}', operationId: 'deleteRepository', summary: 'Delete a repository', access: ADMIN, responses: { 204: json('deleted') } });
  op({ ...repo, method: 'post', path: '/repository/{repository}/changevisibility', operationId: 'changeRepoVisibility', summary: 'Public or private', access: ADMIN, body: changeVisibilityBody, responses: { 200: json('changed', s.visibilityChangeSchema) } });

  const tags = { tag: 'tags', params: { ...REPO, tag: 'tag name' } };
  op({ ...tags, method: 'get', path: '/repository/{repository}/tag/', operationId: 'listRepoTags', summary: 'Tags with size and pull statistics', access: PULLER, query: tagQuery, responses: { 200: json('a page of tags', s.tagListSchema) } });
  op({ ...tags, method: 'delete', path: '/repository/{repository}/tag/{tag}', operationId: 'deleteFullTag', summary: 'Delete a tag', access: 'callers who may delete in the repository', responses: { 204: json('deleted') } });
  op({ ...tags, method: 'put', path: '/repository/{repository}/tag/{tag}/pin', operationId: 'pinTag', summary: 'Pin: never evicted', access: ADMIN, responses: { 200: json('pinned', s.pinnedSchema) } });
  op({ ...tags, method: 'delete', path: '/repository/{repository}/tag/{tag}/pin', operationId: 'unpinTag', summary: 'Unpin', access: ADMIN, responses: { 200: json('unpinned', s.pinnedSchema) } });

  const perms = { tag: 'permissions', params: { ...REPO, username: 'user name, or robot `<org>+<name>`' } };
  op({ ...perms, method: 'get', path: '/repository/{repository}/permissions/user/', operationId: 'listRepoUserPermissions', summary: 'Explicit permissions of users and robots', access: ADMIN, responses: { 200: json('permissions by name', s.repoPermissionListSchema) } });
  op({ ...perms, method: 'get', path: '/repository/{repository}/permissions/user/{username}', operationId: 'getUserPermissions', summary: "One account's role", access: ADMIN, responses: { 200: json('the role', s.repoPermissionSchema) } });
  op({ ...perms, method: 'put', path: '/repository/{repository}/permissions/user/{username}', operationId: 'changeUserPermissions', summary: 'Grant or change a role', access: ADMIN, body: roleBody, responses: { 200: json('granted', s.repoPermissionSchema) } });
  op({ ...perms, method: 'delete', path: '/repository/{repository}/permissions/user/{username}', operationId: 'deleteUserPermissions', summary: 'Revoke a role', access: ADMIN, responses: { 204: json('revoked') } });

  const teamPerms = { tag: 'permissions', params: { ...REPO, teamname: 'team name' } };
  op({ ...teamPerms, method: 'get', path: '/repository/{repository}/permissions/team/', operationId: 'listRepoTeamPermissions', summary: "Teams' roles on the repository", access: ADMIN, responses: { 200: json('roles by team name', s.repoTeamPermissionListSchema) } });
  op({ ...teamPerms, method: 'get', path: '/repository/{repository}/permissions/team/{teamname}', operationId: 'getTeamPermissions', summary: "One team's role", access: ADMIN, responses: { 200: json('the role', s.repoTeamPermissionSchema) } });
  op({ ...teamPerms, method: 'put', path: '/repository/{repository}/permissions/team/{teamname}', operationId: 'changeTeamPermissions', summary: "Grant or change a team's role", access: ADMIN, body: teamPermissionBody, responses: { 200: json('granted', s.repoTeamPermissionSchema) } });
  op({ ...teamPerms, method: 'delete', path: '/repository/{repository}/permissions/team/{teamname}', operationId: 'deleteTeamPermissions', summary: "Revoke a team's role", access: ADMIN, responses: { 204: json('revoked') } });

  const logs = { tag: 'logs', params: REPO };
  op({ ...logs, method: 'get', path: '/repository/{repository}/logs', operationId: 'listRepoLogs', summary: "A repository's audit log", access: ADMIN, query: logQuery.omit({ repository: true }), responses: { 200: json('a page of entries', s.logPageSchema) } });
  op({ ...logs, method: 'get', path: '/repository/{repository}/aggregatelogs', operationId: 'getAggregateRepoLogs', summary: 'Entries per kind and day', access: ADMIN, query: aggregateLogsQuery, responses: { 200: json('counts', s.aggregatedLogsSchema) } });
  op({ ...logs, method: 'post', path: '/repository/{repository}/exportlogs', operationId: 'exportRepoLogs', summary: 'Export a range of the log', access: ADMIN, query: exportLogsQuery, body: exportLogsBody, responses: { 200: json('where to download it', s.logExportSchema) } });
}
