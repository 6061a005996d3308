import type { ChangeNotices } from '../coordination/change-notices';
import type { Digest } from '../oci/digest';
import type { Clock } from './clock';
import { ShortMemo } from './short-memo';

/** What a tag or digest of a repository names: the stored manifest's digest and media type. */
export interface ResolvedManifest {
  digest: Digest;
  mediaType: string;
}

/**
 * How long a replica keeps a resolution. Changes reach every replica at once
 * through change notices; this bounds how long one whose notices were cut can
 * serve a tag's previous manifest.
 */
const RESOLUTION_TTL_MS = 5000;

/**
 * Tags and digests of repositories resolved to stored manifests, kept for a
 * moment: a warm manifest GET or HEAD otherwise reads the database for nothing
 * else, and with a database server that read was most of its cost. Whatever
 * moves or removes a tag or manifest forgets the references it touched, on
 * every replica. References that resolve to nothing are not kept: a pull that
 * misses goes on to the database (and, in a cache, the upstream) every time.
 */
export class ManifestResolutions {
  private readonly memo: ShortMemo<string, ResolvedManifest | null>;

  constructor(clock: Clock, notices: ChangeNotices) {
    this.memo = new ShortMemo(clock, { ttlMs: RESOLUTION_TTL_MS, maxEntries: 50_000, shared: { notices, topic: 'manifest-references' } });
  }

  /** `reference` is a tag or a digest (they cannot be mistaken for each other: a tag has no ':'). */
  resolve(repoId: number, reference: string, load: () => Promise<ResolvedManifest | null>): Promise<ResolvedManifest | null> {
    return this.memo.getOrLoad(key(repoId, reference), load, { keep: (found) => found !== null });
  }

  /** Call once the change is committed. The notices go out together: a shared connection pipelines them. */
  async forget(repoId: number, references: Iterable<string>): Promise<void> {
    await Promise.all([...new Set(references)].map((reference) => this.memo.forget(key(repoId, reference))));
  }
}

function key(repoId: number, reference: string): string {
  return `${repoId}/${reference}`;
}
