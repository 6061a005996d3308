import { mkdir, unlink } from 'node:fs/promises';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { pipeline } from 'node:stream/promises';
import { BucketItem, Client } from 'minio';
import { RegistryError } from '../errors/registry-error';
import { Digest, digestAlgorithm, digestHex, tryParseDigest } from '../oci/digest';
import { BlobStat, BlobStore, ByteRange, Storage, UploadStore } from './blob-store';
import { digestingStreamFor } from './verifying-writer';
import { BufferPool } from './buffer-pool';
import { OCTET_STREAM, putFile, putStream } from './s3-object-writer';
import { S3ObjectReader } from './s3-object-reader';
import { createPooledAgent, type PooledAgentTimeouts } from './pooled-agent';

export interface S3StorageOptions {
  endpoint: string;
  port?: number;
  useSSL: boolean;
  /** PEM certificates trusted for the TLS endpoint besides Node's bundled root CAs (a private CA, a self-signed S3). */
  ca?: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region: string;
  /** Key prefix; a non-empty prefix without a trailing `/` gets one. */
  prefix: string;
  /** Offer presigned GET URLs (`redirectUrl`) instead of streaming blobs through Entrepot. */
  redirectDownloads: boolean;
  /** Multipart part size (default 16 MiB, minimum 5 MiB): the memory one write or append holds. */
  partSizeBytes?: number;
}

const MIB = 1024 * 1024;
const DEFAULT_PART_SIZE = 16 * MIB;
/** S3's smallest part size (except for the last part). */
const MIN_PART_SIZE = 5 * MIB;
/**
 * Pool buffers for S3 reads (and, in the same pool, fills). A warm S3 stream
 * whose client is slower holds five: the one being sent, the stream's next,
 * one waiting in the body, a read waiting to be parsed and the socket's next
 * read. 128 KiB would bring 50 warm 500 MiB streams from about 240 to 195 MB
 * of RSS, but costs one warm stream 10-25 % of its speed (docs/BENCHMARKS.md,
 * S3 reads into 256 KiB pool buffers).
 */
const S3_READ_CHUNK = 256 * 1024;
/**
 * A stalled S3 server fails the read instead of hanging the client. Time the
 * body waits on a slow client (backpressure) does not count.
 */
const READ_TIMEOUTS: PooledAgentTimeouts = { connectMs: 10_000, headersMs: 30_000, bodyIdleMs: 60_000 };

function s3Code(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

/** Attempts of one commit of a local file; the content is on local disk, so it can be sent again. */
const IMPORT_ATTEMPTS = 7;
const IMPORT_RETRY_BASE_MS = 250;
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN']);

/** A failure of the connection to S3 (a server restarting resets or refuses it), worth another attempt. */
function isTransient(err: unknown): boolean {
  const code = s3Code(err);
  return (code !== undefined && TRANSIENT_CODES.has(code)) || /socket hang up/i.test(String((err as Error | null)?.message ?? ''));
}

function isMissing(err: unknown): boolean {
  const code = s3Code(err);
  return code === 'NoSuchKey' || code === 'NotFound';
}

async function* listObjects(client: Client, bucket: string, prefix: string): AsyncGenerator<BucketItem> {
  for await (const item of client.listObjectsV2(bucket, prefix, true)) {
    const entry = item as BucketItem;
    if (entry.name) yield entry;
  }
}

async function removeKeys(client: Client, bucket: string, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  const results = await client.removeObjects(bucket, keys);
  const failed = results.find((result) => result?.Error);
  if (failed?.Error) throw new Error(`S3 delete of ${failed.Error.Key} failed: ${failed.Error.Code} ${failed.Error.Message ?? ''}`);
}

/**
 * Blobs as objects `<prefix>blobs/<algo>/<2 hex>/<hex>`. A write streams into a
 * multipart upload on the final key while hashing and completes it only after
 * the digest (and size) verified, so no unverified byte is ever visible.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  private readonly reader: S3ObjectReader;

  constructor(
    private readonly client: Client,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly partSize: number,
    private readonly redirectDownloads: boolean,
    reader: S3ObjectReader,
  ) {
    this.reader = reader;
  }

  keyOf(digest: Digest): string {
    const hex = digestHex(digest);
    return `${this.prefix}blobs/${digestAlgorithm(digest)}/${hex.slice(0, 2)}/${hex}`;
  }

  async stat(digest: Digest): Promise<BlobStat | null> {
    try {
      return { size: (await this.client.statObject(this.bucket, this.keyOf(digest))).size };
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  /** Throws BLOB_UNKNOWN when absent, RANGE_INVALID when the range starts past the end. */
  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    return this.reader.read(this.keyOf(digest), range, () => new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not stored`));
  }

  async write(digest: Digest, source: Readable, expectedSize?: number): Promise<BlobStat> {
    const digester = digestingStreamFor(digest);
    const existing = await this.stat(digest);
    if (existing) {
      // Still consume and verify, so that a wrong body is refused the same way.
      await pipeline(source, digester, async (chunks: AsyncIterable<Buffer>) => {
        for await (const chunk of chunks) void chunk;
      });
      digester.verify(digest, expectedSize);
      return existing;
    }
    const size = await putStream(this.client, this.bucket, this.keyOf(digest), source, this.partSize, {
      through: digester,
      sizeHint: expectedSize,
      check: () => digester.verify(digest, expectedSize),
    });
    return { size };
  }

  /**
   * Uploads a verified local file. A dropped or refused connection (an S3 server
   * restarting) is retried with backoff for about sixteen seconds: the file is
   * still there, and a verified fill is worth keeping rather than downloading again.
   */
  async importVerifiedFile(digest: Digest, path: string): Promise<BlobStat> {
    for (let attempt = 1; ; attempt++) {
      try {
        const existing = await this.stat(digest);
        const size = existing
          ? existing.size
          : await putFile(this.client, this.bucket, this.keyOf(digest), path, this.partSize);
        // Only after a successful upload: on failure the file stays for the caller's cleanup.
        await unlink(path).catch(() => undefined);
        return { size };
      } catch (err) {
        if (attempt >= IMPORT_ATTEMPTS || !isTransient(err)) throw err;
        await new Promise((resolve) => setTimeout(resolve, IMPORT_RETRY_BASE_MS * 2 ** (attempt - 1)));
      }
    }
  }

  async delete(digest: Digest): Promise<boolean> {
    if ((await this.stat(digest)) === null) return false;
    await this.client.removeObject(this.bucket, this.keyOf(digest));
    return true;
  }

  async *list(): AsyncIterable<Digest> {
    const root = `${this.prefix}blobs/`;
    for await (const item of listObjects(this.client, this.bucket, root)) {
      const [algo, shard, hex, ...rest] = item.name!.slice(root.length).split('/');
      if (rest.length > 0 || hex === undefined || shard !== hex.slice(0, 2)) continue;
      const digest = tryParseDigest(`${algo}:${hex}`);
      if (digest) yield digest;
    }
  }

  /** A presigned GET URL when `redirectDownloads` is on; null otherwise. Does not check existence. */
  async redirectUrl(digest: Digest, expiresInSeconds: number): Promise<string | null> {
    if (!this.redirectDownloads) return null;
    return this.client.presignedGetObject(this.bucket, this.keyOf(digest), expiresInSeconds);
  }
}

const UPLOAD_ID = /^[a-zA-Z0-9-]{1,64}$/;
const CHUNK_NAME = /^\d{10}$/;
const MARKER = 'session';

interface UploadListing {
  exists: boolean;
  chunks: Array<{ key: string; index: number; size: number }>;
}

/**
 * Chunked-upload sessions as objects `<prefix>uploads/<id>/session` (created
 * by `create`) and `<prefix>uploads/<id>/<10-digit index>` (one per append), so
 * any replica can continue an upload. Appends to one upload must not run
 * concurrently (the OCI protocol makes clients send chunks in order).
 */
export class S3UploadStore implements UploadStore {
  constructor(
    private readonly client: Client,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly partSize: number,
  ) {}

  private dirOf(uploadId: string): string {
    if (!UPLOAD_ID.test(uploadId)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'unknown upload');
    return `${this.prefix}uploads/${uploadId}/`;
  }

  private async listing(uploadId: string): Promise<UploadListing> {
    const dir = this.dirOf(uploadId);
    const result: UploadListing = { exists: false, chunks: [] };
    for await (const item of listObjects(this.client, this.bucket, dir)) {
      const name = item.name!.slice(dir.length);
      if (name === MARKER) result.exists = true;
      else if (CHUNK_NAME.test(name)) result.chunks.push({ key: item.name!, index: Number(name), size: item.size });
    }
    result.chunks.sort((a, b) => a.index - b.index);
    return result;
  }

  private async existing(uploadId: string): Promise<UploadListing> {
    const listing = await this.listing(uploadId);
    if (!listing.exists) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'unknown upload');
    return listing;
  }

  async create(uploadId: string): Promise<void> {
    await this.client.putObject(this.bucket, `${this.dirOf(uploadId)}${MARKER}`, Buffer.alloc(0), 0, OCTET_STREAM);
  }

  async append(uploadId: string, source: Readable): Promise<number> {
    let listing: UploadListing;
    try {
      listing = await this.existing(uploadId);
    } catch (err) {
      source.resume();
      throw err;
    }
    const next = listing.chunks.length > 0 ? listing.chunks[listing.chunks.length - 1].index + 1 : 0;
    const key = `${this.dirOf(uploadId)}${String(next).padStart(10, '0')}`;
    const written = await putStream(this.client, this.bucket, key, source, this.partSize);
    return listing.chunks.reduce((sum, chunk) => sum + chunk.size, written);
  }

  async size(uploadId: string): Promise<number | null> {
    if (!UPLOAD_ID.test(uploadId)) return null;
    const listing = await this.listing(uploadId);
    return listing.exists ? listing.chunks.reduce((sum, chunk) => sum + chunk.size, 0) : null;
  }

  /** The chunks as they were when `open` was called, read one object at a time. */
  async open(uploadId: string): Promise<Readable> {
    const { chunks } = await this.existing(uploadId);
    const { client, bucket } = this;
    async function* concatenated(): AsyncGenerator<Buffer> {
      for (const chunk of chunks) {
        if (chunk.size === 0) continue;
        yield* (await client.getObject(bucket, chunk.key)) as AsyncIterable<Buffer>;
      }
    }
    return Readable.from(concatenated(), { objectMode: false });
  }

  async delete(uploadId: string): Promise<void> {
    const dir = this.dirOf(uploadId);
    const keys: string[] = [];
    for await (const item of listObjects(this.client, this.bucket, dir)) keys.push(item.name!);
    // The marker goes last, so that a partly failed delete leaves a session that can be deleted again.
    const marker = `${dir}${MARKER}`;
    await removeKeys(this.client, this.bucket, keys.filter((key) => key !== marker));
    if (keys.includes(marker)) await removeKeys(this.client, this.bucket, [marker]);
  }
}

function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '');
  return trimmed === '' || trimmed.endsWith('/') ? trimmed : `${trimmed}/`;
}

/**
 * S3 (or S3-compatible) storage through the minio client. Creates the bucket
 * when missing. `scratchDir` is local disk for fills and spooling; it is
 * created if needed and otherwise left as the caller prepared it.
 */
export async function createS3Storage(options: S3StorageOptions, scratchDir: string): Promise<Storage> {
  const partSize = options.partSizeBytes ?? DEFAULT_PART_SIZE;
  if (partSize < MIN_PART_SIZE) throw new Error(`S3 part size must be at least ${MIN_PART_SIZE} bytes`);
  const client = new Client({
    endPoint: options.endpoint,
    port: options.port,
    useSSL: options.useSSL,
    accessKey: options.accessKey,
    secretKey: options.secretKey,
    region: options.region,
    partSize,
    // Writes, listings and stats; reads go through `createPooledAgent` with the same trust.
    ...(options.useSSL && options.ca ? { transportAgent: new HttpsAgent({ keepAlive: true, ca: [...rootCertificates, options.ca] }) } : {}),
  });
  if (!(await client.bucketExists(options.bucket))) {
    try {
      await client.makeBucket(options.bucket, options.region);
    } catch (err) {
      // Another replica may have created it in between.
      const code = s3Code(err);
      if (code !== 'BucketAlreadyOwnedByYou' && code !== 'BucketAlreadyExists') throw err;
    }
  }
  const prefix = normalizePrefix(options.prefix);
  await mkdir(scratchDir, { recursive: true });
  // Shared by fills and reads from S3. Smaller than the filesystem's: each S3 read also holds the socket's next buffer.
  const buffers = new BufferPool(S3_READ_CHUNK);
  const reader = new S3ObjectReader(client, options.bucket, createPooledAgent(buffers, { timeouts: READ_TIMEOUTS, ca: options.ca }), buffers);
  return {
    blobs: new S3BlobStore(client, options.bucket, prefix, partSize, options.redirectDownloads, reader),
    uploads: new S3UploadStore(client, options.bucket, prefix, partSize),
    scratchDir,
    buffers,
  };
}
