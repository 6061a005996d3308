import type { Config } from '../config/config';
import type { Db } from '../db/database';
import type { PointReads } from '../db/point-reads';
import type { BlobStore } from '../storage/blob-store';
import type { Digest } from '../oci/digest';
import type { BlobFill, FillRequest } from '../arrivals/blob-fill';
import type { JobQueue } from '../jobs/job-queue';
import type { Logger } from '../logging/logger';
import type { CoreMetrics } from '../metrics/metrics';
import type { ContentService } from '../services/content-service';
import type { RepositoryService } from '../services/repository-service';
import type { AuditLog } from '../audit/audit-log';
import type { SecretBox } from '../auth/secret-box';
import type { Clock } from '../services/clock';
import type { HttpHelpers } from '../http/http-helpers';
import type { QuotaService } from '../services/quota-service';
import type { PullStats } from '../services/pull-stats';
import type { ContentRemoval } from '../services/content-removal';
import type { ChangeNotices } from '../coordination/change-notices';
import type { Coordinator } from '../coordination/coordinator';
import type { ShortMemo, ShortMemoOptions } from '../services/short-memo';
import type { Dispatcher } from 'undici';
import type { PooledAgentOptions } from '../storage/pooled-agent';
import type { PooledResponse } from '../storage/pooled-response';

export type MemoOptions = Omit<ShortMemoOptions, 'shared'> & { sharedTopic?: string };
import type { ContentUsage } from '../services/content-usage';

/*
 * What a plugin may use once the core is up: each port names only the
 * operations plugins call, so the core's services can change behind them.
 */

/** Manifests, tags and blob links of repositories. */
export type ContentPort = Pick<ContentService, 'getManifest' | 'tagDigest' | 'putManifest' | 'deleteTag' | 'referrers' | 'isBlobLinked' | 'isReferenced' | 'linkStoredBlob'>;

/** Organizations and repositories. */
export type RepositoriesPort = Pick<RepositoryService, 'findOrg' | 'findOrgById' | 'ensureOrg' | 'find' | 'ensure' | 'listByOrg'>;

/** An organization's quota and the bytes it counts. */
export type QuotaPort = Pick<QuotaService, 'get' | 'crossedWarnings' | 'usage' | 'counted' | 'measure' | 'reserve' | 'release' | 'alreadyCounted'>;

/** Removing tags and manifests (blobs follow through garbage collection). */
export type RemovalPort = Pick<ContentRemoval, 'removeTag' | 'removeAll' | 'purgeRepository'>;

/** The blob store. */
export interface StoragePort {
  blobs: BlobStore;
}

/** A blob arriving from a source: its size once known, how far it may be read and how fast it arrives, readers from any offset. */
export type ArrivingBlob = Pick<BlobFill, 'digest' | 'originKey' | 'ready' | 'done' | 'size' | 'readable' | 'bytesPerSecond' | 'failed' | 'committed' | 'tryReader' | 'keepFor' | 'keeps' | 'holdUntilDone'>;

/** Blobs being filled from a source (single flight per digest): join one, or start one with a byte source. */
export interface FillsPort {
  get(digest: Digest): ArrivingBlob | undefined;
  getOrStart(request: FillRequest): { fill: ArrivingBlob; started: boolean };
  readonly inFlight: number;
}

/**
 * HTTP requests whose bodies arrive in the core's reusable read buffers
 * (upstream blobs): a consumer hands each chunk back with the body's
 * `recycle` once nothing reads it any more; a fill does so for its source.
 */
export interface PooledReadsPort {
  /** Kept-alive connections whose plain-HTTP sockets read straight into the buffers. */
  agent(options: PooledAgentOptions): Dispatcher;
  request(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, signal?: AbortSignal): Promise<PooledResponse>;
}

/** Rows kept for a moment (see services/short-memo). */
export type Memo<K extends string | number, V> = Pick<ShortMemo<K, V>, 'getOrLoad' | 'get' | 'set' | 'forget' | 'forgetAll' | 'delete'>;

/** Locks that hold across replicas (single flight, quota admission). */
export interface LocksPort extends Pick<Coordinator, 'kind' | 'tryAcquire' | 'isHeld' | 'holderOf'> {
  /** Runs `work` holding `name` (renewed while it runs); throws when it could not be had within `waitMs`. */
  withLock<T>(name: string, work: () => Promise<T>, options?: { ttlMs?: number; waitMs?: number }): Promise<T>;
}

export interface CorePorts {
  config: Config;
  logger: Logger;
  metrics: CoreMetrics;
  clock: Clock;
  /** For the plugin's own tables (its migrations); core tables are reached through the ports. */
  db: Db;
  /** Prepared single-row reads of the plugin's own tables on the pull path (see db/point-reads). */
  reads: Pick<PointReads, 'statement'>;
  storage: StoragePort;
  pooledReads: PooledReadsPort;
  /** Blobs arriving from a source: their single flight, scratch files, readers, verification, commit and links. */
  fills: FillsPort;
  queue: Pick<JobQueue, 'enqueue'>;
  content: ContentPort;
  repositories: RepositoriesPort;
  /** How content is used (eviction candidates, idle content, pull counts). */
  usage: ContentUsage;
  quotas: QuotaPort;
  removal: RemovalPort;
  audit: Pick<AuditLog, 'record'>;
  secrets: Pick<SecretBox, 'encrypt' | 'decrypt'>;
  http: HttpHelpers;
  pullStats: Pick<PullStats, 'flush'>;
  /** Asks for a garbage-collection pass soon (deduplicated job). */
  requestGc(): Promise<void>;
  coordinator: LocksPort;
  /** Tells every replica to forget rows it keeps in memory (see `memo`'s `shared` option). */
  notices: Pick<ChangeNotices, 'publish' | 'subscribe'>;
  /** A small in-memory cache of rows read on the pull path; forgets of a `sharedTopic` memo reach every replica. */
  memo<K extends string | number, V>(options: MemoOptions): Memo<K, V>;
}
