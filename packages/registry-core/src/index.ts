/**
 * The registry core's public entry: the plugin contract, the ports a plugin is
 * given, the rows those ports carry, the error type, and the OCI format helpers.
 * Everything else is internal; test/architecture/package-boundary.test.ts holds
 * this list to docs/architecture.md.
 */

// The plugin contract: what a plugin registers and implements.
export type {
  RegistryPlugin,
  PluginFactory,
  RegistrationPoints,
  LookupSource,
  LookupContext,
  RepoTarget,
  ManifestHit,
  BlobHit,
  CacheResult,
  PullGuard,
  PullEvent,
  NameResolver,
  WriteGuard,
} from './plugin/contract';
export type { CorePorts, Memo } from './plugin/ports';
export type { CliExtension, CliContext } from './cli/main';
export { repoPath } from './cli/api-client';

// Rows and values the ports carry.
export type { RepositoryRow, OrganizationRow } from './services/repository-service';
export type { ByteRange, BlobStat } from './storage/blob-store';

// Bodies whose chunks go back to a pool (see CorePorts.pooledReads).
export type { RecyclingStream } from './storage/file-range-stream';
export { isRecyclingStream, recycleQueuedOnClose } from './storage/file-range-stream';

// The one error type, mapped to HTTP by the core.
export { RegistryError, invalidField } from './errors/registry-error';

// The OCI formats (digests, names, media types, manifests): one stateless module.
export * as oci from './oci/index';
export type { Digest } from './oci/digest';
