import { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';

/** Largest read per chunk: big chunks keep per-byte overhead low on fast links. */
const CHUNK = 1024 * 1024;

/** What a reader needs from the fill it tails. */
export interface TailSource {
  /** Bytes that may be sent so far (see BlobFill.servable). */
  readonly servable: number;
  readonly failed: Error | null;
  waitForBytes(position: number): Promise<void>;
}

/**
 * Reads bytes [start, end] of a growing file by position (so many readers can
 * share one descriptor), waiting for the writer when it catches up with it.
 */
export class FillReader extends Readable {
  private position: number;
  private reading = false;

  constructor(
    private readonly source: TailSource,
    private readonly file: FileHandle,
    start: number,
    private readonly end: number,
    private readonly release: () => void,
  ) {
    super({ highWaterMark: CHUNK });
    this.position = start;
  }

  override _read(): void {
    if (this.reading) return;
    this.reading = true;
    this.pump().then(
      () => {
        this.reading = false;
      },
      (err: unknown) => {
        this.reading = false;
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private async pump(): Promise<void> {
    while (!this.destroyed) {
      if (this.position > this.end) {
        this.push(null);
        return;
      }
      const available = Math.min(this.source.servable, this.end + 1) - this.position;
      if (available <= 0) {
        if (this.source.failed) throw this.source.failed;
        await this.source.waitForBytes(this.position);
        continue;
      }
      const length = Math.min(available, CHUNK);
      const buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await this.file.read(buffer, 0, length, this.position);
      if (bytesRead === 0) throw new Error('scratch file shorter than the bytes written');
      this.position += bytesRead;
      if (!this.push(bytesRead === length ? buffer : buffer.subarray(0, bytesRead))) return;
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.release();
    callback(err);
  }
}
