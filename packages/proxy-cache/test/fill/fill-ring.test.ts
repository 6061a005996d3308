import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FillRing } from '../../src/fill/fill-ring';

describe('FillRing', () => {
  let dir: string;
  let file: FileHandle;
  let path: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'entrepot-ring-'));
    path = join(dir, 'scratch');
    file = await open(path, 'w+');
  });

  afterEach(async () => {
    await file.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes every byte in order across wrap-arounds and reports each new durable end', async () => {
    const data = randomBytes(1000);
    const durable: number[] = [];
    const ring = new FillRing(file, 0, (end) => durable.push(end), 64);
    // Chunk sizes that straddle the ring's end, and one larger than the whole ring.
    for (const [from, to] of [[0, 10], [10, 70], [70, 71], [71, 300], [300, 1000]]) await ring.add(data.subarray(from, to));
    await ring.finish();
    expect(readFileSync(path).equals(data)).toBe(true);
    expect(durable.at(-1)).toBe(1000);
    expect(durable).toEqual([...durable].sort((a, b) => a - b));
  });

  it('holds the most recent bytes for readers, and only those', async () => {
    const data = randomBytes(200);
    const ring = new FillRing(file, 0, () => undefined, 64);
    await ring.add(data);
    const target = Buffer.alloc(100);
    // The last 64 bytes are held, across the wrap-around point.
    expect(ring.copyTo(136, target)).toBe(64);
    expect(target.subarray(0, 64).equals(data.subarray(136))).toBe(true);
    expect(ring.copyTo(150, target.subarray(0, 20))).toBe(20);
    expect(target.subarray(0, 20).equals(data.subarray(150, 170))).toBe(true);
    // Older bytes were overwritten: they are on disk, and the ring says it does not hold them.
    expect(ring.copyTo(135, target)).toBe(0);
    expect(ring.copyTo(200, target)).toBe(0);
    await ring.finish();
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it('starts at a resume position and holds nothing before it', async () => {
    await file.write(Buffer.alloc(50, 1), 0, 50, 0);
    const ring = new FillRing(file, 50, () => undefined, 64);
    await ring.add(Buffer.alloc(10, 2));
    expect(ring.copyTo(45, Buffer.alloc(10))).toBe(0);
    const target = Buffer.alloc(10);
    expect(ring.copyTo(50, target)).toBe(10);
    expect(target.equals(Buffer.alloc(10, 2))).toBe(true);
    await ring.finish();
    expect(readFileSync(path).equals(Buffer.concat([Buffer.alloc(50, 1), Buffer.alloc(10, 2)]))).toBe(true);
  });

  it('reports a failed write to every later add and finish, without hanging', async () => {
    const ring = new FillRing(file, 0, () => undefined, 64);
    await file.close();
    await ring.add(Buffer.alloc(10)).catch(() => undefined);
    await expect(ring.finish()).rejects.toThrow(/EBADF|closed/);
    // After the failure: what is left can never be written; each call says so at once.
    await expect(ring.add(Buffer.alloc(10))).rejects.toThrow(/EBADF|closed/);
    await expect(ring.finish()).rejects.toThrow(/EBADF|closed/);
    await expect(ring.finish()).rejects.toThrow(/EBADF|closed/);
  });
});
