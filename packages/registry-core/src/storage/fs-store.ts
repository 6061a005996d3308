import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, copyFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from '../errors/registry-error';
import { Digest, digestAlgorithm, digestHex, tryParseDigest } from '../oci/digest';
import { BlobStat, BlobStore, ByteRange, Storage, UploadStore } from './blob-store';
import { digestingStreamFor } from './verifying-writer';
import { BufferPool } from './buffer-pool';
import { FileRangeStream } from './file-range-stream';

/** Chunk size when an upload is read back to be committed (large chunks, few syscalls). */
const UPLOAD_READ_CHUNK = 1024 * 1024;

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/** Blobs as files under `<root>/blobs/<algo>/<2 hex>/<hex>`, written via `<root>/tmp` and rename. */
export class FsBlobStore implements BlobStore {
  readonly kind = 'fs';
  private readonly tmpDir: string;

  constructor(
    private readonly root: string,
    private readonly buffers: BufferPool,
  ) {
    this.tmpDir = join(root, 'tmp');
  }

  async init(): Promise<void> {
    await mkdir(join(this.root, 'blobs'), { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    // Temporary files left by a crash are never visible as blobs; clear them.
    for (const name of await readdir(this.tmpDir)) await rm(join(this.tmpDir, name), { force: true, recursive: true });
  }

  pathOf(digest: Digest): string {
    const hex = digestHex(digest);
    return join(this.root, 'blobs', digestAlgorithm(digest), hex.slice(0, 2), hex);
  }

  async stat(digest: Digest): Promise<BlobStat | null> {
    try {
      return { size: (await stat(this.pathOf(digest))).size };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    // Open first so a missing blob is reported before any response byte is sent.
    const file = await open(this.pathOf(digest), 'r').catch((err: unknown) => {
      throw isNotFound(err) ? new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not stored`) : err;
    });
    return new FileRangeStream(file, this.buffers, { start: range?.start, end: range?.end, onClose: () => void file.close().catch(() => undefined) });
  }

  async write(digest: Digest, source: Readable, expectedSize?: number): Promise<BlobStat> {
    const tmp = join(this.tmpDir, randomUUID());
    const digester = digestingStreamFor(digest);
    try {
      await pipeline(source, digester, createWriteStream(tmp));
      digester.verify(digest, expectedSize);
      return await this.importVerifiedFile(digest, tmp);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async importVerifiedFile(digest: Digest, path: string): Promise<BlobStat> {
    const target = this.pathOf(digest);
    await mkdir(join(target, '..'), { recursive: true });
    try {
      await rename(path, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      const tmp = join(this.tmpDir, randomUUID());
      await copyFile(path, tmp);
      await rename(tmp, target);
      await unlink(path).catch(() => undefined);
    }
    return { size: (await stat(target)).size };
  }

  async delete(digest: Digest): Promise<boolean> {
    try {
      await unlink(this.pathOf(digest));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async *list(): AsyncIterable<Digest> {
    const blobsDir = join(this.root, 'blobs');
    for (const algo of await readdir(blobsDir).catch(() => [] as string[])) {
      for (const prefix of await readdir(join(blobsDir, algo)).catch(() => [] as string[])) {
        for (const hex of await readdir(join(blobsDir, algo, prefix)).catch(() => [] as string[])) {
          const digest = tryParseDigest(`${algo}:${hex}`);
          if (digest) yield digest;
        }
      }
    }
  }
}

const UPLOAD_ID = /^[a-zA-Z0-9-]{1,64}$/;

/** Chunked-upload sessions as append-only files under `<root>/uploads`. */
export class FsUploadStore implements UploadStore {
  constructor(private readonly root: string) {}

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  private pathOf(uploadId: string): string {
    if (!UPLOAD_ID.test(uploadId)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'unknown upload');
    return join(this.root, uploadId);
  }

  async create(uploadId: string): Promise<void> {
    await (await open(this.pathOf(uploadId), 'wx')).close();
  }

  async append(uploadId: string, source: Readable): Promise<number> {
    const path = this.pathOf(uploadId);
    if ((await this.size(uploadId)) === null) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'unknown upload');
    await pipeline(source, createWriteStream(path, { flags: 'a' }));
    return (await stat(path)).size;
  }

  async size(uploadId: string): Promise<number | null> {
    if (!UPLOAD_ID.test(uploadId)) return null;
    try {
      return (await stat(this.pathOf(uploadId))).size;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async open(uploadId: string): Promise<Readable> {
    if ((await this.size(uploadId)) === null) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'unknown upload');
    return createReadStream(this.pathOf(uploadId), { highWaterMark: UPLOAD_READ_CHUNK });
  }

  async delete(uploadId: string): Promise<void> {
    await rm(this.pathOf(uploadId), { force: true });
  }
}

export async function createFsStorage(dataDir: string): Promise<Storage> {
  const buffers = new BufferPool();
  const blobs = new FsBlobStore(join(dataDir, 'storage'), buffers);
  const uploads = new FsUploadStore(join(dataDir, 'storage', 'uploads'));
  await blobs.init();
  await uploads.init();
  const scratchDir = join(dataDir, 'scratch');
  await rm(scratchDir, { recursive: true, force: true });
  await mkdir(scratchDir, { recursive: true });
  return { blobs, uploads, scratchDir, buffers };
}
