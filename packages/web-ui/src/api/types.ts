/** Shapes of Entrepot's `/api/v1` answers (Quay-compatible where Quay has the concept). */

export type RepoRole = 'read' | 'write' | 'admin';
export type MemberRole = 'admin' | 'member';

export interface UserOrganization {
  name: string;
  role?: MemberRole;
  is_org_admin: boolean;
  public: boolean;
}

export interface CurrentUser {
  anonymous: boolean;
  username: string;
  email?: string | null;
  super_user: boolean;
  kind: 'user' | 'robot';
  is_robot: boolean;
  organizations: UserOrganization[];
}

/** Quay's usage report, present once quotas exist on the server. */
export interface QuotaReport {
  quota_bytes?: number;
  configured_quota?: number | null;
}

export interface Organization {
  name: string;
  is_public: boolean;
  is_admin: boolean;
  is_member: boolean;
  created: string;
  repository_count: number;
  member_count?: number;
  robot_count?: number;
  email?: string | null;
  quota_report?: QuotaReport;
}

export interface RepositorySummary {
  namespace: string;
  name: string;
  description: string;
  is_public: boolean;
  size: number;
  tag_count: number;
  /** Seconds since the epoch. */
  last_modified: number | null;
}

export interface RepositoryList {
  repositories: RepositorySummary[];
  next_page?: string;
}

export interface RepositoryDetail extends RepositorySummary {
  can_write: boolean;
  can_admin: boolean;
  created: string;
}

export interface Tag {
  name: string;
  manifest_digest: string;
  is_manifest_list: boolean;
  media_type: string;
  size: number;
  start_ts: number;
  last_modified: string;
  last_pulled: string | null;
  pull_count: number;
  pinned: boolean;
}

export interface TagList {
  tags: Tag[];
  page: number;
  has_additional: boolean;
}

export type OnUpstream404 = 'remove' | 'keep';

/** A cache organization's configuration as the API shows it: the password is never returned. */
export interface ProxyCacheConfig {
  upstream_registry: string;
  upstream_registry_username: string | null;
  upstream_registry_password_set: boolean;
  expiration_s: number;
  insecure: boolean;
  upstream_endpoint: string | null;
  stale_if_error_s: number;
  on_upstream_404: OnUpstream404;
}

/**
 * What the form sends. `upstream_registry_password`: omitted keeps the stored
 * password, `null` removes it, a string replaces it.
 */
export interface ProxyCacheInput {
  upstream_registry: string;
  upstream_registry_username: string | null;
  upstream_registry_password?: string | null;
  expiration_s?: number;
  insecure: boolean;
  upstream_endpoint: string | null;
  stale_if_error_s?: number;
  on_upstream_404: OnUpstream404;
}

export interface ProxyCacheValidation {
  valid: boolean;
  /** The upstream answered; no credentials were given to check. */
  anonymous?: boolean;
  error_message?: string;
}

/** What a flush removed, and the organization's storage use afterwards. */
export interface FlushResult {
  removed: { tags: number; manifests: number };
  usage_bytes?: number;
}

/** A flush of the whole cache organization, one repository, or one tag of it. */
export interface FlushScope {
  repository?: string;
  tag?: string;
}

export interface Robot {
  name: string;
  description: string;
  created: string;
  last_accessed: string | null;
  /** Only in the answers to create and regenerate. */
  token?: string;
}

export interface PermissionSubject {
  name: string;
  kind: 'user';
  is_robot: boolean;
  is_org_member: boolean;
}

export interface Prototype {
  id: string;
  role: RepoRole;
  activating_user: null;
  delegate: PermissionSubject;
}

export interface Member {
  name: string;
  kind: 'user';
  role: MemberRole;
}

export interface LogEntry {
  kind: string;
  metadata: Record<string, unknown>;
  performer: { kind: string; name: string; is_robot: boolean };
  ip: string | null;
  datetime: string;
  timestamp: string;
  namespace: string;
  repository: string | null;
  user_agent: string | null;
}

export interface LogPage {
  start_time: string | null;
  end_time: string | null;
  logs: LogEntry[];
  next_page?: string;
}

export interface LogFilter {
  /** Comma-separated kinds. */
  kind?: string;
  performer?: string;
  repository?: string;
  /** `MM/DD/YYYY` (inclusive UTC days), an ISO date, or epoch seconds. */
  starttime?: string;
  endtime?: string;
}

export interface QuotaLimit {
  id: string | number;
  type: string;
  limit_percent: number;
}

/** An organization quota (Quay's shape; Entrepot may add its eviction policy and usage). */
export interface Quota {
  id: string | number;
  limit_bytes: number;
  limit?: string;
  default_config?: boolean;
  limits?: QuotaLimit[];
  eviction_policy?: string;
  usage_bytes?: number;
}

export interface QuotaInput {
  limit_bytes: number;
  eviction_policy?: string;
}

export interface Vulnerability {
  Name: string;
  Severity: string;
  NamespaceName?: string;
  Link?: string;
  FixedBy?: string;
  Description?: string;
}

export interface Feature {
  Name: string;
  Version: string;
  NamespaceName?: string;
  VersionFormat?: string;
  AddedBy?: string;
  Vulnerabilities?: Vulnerability[];
}

/** Quay's security report for one manifest (Clair v4 results). */
export interface SecurityReport {
  status: string;
  data: { Layer: { Features: Feature[] } } | null;
}
