import { Readable } from 'node:stream';
import { Db, inTransaction, isMissingParentRow } from '../db/database';
import type { PointRead, PointReads } from '../db/point-reads';
import { RegistryError } from '../errors/registry-error';
import { Digest, digestAlgorithm, digestOf } from '../oci/digest';
import { isNonDistributable, parseManifest, ParsedManifest, type ReferrerDescriptor } from '../oci/manifest';
import { MAX_MANIFEST_BYTES } from '../oci/media-types';
import { Reference } from '../oci/names';
import type { ManifestHit } from '../plugin/contract';
import { BlobStat, Storage } from '../storage/blob-store';
import type { BlobLocks } from './blob-locks';
import { Clock } from './clock';
import { ByteBudgetLru } from './byte-budget-lru';
import type { ManifestResolutions, ResolvedManifest } from './manifest-resolutions';

/** Memory for manifest bodies read from storage. */
const MANIFEST_CACHE_BYTES = 32 * 1024 * 1024;


export interface TagRow {
  name: string;
  manifest_digest: Digest;
  updated_at: number;
  last_pulled_at: number | null;
  pull_count: number;
  pinned: boolean;
}

export interface PutManifestOptions {
  tag?: string;
  /** Require every referenced blob and child manifest to exist in the repository (pushes). */
  requireReferences: boolean;
  /** Digest algorithm the client addressed the manifest with. */
  algorithm?: string;
}

/** Told of every manifest stored (pushed, or fetched by a cache); must return at once and never throw. */
export type ManifestStoredListener = (stored: { repoId: number; digest: Digest; parsed: ParsedManifest }) => void;

/**
 * Manifests, tags and blob links of repositories. Manifest bytes live in the
 * blob store under their digest, byte for byte as received; the database holds
 * what is needed to list, resolve and garbage-collect them.
 */
export class ContentService {
  private readonly bodies = new ByteBudgetLru<Digest>(MANIFEST_CACHE_BYTES);

  private readonly manifestByDigest: PointRead;
  private readonly manifestByTag: PointRead;
  private readonly blobLink: PointRead;
  private readonly storedListeners: ManifestStoredListener[] = [];

  constructor(
    private readonly db: Db,
    reads: PointReads,
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly locks: BlobLocks,
    private readonly resolutions: ManifestResolutions,
  ) {
    this.manifestByDigest = reads.statement('SELECT digest, media_type FROM manifests WHERE repo_id = ? AND digest = ? LIMIT 1');
    this.manifestByTag = reads.statement(
      'SELECT m.digest, m.media_type FROM tags t JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.manifest_digest WHERE t.repo_id = ? AND t.name = ? LIMIT 1',
    );
    // A repository may read a blob it was pushed or linked to, or one its manifests reference: one lookup on the blob hot path.
    this.blobLink = reads.statement(
      "SELECT 1 AS found FROM (SELECT 1 AS one) probe WHERE EXISTS (SELECT 1 FROM repo_blobs WHERE repo_id = ? AND digest = ?) OR EXISTS (SELECT 1 FROM manifest_refs WHERE repo_id = ? AND child_digest = ? AND child_kind = 'blob')",
    );
  }

  /** Resolves a tag or digest to the stored manifest, or null. */
  async getManifest(repoId: number, ref: Reference): Promise<ManifestHit | null> {
    const resolved = await this.resolutions.resolve(repoId, ref.kind === 'digest' ? ref.digest : ref.tag, () => this.readResolution(repoId, ref));
    if (!resolved) return null;
    const body = await this.readManifestBody(resolved.digest);
    if (!body) return null;
    return { digest: resolved.digest, mediaType: resolved.mediaType, size: body.length, body };
  }

  private async readResolution(repoId: number, ref: Reference): Promise<ResolvedManifest | null> {
    const row = ref.kind === 'digest' ? await this.manifestByDigest.first([repoId, ref.digest]) : await this.manifestByTag.first([repoId, ref.tag]);
    return row ? { digest: row.digest as Digest, mediaType: String(row.media_type) } : null;
  }

  async tagDigest(repoId: number, tag: string): Promise<Digest | null> {
    const row = await this.db('tags').where({ repo_id: repoId, name: tag }).first('manifest_digest');
    return row ? (row.manifest_digest as Digest) : null;
  }

  /** Manifest bodies are small, hot and immutable under their digest: kept in memory once read or stored. */
  private async readManifestBody(digest: Digest): Promise<Buffer | null> {
    const cached = this.bodies.get(digest);
    if (cached) return cached;
    if (!(await this.storage.blobs.stat(digest))) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of await this.storage.blobs.read(digest)) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    this.bodies.set(digest, body);
    return body;
  }

  /**
   * Stores a manifest exactly as given. Throws MANIFEST_INVALID for malformed
   * content, MANIFEST_BLOB_UNKNOWN when `requireReferences` and something it
   * references is missing, TOO_LARGE past 4 MiB.
   */
  async putManifest(repoId: number, body: Buffer, contentType: string | undefined, options: PutManifestOptions): Promise<{ digest: Digest; parsed: ParsedManifest }> {
    if (body.length > MAX_MANIFEST_BYTES) {
      throw new RegistryError('MANIFEST_INVALID', `manifest exceeds ${MAX_MANIFEST_BYTES} bytes`, { status: 413 });
    }
    const parsed = parseManifest(body, contentType);
    const digest = digestOf(body, options.algorithm ?? 'sha256');
    if (options.requireReferences) await this.checkReferences(repoId, parsed);
    await this.locks.whileCommitting(digest, async () => {
      await this.storage.blobs.write(digest, Readable.from([body]), body.length);
      await this.recordManifest(repoId, digest, body, parsed, options).catch(rethrowRepositoryGone);
    });
    if (options.tag !== undefined) await this.resolutions.forget(repoId, [options.tag]);
    // A manifest just stored (pushed, or fetched by a first pull) is the one clients ask for next.
    this.bodies.set(digest, body);
    for (const listener of this.storedListeners) listener({ repoId, digest, parsed });
    return { digest, parsed };
  }

  /** Adds a listener for stored manifests (security scanning). */
  onManifestStored(listener: ManifestStoredListener): void {
    this.storedListeners.push(listener);
  }

  private async recordManifest(repoId: number, digest: Digest, body: Buffer, parsed: ParsedManifest, options: PutManifestOptions): Promise<void> {
    const now = this.clock.now();
    await inTransaction(this.db, async (trx) => {
      await trx('blobs').insert({ digest, size: body.length, created_at: now }).onConflict('digest').ignore();
      await trx('manifests')
        .insert({
          repo_id: repoId,
          digest,
          media_type: parsed.mediaType,
          size: body.length,
          artifact_type: parsed.artifactType ?? null,
          subject_digest: parsed.subject?.digest ?? null,
          annotations: parsed.annotations ? JSON.stringify(parsed.annotations) : null,
          created_at: now,
        })
        .onConflict(['repo_id', 'digest'])
        .ignore();
      const refs = [
        ...parsed.blobs.filter((d) => !isNonDistributable(d)).map((d) => ({ child_digest: d.digest, child_kind: 'blob', size: d.size })),
        ...parsed.manifests.map((d) => ({ child_digest: d.digest, child_kind: 'manifest', size: d.size })),
      ];
      const unique = new Map(refs.map((r) => [r.child_digest, r]));
      if (unique.size > 0) {
        await trx('manifest_refs')
          .insert([...unique.values()].map((r) => ({ repo_id: repoId, manifest_digest: digest, ...r })))
          .onConflict(['repo_id', 'manifest_digest', 'child_digest'])
          .ignore();
      }
      if (options.tag) await this.upsertTag(trx, repoId, options.tag, digest, now);
    });
  }

  private async checkReferences(repoId: number, parsed: ParsedManifest): Promise<void> {
    for (const blob of parsed.blobs) {
      if (isNonDistributable(blob)) continue;
      if (!(await this.isBlobLinked(repoId, blob.digest))) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references blob ${blob.digest}, which is not in this repository`, { detail: { digest: blob.digest } });
      }
    }
    for (const child of parsed.manifests) {
      const row = await this.db('manifests').where({ repo_id: repoId, digest: child.digest }).first('digest');
      if (!row) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `index references manifest ${child.digest}, which is not in this repository`, { detail: { digest: child.digest } });
      }
    }
  }

  private async upsertTag(db: Db, repoId: number, tag: string, digest: Digest, now: number): Promise<void> {
    await db('tags')
      .insert({ repo_id: repoId, name: tag, manifest_digest: digest, updated_at: now, pull_count: 0, pinned: false })
      .onConflict(['repo_id', 'name'])
      .merge({ manifest_digest: digest, updated_at: now });
  }

  /** Points a tag at a manifest already stored in the repository. */
  async setTag(repoId: number, tag: string, digest: Digest): Promise<void> {
    await this.upsertTag(this.db, repoId, tag, digest, this.clock.now());
    await this.resolutions.forget(repoId, [tag]);
  }

  /** Returns false when the tag does not exist. */
  async setPinned(repoId: number, tag: string, pinned: boolean): Promise<boolean> {
    return (await this.db('tags').where({ repo_id: repoId, name: tag }).update({ pinned })) > 0;
  }

  async listTags(repoId: number, options: { n?: number; last?: string } = {}): Promise<string[]> {
    let query = this.db('tags').where({ repo_id: repoId }).orderBy('name').pluck('name');
    if (options.last) query = query.where('name', '>', options.last);
    if (options.n !== undefined) query = query.limit(options.n);
    return (await query) as string[];
  }

  async listTagRows(repoId: number): Promise<TagRow[]> {
    const rows = await this.db('tags').where({ repo_id: repoId }).orderBy('name');
    return rows.map((r: Record<string, unknown>) => ({
      name: String(r.name),
      manifest_digest: r.manifest_digest as Digest,
      updated_at: Number(r.updated_at),
      last_pulled_at: r.last_pulled_at === null ? null : Number(r.last_pulled_at),
      pull_count: Number(r.pull_count),
      pinned: Boolean(r.pinned),
    }));
  }

  async referrers(repoId: number, subject: Digest, artifactType?: string): Promise<ReferrerDescriptor[]> {
    let query = this.db('manifests').where({ repo_id: repoId, subject_digest: subject });
    if (artifactType) query = query.where({ artifact_type: artifactType });
    const rows = await query.orderBy('created_at');
    return rows.map((r: Record<string, unknown>) => {
      const d: ReferrerDescriptor = { mediaType: String(r.media_type), digest: String(r.digest), size: Number(r.size) };
      if (r.artifact_type) d.artifactType = String(r.artifact_type);
      if (r.annotations) d.annotations = JSON.parse(String(r.annotations)) as Record<string, string>;
      return d;
    });
  }

  /** Deletes a manifest and every tag pointing at it. Returns false when absent. */
  async deleteManifest(repoId: number, digest: Digest): Promise<boolean> {
    let tags: string[] = [];
    const deleted = await inTransaction(this.db, async (trx) => {
      tags = (await trx('tags').where({ repo_id: repoId, manifest_digest: digest }).pluck('name')) as string[];
      const count = await trx('manifests').where({ repo_id: repoId, digest }).delete();
      await trx('tags').where({ repo_id: repoId, manifest_digest: digest }).delete();
      await trx('manifest_refs').where({ repo_id: repoId, manifest_digest: digest }).delete();
      return count > 0;
    });
    await this.resolutions.forget(repoId, [digest, ...tags]);
    return deleted;
  }

  async deleteTag(repoId: number, tag: string): Promise<boolean> {
    const deleted = (await this.db('tags').where({ repo_id: repoId, name: tag }).delete()) > 0;
    await this.resolutions.forget(repoId, [tag]);
    return deleted;
  }

  /** Whether one of the repository's manifests references the blob (and so counts it). */
  async isReferenced(repoId: number, digest: Digest): Promise<boolean> {
    return Boolean(await this.db('manifest_refs').where({ repo_id: repoId, child_digest: digest, child_kind: 'blob' }).first('child_digest'));
  }

  /** A repository may read a blob it was pushed or linked to, or that one of its manifests references. */
  async isBlobLinked(repoId: number, digest: Digest): Promise<boolean> {
    return (await this.blobLink.first([repoId, digest, repoId, digest])) !== undefined;
  }

  /**
   * Stores a blob with `place` (a verified write into the blob store) and links
   * it to the repository, or only records it when `repoId` is null. Garbage
   * collection cannot take the digest in between.
   */
  async storeBlob(repoId: number | null, digest: Digest, place: () => Promise<BlobStat>): Promise<BlobStat> {
    return this.locks.whileCommitting(digest, async () => {
      const stat = await place();
      await this.recordRows(repoId, digest, stat.size).catch(rethrowRepositoryGone);
      return stat;
    });
  }

  /**
   * Records a blob already in the blob store (a finished fill, a mount) and links
   * it to the repository unless `repoId` is null. Returns false when the blob is
   * no longer stored: garbage collection took it first, and nothing is recorded.
   */
  async linkStoredBlob(repoId: number | null, digest: Digest): Promise<boolean> {
    return this.locks.whileCommitting(digest, async () => {
      const stored = await this.storage.blobs.stat(digest);
      if (!stored) return false;
      await this.recordRows(repoId, digest, stored.size);
      return true;
    });
  }

  private async recordRows(repoId: number | null, digest: Digest, size: number): Promise<void> {
    const now = this.clock.now();
    await this.db('blobs').insert({ digest, size, created_at: now }).onConflict('digest').ignore();
    if (repoId !== null) await this.db('repo_blobs').insert({ repo_id: repoId, digest, created_at: now }).onConflict(['repo_id', 'digest']).ignore();
  }

  async unlinkBlob(repoId: number, digest: Digest): Promise<boolean> {
    return (await this.db('repo_blobs').where({ repo_id: repoId, digest }).delete()) > 0;
  }

  /** Manifest digest algorithm helper for pushes addressed by digest. */
  static algorithmOf(ref: Reference): string {
    return ref.kind === 'digest' ? digestAlgorithm(ref.digest) : 'sha256';
  }
}

/** The repository was deleted while its push was being stored: the client's answer is NAME_UNKNOWN, not an internal error. */
function rethrowRepositoryGone(err: unknown): never {
  if (isMissingParentRow(err)) throw new RegistryError('NAME_UNKNOWN', 'the repository was deleted while this content was being stored', { cause: err });
  throw err;
}
