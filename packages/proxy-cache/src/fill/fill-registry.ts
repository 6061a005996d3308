import { type Digest } from '@entrepot/registry-core';
import { BlobFill, type FillOptions } from './blob-fill';

/**
 * Single flight: at most one fill per digest in this process, shared by every
 * repository and organization that asks for it while it runs.
 */
export class FillRegistry {
  private readonly fills = new Map<Digest, BlobFill>();

  get(digest: Digest): BlobFill | undefined {
    return this.fills.get(digest);
  }

  /** Joins the running fill for the digest, or starts one with `options`. */
  getOrStart(options: FillOptions): { fill: BlobFill; started: boolean } {
    const existing = this.fills.get(options.digest);
    if (existing) return { fill: existing, started: false };
    const fill = new BlobFill(options);
    this.fills.set(options.digest, fill);
    void fill.done.then(() => this.fills.delete(options.digest));
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
