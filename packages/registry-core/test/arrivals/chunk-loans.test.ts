import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BlobFill } from '../../src/arrivals/blob-fill';
import { ChunkLoans } from '../../src/arrivals/chunk-loans';
import { createLogger } from '../../src/logging/logger';
import type { Digest } from '../../src/oci/digest';
import { BufferPool } from '../../src/storage/buffer-pool';
import type { RecyclingStream } from '../../src/storage/file-range-stream';

const MiB = 1024 * 1024;

/** A source whose chunks must come back through `recycle`, recording when each did. */
function recyclingSource(chunks: Buffer[], onRecycle: (chunk: Buffer) => void): RecyclingStream {
  const stream = Readable.from(chunks, { objectMode: true });
  return Object.assign(stream, { recycle: onRecycle, queueBytes: MiB });
}

describe('ChunkLoans', () => {
  test('hands a chunk back to its source once, after its last holder', () => {
    const back: Buffer[] = [];
    const loans = new ChunkLoans();
    const chunk = Buffer.alloc(16, 1);
    loans.receive(chunk, recyclingSource([], (c) => back.push(c)));
    expect(loans.share(chunk.subarray(4, 8))).toBe(true);
    expect(loans.giveBack(chunk)).toBe(true);
    expect(back).toHaveLength(0);
    expect(loans.giveBack(chunk.subarray(4, 8))).toBe(true);
    expect(back).toEqual([chunk]);
    // Gone from the loans: memory it does not hold is not its to hand back.
    expect(loans.giveBack(chunk)).toBe(false);
    expect(loans.share(Buffer.alloc(4))).toBe(false);
    expect(back).toHaveLength(1);
  });
});

describe('a fill from a source in reusable buffers', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chunk-loans-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('returns every chunk once, and never one a reader is still sending', async () => {
    // 24 chunks of 1 MiB: three times the recent window, so chunks leave it while the fill runs.
    const chunks = Array.from({ length: 24 }, (_, i) => Buffer.alloc(MiB, i + 1));
    const content = Buffer.concat(chunks);
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}` as Digest;
    const recycled = new Map<ArrayBufferLike, number>();
    /** Memory of views the reader has been handed and not yet given back (its socket still sending them). */
    const sending = new Set<ArrayBufferLike>();
    const violations: string[] = [];
    const stored = join(dir, 'stored');
    const fill = new BlobFill({
      digest,
      originKey: 'test',
      open: () => Promise.resolve({
        stream: recyclingSource(chunks, (chunk) => {
          if (sending.has(chunk.buffer)) violations.push(`chunk recycled while a reader was sending it`);
          recycled.set(chunk.buffer, (recycled.get(chunk.buffer) ?? 0) + 1);
        }),
        size: content.length,
        offset: 0,
      }),
      isResumable: () => false,
      scratchDir: dir,
      store: {
        importVerifiedFile: async (_digest, path) => {
          await copyFile(path, stored);
          return { size: content.length };
        },
      },
      buffers: new BufferPool(256 * 1024),
      logger: createLogger({ silent: true }),
      link: () => Promise.resolve(true),
    });
    await fill.ready;
    const reader = fill.tryReader() as RecyclingStream;
    const received: Buffer[] = [];
    const giveBack = (view: Buffer): void => {
      sending.delete(view.buffer);
      reader.recycle(view);
    };
    /** Views of the first 4 MiB stay with the reader until the end, long after the window let them go. */
    const slow: Buffer[] = [];
    let at = 0;
    reader.on('data', (view: Buffer) => {
      received.push(Buffer.from(view));
      sending.add(view.buffer);
      if (at < 4 * MiB) slow.push(view);
      // The socket takes its time: the view goes back a little later.
      else setTimeout(() => giveBack(view), 2);
      at += view.length;
    });
    await new Promise((resolve, reject) => reader.once('end', resolve).once('error', reject));
    await fill.done;
    for (const view of slow) giveBack(view);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fill.committed).toBe(true);
    expect(Buffer.concat(received).equals(content)).toBe(true);
    expect((await readFile(stored)).equals(content)).toBe(true);
    expect(violations).toEqual([]);
    // Every source chunk came back, each exactly once.
    expect(chunks.map((c) => recycled.get(c.buffer))).toEqual(chunks.map(() => 1));
  });
});
