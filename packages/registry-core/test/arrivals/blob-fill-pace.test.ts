import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobFill } from '../../src/arrivals/blob-fill';
import { createLogger } from '../../src/logging/logger';
import type { Digest } from '../../src/oci/digest';
import { BufferPool } from '../../src/storage/buffer-pool';

const KiB = 1024;

/**
 * A fill's pace tells range requests how soon it reaches a position ahead
 * (a range it will not reach soon goes to the source on its own).
 */
describe('a fill\'s pace', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fill-pace-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('follows what the source delivers, and falls while the source is quiet', async () => {
    const chunk = Buffer.alloc(64 * KiB, 7);
    const count = 80;
    const content = Buffer.concat(Array.from({ length: count }, () => chunk));
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}` as Digest;
    const source = new PassThrough();
    const fill = new BlobFill({
      digest,
      originKey: 'test',
      open: () => Promise.resolve({ stream: source, size: content.length, offset: 0 }),
      isResumable: () => false,
      scratchDir: dir,
      store: { importVerifiedFile: () => Promise.resolve({ size: content.length }) },
      buffers: new BufferPool(256 * KiB),
      logger: createLogger({ silent: true }),
      link: () => Promise.resolve(true),
    });
    expect(fill.bytesPerSecond).toBe(0);
    // 64 KiB every 10 ms, about 6.5 MB/s, for 600 ms.
    for (let i = 0; i < 60; i++) {
      source.write(chunk);
      await sleep(10);
    }
    const flowing = fill.bytesPerSecond;
    expect(flowing).toBeGreaterThan(1_000_000);
    // Loosely: a fill that waited on its disk reads what queued meanwhile faster than it was written.
    expect(flowing).toBeLessThan(40_000_000);
    // A second of silence: the source counts as much slower than it was.
    await sleep(1000);
    expect(fill.bytesPerSecond).toBeLessThan(flowing / 2);
    for (let i = 60; i < count; i++) source.write(chunk);
    source.end();
    await fill.done;
    expect(fill.committed).toBe(true);
  });
});
