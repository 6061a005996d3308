import { RegistryError, type Digest, type LookupContext, oci } from '@entrepot/registry-core';
import { Coalescer } from '../freshness/coalescer';
import type { ReferrerLists } from '../freshness/referrer-lists';
import { mayServeStale } from '../freshness/stale-policy';
import { upstreamFailureOf } from '../upstream/upstream-failure';
import { cacheRequest, type CacheDeps, type CacheRequest } from './cache-context';
import type { UpstreamPort } from './upstream-port';

/** The tag under which registries without a referrers API keep a subject's referrers (distribution-spec's referrers tag schema). */
export function referrersTag(subject: Digest): string {
  return `${oci.digestAlgorithm(subject)}-${oci.digestHex(subject)}`;
}

/**
 * Referrers of cache organizations: the upstream's list — from its referrers
 * API, or, when it has none (404), from the index under the referrers tag
 * schema — kept per repository and subject. Inside the staleness period a
 * kept list is answered with zero upstream requests; after it the list is
 * fetched again (concurrent requests coalesced), and while the upstream fails
 * the kept list is served within the stale-if-error window.
 */
export class ReferrersLookup {
  private readonly inFlight = new Coalescer<oci.ReferrerDescriptor[]>();

  constructor(
    private readonly deps: CacheDeps,
    private readonly lists: ReferrerLists,
  ) {}

  /** The upstream's referrers of `subject` (unfiltered), or null for organizations that are not caches. */
  async list(subject: Digest, ctx: LookupContext): Promise<oci.ReferrerDescriptor[] | null> {
    const req = await cacheRequest(this.deps, ctx);
    if (!req) return null;
    const repoId = ctx.repository?.id;
    const kept = repoId === undefined ? null : await this.lists.get(repoId, subject);
    const age = kept ? this.deps.clock.now() - kept.checkedAt : Number.POSITIVE_INFINITY;
    if (kept && (!this.deps.upstreamEnabled || age < req.config.expirationS * 1000)) return kept.descriptors;
    if (!this.deps.upstreamEnabled) return null;
    const key = `${ctx.target.org.id}|${ctx.target.repoName}|${subject}`;
    try {
      return await this.inFlight.run(key, async () => {
        const fetched = await this.fetch(req, subject);
        if (repoId !== undefined) await this.lists.save(repoId, subject, fetched);
        return fetched;
      });
    } catch (err) {
      const staleAllowed = age < (req.config.expirationS + req.config.staleIfErrorS) * 1000;
      if (kept && staleAllowed && mayServeStale(err)) {
        const reason = err instanceof RegistryError ? err.code : String(err);
        this.deps.metrics.staleServes.inc({ org: req.orgName, reason });
        this.deps.logger.info('serving stale referrers', { org: req.orgName, repo: ctx.target.repoName, subject, reason });
        return kept.descriptors;
      }
      throw err;
    }
  }

  /** The referrers API first; a 404 there means the upstream has none, so the tag schema answers. */
  private async fetch(req: CacheRequest, subject: Digest): Promise<oci.ReferrerDescriptor[]> {
    const upstream = await this.deps.upstreamFor(req.config);
    const fromApi = await upstream.getReferrers(req.upstreamRepo, subject);
    if (fromApi !== null) return fromApi;
    return this.fromTagSchema(upstream, req.upstreamRepo, subject);
  }

  private async fromTagSchema(upstream: UpstreamPort, repo: string, subject: Digest): Promise<oci.ReferrerDescriptor[]> {
    let index;
    try {
      index = await upstream.getManifest(repo, referrersTag(subject));
    } catch (err) {
      if (upstreamFailureOf(err)?.kind === 'notfound') return [];
      throw err;
    }
    let parsed;
    try {
      parsed = oci.parseManifest(index.body, index.mediaType);
    } catch {
      this.deps.logger.warn('ignoring a malformed referrers tag', { upstream: upstream.host, repo, subject });
      return [];
    }
    return parsed.manifests.map((d) => {
      const descriptor: oci.ReferrerDescriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
      if (d.artifactType !== undefined) descriptor.artifactType = d.artifactType;
      if (d.annotations !== undefined) descriptor.annotations = d.annotations;
      return descriptor;
    });
  }
}
