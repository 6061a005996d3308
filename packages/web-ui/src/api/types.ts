/**
 * The API's types, generated: `openapi-types.ts` is produced by openapi-typescript
 * from `openapi.json`, the server's OpenAPI document (which the server generates
 * from the zod schemas that validate its requests). `npm run build` regenerates
 * `openapi-types.ts` first, so a schema change that breaks the UI fails the build;
 * `npm run api:generate` refreshes `openapi.json` from the built server.
 * This file only gives the generated types short names.
 */
import type { components, operations } from './openapi-types';

type Schemas = components['schemas'];

export type RepoRole = Schemas['RepoRole'];
export type MemberRole = Schemas['MemberRole'];
export type UserOrganization = Schemas['UserOrganization'];
export type CurrentUser = Schemas['CurrentUser'];
export type QuotaReport = Schemas['QuotaReport'];
export type Organization = Schemas['Organization'];
export type RepositorySummary = Schemas['RepositorySummary'];
export type RepositoryList = Schemas['RepositoryList'];
export type RepositoryDetail = Schemas['RepositoryDetail'];
export type Tag = Schemas['Tag'];
export type ScanSummary = NonNullable<Tag['security']>;
export type Severity = Schemas['Severity'];
/** An organization's pull policy (`/organization/{org}/securitypolicy`). */
export type SecurityPolicy = Schemas['SecurityPolicy'];
/** What the policy form sends (`"off"` or null turns the severity threshold off). */
export type SecurityPolicyInput = operations['changeOrganizationSecurityPolicy']['requestBody']['content']['application/json'];
/** Quay's security report for one manifest (Clair v4 results). */
export type SecurityReport = Schemas['SecurityReport'];
export type Feature = Schemas['Feature'];
export type Vulnerability = Schemas['Vulnerability'];
export type TagList = Schemas['TagList'];
export type OnUpstream404 = Schemas['OnUpstream404'];
export type ProxyCacheConfig = Schemas['ProxyCacheConfig'];
export type ProxyCacheNotConfigured = Schemas['ProxyCacheNotConfigured'];
/** What the cache form sends. `upstream_registry_password`: omitted keeps the stored one, null removes it. */
export type ProxyCacheInput = Schemas['ProxyCacheInput'];
export type FlushResult = Schemas['FlushResult'];
export type StatsWindow = Schemas['StatsWindow'];
/** `GET /organization/{org}/proxycache/stats?window=`. */
export type CacheStats = Schemas['CacheStats'];
export type CacheStatsBucket = Schemas['CacheStatsBucket'];
export type CacheStatsRepository = Schemas['CacheStatsRepository'];
export type JobRun = Schemas['JobRun'];
/** A referrer (signature, SBOM, attestation) of a manifest in a cache organization. */
export type Referrer = Schemas['Referrer'];
/** A manifest's referrers and whether one of the organization's keys signed it (`verified: null`: no keys configured). */
export type ReferrersReport = Schemas['ReferrersReport'];
/** A flush of the whole cache organization, one repository or one tag of it. */
export type FlushScope = NonNullable<operations['flushProxyCache']['parameters']['query']>;
export type Robot = Schemas['Robot'];
export type PermissionSubject = Schemas['PermissionSubject'];
export type Prototype = Schemas['Prototype'];
export type Member = Schemas['Member'];
export type LogEntry = Schemas['LogEntry'];
export type LogPage = Schemas['LogPage'];
/** The filters of the logs tab (the query parameters of the organization's log). */
export type LogFilter = Pick<NonNullable<operations['listOrgLogs']['parameters']['query']>, 'kind' | 'performer' | 'repository' | 'starttime' | 'endtime'>;
export type QuotaLimit = Schemas['QuotaLimit'];
export type Quota = Schemas['Quota'];
export type QuotaInput = operations['createOrganizationQuota']['requestBody']['content']['application/json'];

/** The answer of the validation button: Quay's "Valid"/"Anonymous", or the server's 400 message. */
export interface ProxyCacheValidation {
  valid: boolean;
  /** The upstream answered; no credentials were given to check. */
  anonymous?: boolean;
  error_message?: string;
}

