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
  /** Scan status and vulnerability counts of the tag's manifest (null: never queued, or scanning off). */
  security?: ScanSummary | null;
}

export interface ScanSummary {
  status: 'queued' | 'scanned' | 'failed' | 'unsupported';
  counts: Record<string, number>;
  highest: string | null;
}

/** An organization's pull policy (`/organization/{org}/securitypolicy`). */
export interface SecurityPolicy {
  block_pulls_at_severity: string | null;
  block_unscanned: boolean;
  allowlist: string[];
  scanner_enabled?: boolean;
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
  /** Lifecycle settings (null: off); absent on servers without cache lifecycle jobs. */
  idle_expiration_s?: number | null;
  refresh_min_pulls?: number | null;
  prefetch_changed_tags?: boolean;
  low_watermark?: number | null;
  /** Pulls need a valid cosign signature by one of `signature_public_keys` (PEM). */
  require_signature: boolean;
  signature_public_keys: string[];
  signature_key_fingerprints: string[];
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
  idle_expiration_s?: number | null;
  refresh_min_pulls?: number | null;
  prefetch_changed_tags?: boolean;
  low_watermark?: number | null;
  require_signature?: boolean;
  signature_public_keys?: string[];
}

export type StatsWindow = '24h' | '7d' | '30d';

/** One chart bucket of `/proxycache/stats`. */
export interface CacheStatsBucket {
  start: string;
  cache_requests: number;
  upstream_requests: number;
  cache_bytes: number;
  upstream_bytes: number;
  stale_serves: number;
  evictions: number;
  expiries: number;
}

export interface CacheStatsRepository {
  repository: string;
  pulls: number;
  bytes_saved: number;
  cache_requests: number;
  upstream_requests: number;
}

/** `GET /organization/{org}/proxycache/stats?window=`. */
export interface CacheStats {
  window: StatsWindow;
  from: string;
  to: string;
  bucket_seconds: number;
  requests: { cache: number; upstream: number; hit_ratio: number | null };
  bytes: { cache: number; upstream: number; saved: number; hit_ratio: number | null };
  pulls: number;
  revalidations: { unchanged: number; changed: number };
  stale_serves: number;
  evictions: { count: number; bytes: number };
  expiries: { count: number; bytes: number };
  upstream: {
    host: string;
    breaker: string;
    errors: Record<string, number>;
    last_error: { kind: string; at: string } | null;
    rate_limit: { remaining: number; at: string; age_s: number } | null;
  };
  quota: { limit_bytes: number | null; usage_bytes: number; usage_ratio: number | null };
  top_repositories: { by_pulls: CacheStatsRepository[]; by_bytes_saved: CacheStatsRepository[] };
  series: CacheStatsBucket[];
}

export interface ProxyCacheValidation {
  valid: boolean;
  upstream?: string;
  error_message?: string;
}

/** A referrer (signature, SBOM, attestation) of a manifest in a cache organization. */
export interface Referrer {
  artifact_type: string | null;
  media_type: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

/** A manifest's referrers and whether one of the organization's keys signed it (`verified: null`: no keys configured). */
export interface ReferrersReport {
  digest: string;
  referrers: Referrer[];
  signature: { require_signature: boolean; verified: boolean | null; key_fingerprint: string | null; via: string | null };
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
  /** Why a scan failed or is unsupported. */
  reason?: string;
  data: { Layer: { Features: Feature[] } } | null;
}
