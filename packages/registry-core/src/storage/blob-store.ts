import { Readable } from 'node:stream';
import { Digest } from '../oci/digest';
import type { BufferPool } from './buffer-pool';

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobStat {
  size: number;
}

/**
 * Content-addressed blob storage shared by every organization. Blobs are stored
 * once per digest; which repositories may see a blob is the database's concern.
 * Every implementation passes `test/storage/blob-store.contract.ts`.
 */
export interface BlobStore {
  readonly kind: string;
  stat(digest: Digest): Promise<BlobStat | null>;
  /** Throws BLOB_UNKNOWN when absent. */
  read(digest: Digest, range?: ByteRange): Promise<Readable>;
  /**
   * Streams `source` into a temporary object while hashing it, then commits it
   * under `digest`. Throws DIGEST_INVALID (nothing is kept) when the content does
   * not hash to `digest`, or SIZE_INVALID when `expectedSize` is given and differs.
   * Writing a digest that already exists is a no-op that still consumes `source`.
   */
  write(digest: Digest, source: Readable, expectedSize?: number): Promise<BlobStat>;
  /**
   * Commits a local file whose content the caller has already verified to hash to
   * `digest` (a finished fill or upload). The file is moved or copied; the caller
   * must not use it afterwards.
   */
  importVerifiedFile(digest: Digest, path: string): Promise<BlobStat>;
  /** Returns false when the blob did not exist. */
  delete(digest: Digest): Promise<boolean>;
  /** Every stored digest, for garbage collection. */
  list(): AsyncIterable<Digest>;
  /**
   * A URL the client may be redirected to instead of streaming through Entrepot
   * (S3 presigned GET), or null when the store cannot offer one.
   */
  redirectUrl?(digest: Digest, expiresInSeconds: number): Promise<string | null>;
}

/**
 * Session storage for chunked pushes. Kept in the shared store so that any
 * replica can continue an upload started on another.
 */
export interface UploadStore {
  create(uploadId: string): Promise<void>;
  /** Appends a chunk; returns the upload's new total size. Throws BLOB_UPLOAD_UNKNOWN. */
  append(uploadId: string, source: Readable): Promise<number>;
  /** Current size, or null when the upload does not exist. */
  size(uploadId: string): Promise<number | null>;
  /** The whole uploaded content, in order. Throws BLOB_UPLOAD_UNKNOWN. */
  open(uploadId: string): Promise<Readable>;
  delete(uploadId: string): Promise<void>;
}

export interface Storage {
  blobs: BlobStore;
  uploads: UploadStore;
  /** Local scratch directory for fills and spooling (always on local disk). */
  scratchDir: string;
  /** Buffers for reading local files (stored blobs, fills) into responses. */
  buffers: BufferPool;
}
