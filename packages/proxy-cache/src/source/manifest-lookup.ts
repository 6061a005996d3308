import { RegistryError, type ManifestHit, oci } from '@entrepot/registry-core';
import { Coalescer } from '../freshness/coalescer';
import { SharedRevalidation } from '../freshness/shared-revalidation';
import { mayServeStale } from '../freshness/stale-policy';
import { cacheRequest, ensureRepository, type CacheDeps, type CacheRequest } from './cache-context';
import { type LookupContext } from '@entrepot/registry-core';
import { endpointOf } from '../config/cache-config-store';
import { upstreamFailureOf } from '../upstream/upstream-failure';

/**
 * Manifests of cache organizations (R-PULL, R-STALE, R-COHERENT, R-OFFLINE):
 * misses are fetched whole and stored byte for byte; cached tags are served
 * without upstream traffic inside the staleness period, then revalidated with
 * one HEAD (coalesced across concurrent requests, on this replica and across
 * replicas), and served stale when the
 * upstream fails within the stale-if-error window.
 */
export class ManifestLookup {
  private readonly inFlight = new Coalescer<ManifestHit>();
  private readonly acrossReplicas: SharedRevalidation;

  constructor(private readonly deps: CacheDeps) {
    this.acrossReplicas = new SharedRevalidation(deps.coordinator);
  }

  async find(ref: oci.Reference, ctx: LookupContext): Promise<ManifestHit | null> {
    const req = await cacheRequest(this.deps, ctx);
    if (!req || !this.deps.upstreamEnabled) return null;
    const key = `${ctx.target.org.id}|${ctx.target.repoName}|${oci.referenceString(ref)}`;
    let hit: ManifestHit;
    try {
      hit = await this.inFlight.run(key, () => this.fetch(req, ref));
    } catch (err) {
      throw unknownIfRefused(req, err);
    }
    return hit;
  }

  async revalidate(tag: string, local: ManifestHit, ctx: LookupContext): Promise<ManifestHit | null> {
    const req = await cacheRequest(this.deps, ctx);
    if (!req || !ctx.repository) return null;
    const repoId = ctx.repository.id;
    const check = await this.deps.freshness.lastCheck(repoId, tag, req.config.expirationS * 1000);
    const age = check ? this.deps.clock.now() - check.checkedAt : Number.POSITIVE_INFINITY;
    if (!this.deps.upstreamEnabled || age < req.config.expirationS * 1000) return { ...local, cacheResult: 'hit' };
    const key = `${ctx.target.org.id}|${ctx.target.repoName}|${tag}`;
    const staleAllowed = age < (req.config.expirationS + req.config.staleIfErrorS) * 1000;
    // A refresh job's revalidation this pull joined does not serve stale itself: this pull may.
    const revalidation = this.inFlight
      .run(key, () => this.acrossReplicas.run(key, () => this.revalidateNow(req, tag, local, age), () => this.revalidatedElsewhere(req, tag, local)))
      .catch((err: unknown) => {
        if (staleAllowed && mayServeStale(err)) return this.stale(req, local, err);
        throw err;
      });
    if (!staleAllowed) return revalidation;
    return this.withinDeadline(revalidation, () => this.stale(req, local, 'revalidation exceeded its deadline'));
  }

  /**
   * The outcome of the revalidation another replica just made of `tag`, from
   * the database: the tag as it confirmed it, or null when it did not (it
   * failed) and this replica must ask the upstream itself.
   */
  private async revalidatedElsewhere(req: CacheRequest, tag: string, local: ManifestHit): Promise<ManifestHit | null> {
    const repoId = req.ctx.repository!.id;
    const expirationMs = req.config.expirationS * 1000;
    const check = await this.deps.freshness.lastCheck(repoId, tag, expirationMs);
    if (!check || this.deps.clock.now() - check.checkedAt >= expirationMs) return null;
    if (check.upstreamDigest === local.digest) return { ...local, cacheResult: 'hit' };
    const stored = await this.deps.content.getManifest(repoId, { kind: 'digest', digest: check.upstreamDigest });
    return stored && { ...stored, cacheResult: 'hit' };
  }

  /**
   * Revalidates a cached tag now, whatever its age (the refresh job, ahead of
   * the end of its staleness period), sharing the coalescing of pulls: one HEAD,
   * and the manifest (not its blobs) only when the tag changed. Throws when the
   * upstream fails; the tag stays as cached.
   */
  async refresh(tag: string, local: ManifestHit, ctx: LookupContext): Promise<ManifestHit | null> {
    const req = await cacheRequest(this.deps, ctx);
    if (!req || !ctx.repository || !this.deps.upstreamEnabled) return null;
    const key = `${ctx.target.org.id}|${ctx.target.repoName}|${tag}`;
    return this.inFlight.run(key, () => this.revalidateNow(req, tag, local, Number.POSITIVE_INFINITY));
  }

  /**
   * A slow or black-holed upstream must not hold a pull that cached content can
   * answer: past the deadline the fallback is served while the revalidation runs
   * on in the background (so the circuit breaker still learns of the outage).
   */
  private async withinDeadline(revalidation: Promise<ManifestHit>, fallback: () => ManifestHit): Promise<ManifestHit> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), this.deps.revalidationDeadlineMs);
    });
    revalidation.catch(() => undefined);
    try {
      return (await Promise.race([revalidation, deadline])) ?? fallback();
    } finally {
      clearTimeout(timer);
    }
  }

  private async revalidateNow(req: CacheRequest, tag: string, local: ManifestHit, age: number): Promise<ManifestHit> {
    const repoId = req.ctx.repository!.id;
    const staleAllowed = age < (req.config.expirationS + req.config.staleIfErrorS) * 1000;
    let head;
    try {
      const upstream = await this.deps.upstreamFor(req.config);
      head = await upstream.headManifest(req.upstreamRepo, tag);
    } catch (err) {
      if (staleAllowed && mayServeStale(err)) return this.stale(req, local, err);
      throw err;
    }
    if (head === null) {
      if (req.config.onUpstream404 === 'keep') return this.stale(req, local, 'upstream 404');
      await this.deps.content.deleteTag(repoId, tag);
      await this.deps.freshness.forget(repoId, tag);
      throw new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} no longer exists upstream`);
    }
    if (head.digest === local.digest) {
      this.deps.stats.revalidation(req.ctx.target.org.id, req.ctx.target.repoName, false);
      await this.deps.freshness.mark(repoId, tag, local.digest);
      return { ...local, cacheResult: 'revalidated' };
    }
    try {
      const fetched = await this.fetch(req, { kind: 'tag', tag });
      this.deps.stats.revalidation(req.ctx.target.org.id, req.ctx.target.repoName, true);
      return { ...fetched, cacheResult: 'revalidated' };
    } catch (err) {
      if (staleAllowed && mayServeStale(err)) return this.stale(req, local, err);
      throw err;
    }
  }

  private stale(req: CacheRequest, local: ManifestHit, reason: unknown): ManifestHit {
    const why = reason instanceof Error ? reason.message : String(reason);
    this.deps.metrics.staleServes.inc({ org: req.orgName, reason: reason instanceof RegistryError ? reason.code : why });
    this.deps.stats.staleServe(req.ctx.target.org.id, req.ctx.target.repoName);
    this.deps.logger.info('serving stale manifest', { org: req.orgName, repo: req.ctx.target.repoName, digest: local.digest, reason: why });
    return { ...local, cacheResult: 'stale' };
  }

  /**
   * GETs the manifest and, once the quota has room for the whole image it
   * describes, stores it exactly as received and records the tag check. An image
   * larger than the whole quota is served without being kept (`bypass`).
   */
  private async fetch(req: CacheRequest, ref: oci.Reference): Promise<ManifestHit> {
    const upstream = await this.deps.upstreamFor(req.config);
    const manifest = await upstream.getManifest(req.upstreamRepo, oci.referenceString(ref));
    if (ref.kind === 'digest' && manifest.digest !== ref.digest) {
      throw new RegistryError('MANIFEST_UNKNOWN', `upstream ${upstream.host} returned different content for ${ref.digest}`);
    }
    const parsed = oci.parseManifest(manifest.body, manifest.mediaType);
    const blobs = parsed.blobs.filter((d) => !oci.isNonDistributable(d));
    const items = [{ digest: manifest.digest, size: manifest.body.length }, ...blobs.map((d) => ({ digest: d.digest, size: d.size }))];
    const hit: ManifestHit = { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.body.length, body: manifest.body, cacheResult: 'miss' };
    const protect = req.ctx.repository ? { repoId: req.ctx.repository.id, tag: ref.kind === 'tag' ? ref.tag : undefined, digest: manifest.digest } : undefined;
    const admission = await this.deps.quota.admit(req.ctx.target.org, items, async () => {
      const repository = await ensureRepository(this.deps, req);
      await this.deps.content.putManifest(repository.id, manifest.body, manifest.mediaType, {
        tag: ref.kind === 'tag' ? ref.tag : undefined,
        requireReferences: false,
        algorithm: manifest.digest.slice(0, manifest.digest.indexOf(':')),
      });
      if (ref.kind === 'tag') await this.deps.freshness.mark(repository.id, ref.tag, manifest.digest);
    }, protect);
    if (admission === 'bypass') {
      this.deps.bypass.add(req.ctx.target.org.id, blobs.map((d) => d.digest));
      this.deps.logger.info('image exceeds the quota; serving without keeping it', { org: req.orgName, repo: req.ctx.target.repoName, digest: manifest.digest });
      return { ...hit, cacheResult: 'bypass' };
    }
    return hit;
  }
}

/**
 * Docker Hub answers 401, not 404, for a repository that does not exist (it
 * cannot tell "missing" from "private"). For a manifest that was never cached,
 * a refusal by the registry itself therefore becomes NAME_UNKNOWN (404): a
 * client reports "not found" instead of retrying an outage. A refusal by the
 * token service (our credentials are wrong) stays UNAVAILABLE, and cached tags
 * are still served stale on any refusal (see `revalidate`).
 */
function unknownIfRefused(req: CacheRequest, err: unknown): unknown {
  const failure = upstreamFailureOf(err);
  const host = new URL(endpointOf(req.config)).host;
  if (failure?.kind !== 'auth' || failure.host !== host) return err;
  return new RegistryError(
    'NAME_UNKNOWN',
    `repository ${req.upstreamRepo} does not exist at upstream ${host}, or the upstream refuses this cache access to it (HTTP ${failure.status ?? 401})`,
    { cause: err },
  );
}
