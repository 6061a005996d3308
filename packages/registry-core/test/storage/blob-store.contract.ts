/**
 * The conformance suite every Storage implementation (BlobStore + UploadStore)
 * runs: `describeBlobStoreContract('fs', makeStorage)`. Each test gets a fresh,
 * empty storage from the factory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Digest, digestOf } from '../../src/oci/digest';
import { BlobStore, Storage, UploadStore } from '../../src/storage/blob-store';

export interface StorageFixture {
  storage: Storage;
  cleanup(): Promise<void>;
}

const MIB = 1024 * 1024;

/** Splits a buffer into a stream of `chunkSize` pieces, like a request body. */
export function streamOf(data: Buffer, chunkSize = 64 * 1024): Readable {
  function* chunks(): Generator<Buffer> {
    for (let offset = 0; offset < data.length; offset += chunkSize) yield data.subarray(offset, offset + chunkSize);
  }
  return Readable.from(chunks(), { objectMode: false });
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function sha256Of(stream: Readable): Promise<{ digest: Digest; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}` as Digest, size };
}

/**
 * Deterministic large content generated block by block (never held whole in
 * memory): every 1 MiB block is a shared random block stamped with its index,
 * so misordered or repeated blocks change the digest.
 */
export class PatternBlob {
  private readonly block = randomBytes(MIB);

  constructor(readonly size: number) {}

  private blockAt(index: number): Buffer {
    const copy = Buffer.from(this.block);
    copy.writeBigUInt64BE(BigInt(index), 0);
    copy.writeBigUInt64BE(BigInt(index), MIB - 8);
    return copy;
  }

  stream(): Readable {
    const self = this;
    function* blocks(): Generator<Buffer> {
      for (let i = 0; i * MIB < self.size; i++) yield self.blockAt(i).subarray(0, Math.min(MIB, self.size - i * MIB));
    }
    return Readable.from(blocks(), { objectMode: false });
  }

  /** Bytes start..end inclusive. */
  slice(start: number, end: number): Buffer {
    const parts: Buffer[] = [];
    for (let i = Math.floor(start / MIB); i * MIB <= end; i++) {
      const block = this.blockAt(i);
      parts.push(block.subarray(Math.max(0, start - i * MIB), Math.min(MIB, end - i * MIB + 1)));
    }
    return Buffer.concat(parts);
  }

  digest(): Promise<{ digest: Digest; size: number }> {
    return sha256Of(this.stream());
  }
}

/** A stream that yields `data` and then fails, like a client disconnecting mid-push. */
function failingStream(data: Buffer): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    yield data;
    throw new Error('client went away');
  }
  return Readable.from(chunks(), { objectMode: false });
}

async function listAll(blobs: BlobStore): Promise<Digest[]> {
  const out: Digest[] = [];
  for await (const digest of blobs.list()) out.push(digest);
  return out.sort();
}

export function describeBlobStoreContract(name: string, makeStorage: () => Promise<StorageFixture>): void {
  describe(`storage contract: ${name}`, () => {
    let fixture: StorageFixture | undefined;
    let storage: Storage;
    let blobs: BlobStore;
    let uploads: UploadStore;

    beforeEach(async () => {
      fixture = await makeStorage();
      storage = fixture.storage;
      blobs = storage.blobs;
      uploads = storage.uploads;
    });

    afterEach(async () => {
      await fixture?.cleanup();
      fixture = undefined;
    });

    describe('blobs', () => {
      test('write, stat and read round-trip', async () => {
        const data = randomBytes(200 * 1024 + 17);
        const digest = digestOf(data);
        expect(await blobs.stat(digest)).toBeNull();
        expect(await blobs.write(digest, streamOf(data), data.length)).toEqual({ size: data.length });
        expect(await blobs.stat(digest)).toEqual({ size: data.length });
        expect((await readAll(await blobs.read(digest))).equals(data)).toBe(true);
      });

      test('an empty blob round-trips', async () => {
        const empty = Buffer.alloc(0);
        const digest = digestOf(empty);
        expect(await blobs.write(digest, streamOf(empty), 0)).toEqual({ size: 0 });
        expect(await blobs.stat(digest)).toEqual({ size: 0 });
        expect((await readAll(await blobs.read(digest))).length).toBe(0);
      });

      test('reading an unknown blob throws BLOB_UNKNOWN', async () => {
        const digest = digestOf('never written');
        await expect(blobs.read(digest)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
        await expect(blobs.read(digest, { start: 0, end: 1 })).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
      });

      test('byte ranges at the start, middle and end', async () => {
        const data = randomBytes(300 * 1024 + 5);
        const digest = digestOf(data);
        await blobs.write(digest, streamOf(data));
        const last = data.length - 1;
        for (const [start, end] of [
          [0, 0],
          [0, 1023],
          [1000, 150_000],
          [last - 99, last],
          [last, last],
          [0, last],
        ]) {
          const got = await readAll(await blobs.read(digest, { start, end }));
          expect({ start, end, equal: got.equals(data.subarray(start, end + 1)) }).toEqual({ start, end, equal: true });
        }
      });

      test('content that does not match the digest is refused and nothing is stored', async () => {
        const data = randomBytes(10_000);
        const claimed = digestOf(Buffer.concat([data, Buffer.from('x')]));
        await expect(blobs.write(claimed, streamOf(data))).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
        expect(await blobs.stat(claimed)).toBeNull();
        expect(await blobs.stat(digestOf(data))).toBeNull();
        expect(await listAll(blobs)).toEqual([]);
      });

      test('a large mismatching blob (several parts) is refused and nothing is stored', async () => {
        const blob = new PatternBlob(21 * MIB + 3);
        const wrong = digestOf('something else');
        await expect(blobs.write(wrong, blob.stream())).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
        expect(await blobs.stat(wrong)).toBeNull();
        expect(await listAll(blobs)).toEqual([]);
      });

      test('a size that differs from expectedSize is refused with SIZE_INVALID', async () => {
        const data = randomBytes(4096);
        const digest = digestOf(data);
        await expect(blobs.write(digest, streamOf(data), data.length + 1)).rejects.toMatchObject({ code: 'SIZE_INVALID' });
        await expect(blobs.write(digest, streamOf(data), data.length - 1)).rejects.toMatchObject({ code: 'SIZE_INVALID' });
        expect(await blobs.stat(digest)).toBeNull();
        expect(await listAll(blobs)).toEqual([]);
      });

      test('a source that fails mid-stream rejects the write and stores nothing', async () => {
        const data = randomBytes(100_000);
        const digest = digestOf(data);
        await expect(blobs.write(digest, failingStream(data.subarray(0, 50_000)))).rejects.toThrow('client went away');
        expect(await blobs.stat(digest)).toBeNull();
        expect(await listAll(blobs)).toEqual([]);
      });

      test('re-writing an existing digest is a no-op that consumes and still verifies the source', async () => {
        const data = randomBytes(50_000);
        const digest = digestOf(data);
        await blobs.write(digest, streamOf(data));
        const again = streamOf(data);
        expect(await blobs.write(digest, again, data.length)).toEqual({ size: data.length });
        expect(again.readableEnded).toBe(true);
        await expect(blobs.write(digest, streamOf(randomBytes(50_000)))).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
        expect((await readAll(await blobs.read(digest))).equals(data)).toBe(true);
        expect(await listAll(blobs)).toEqual([digest]);
      });

      test('concurrent writes of the same digest all succeed and store it once', async () => {
        const data = randomBytes(2 * MIB + 123);
        const digest = digestOf(data);
        const results = await Promise.all(Array.from({ length: 5 }, () => blobs.write(digest, streamOf(data, 100_000), data.length)));
        expect(results).toEqual(Array(5).fill({ size: data.length }));
        expect((await readAll(await blobs.read(digest))).equals(data)).toBe(true);
        expect(await listAll(blobs)).toEqual([digest]);
      });

      test('delete removes a blob and reports whether it existed', async () => {
        const data = randomBytes(1000);
        const digest = digestOf(data);
        await blobs.write(digest, streamOf(data));
        expect(await blobs.delete(digest)).toBe(true);
        expect(await blobs.stat(digest)).toBeNull();
        await expect(blobs.read(digest)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
        expect(await blobs.delete(digest)).toBe(false);
        expect(await listAll(blobs)).toEqual([]);
      });

      test('list yields every stored digest once', async () => {
        const digests: Digest[] = [];
        for (let i = 0; i < 4; i++) {
          const data = randomBytes(100 + i);
          digests.push(digestOf(data));
          await blobs.write(digestOf(data), streamOf(data));
        }
        expect(await listAll(blobs)).toEqual([...digests].sort());
        await blobs.delete(digests[0]);
        expect(await listAll(blobs)).toEqual(digests.slice(1).sort());
      });

      test('importVerifiedFile commits a local file and consumes it', async () => {
        // Over two 5 MiB parts, so that S3 stores read the file into several parts.
        const data = randomBytes(11 * MIB + 1);
        const digest = digestOf(data);
        const file = join(storage.scratchDir, 'fill-1');
        await writeFile(file, data);
        expect(await blobs.importVerifiedFile(digest, file)).toEqual({ size: data.length });
        expect(existsSync(file)).toBe(false);
        expect(await blobs.stat(digest)).toEqual({ size: data.length });
        expect((await readAll(await blobs.read(digest))).equals(data)).toBe(true);

        // Importing a digest that is already stored keeps the blob and still consumes the file.
        const second = join(storage.scratchDir, 'fill-2');
        await writeFile(second, data);
        expect(await blobs.importVerifiedFile(digest, second)).toEqual({ size: data.length });
        expect(existsSync(second)).toBe(false);
        expect(await listAll(blobs)).toEqual([digest]);
      });

      test('a 64 MiB blob streams in and out intact', async () => {
        const blob = new PatternBlob(64 * MIB + 7);
        const { digest, size } = await blob.digest();
        expect(await blobs.write(digest, blob.stream(), size)).toEqual({ size });
        expect(await blobs.stat(digest)).toEqual({ size });
        expect(await sha256Of(await blobs.read(digest))).toEqual({ digest, size });
        // Ranges that cross 5 MiB, 16 MiB and 1 MiB boundaries (part and block sizes).
        for (const [start, end] of [
          [5 * MIB - 10, 5 * MIB + 10],
          [16 * MIB - 1000, 16 * MIB + 1000],
          [33 * MIB + 5, 35 * MIB + 9],
          [size - 1 - MIB, size - 1],
        ]) {
          const got = await readAll(await blobs.read(digest, { start, end }));
          expect({ start, equal: got.equals(blob.slice(start, end)) }).toEqual({ start, equal: true });
        }
      });
    });

    describe('uploads', () => {
      test('create, append, size and open', async () => {
        const id = 'c0ffee00-0000-4000-8000-000000000001';
        await uploads.create(id);
        expect(await uploads.size(id)).toBe(0);
        const a = randomBytes(70_000);
        const b = randomBytes(1);
        const c = randomBytes(300_000);
        expect(await uploads.append(id, streamOf(a))).toBe(a.length);
        expect(await uploads.append(id, streamOf(b))).toBe(a.length + b.length);
        expect(await uploads.append(id, streamOf(c, 7000))).toBe(a.length + b.length + c.length);
        expect(await uploads.size(id)).toBe(a.length + b.length + c.length);
        expect((await readAll(await uploads.open(id))).equals(Buffer.concat([a, b, c]))).toBe(true);
      });

      test('an empty upload opens as empty content and an empty chunk adds nothing', async () => {
        const id = 'empty-upload';
        await uploads.create(id);
        expect((await readAll(await uploads.open(id))).length).toBe(0);
        expect(await uploads.append(id, streamOf(Buffer.alloc(0)))).toBe(0);
        const data = randomBytes(10);
        expect(await uploads.append(id, streamOf(data))).toBe(10);
        expect((await readAll(await uploads.open(id))).equals(data)).toBe(true);
      });

      test('a large chunk and many chunks concatenate in order into a committable blob', async () => {
        const id = 'large-upload';
        await uploads.create(id);
        const blob = new PatternBlob(12 * MIB + 999);
        const { digest, size } = await blob.digest();
        expect(await uploads.append(id, blob.stream())).toBe(size);
        const tail: Buffer[] = [];
        for (let i = 0; i < 12; i++) {
          const piece = Buffer.from(`chunk-${i};`);
          tail.push(piece);
          await uploads.append(id, streamOf(piece));
        }
        const tailBytes = Buffer.concat(tail);
        expect(await uploads.size(id)).toBe(size + tailBytes.length);
        const whole = await readAll(await uploads.open(id));
        expect(whole.subarray(size).equals(tailBytes)).toBe(true);
        expect(digestOf(whole.subarray(0, size))).toBe(digest);

        // The upload service finishes a push by writing the opened upload as a blob.
        const wholeDigest = digestOf(whole);
        expect(await blobs.write(wholeDigest, await uploads.open(id), whole.length)).toEqual({ size: whole.length });
        expect(await blobs.stat(wholeDigest)).toEqual({ size: whole.length });
      });

      test('uploads are independent of each other', async () => {
        await uploads.create('upload-a');
        await uploads.create('upload-b');
        await uploads.append('upload-a', streamOf(Buffer.from('aaa')));
        await uploads.append('upload-b', streamOf(Buffer.from('bb')));
        await uploads.append('upload-a', streamOf(Buffer.from('A')));
        expect((await readAll(await uploads.open('upload-a'))).toString()).toBe('aaaA');
        expect((await readAll(await uploads.open('upload-b'))).toString()).toBe('bb');
        await uploads.delete('upload-a');
        expect(await uploads.size('upload-a')).toBeNull();
        expect(await uploads.size('upload-b')).toBe(2);
      });

      test('delete removes the upload', async () => {
        const id = 'to-delete';
        await uploads.create(id);
        await uploads.append(id, streamOf(randomBytes(1000)));
        await uploads.append(id, streamOf(randomBytes(1000)));
        await uploads.delete(id);
        expect(await uploads.size(id)).toBeNull();
        await expect(uploads.open(id)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
        await expect(uploads.append(id, streamOf(Buffer.from('x')))).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
        await uploads.delete(id);
      });

      test('unknown and malformed upload ids', async () => {
        for (const id of ['never-created', '../../etc', 'a/b', '']) {
          expect(await uploads.size(id)).toBeNull();
          await expect(uploads.open(id)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
          await expect(uploads.append(id, streamOf(Buffer.from('x')))).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
        }
        await expect(uploads.delete('never-created')).resolves.toBeUndefined();
      });
    });
  });
}
