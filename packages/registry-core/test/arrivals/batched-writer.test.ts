import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchedWriter } from '../../src/arrivals/batched-writer';

describe('BatchedWriter', () => {
  let dir: string;
  let path: string;
  let file: FileHandle;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'entrepot-writer-'));
    path = join(dir, 'scratch');
    file = await open(path, 'w+');
  });

  afterEach(async () => {
    await file.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes every chunk in order and reports each new durable end', async () => {
    const data = randomBytes(300_000);
    const durable: number[] = [];
    const writer = new BatchedWriter(file, 0, (end) => durable.push(end));
    for (let at = 0; at < data.length; at += 7_000) await writer.add(data.subarray(at, at + 7_000));
    await writer.finish();
    expect(readFileSync(path).equals(data)).toBe(true);
    expect(durable.at(-1)).toBe(data.length);
    expect(durable).toEqual([...durable].sort((a, b) => a - b));
  });

  it('reports a failed write to every later add and finish instead of waiting forever', async () => {
    const writer = new BatchedWriter(file, 0, () => undefined);
    await file.close();
    // The first chunk starts a write that will fail; the second waits behind it.
    await writer.add(Buffer.alloc(10));
    await writer.add(Buffer.alloc(10));
    await expect(writer.finish()).rejects.toThrow(/EBADF|closed/);
    await expect(writer.finish()).rejects.toThrow(/EBADF|closed/);
    await expect(writer.add(Buffer.alloc(10))).rejects.toThrow(/EBADF|closed/);
  });
});
