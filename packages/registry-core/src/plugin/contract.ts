import type { Readable } from 'node:stream';
import type { Router } from 'express';
import type { ApiDocs } from '../http/openapi/api-docs';
import type { Config } from '../config/config';
import type { Migration } from '../db/database';
import type { BlobStat, ByteRange } from '../storage/blob-store';
import type { JobHandler } from '../jobs/job-queue';
import type { Digest } from '../oci/digest';
import type { Reference } from '../oci/names';
import type { Principal } from '../auth/principal';
import type { ReferrerDescriptor } from '../oci/manifest';
import type { RepositoryRow, OrganizationRow } from '../services/repository-service';
import type { CorePorts } from './ports';

/** How a pull was satisfied (or, `blocked`, refused by a pull guard), for audit logs and metrics. */
export type CacheResult = 'hit' | 'miss' | 'revalidated' | 'stale' | 'bypass' | 'blocked';

/** How a `/v2/<name>` path was mapped to an organization. */
export type RouteKind = 'explicit' | 'ns' | 'default';

/** The organization and repository a registry request addresses. */
export interface RepoTarget {
  org: OrganizationRow;
  /** Path below the organization, e.g. `library/postgres`. */
  repoName: string;
  /** `<org>/<repoName>` as stored. */
  fullName: string;
  route: RouteKind;
  /** The `ns` query parameter, when the client sent one. */
  ns?: string;
}

export interface LookupContext {
  target: RepoTarget;
  /** The repository row when it exists locally. */
  repository: RepositoryRow | null;
  principal: Principal;
  requestId: string;
  clientIp: string;
  userAgent: string;
  /** True for HEAD requests: sources should not download bodies. */
  headOnly: boolean;
  /** The request's Range header, if any: a source may answer a part without fetching the whole blob first. */
  range?: string;
}

export interface ManifestHit {
  digest: Digest;
  mediaType: string;
  size: number;
  /** Exact bytes as stored (manifests are at most 4 MiB). */
  body: Buffer;
  cacheResult?: CacheResult;
}

export interface BlobHit {
  digest: Digest;
  size: number;
  /** Opens the content (a range of it); not called for HEAD. Throws a RegistryError on failure. */
  open(range?: ByteRange): Promise<Readable>;
  /** Where a client may fetch the blob directly instead (presigned URL), if anywhere. */
  redirectUrl?(): Promise<string | null>;
  cacheResult?: CacheResult;
}

/**
 * A place content can come from after local storage missed. Consulted in
 * registration order. Return null to pass to the next source; throw a
 * RegistryError to stop the chain with that error.
 */
export interface LookupSource {
  readonly id: string;
  findManifest(ref: Reference, ctx: LookupContext): Promise<ManifestHit | null>;
  /**
   * Called when a tag was found locally, before it is served: a source owning the
   * repository may revalidate it and return a newer hit. Return null to keep `local`.
   */
  revalidateTag?(tag: string, local: ManifestHit, ctx: LookupContext): Promise<ManifestHit | null>;
  /**
   * Called for blobs that are not linked to the repository locally; `stored` is what
   * the blob store holds (another repository's copy: the source decides whether this
   * one may see it), null when it holds nothing.
   */
  findBlob(digest: Digest, ctx: LookupContext, stored: BlobStat | null): Promise<BlobHit | null>;
  /** Tags as the source knows them (merged with local tags by the caller), or null. */
  listTags?(ctx: LookupContext, local: string[]): Promise<string[] | null>;
  /**
   * Referrer descriptors of `subject` as the source knows them, unfiltered (the
   * caller merges them with `local` and applies an `artifactType` filter), or null.
   */
  listReferrers?(subject: Digest, ctx: LookupContext, local: ReferrerDescriptor[]): Promise<ReferrerDescriptor[] | null>;
}

/**
 * Decides whether a manifest found by the lookup chain may be served (a
 * signature policy, for example). Throws DENIED, naming the policy, to refuse it.
 */
export interface PullGuard {
  checkPull(ref: Reference, hit: ManifestHit, ctx: LookupContext): Promise<void>;
}

/** A manifest or blob a client was answered, told to observers after the response (statistics). */
export interface PullEvent {
  target: RepoTarget;
  kind: 'manifest' | 'blob';
  method: 'GET' | 'HEAD';
  cacheResult: CacheResult;
  /** Body bytes of the answer (the range's length for a range; 0 for HEAD). */
  bytes: number;
  /** The tag of a manifest pulled by tag. */
  tag?: string;
}

/** Maps a `/v2/<name>` path that names no organization (mirror-style requests). */
export interface NameResolver {
  targetOf(name: string, query: { ns?: string }): Promise<RepoTarget | null>;
}

/** Refuses writes (push, delete, mount) to repositories a plugin owns. Throws DENIED. */
export interface WriteGuard {
  checkWrite(target: RepoTarget, action: 'push' | 'delete'): Promise<void>;
}

export interface RegistrationPoints {
  addLookupSource(source: LookupSource): void;
  addNameResolver(resolver: NameResolver): void;
  addWriteGuard(guard: WriteGuard): void;
  addPullGuard(guard: PullGuard): void;
  /**
   * Routes mounted under `/api/v1`, after authentication middleware. Describe each
   * route with `docs.operation(...)` (its zod schemas) for the OpenAPI document.
   */
  addApiRoutes(register: (router: Router, docs: ApiDocs) => void): void;
  addJobHandler<T>(name: string, handler: JobHandler<T>, options?: { concurrency?: number }): void;
  addMigrations(migrations: Migration[]): void;
  onShutdown(hook: () => Promise<void>): void;
  /** Called after an organization's quota was created or changed (to evict down to a lower limit). */
  onQuotaChanged(hook: (orgId: number) => Promise<void>): void;
  /** Called synchronously after each manifest or blob answer; must not throw nor block (batch the work). */
  onPull(observer: (event: PullEvent) => void): void;
}

export interface RegistryPlugin {
  readonly id: string;
  /** Synchronous: declares extension points before the core starts. */
  register(points: RegistrationPoints): void;
  /** Called after migrations, before the server listens. */
  init(core: CorePorts): Promise<void>;
}

/** What a plugin module exports: a factory, so that nothing is module-level state. */
export type PluginFactory = (config: Config) => RegistryPlugin | null;
