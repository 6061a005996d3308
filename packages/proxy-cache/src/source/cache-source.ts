import type { Readable } from 'node:stream';
import { RegistryError, type Digest, type LookupContext, type ManifestHit, type oci } from '@entrepot/registry-core';
import type { ReferrerLists } from '../freshness/referrer-lists';
import { mayServeStale } from '../freshness/stale-policy';
import { BlobLookup } from './blob-lookup';
import { cacheRequest, type CacheDeps } from './cache-context';
import { ManifestLookup } from './manifest-lookup';
import { ReferrersLookup } from './referrers-lookup';
import type { UpstreamPort } from './upstream-port';

const MAX_TAG_PAGES = 50;

/**
 * A cache organization's content as pulls see it: manifests and blobs (see
 * ManifestLookup, BlobLookup), tags and referrers merged with the upstream's,
 * and the helpers lifecycle jobs and signature checks pull through.
 */
export class CacheSource {
  readonly manifests: ManifestLookup;
  readonly blobs: BlobLookup;
  private readonly referrers: ReferrersLookup;

  constructor(
    private readonly deps: CacheDeps,
    lists: ReferrerLists,
  ) {
    this.manifests = new ManifestLookup(deps);
    this.blobs = new BlobLookup(deps);
    this.referrers = new ReferrersLookup(deps, lists);
  }

  /** See ManifestLookup.refresh. */
  refreshTag(tag: string, local: ManifestHit, ctx: LookupContext): Promise<ManifestHit | null> {
    return this.manifests.refresh(tag, local, ctx);
  }

  /** Fetches and stores a manifest by digest (a child of a refreshed index) as a pull would. */
  fetchManifest(digest: Digest, ctx: LookupContext): Promise<ManifestHit | null> {
    return this.manifests.find({ kind: 'digest', digest }, ctx);
  }

  /** Downloads a blob into the cache as a pull would (one fill shared with pulls); returns the bytes read, 0 when not kept. */
  async warmBlob(digest: Digest, ctx: LookupContext): Promise<number> {
    const hit = await this.blobs.find(digest, ctx, await this.deps.storage.blobs.stat(digest));
    if (!hit) return 0;
    let bytes = 0;
    for await (const chunk of await hit.open()) bytes += (chunk as Buffer).length;
    return bytes;
  }

  /** Upstream tags; on upstream failure the caller falls back to cached tags. */
  async listTags(ctx: LookupContext): Promise<string[] | null> {
    const req = await cacheRequest(this.deps, ctx);
    if (!req || !this.deps.upstreamEnabled) return null;
    try {
      return await this.allUpstreamTags(req.upstreamRepo, await this.deps.upstreamFor(req.config));
    } catch (err) {
      if (mayServeStale(err)) return null;
      throw err;
    }
  }

  /** Follows the upstream's pages (bounded), since clients page through the merged list themselves. */
  private async allUpstreamTags(repo: string, upstream: UpstreamPort): Promise<string[] | null> {
    const tags: string[] = [];
    let last: string | undefined;
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const list = await upstream.listTags(repo, { n: 1000, last });
      if (!list) return page === 0 ? null : tags;
      tags.push(...list.tags);
      if (!list.next) break;
      last = list.next.last;
    }
    return tags;
  }

  /**
   * A manifest as a client pulling it through the cache would get it (cached,
   * revalidated after the staleness period, or fetched and stored), or null
   * when neither the cache nor the upstream has it.
   */
  async manifestFor(ref: oci.Reference, ctx: LookupContext): Promise<ManifestHit | null> {
    try {
      const local = ctx.repository ? await this.deps.content.getManifest(ctx.repository.id, ref) : null;
      if (local && ref.kind === 'tag') return (await this.manifests.revalidate(ref.tag, local, ctx)) ?? local;
      return local ?? (await this.manifests.find(ref, ctx));
    } catch (err) {
      if (err instanceof RegistryError && (err.code === 'MANIFEST_UNKNOWN' || err.code === 'NAME_UNKNOWN')) return null;
      throw err;
    }
  }

  /** A small blob's bytes (read from the cache, or pulled through it), or null when it is unknown or larger than `maxBytes`. */
  async smallBlob(digest: Digest, ctx: LookupContext, maxBytes: number): Promise<Buffer | null> {
    const stored = await this.deps.storage.blobs.stat(digest);
    let body: Readable;
    if (stored && ctx.repository && (await this.deps.content.isBlobLinked(ctx.repository.id, digest))) {
      if (stored.size > maxBytes) return null;
      body = await this.deps.storage.blobs.read(digest);
    } else {
      const hit = await this.blobs.find(digest, { ...ctx, headOnly: false }, stored);
      if (!hit || hit.size > maxBytes) return null;
      body = await hit.open();
    }
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** The upstream's referrers, kept and revalidated like tags (see ReferrersLookup). */
  listReferrers(subject: Digest, ctx: LookupContext): Promise<oci.ReferrerDescriptor[] | null> {
    return this.referrers.list(subject, ctx);
  }
}
