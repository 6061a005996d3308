import { RegistryError } from '../errors/registry-error';
import { Digest } from '../oci/digest';
import { Reference, referenceString } from '../oci/names';
import type { BlobHit, LookupContext, LookupSource, ManifestHit, PullGuard } from '../plugin/contract';
import { Storage } from '../storage/blob-store';
import type { ContentService } from './content-service';
import type { ReferrerDescriptor } from '../oci/manifest';

/**
 * The lookup chain: local storage first, then each registered source in order
 * (the proxy cache registers one for its organizations).
 */
export class RegistryService {
  constructor(
    private readonly content: ContentService,
    private readonly storage: Storage,
    private readonly sources: readonly LookupSource[],
    private readonly pullGuards: readonly PullGuard[] = [],
  ) {}

  /** Asks every pull guard whether `hit` may be served; throws the first refusal (DENIED). */
  async checkPull(ref: Reference, hit: ManifestHit, ctx: LookupContext): Promise<void> {
    for (const guard of this.pullGuards) await guard.checkPull(ref, hit, ctx);
  }

  /** Throws MANIFEST_UNKNOWN when no source has it. */
  async getManifest(ref: Reference, ctx: LookupContext): Promise<ManifestHit> {
    const local = ctx.repository ? await this.content.getManifest(ctx.repository.id, ref) : null;
    if (local && ref.kind === 'tag') {
      for (const source of this.sources) {
        const fresher = source.revalidateTag ? await source.revalidateTag(ref.tag, local, ctx) : null;
        if (fresher) return fresher;
      }
    }
    if (local) return { ...local, cacheResult: 'hit' };
    for (const source of this.sources) {
      const hit = await source.findManifest(ref, ctx);
      if (hit) return hit;
    }
    throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${referenceString(ref)} not found in ${ctx.target.fullName}`);
  }

  /** Throws BLOB_UNKNOWN when no source has it for this repository. */
  async getBlob(digest: Digest, ctx: LookupContext): Promise<BlobHit> {
    const blobs = this.storage.blobs;
    const stored = await blobs.stat(digest);
    if (stored && ctx.repository && (await this.content.isBlobLinked(ctx.repository.id, digest))) {
      return {
        digest,
        size: stored.size,
        open: (range) => blobs.read(digest, range),
        redirectUrl: blobs.redirectUrl ? () => blobs.redirectUrl!(digest, 300) : undefined,
        cacheResult: 'hit',
      };
    }
    for (const source of this.sources) {
      const hit = await source.findBlob(digest, ctx, stored);
      if (hit) return hit;
    }
    throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} not found in ${ctx.target.fullName}`);
  }

  async listTags(ctx: LookupContext, page: { n?: number; last?: string }): Promise<string[]> {
    const local = ctx.repository ? await this.content.listTags(ctx.repository.id) : [];
    let all = local;
    for (const source of this.sources) {
      const remote = source.listTags ? await source.listTags(ctx, local) : null;
      if (remote) {
        all = [...new Set([...local, ...remote])];
        break;
      }
    }
    if (!ctx.repository && all.length === 0) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${ctx.target.fullName} not found`);
    }
    all.sort();
    const after = page.last ? all.filter((t) => t > page.last!) : all;
    return page.n !== undefined ? after.slice(0, page.n) : after;
  }

  async referrers(subject: Digest, ctx: LookupContext, artifactType?: string): Promise<ReferrerDescriptor[]> {
    const local = ctx.repository ? await this.content.referrers(ctx.repository.id, subject, artifactType) : [];
    for (const source of this.sources) {
      const remote = source.listReferrers ? await source.listReferrers(subject, ctx, local) : null;
      if (remote) {
        const merged = new Map<string, ReferrerDescriptor>();
        for (const d of [...local, ...remote]) merged.set(d.digest, d);
        const all = [...merged.values()];
        return artifactType ? all.filter((d) => d.artifactType === artifactType) : all;
      }
    }
    return local;
  }
}
