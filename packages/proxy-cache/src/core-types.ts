import type { CorePorts, RegistrationPoints, RegistryError } from '@entrepot/registry-core';
export type { Memo } from '@entrepot/registry-core';

/*
 * The parts of the core's ports this plugin names in its own signatures,
 * taken from `CorePorts` so that the plugin depends on the ports alone.
 */

export type Config = CorePorts['config'];
export type Logger = CorePorts['logger'];
export type CoreMetrics = CorePorts['metrics'];
export type Clock = CorePorts['clock'];
export type Db = CorePorts['db'];
export type PointReads = CorePorts['reads'];
export type PointRead = ReturnType<PointReads['statement']>;
export type BlobStore = CorePorts['storage']['blobs'];
export type Locks = CorePorts['coordinator'];
export type Lease = NonNullable<Awaited<ReturnType<Locks['tryAcquire']>>>;
export type ChangeNotices = CorePorts['notices'];
export type Secrets = CorePorts['secrets'];
export type OrgQuota = NonNullable<Awaited<ReturnType<CorePorts['quotas']['get']>>>;
export type EvictionPolicy = OrgQuota['evictionPolicy'];
export type Removal = Parameters<CorePorts['removal']['removeAll']>[0][number];
export type Removed = Awaited<ReturnType<CorePorts['removal']['removeTag']>>;
export type EvictionCandidate = Awaited<ReturnType<CorePorts['usage']['evictionCandidates']>>[number];
export type ProtectedContent = NonNullable<Parameters<CorePorts['usage']['evictionCandidates']>[4]>;
export type Migration = Parameters<RegistrationPoints['addMigrations']>[0][number];
export type ApiDocs = Parameters<Parameters<RegistrationPoints['addApiRoutes']>[0]>[1];
export type JobHandler<T> = (data: T) => Promise<void>;
export type Content = CorePorts['content'];
export type Repositories = CorePorts['repositories'];
export type Storage = CorePorts['storage'];
/** Requests whose bodies arrive in the core's reusable read buffers. */
export type PooledReads = CorePorts['pooledReads'];
type RegistryErrorArgs = ConstructorParameters<typeof RegistryError>;
export type ErrorCode = RegistryErrorArgs[0];
export type RegistryErrorOptions = NonNullable<RegistryErrorArgs[2]>;

/** Who audit entries of the cache's own background work (eviction, expiry, refresh) are recorded as. */
export const ANONYMOUS_PERFORMER = { kind: 'anonymous' } as const;
export type ArrivingBlob = NonNullable<ReturnType<CorePorts['fills']['get']>>;
export type FillRequest = Parameters<CorePorts['fills']['getOrStart']>[0];
export type BlobOpener = FillRequest['open'];
