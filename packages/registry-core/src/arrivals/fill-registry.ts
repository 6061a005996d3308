import type { Digest } from '../oci/digest';
import type { Logger } from '../logging/logger';
import type { BlobStore } from '../storage/blob-store';
import type { BufferPool } from '../storage/buffer-pool';
import { BlobFill, type FillRequest } from './blob-fill';

/** What fills need from the core, given once. */
export interface FillStorage {
  blobs: Pick<BlobStore, 'importVerifiedFile'>;
  scratchDir: string;
  buffers: BufferPool;
  logger: Logger;
  link(repoId: number | null, digest: Digest): Promise<boolean>;
}

/**
 * Blobs arriving from a source (a pull-through cache's upstream): single
 * flight, at most one fill per digest in this process, shared by every
 * repository and organization that asks for it while it runs.
 */
export class FillRegistry {
  private readonly fills = new Map<Digest, BlobFill>();

  constructor(private readonly storage: FillStorage) {}

  get(digest: Digest): BlobFill | undefined {
    return this.fills.get(digest);
  }

  /** Joins the running fill for the digest, or starts one reading from `request.open`. */
  getOrStart(request: FillRequest): { fill: BlobFill; started: boolean } {
    const existing = this.fills.get(request.digest);
    if (existing) return { fill: existing, started: false };
    const { blobs, scratchDir, buffers, logger, link } = this.storage;
    const fill = new BlobFill({ ...request, store: request.store ?? blobs, scratchDir, buffers, logger, link });
    this.fills.set(request.digest, fill);
    void fill.done.then(() => this.fills.delete(request.digest));
    return { fill, started: true };
  }

  get inFlight(): number {
    return this.fills.size;
  }

  /** Shutdown: cancel running fills and wait for them to settle. */
  async cancelAll(): Promise<void> {
    const running = [...this.fills.values()];
    for (const fill of running) fill.cancel();
    await Promise.all(running.map((f) => f.done));
  }
}
