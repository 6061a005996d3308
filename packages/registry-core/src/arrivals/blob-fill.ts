import { EventEmitter } from 'node:events';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { RegistryError } from '../errors/registry-error';
import { createDigester, digestAlgorithm, type Digest } from '../oci/digest';
import type { Logger } from '../logging/logger';
import type { BlobStore } from '../storage/blob-store';
import type { BufferPool } from '../storage/buffer-pool';
import { FileRangeStream, isRecyclingStream, type GrowingFile } from '../storage/file-range-stream';
import { ChunkLoans } from './chunk-loans';
import { BatchedWriter } from './batched-writer';
import { RecentChunks } from './recent-chunks';

/** Opens the source's body at `offset`; `offset` in the result is where the body really starts (0 if Range was ignored). */
export type BlobOpener = (offset: number, signal: AbortSignal) => Promise<{ stream: Readable; size: number; offset: number }>;

/** What the side that knows where a blob comes from (a pull-through cache's upstream) gives a fill. */
export interface FillRequest {
  digest: Digest;
  /** Where the bytes come from (upstream repository and credentials): fills are shared without a check only within one origin. */
  originKey: string;
  open: BlobOpener;
  /** Whether a mid-body failure may be resumed from the bytes received (a Range request). */
  isResumable(err: unknown): boolean;
  maxResumes?: number;
  /** Counts bytes received from the source. */
  onSourceBytes?(bytes: number): void;
  onDigestMismatch?(): void;
  /** Where the verified blob goes (default: the blob store). */
  store?: Pick<BlobStore, 'importVerifiedFile'>;
}

/** What the core adds: where the fill stages its file, how readers read it, where the blob goes. */
export interface FillOptions extends FillRequest {
  scratchDir: string;
  store: Pick<BlobStore, 'importVerifiedFile'>;
  /** Buffers readers read the scratch file into. */
  buffers: BufferPool;
  logger: Logger;
  /** Records a committed blob for a repository (null: stored for nobody yet); false when it vanished meanwhile. */
  link(repoId: number | null, digest: Digest): Promise<boolean>;
}

/** A quota reservation (or similar) held until the blob is linked, or will not be. */
export interface KeepHold {
  release(): Promise<void> | void;
}

/** A hold's release never fails the fill (nor a request): what it guards expires by itself. */
async function releaseQuietly(hold: KeepHold): Promise<void> {
  try {
    await hold.release();
  } catch {
    // Leases and reservations lapse on their own.
  }
}

type FillState = 'starting' | 'running' | 'committed' | 'failed';

/** The source's pace is the bytes of the last window this long. */
const PACE_WINDOW_MS = 250;

/**
 * One download of a blob from its source, owned by the process rather than by
 * the request that started it. Bytes go to a scratch file while being hashed;
 * any number of readers tail that file from any offset up to the bytes written
 * so far. When the hash matches, the file is committed to the blob store and
 * linked to the repositories that keep it; a broken connection is resumed from
 * the last byte with a Range request. A reader going away never cancels the fill.
 */
export class BlobFill implements GrowingFile {
  readonly digest: Digest;
  readonly originKey: string;
  /** Settles when the fill has ended (never rejects: see `committed` and `failed`). */
  readonly done: Promise<void>;
  size = -1;
  /** Bytes on disk in the scratch file. */
  written = 0;
  /** Bytes received and hashed (on disk or still in `recent`). */
  private received = 0;
  /** Chunks of a source that reads into reusable buffers, until the window and every reader are done with them. */
  private readonly loans = new ChunkLoans();
  private readonly recent = new RecentChunks((chunk) => this.loans.giveBack(chunk));
  /** True once the bytes written hash to the digest. */
  private verified = false;
  /** The pace window under way: when it began and `received` then (at 0: not begun). */
  private paceFrom = { at: 0, received: 0 };
  private lastPace = 0;
  private state: FillState = 'starting';
  private failure: Error | null = null;
  private readonly progress = new EventEmitter();
  private readonly abort = new AbortController();
  private readonly path: string;
  private file: FileHandle | null = null;
  private readers = 0;
  /** Repositories to link the blob to once stored, with what each holds until then. */
  private readonly keepers = new Map<number | null, KeepHold[]>();
  /** Every repository the blob was asked to be kept for, linked or not yet. */
  private readonly keptFor = new Set<number>();
  /** Released when the fill ends (see `holdUntilDone`). */
  private readonly untilDone: KeepHold[] = [];
  private resolveReady!: () => void;
  private rejectReady!: (err: Error) => void;
  /** Resolves once the size is known and bytes may be read; rejects if the upstream could not be opened. */
  readonly ready: Promise<void>;

  constructor(private readonly options: FillOptions) {
    this.digest = options.digest;
    this.originKey = options.originKey;
    this.path = join(options.scratchDir, `fill-${randomUUID()}`);
    this.progress.setMaxListeners(0);
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    this.done = this.run().catch(() => undefined);
  }

  get failed(): Error | null {
    return this.failure;
  }

  get committed(): boolean {
    return this.state === 'committed';
  }

  /**
   * Bytes readers may send: everything received, except that the blob's last
   * byte is held back until the whole content has hashed to the digest, so a
   * client never receives a complete-looking body that turns out corrupt (it
   * sees the connection cut instead).
   */
  get readable(): number {
    return this.verified ? this.received : Math.max(0, Math.min(this.received, this.size - 1));
  }

  /**
   * Bytes per second the source delivered lately (0 before its first window
   * ended): how soon the fill will reach a position ahead. A source that went
   * quiet counts as slower as the silence grows.
   */
  get bytesPerSecond(): number {
    const { at, received } = this.paceFrom;
    const elapsed = performance.now() - at;
    if (at === 0 || elapsed < PACE_WINDOW_MS) return this.lastPace;
    return Math.min(this.lastPace, Math.max(0, this.received - received) * (1000 / elapsed));
  }

  /** Bytes at `position` still in memory; anything readable but not here is on disk. */
  inMemory(position: number, max: number): Buffer | null {
    const view = this.recent.at(position, max);
    if (view) this.loans.share(view);
    return view;
  }

  /** Takes back a view `inMemory` handed out, once its reader is done with it; false for any other memory. */
  recycle(view: Buffer): boolean {
    return this.loans.giveBack(view);
  }

  private measurePace(): void {
    const now = performance.now();
    const { at, received } = this.paceFrom;
    if (at !== 0 && now - at < PACE_WINDOW_MS) return;
    if (at !== 0) this.lastPace = Math.max(0, this.received - received) * (1000 / (now - at));
    this.paceFrom = { at: now, received: this.received };
  }

  /** Waits until more than `position` bytes are readable, or the fill ended. */
  waitForBytes(position: number): Promise<void> {
    if (this.readable > position || this.state === 'failed' || this.state === 'committed') return Promise.resolve();
    return new Promise((resolve) => this.progress.once('progress', () => resolve()));
  }

  /**
   * A stream of bytes [start, end] (inclusive) that follows the fill as it grows,
   * or null once the fill has ended and released its scratch file.
   */
  tryReader(range?: { start: number; end: number }): Readable | null {
    if (!this.file || this.size < 0) return null;
    this.readers++;
    const start = range?.start ?? 0;
    const end = range?.end ?? this.size - 1;
    return new FileRangeStream(this.file, this.options.buffers, { start, end, growing: this, onClose: () => this.releaseReader() });
  }

  private releaseReader(): void {
    this.readers--;
    void this.closeFileIfUnused();
  }

  private async closeFileIfUnused(): Promise<void> {
    if (this.readers > 0 || (this.state !== 'committed' && this.state !== 'failed') || !this.file) return;
    const file = this.file;
    this.file = null;
    await file.close().catch(() => undefined);
    await rm(this.path, { force: true });
  }

  /** Stops the download (shutdown); readers get an error. */
  cancel(): void {
    this.abort.abort(new RegistryError('UNAVAILABLE', 'fill cancelled: server shutting down'));
  }

  private notify(): void {
    this.progress.emit('progress');
  }

  private async run(): Promise<void> {
    const hash = createDigester(digestAlgorithm(this.digest));
    const maxResumes = this.options.maxResumes ?? 5;
    let resumes = 0;
    try {
      this.file = await open(this.path, 'w+');
      while (true) {
        let opened;
        try {
          opened = await this.options.open(this.written, this.abort.signal);
        } catch (err) {
          if (this.state === 'running' && resumes < maxResumes && this.options.isResumable(err)) {
            resumes++;
            continue;
          }
          throw err;
        }
        if (this.state === 'starting') {
          this.size = opened.size;
          this.state = 'running';
          this.resolveReady();
        } else if (opened.size !== this.size) {
          throw new RegistryError('UNAVAILABLE', `upstream size of ${this.digest} changed from ${this.size} to ${opened.size} while resuming`);
        }
        // When the upstream ignored our Range, skip what we already have.
        let skip = this.written - opened.offset;
        this.received = this.written;
        this.recent.clear();
        const writer = new BatchedWriter(this.file, this.written, (durable) => {
          this.written = durable;
          this.recent.trim(durable);
        });
        try {
          const source = isRecyclingStream(opened.stream) ? opened.stream : null;
          for await (const chunk of opened.stream as AsyncIterable<Buffer>) {
            let data = chunk;
            if (skip > 0) {
              const dropped = Math.min(skip, data.length);
              skip -= dropped;
              data = data.subarray(dropped);
              if (data.length === 0) {
                source?.recycle(chunk);
                continue;
              }
            }
            if (writer.received + data.length > this.size) throw new RegistryError('UNAVAILABLE', `upstream sent more than ${this.size} bytes for ${this.digest}`);
            hash.update(data);
            this.options.onSourceBytes?.(data.length);
            // Held by the window from here (readers' views are counted on top); back to the source once all are done.
            if (source) this.loans.receive(chunk, source);
            this.recent.add(this.received, data);
            this.received += data.length;
            this.measurePace();
            this.notify();
            await writer.add(data);
          }
          await writer.finish();
        } catch (err) {
          opened.stream.destroy();
          // What was received is hashed, so it must be on disk before a resume continues after it.
          await writer.finish();
          if (resumes < maxResumes && this.options.isResumable(err) && !this.abort.signal.aborted) {
            resumes++;
            this.options.logger.info('resuming blob fill', { digest: this.digest, at: this.written, attempt: resumes });
            continue;
          }
          throw err;
        }
        if (this.written === this.size) break;
        if (resumes >= maxResumes) throw new RegistryError('UNAVAILABLE', `upstream ended ${this.digest} early at ${this.written} of ${this.size} bytes`);
        resumes++;
      }
      const actual = `${digestAlgorithm(this.digest)}:${hash.digest('hex')}`;
      if (actual !== this.digest) {
        this.options.onDigestMismatch?.();
        // The upstream's fault, not the client's: 503, not DIGEST_INVALID (400).
        throw new RegistryError('UNAVAILABLE', `upstream content for ${this.digest} hashed to ${actual}; it was not stored`);
      }
      this.verified = true;
      this.notify();
      await this.file.sync();
      await this.options.store.importVerifiedFile(this.digest, this.path);
      await this.linkKept();
      this.state = 'committed';
      this.notify();
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.state = 'failed';
      for (const holds of this.keepers.values()) for (const hold of holds) await releaseQuietly(hold);
      this.keepers.clear();
      this.rejectReady(this.failure);
      this.notify();
      this.options.logger.warn('blob fill failed', { digest: this.digest, written: this.written, size: this.size, error: this.failure.message });
      throw this.failure;
    } finally {
      for (const hold of this.untilDone.splice(0)) await releaseQuietly(hold);
      // Everything received is on disk by now (or the fill failed): readers use the file.
      this.recent.clear();
      await this.closeFileIfUnused();
    }
  }

  /**
   * Records the blob for the repositories that asked to keep it (see `keepFor`),
   * then lets their holds go. Readers hold the scratch file open and read by
   * position, so it can move into the blob store under them.
   */
  private async linkKept(): Promise<void> {
    // Requests joining while links are written add keepers: link until none are left.
    while (this.keepers.size > 0) {
      const [repoId, holds] = this.keepers.entries().next().value!;
      this.keepers.delete(repoId);
      await this.linkAndRelease(repoId, holds);
    }
  }

  private async linkAndRelease(repoId: number | null, holds: KeepHold[]): Promise<void> {
    try {
      // False when garbage collection took an earlier copy meanwhile: the next pull fetches it again.
      await this.options.link(repoId, this.digest);
    } catch (err) {
      this.options.logger.error('could not link a filled blob', { digest: this.digest, error: String(err) });
    } finally {
      for (const hold of holds) await releaseQuietly(hold);
    }
  }

  /** Lets `hold` go (a lease on the download, say) once the fill has ended, committed or failed. */
  holdUntilDone(hold: KeepHold): void {
    if (this.state === 'committed' || this.state === 'failed') {
      void releaseQuietly(hold);
      return;
    }
    this.untilDone.push(hold);
  }

  /**
   * Keeps the blob for a repository once it is stored (null: stored, linked to
   * none: a manifest that references it keeps it), releasing `hold` then — or at
   * once if the fill fails. Asked after the fill committed, it links right away.
   */
  keepFor(repoId: number | null, hold?: KeepHold): void {
    if (repoId !== null && this.state !== 'failed') this.keptFor.add(repoId);
    if (this.state === 'committed') {
      void this.linkAndRelease(repoId, hold ? [hold] : []);
      return;
    }
    if (this.state === 'failed') {
      if (hold) void releaseQuietly(hold);
      return;
    }
    const holds = this.keepers.get(repoId) ?? [];
    if (hold) holds.push(hold);
    this.keepers.set(repoId, holds);
  }

  /** Whether the blob is being kept (or was linked) for the repository: a request joining the fill then needs no admission of its own. */
  keeps(repoId: number): boolean {
    return this.keptFor.has(repoId);
  }

}
