import type { UpstreamClient } from '../upstream/upstream-client';

/** What the cache needs from an upstream registry: a slice of UpstreamClient (see its error contract). */
export type UpstreamPort = Pick<UpstreamClient, 'host' | 'headManifest' | 'getManifest' | 'headBlob' | 'getBlob' | 'listTags' | 'getReferrers'>;
