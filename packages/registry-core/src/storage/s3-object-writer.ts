import { open } from 'node:fs/promises';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client } from 'minio';
import { RegistryError } from '../errors/registry-error';

/** S3 allows 10,000 parts; past this many the part size grows so that large blobs still fit. */
const PARTS_AT_BASE_SIZE = 5000;
const LARGE_PART_FACTOR = 8;
const MAX_PARTS = 10_000;
export const OCTET_STREAM = { 'Content-Type': 'application/octet-stream' };

/**
 * Streams `source` into the object `key` without ever buffering more than one
 * part. Content below one part is sent in a single PUT; larger content goes to
 * a multipart upload, which S3 keeps invisible until it is completed. `check`
 * runs after the last byte was read and before anything becomes visible under
 * `key`: when it throws, nothing is written (the multipart upload is aborted).
 *
 * minio's own `putObject` is not used for streams of unknown size: it resumes
 * any incomplete multipart upload of the same key (so concurrent writers of one
 * digest would share parts), and it offers no point to verify before completing.
 */
class ObjectWriter {
  private part: Buffer | null = null;
  private filled = 0;
  private uploadId: string | null = null;
  private readonly etags: Array<{ part: number; etag: string }> = [];
  bytes = 0;

  constructor(
    private readonly client: Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly partSize: number,
    /** The content's size when known: small content (a manifest) then gets a buffer its size, not a whole part. */
    private readonly sizeHint?: number,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const copied = chunk.copy(await this.room(), 0, offset);
      this.advance(copied);
      offset += copied;
    }
  }

  /**
   * The unfilled rest of the current part, to be filled in place and then
   * accounted with `advance`; a full part is sent (or grown) first.
   */
  async room(): Promise<Buffer> {
    if (this.part && this.filled === this.part.length) await this.makeRoom();
    // Allocated lazily and reused for every part: memory per writer is one part.
    this.part ??= Buffer.allocUnsafe(this.uploadId === null && this.sizeHint !== undefined ? Math.min(Math.max(this.sizeHint, 1), this.capacity()) : this.capacity());
    return this.part.subarray(this.filled);
  }

  advance(bytes: number): void {
    this.filled += bytes;
    this.bytes += bytes;
  }

  /**
   * A full buffer with more content coming: sent as a part, or grown when it was
   * sized for less than arrived (every part but the last must be a whole part).
   */
  private async makeRoom(): Promise<void> {
    const full = this.capacity();
    if (this.part!.length >= full) {
      await this.flushPart();
      return;
    }
    const grown = Buffer.allocUnsafe(full);
    this.part!.copy(grown, 0, 0, this.filled);
    this.part = grown;
  }

  async commit(): Promise<void> {
    const rest = this.part ? this.part.subarray(0, this.filled) : Buffer.alloc(0);
    if (this.uploadId === null) {
      await this.client.putObject(this.bucket, this.key, rest, rest.length, OCTET_STREAM);
      return;
    }
    if (this.filled > 0) await this.flushPart();
    await this.client.completeMultipartUpload(this.bucket, this.key, this.uploadId, this.etags);
    this.uploadId = null;
  }

  /** Safe to call at any point and more than once. */
  async abort(): Promise<void> {
    const uploadId = this.uploadId;
    this.uploadId = null;
    this.part = null;
    if (uploadId !== null) {
      await this.client.abortMultipartUpload(this.bucket, this.key, uploadId).catch(() => undefined);
    }
  }

  private capacity(): number {
    return this.etags.length < PARTS_AT_BASE_SIZE ? this.partSize : this.partSize * LARGE_PART_FACTOR;
  }

  private async flushPart(): Promise<void> {
    if (this.etags.length >= MAX_PARTS) throw new RegistryError('TOO_LARGE', 'blob exceeds the largest object this store can write');
    this.uploadId ??= await this.client.initiateNewMultipartUpload(this.bucket, this.key, { ...OCTET_STREAM });
    const body = this.part!.subarray(0, this.filled);
    const partNumber = this.etags.length + 1;
    // No Content-MD5: over http the client already signs the part's SHA-256
    // (AWS S3 and MinIO reject a body that does not match it), and https
    // authenticates every byte. The MD5 pass was the largest single CPU cost
    // of a cache fill on S3.
    const response = await this.client.makeRequestAsyncOmit(
      {
        method: 'PUT',
        bucketName: this.bucket,
        objectName: this.key,
        query: `partNumber=${partNumber}&uploadId=${encodeURIComponent(this.uploadId)}`,
      },
      body,
    );
    const etag = String(response.headers.etag ?? '').replace(/^"|"$/g, '');
    this.etags.push({ part: partNumber, etag });
    this.filled = 0;
    if (this.part!.length !== this.capacity()) this.part = null;
  }
}

interface PutStreamOptions {
  /** A pass-through the content flows through first (the digester). */
  through?: Transform;
  /** The content's size, when known (see ObjectWriter). */
  sizeHint?: number;
  /** Runs after the last byte and before the object becomes visible; throwing discards it. */
  check?: () => void;
}

/** Writes a stream to `key` (see ObjectWriter); returns the number of bytes written. */
export async function putStream(
  client: Client,
  bucket: string,
  key: string,
  source: Readable,
  partSize: number,
  options: PutStreamOptions = {},
): Promise<number> {
  const writer = new ObjectWriter(client, bucket, key, partSize, options.sizeHint);
  const sink = async (chunks: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of chunks) await writer.write(chunk);
    options.check?.();
    await writer.commit();
  };
  try {
    if (options.through) await pipeline(source, options.through, sink);
    else await pipeline(source, sink);
    return writer.bytes;
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/**
 * Uploads a local file (see ObjectWriter), reading it straight into the part
 * buffer. A read stream would allocate a buffer per read and copy it into the
 * part: a fill's size in garbage that V8 collects only every few dozen
 * megabytes, and that the C allocator then keeps. Returns the bytes written.
 */
export async function putFile(client: Client, bucket: string, key: string, path: string, partSize: number): Promise<number> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const writer = new ObjectWriter(client, bucket, key, partSize, size);
    try {
      while (writer.bytes < size) {
        const room = await writer.room();
        const { bytesRead } = await file.read(room, 0, Math.min(room.length, size - writer.bytes), writer.bytes);
        if (bytesRead === 0) throw new Error(`${path} ended at ${writer.bytes} of ${size} bytes while it was uploaded`);
        writer.advance(bytesRead);
      }
      await writer.commit();
      return writer.bytes;
    } catch (err) {
      await writer.abort();
      throw err;
    }
  } finally {
    await file.close();
  }
}
