import type { Db } from '../db/database';
import { inTransaction } from '../db/database';
import type { Digest } from '../oci/digest';
import type { GarbageCollector } from './garbage-collector';
import type { ManifestResolutions } from './manifest-resolutions';

export interface Removed {
  tags: number;
  manifests: number;
  /** Blob links of the repository dropped. */
  blobLinks: number;
  /**
   * Digests that lost a reference, with the size usage counted for each;
   * garbage collection decides whether they go.
   */
  released: Map<string, number>;
  /** Tags and manifest digests of the repository that no longer resolve. */
  references: Set<string>;
}

/** A tag (and what only it kept), a manifest nothing refers to, or a blob link no manifest refers to, of one repository. */
export type Removal = { repoId: number; tag: string; onlyIfDigest?: Digest } | { repoId: number; manifest: Digest } | { repoId: number; blobLink: Digest };

export interface RemovalOptions {
  /**
   * Also remove the referrers of every manifest removed: manifests whose
   * `subject` it is, and tags of the cosign/referrers tag schema
   * (`sha256-<hex>`, `.sig`, `.att`, `.sbom`) naming it (a cache keeps an
   * image's signatures and attestations exactly as long as the image).
   */
  referrers?: boolean;
}

/** Suffixes cosign gives the tags of signatures, attestations and SBOMs; none is the referrers tag schema's index. */
const REFERRER_TAG_SUFFIXES = ['', '.sig', '.att', '.sbom'];

/** The tags that hold referrers of `digest` under the referrers tag schema or cosign's. */
export function referrerTagsOf(digest: Digest): string[] {
  const base = digest.replace(':', '-');
  return REFERRER_TAG_SUFFIXES.map((suffix) => base + suffix);
}

function emptyRemoved(): Removed {
  return { tags: 0, manifests: 0, blobLinks: 0, released: new Map(), references: new Set() };
}

/**
 * Removes tags and the content only they kept alive from one repository:
 * a manifest when no tag and no other manifest of the repository refers to it
 * (recursively for index children), and blob links no remaining manifest
 * references. Blob data is left to garbage collection, which only deletes what
 * no repository of any organization references.
 */
export class ContentRemoval {
  constructor(
    private readonly db: Db,
    private readonly gc: GarbageCollector,
    private readonly resolutions: ManifestResolutions,
  ) {}

  async removeTag(repoId: number, tag: string, onlyIfDigest?: Digest, options: RemovalOptions = {}): Promise<Removed> {
    return (await this.removeAll([{ repoId, tag, onlyIfDigest }], options))[0];
  }

  /**
   * Several removals in one transaction, in order (eviction removes a ranked
   * batch at once: one commit, not one per tag). A tag given `onlyIfDigest` is
   * removed only while it still points there. Returns what each removed.
   */
  async removeAll(removals: Removal[], options: RemovalOptions = {}): Promise<Removed[]> {
    let results: Removed[] = [];
    await inTransaction(this.db, async (trx) => {
      // Fresh on every attempt: a retried transaction must not count twice.
      results = removals.map(() => emptyRemoved());
      for (const [i, removal] of removals.entries()) {
        const removed = results[i];
        if ('manifest' in removal) await this.removeManifestIfUnused(trx, removal.repoId, removal.manifest, removed, options);
        else if ('blobLink' in removal) removed.released.set(removal.blobLink, Number((await trx('blobs').where({ digest: removal.blobLink }).first('size'))?.size ?? 0));
        else {
          const row = await trx('tags').where({ repo_id: removal.repoId, name: removal.tag }).first('manifest_digest');
          if (!row || (removal.onlyIfDigest !== undefined && row.manifest_digest !== removal.onlyIfDigest)) continue;
          removed.tags += await trx('tags').where({ repo_id: removal.repoId, name: removal.tag }).delete();
          removed.references.add(removal.tag);
          await this.removeManifestIfUnused(trx, removal.repoId, row.manifest_digest as Digest, removed, options);
        }
        await this.unlinkUnreferencedBlobs(trx, removal.repoId, removed);
      }
    });
    await Promise.all(removals.map((removal, i) => this.resolutions.forget(removal.repoId, results[i].references)));
    await this.gc.markReleased(results.flatMap((r) => [...r.released.keys()]));
    return results;
  }

  /** Manifests of the repository that no tag and no other manifest refers to (fetched by digest only). */
  async orphanManifests(repoId: number): Promise<Digest[]> {
    const db = this.db;
    const rows = await db('manifests as m')
      .where('m.repo_id', repoId)
      .whereNotExists(db('tags as t').select(db.raw('1')).whereRaw('t.repo_id = m.repo_id AND t.manifest_digest = m.digest'))
      .whereNotExists(db('manifest_refs as r').select(db.raw('1')).whereRaw('r.repo_id = m.repo_id AND r.child_digest = m.digest'))
      .orderBy('m.created_at')
      .select('m.digest');
    return rows.map((r: { digest: Digest }) => r.digest);
  }

  async removeManifest(repoId: number, digest: Digest): Promise<Removed> {
    return (await this.removeAll([{ repoId, manifest: digest }]))[0];
  }

  /** Empties a repository but keeps it (its permissions stay). */
  async purgeRepository(repoId: number): Promise<Removed> {
    const removed = emptyRemoved();
    await inTransaction(this.db, async (trx) => {
      for (const r of await trx('manifests').where({ repo_id: repoId }).select('digest', 'size')) {
        removed.released.set(String(r.digest), Number(r.size));
        removed.references.add(String(r.digest));
      }
      for (const name of (await trx('tags').where({ repo_id: repoId }).pluck('name')) as string[]) removed.references.add(name);
      for (const r of await childrenOf(trx, repoId)) removed.released.set(r.digest, r.size);
      for (const r of await trx('repo_blobs as rb').join('blobs as b', 'b.digest', 'rb.digest').where('rb.repo_id', repoId).select('rb.digest', 'b.size')) {
        removed.released.set(String(r.digest), Number(r.size));
      }
      removed.tags += await trx('tags').where({ repo_id: repoId }).delete();
      removed.manifests += await trx('manifests').where({ repo_id: repoId }).delete();
      await trx('manifest_refs').where({ repo_id: repoId }).delete();
      removed.blobLinks += await trx('repo_blobs').where({ repo_id: repoId }).delete();
    });
    await this.resolutions.forget(repoId, removed.references);
    await this.gc.markReleased([...removed.released.keys()]);
    return removed;
  }

  private async removeManifestIfUnused(trx: Db, repoId: number, digest: Digest, removed: Removed, options: RemovalOptions = {}): Promise<void> {
    // One round trip: an eviction pass asks this for every manifest it removes.
    const kept = (await trx
      .select(
        trx.raw('EXISTS (SELECT 1 FROM tags WHERE repo_id = ? AND manifest_digest = ?) AS tagged', [repoId, digest]),
        trx.raw("EXISTS (SELECT 1 FROM manifest_refs WHERE repo_id = ? AND child_digest = ? AND child_kind = 'manifest') AS listed", [repoId, digest]),
        trx.raw('(SELECT size FROM manifests WHERE repo_id = ? AND digest = ?) AS size', [repoId, digest]),
      )
      .first()) as { tagged: unknown; listed: unknown; size: unknown };
    if (Number(kept.tagged) === 1 || Number(kept.listed) === 1) return;
    const children = await childrenOf(trx, repoId, digest);
    const deleted = await trx('manifests').where({ repo_id: repoId, digest }).delete();
    await trx('manifest_refs').where({ repo_id: repoId, manifest_digest: digest }).delete();
    removed.manifests += deleted;
    removed.released.set(digest, Math.max(removed.released.get(digest) ?? 0, Number(kept.size ?? 0)));
    if (deleted > 0) removed.references.add(digest);
    for (const child of children) {
      removed.released.set(child.digest, Math.max(removed.released.get(child.digest) ?? 0, child.size));
      if (child.kind === 'manifest') await this.removeManifestIfUnused(trx, repoId, child.digest, removed, options);
    }
    if (deleted > 0 && options.referrers) await this.removeReferrers(trx, repoId, digest, removed, options);
  }

  /** The referrers of a manifest just removed: by `subject`, and under the referrers/cosign tag schemas. */
  private async removeReferrers(trx: Db, repoId: number, subject: Digest, removed: Removed, options: RemovalOptions): Promise<void> {
    // Both kinds in one round trip (a tag row, or a manifest naming the subject with a null tag name).
    const rows = (await trx('tags')
      .where({ repo_id: repoId })
      .whereIn('name', referrerTagsOf(subject))
      .select('name', { digest: 'manifest_digest' })
      .unionAll((q) => q.from('manifests').where({ repo_id: repoId, subject_digest: subject }).select(trx.raw('NULL AS name'), 'digest'), false)) as Array<{ name: string | null; digest: Digest }>;
    const tagged = rows.filter((r): r is { name: string; digest: Digest } => r.name !== null).map((r) => r.name);
    if (tagged.length > 0) removed.tags += await trx('tags').where({ repo_id: repoId }).whereIn('name', tagged).delete();
    for (const name of tagged) removed.references.add(name);
    for (const referrer of new Set(rows.map((r) => r.digest))) {
      await this.removeManifestIfUnused(trx, repoId, referrer, removed, options);
    }
  }

  /** Drops blob links of the repository that no remaining manifest of it references. */
  private async unlinkUnreferencedBlobs(trx: Db, repoId: number, removed: Removed): Promise<void> {
    const candidates = [...removed.released.keys()];
    for (let i = 0; i < candidates.length; i += 500) {
      const batch = candidates.slice(i, i + 500);
      const stillReferenced = new Set(
        (await trx('manifest_refs').where({ repo_id: repoId }).whereIn('child_digest', batch).select('child_digest')).map((r: { child_digest: string }) => r.child_digest),
      );
      const unlink = batch.filter((d) => !stillReferenced.has(d));
      if (unlink.length > 0) removed.blobLinks += await trx('repo_blobs').where({ repo_id: repoId }).whereIn('digest', unlink).delete();
    }
  }
}

/** What the repository's manifests (or one of them) reference, at the size usage counts: declared, else stored, else 0. */
async function childrenOf(trx: Db, repoId: number, manifest?: Digest): Promise<Array<{ digest: Digest; kind: string; size: number }>> {
  let rows = trx('manifest_refs as mr').leftJoin('blobs as b', 'b.digest', 'mr.child_digest').where('mr.repo_id', repoId);
  if (manifest !== undefined) rows = rows.where('mr.manifest_digest', manifest);
  const found = (await rows.select('mr.child_digest', 'mr.child_kind', trx.raw('COALESCE(mr.size, b.size, 0) AS size'))) as Array<{ child_digest: Digest; child_kind: string; size: unknown }>;
  return found.map((r) => ({ digest: r.child_digest, kind: r.child_kind, size: Number(r.size) }));
}
