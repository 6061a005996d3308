import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError, type BlobStat, type Digest } from '@entrepot/registry-core';
import type { BlobStore, Locks, Logger } from '../core-types';
import type { BlobOpener } from '../core-types';
import { acquireFillLease, FILL_LEASE_MS, fillLeaseName, type HeldFillLease } from './fill-lease';
import { PeerUnavailable, type PeerClient } from './peer-client';

/** How often a follower looks again for the fill's owner (or the stored blob) while it has neither. */
const LOOK_AGAIN_MS = 200;
/** A follower gives up (its clients get a retryable error) when no source appears for this long. */
const GIVE_UP_AFTER_MS = 3 * FILL_LEASE_MS;

export interface FollowerDeps {
  coordinator: Locks;
  peers: PeerClient;
  /** This replica's peer URL, noted on the leases it takes. */
  selfUrl: string;
  blobs: BlobStore;
  logger: Logger;
}

/**
 * Where a replica that does not own a fill reads it from, for a local fill
 * that verifies and serves the bytes like any other (scratch file, readers,
 * digest check, resume at the bytes already written):
 * - the owner's peer listener, while the owner is alive;
 * - the blob store, once the owner has stored the blob;
 * - the upstream, with `Range: bytes=<written>-`, after the owner died and this
 *   replica won its lapsed lease: the fill is then this replica's to keep
 *   (`owns`), and other followers read it from here.
 */
export class FollowerSource {
  private lease: HeldFillLease | null = null;
  /** Where the bytes currently come from (metrics count only the upstream's). */
  source: 'peer' | 'storage' | 'upstream' = 'peer';

  constructor(
    private readonly deps: FollowerDeps,
    private readonly digest: Digest,
    private readonly upstream: BlobOpener,
  ) {}

  /** True once this replica took the fill over: it stores the blob. */
  get owns(): boolean {
    return this.lease !== null;
  }

  /**
   * The store the follower's fill commits to. A fill this replica owns stores
   * its file; one it follows waits until the owner has stored the blob (so its
   * late readers find it in storage), and stores its own verified copy only
   * when the owner went away without storing it.
   */
  storeFor(blobs: BlobStore): Pick<BlobStore, 'importVerifiedFile'> {
    return {
      importVerifiedFile: (digest, path) => (this.owns ? blobs.importVerifiedFile(digest, path) : this.awaitOwnersCopy(blobs, path)),
    };
  }

  private async awaitOwnersCopy(blobs: BlobStore, path: string): Promise<BlobStat> {
    const name = fillLeaseName(this.digest);
    for (;;) {
      const stored = await blobs.stat(this.digest);
      if (stored) return stored;
      if ((await this.deps.coordinator.holderOf(name)) === null) {
        // Released just after storing, or gone without: look once more before storing our copy.
        return (await blobs.stat(this.digest)) ?? blobs.importVerifiedFile(this.digest, path);
      }
      await sleep(LOOK_AGAIN_MS);
    }
  }

  /** Lets the lease go (when the fill ended); safe to call twice. */
  release(): void {
    this.lease?.release();
  }

  readonly open: BlobOpener = async (offset, signal) => {
    const { coordinator, blobs, peers, selfUrl } = this.deps;
    let deadline = Date.now() + GIVE_UP_AFTER_MS;
    const name = fillLeaseName(this.digest);
    for (;;) {
      signal.throwIfAborted();
      if (this.lease) {
        this.source = 'upstream';
        return this.upstream(offset, signal);
      }
      // The owner first: while it runs, asking it costs one request, where storage costs a lookup that finds nothing.
      const holder = await coordinator.holderOf(name);
      if (holder && holder !== selfUrl) {
        try {
          const body = await peers.open(holder, this.digest, offset, signal);
          this.source = 'peer';
          return body;
        } catch (err) {
          if (!(err instanceof PeerUnavailable)) throw err;
        }
      }
      // Read after the lease: an owner stores the blob before it lets the lease go.
      const stored = await blobs.stat(this.digest);
      if (stored) {
        this.source = 'storage';
        const from = offset > 0 && offset < stored.size ? offset : 0;
        const stream = await blobs.read(this.digest, from > 0 ? { start: from, end: stored.size - 1 } : undefined);
        return { stream: ownChunks(stream), size: stored.size, offset: from };
      }
      if (holder === null) {
        this.lease = await acquireFillLease(coordinator, this.digest, selfUrl, this.deps.logger);
        if (this.lease) this.deps.logger.info('taking over a blob fill whose owner is gone', { digest: this.digest, at: offset });
        continue;
      }
      // An owner without a peer listener: its blob is read from storage once stored.
      if (holder === '') deadline = Date.now() + GIVE_UP_AFTER_MS;
      if (Date.now() > deadline) throw new RegistryError('UNAVAILABLE', `no replica could supply ${this.digest}; retry the pull`);
      await sleep(LOOK_AGAIN_MS, undefined, { signal });
    }
  };
}

/**
 * The store's read streams lend pooled buffers that their consumer may hand
 * back for reuse; a fill keeps received chunks for its readers, whose
 * responses hand back what they send. Copies keep the two apart.
 */
function ownChunks(source: Readable): Readable {
  return Readable.from(
    (async function* () {
      for await (const chunk of source as AsyncIterable<Buffer>) yield Buffer.from(chunk);
    })(),
    { objectMode: false },
  );
}
