import { z } from 'zod';
import { scanSummarySchema } from './security-operations';

/**
 * Response bodies of the core's `/api/v1` operations, for the OpenAPI document
 * (the web UI's client types are generated from it). Each `id` becomes a
 * component name. Keep them in step with the handlers: the compatibility and
 * OpenAPI tests check real answers against them.
 */

const quayDate = z.string().meta({ description: 'RFC 2822 date, as Quay writes it' });

export const repoRoleSchema = z.enum(['read', 'write', 'admin']).meta({ id: 'RepoRole' });
export const memberRoleSchema = z.enum(['admin', 'member']).meta({ id: 'MemberRole' });

export const userOrganizationSchema = z
  .object({ name: z.string(), role: memberRoleSchema.optional(), is_org_admin: z.boolean(), public: z.boolean() })
  .meta({ id: 'UserOrganization' });

export const currentUserSchema = z
  .object({
    anonymous: z.boolean(),
    username: z.string(),
    email: z.string().nullable().optional(),
    super_user: z.boolean(),
    kind: z.enum(['user', 'robot']),
    is_robot: z.boolean(),
    created: quayDate.optional(),
    organizations: z.array(userOrganizationSchema),
  })
  .meta({ id: 'CurrentUser' });

export const userSchema = z
  .object({ username: z.string(), email: z.string().nullable(), super_user: z.boolean(), kind: z.literal('user'), created: quayDate, password: z.string().optional() })
  .meta({ id: 'User', description: '`password` only when the server generated it, once' });

export const quotaLimitSchema = z
  .object({ id: z.number().int(), type: z.enum(['Warning', 'Reject']), limit_percent: z.number().int() })
  .meta({ id: 'QuotaLimit' });

export const quotaSchema = z
  .object({
    id: z.number().int().meta({ description: 'one quota per organization: the id is the organization\'s' }),
    limit_bytes: z.number().int(),
    eviction_policy: z.enum(['lru', 'lfu']),
    default_config: z.boolean(),
    default_config_exists: z.boolean(),
    limits: z.array(quotaLimitSchema),
  })
  .meta({ id: 'Quota' });

export const quotaReportSchema = z
  .object({ quota_bytes: z.number().int(), configured_quota: z.number().int().nullable() })
  .meta({ id: 'QuotaReport' });

export const teamSchema = z
  .object({
    name: z.string(),
    description: z.string(),
    role: z.enum(['member', 'creator', 'admin']),
    can_view: z.boolean(),
    repo_count: z.number().int(),
    member_count: z.number().int(),
    is_synced: z.boolean(),
  })
  .meta({ id: 'Team' });

export const teamMemberSchema = z.object({ name: z.string(), kind: z.literal('user'), is_robot: z.boolean(), invited: z.boolean() }).meta({ id: 'TeamMember' });

export const teamMembersSchema = z.object({ name: z.string(), members: z.array(teamMemberSchema), can_edit: z.boolean() }).meta({ id: 'TeamMembers' });

export const teamGrantSchema = z
  .object({ name: z.string(), role: z.enum(['read', 'write', 'admin']), repositories: z.number().int(), future_repositories: z.boolean() })
  .meta({ id: 'TeamGrant' });

export const organizationSchema = z
  .object({
    name: z.string(),
    is_public: z.boolean(),
    is_admin: z.boolean(),
    is_member: z.boolean(),
    created: quayDate,
    repository_count: z.number().int(),
    member_count: z.number().int().optional(),
    robot_count: z.number().int().optional(),
    email: z.string().nullable().optional(),
    tag_expiration_s: z.number().int().optional(),
    teams: z.record(z.string(), teamSchema).optional(),
    ordered_teams: z.array(z.string()).optional(),
    quotas: z.array(quotaSchema).optional(),
    quota_report: quotaReportSchema.optional(),
  })
  .meta({ id: 'Organization', description: 'members also see counts, teams and quotas; administrators the contact email' });

export const createdOrganizationSchema = z.object({ name: z.string(), is_public: z.boolean() }).meta({ id: 'CreatedOrganization' });

export const memberSchema = z.object({ name: z.string(), kind: z.literal('user'), role: memberRoleSchema }).meta({ id: 'Member' });

export const repositorySummarySchema = z
  .object({
    namespace: z.string(),
    name: z.string(),
    kind: z.literal('image'),
    state: z.string(),
    description: z.string(),
    is_public: z.boolean(),
    is_starred: z.boolean(),
    size: z.number().int(),
    tag_count: z.number().int(),
    last_modified: z.number().int().nullable().meta({ description: 'seconds since the epoch' }),
  })
  .meta({ id: 'RepositorySummary' });

export const repositoryListSchema = z
  .object({ repositories: z.array(repositorySummarySchema), next_page: z.string().optional() })
  .meta({ id: 'RepositoryList' });

export const repositoryDetailSchema = repositorySummarySchema
  .extend({ is_organization: z.boolean(), can_write: z.boolean(), can_admin: z.boolean(), created: quayDate })
  .meta({ id: 'RepositoryDetail' });

export const createdRepositorySchema = z.object({ namespace: z.string(), name: z.string(), kind: z.literal('image') }).meta({ id: 'CreatedRepository' });

export const repoTeamPermissionSchema = z.object({ name: z.string(), role: repoRoleSchema }).meta({ id: 'RepoTeamPermission' });

export const repoTeamPermissionListSchema = z.object({ permissions: z.record(z.string(), repoTeamPermissionSchema) }).meta({ id: 'RepoTeamPermissionList' });

export const tagSchema = z
  .object({
    name: z.string(),
    manifest_digest: z.string(),
    is_manifest_list: z.boolean(),
    media_type: z.string(),
    size: z.number().int(),
    reversion: z.boolean(),
    start_ts: z.number().int(),
    last_modified: quayDate,
    last_pulled: quayDate.nullable(),
    pull_count: z.number().int(),
    pinned: z.boolean(),
    security: scanSummarySchema.nullable().optional().meta({ description: 'scan status of the manifest; null: never queued, or scanning is off' }),
  })
  .meta({ id: 'Tag' });

export const tagListSchema = z.object({ tags: z.array(tagSchema), page: z.number().int(), has_additional: z.boolean() }).meta({ id: 'TagList' });

export const pinnedSchema = z.object({ name: z.string(), pinned: z.boolean() }).meta({ id: 'TagPin' });

export const robotSchema = z
  .object({
    name: z.string().meta({ description: '`<org>+<short>`' }),
    description: z.string(),
    created: quayDate,
    last_accessed: quayDate.nullable(),
    unstructured_metadata: z.record(z.string(), z.unknown()),
    token: z.string().nullable().optional().meta({ description: 'administrators only' }),
    teams: z.array(z.object({ name: z.string() })).optional(),
    repositories: z.array(z.string()).optional(),
  })
  .meta({ id: 'Robot' });

export const robotListSchema = z.object({ robots: z.array(robotSchema) }).meta({ id: 'RobotList' });

export const robotPermissionsSchema = z
  .object({ permissions: z.array(z.object({ repository: z.object({ name: z.string(), is_public: z.boolean() }), role: repoRoleSchema })) })
  .meta({ id: 'RobotPermissions' });

export const permissionSubjectSchema = z
  .object({ name: z.string(), kind: z.literal('user'), is_robot: z.boolean(), is_org_member: z.boolean() })
  .meta({ id: 'PermissionSubject', description: 'robots are kind `user` with `is_robot: true`, as in Quay' });

export const repoPermissionSchema = permissionSubjectSchema.extend({ role: repoRoleSchema }).meta({ id: 'RepoPermission' });

export const repoPermissionListSchema = z.object({ permissions: z.record(z.string(), repoPermissionSchema) }).meta({ id: 'RepoPermissionList' });

export const orgPermissionResultSchema = z.object({ name: z.string(), role: repoRoleSchema, repositories: z.number().int() }).meta({ id: 'OrgPermissionResult' });

export const prototypeSchema = z
  .object({ id: z.string(), role: repoRoleSchema, activating_user: z.null(), delegate: z.union([permissionSubjectSchema, z.object({ name: z.string(), kind: z.literal('team') })]) })
  .meta({ id: 'Prototype' });

export const prototypeListSchema = z.object({ prototypes: z.array(prototypeSchema) }).meta({ id: 'PrototypeList' });

export const logEntrySchema = z
  .object({
    kind: z.string(),
    metadata: z.record(z.string(), z.unknown()),
    performer: z.object({ kind: z.string(), name: z.string(), is_robot: z.boolean() }),
    ip: z.string().nullable(),
    datetime: quayDate,
    timestamp: z.string().meta({ description: 'ISO 8601' }),
    namespace: z.string(),
    repository: z.string().nullable(),
    user_agent: z.string().nullable(),
  })
  .meta({ id: 'LogEntry' });

export const logPageSchema = z
  .object({ start_time: quayDate.nullable(), end_time: quayDate.nullable(), logs: z.array(logEntrySchema), next_page: z.string().optional() })
  .meta({ id: 'LogPage' });

export const aggregatedLogsSchema = z
  .object({ aggregated: z.array(z.object({ kind: z.string(), count: z.number().int(), datetime: quayDate })) })
  .meta({ id: 'AggregatedLogs' });

export const logExportSchema = z.object({ export_id: z.string(), download_url: z.string() }).meta({ id: 'LogExport' });

export const logExportFileSchema = z
  .object({
    export_id: z.string(),
    details: z.object({ namespace: z.string(), repository: z.string().nullable(), start_time: quayDate, end_time: quayDate }),
    logs: z.array(logEntrySchema),
    truncated: z.boolean(),
  })
  .meta({ id: 'LogExportFile' });

export const visibilityChangeSchema = z.object({ success: z.boolean(), visibility: z.enum(['public', 'private']) }).meta({ id: 'VisibilityChange' });
