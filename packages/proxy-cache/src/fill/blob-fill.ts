import { EventEmitter } from 'node:events';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { FileRangeStream, RegistryError, type Digest, type GrowingFile, oci } from '@entrepot/registry-core';
import { type BufferPool } from '../core-types';
import type { BlobStore, Logger } from '../core-types';
import { BatchedWriter } from './batched-writer';
import { RecentChunks } from './recent-chunks';

/** Opens the upstream body at `offset`; `offset` in the result is where the body really starts (0 if Range was ignored). */
export type BlobOpener = (offset: number, signal: AbortSignal) => Promise<{ stream: Readable; size: number; offset: number }>;

export interface FillOptions {
  digest: Digest;
  /** Which upstream repository and credentials the fill reads from (see BlobLookup). */
  originKey: string;
  scratchDir: string;
  blobs: BlobStore;
  /** Buffers readers read the scratch file into. */
  buffers: BufferPool;
  open: BlobOpener;
  logger: Logger;
  /** Whether a mid-body failure may be resumed with a Range request. */
  isResumable(err: unknown): boolean;
  maxResumes?: number;
  /** Counts bytes received from the upstream. */
  onUpstreamBytes?(bytes: number): void;
  onDigestMismatch?(): void;
  /** false: stream to readers but do not keep the blob (it would not fit the quota). */
  keep?: boolean;
}

type FillState = 'starting' | 'running' | 'committed' | 'failed';

/**
 * One upstream download of a blob, owned by the process rather than by the
 * request that started it. Bytes go to a scratch file while being hashed; any
 * number of readers tail that file up to the bytes written so far. When the
 * hash matches, the file is committed to the blob store; a broken upstream
 * connection is resumed from the last byte with a Range request. A reader
 * going away never cancels the fill.
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
  private readonly recent = new RecentChunks();
  /** True once the bytes written hash to the digest. */
  private verified = false;
  private state: FillState = 'starting';
  private failure: Error | null = null;
  private readonly progress = new EventEmitter();
  private readonly abort = new AbortController();
  private readonly path: string;
  private file: FileHandle | null = null;
  private readers = 0;
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

  /** Bytes at `position` still in memory; anything readable but not here is on disk. */
  inMemory(position: number, max: number): Buffer | null {
    return this.recent.at(position, max);
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
    const hash = oci.createDigester(oci.digestAlgorithm(this.digest));
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
          for await (const chunk of opened.stream as AsyncIterable<Buffer>) {
            let data = chunk;
            if (skip > 0) {
              const dropped = Math.min(skip, data.length);
              skip -= dropped;
              data = data.subarray(dropped);
              if (data.length === 0) continue;
            }
            if (writer.received + data.length > this.size) throw new RegistryError('UNAVAILABLE', `upstream sent more than ${this.size} bytes for ${this.digest}`);
            hash.update(data);
            this.options.onUpstreamBytes?.(data.length);
            this.recent.add(this.received, data);
            this.received += data.length;
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
      const actual = `${oci.digestAlgorithm(this.digest)}:${hash.digest('hex')}`;
      if (actual !== this.digest) {
        this.options.onDigestMismatch?.();
        // The upstream's fault, not the client's: 503, not DIGEST_INVALID (400).
        throw new RegistryError('UNAVAILABLE', `upstream content for ${this.digest} hashed to ${actual}; it was not stored`);
      }
      this.verified = true;
      this.notify();
      await this.file.sync();
      if (this.options.keep !== false) await this.commit();
      this.state = 'committed';
      this.notify();
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.state = 'failed';
      this.rejectReady(this.failure);
      this.notify();
      this.options.logger.warn('blob fill failed', { digest: this.digest, written: this.written, size: this.size, error: this.failure.message });
      throw this.failure;
    } finally {
      // Everything received is on disk by now (or the fill failed): readers use the file.
      this.recent.clear();
      await this.closeFileIfUnused();
    }
  }

  /**
   * Readers hold the scratch file open and read by position, so the file can be
   * moved into the blob store (or uploaded and removed) under them.
   */
  private async commit(): Promise<void> {
    await this.options.blobs.importVerifiedFile(this.digest, this.path);
  }
}
