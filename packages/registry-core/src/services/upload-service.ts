import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { Db } from '../db/database';
import { RegistryError } from '../errors/registry-error';
import { Digest } from '../oci/digest';
import { Storage } from '../storage/blob-store';
import { Clock } from './clock';
import { ContentService } from './content-service';

/** Blob pushes: monolithic, chunked and streamed uploads. Sessions live in shared storage. */
export class UploadService {
  constructor(
    private readonly db: Db,
    private readonly storage: Storage,
    private readonly content: ContentService,
    private readonly clock: Clock,
  ) {}

  async start(repoId: number): Promise<string> {
    const id = randomUUID();
    await this.storage.uploads.create(id);
    await this.db('uploads').insert({ id, repo_id: repoId, created_at: this.clock.now() });
    return id;
  }

  /** Throws BLOB_UPLOAD_UNKNOWN unless the upload exists and belongs to the repository. */
  async size(repoId: number, uploadId: string): Promise<number> {
    const row = await this.db('uploads').where({ id: uploadId, repo_id: repoId }).first('id');
    const size = row ? await this.storage.uploads.size(uploadId) : null;
    if (size === null) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${uploadId.slice(0, 64)} is unknown`);
    return size;
  }

  /**
   * Appends a chunk. `rangeStart` comes from Content-Range: it must equal the
   * current size (416 otherwise, with the size the client should resume from).
   */
  async append(repoId: number, uploadId: string, body: Readable, rangeStart?: number): Promise<number> {
    const current = await this.size(repoId, uploadId);
    if (rangeStart !== undefined && rangeStart !== current) {
      body.resume();
      throw new RegistryError('RANGE_INVALID', `chunk starts at ${rangeStart} but the upload has ${current} bytes`, {
        headers: { Range: current > 0 ? `0-${current - 1}` : '0-0' },
      });
    }
    return this.storage.uploads.append(uploadId, body);
  }

  /** Appends an optional last chunk, verifies the whole upload against `digest` and commits it. */
  async finish(repoId: number, uploadId: string, digest: Digest, lastChunk?: Readable, rangeStart?: number): Promise<number> {
    if (lastChunk) await this.append(repoId, uploadId, lastChunk, rangeStart);
    else await this.size(repoId, uploadId);
    try {
      const stat = await this.content.storeBlob(repoId, digest, async () => this.storage.blobs.write(digest, await this.storage.uploads.open(uploadId)));
      await this.cancel(repoId, uploadId);
      return stat.size;
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'DIGEST_INVALID') await this.cancel(repoId, uploadId);
      throw err;
    }
  }

  async cancel(repoId: number, uploadId: string): Promise<void> {
    const deleted = await this.db('uploads').where({ id: uploadId, repo_id: repoId }).delete();
    if (deleted === 0) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${uploadId.slice(0, 64)} is unknown`);
    await this.storage.uploads.delete(uploadId);
  }

  /** Monolithic upload in the POST itself. */
  async putWhole(repoId: number, digest: Digest, body: Readable, expectedSize?: number): Promise<number> {
    const stat = await this.content.storeBlob(repoId, digest, () => this.storage.blobs.write(digest, body, expectedSize));
    return stat.size;
  }
}
