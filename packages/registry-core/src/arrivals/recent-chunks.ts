/** Bytes of received data kept in memory for readers at the head of a fill. */
const WINDOW_BYTES = 8 * 1024 * 1024;

/**
 * The most recently received chunks of a fill, by position. Readers keeping up
 * with the download take their bytes from here instead of reading back what
 * was just written; a chunk leaves the window only once it is on disk, so any
 * byte not found here can be read from the file.
 */
export class RecentChunks {
  private chunks: Array<{ start: number; data: Buffer }> = [];
  private bytes = 0;

  /** `onDrop` is told each chunk as it leaves the window. */
  constructor(private readonly onDrop: (chunk: Buffer) => void = () => undefined) {}

  add(start: number, data: Buffer): void {
    this.chunks.push({ start, data });
    this.bytes += data.length;
  }

  /** Drops the oldest chunks beyond the window that are entirely before `durableEnd`. */
  trim(durableEnd: number): void {
    let drop = 0;
    while (drop < this.chunks.length && this.bytes > WINDOW_BYTES) {
      const oldest = this.chunks[drop];
      if (oldest.start + oldest.data.length > durableEnd) break;
      this.bytes -= oldest.data.length;
      this.onDrop(oldest.data);
      drop++;
    }
    if (drop > 0) this.chunks = this.chunks.slice(drop);
  }

  /** Forgets everything (the fill is resuming or over). */
  clear(): void {
    for (const { data } of this.chunks) this.onDrop(data);
    this.chunks = [];
    this.bytes = 0;
  }

  /** Up to `max` bytes at `position` from one chunk, or null when not held. */
  at(position: number, max: number): Buffer | null {
    for (let i = this.chunks.length - 1; i >= 0; i--) {
      const { start, data } = this.chunks[i];
      if (position >= start + data.length) return null;
      if (position >= start) return data.subarray(position - start, Math.min(data.length, position - start + max));
    }
    return null;
  }
}
