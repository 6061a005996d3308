import type { Request, Response } from 'express';
import { RegistryError } from '../../../errors/registry-error';
import { digestOf } from '../../../oci/digest';
import { MAX_MANIFEST_BYTES } from '../../../oci/media-types';
import { parseReference, referenceString, type Reference } from '../../../oci/names';
import type { ManifestHit } from '../../../plugin/contract';
import { readLimitedBody } from '../../read-body';
import { lookupContext, registryPath } from '../../request-state';
import type { RegistryRouteDeps } from './deps';

export function manifestHandlers(deps: RegistryRouteDeps) {
  /** GET and HEAD by tag or digest, through the lookup chain. */
  async function get(req: Request, res: Response): Promise<void> {
    const ctx = lookupContext(req);
    const ref = parseReference(registryPath(req).rest);
    const hit = await deps.registry.getManifest(ref, ctx);
    await checkPull(req, ref, hit);
    res.status(200);
    res.set({
      'Content-Type': hit.mediaType,
      'Content-Length': String(hit.size),
      'Docker-Content-Digest': hit.digest,
      ETag: `"${hit.digest}"`,
    });
    deps.metrics.pulls.inc({ org: ctx.target.org.name, result: hit.cacheResult ?? 'hit', kind: 'manifest' });
    if (req.method === 'HEAD') {
      res.end();
    } else {
      res.end(hit.body);
    }
    deps.observePull({
      target: ctx.target,
      kind: 'manifest',
      method: req.method === 'HEAD' ? 'HEAD' : 'GET',
      cacheResult: hit.cacheResult ?? 'hit',
      bytes: req.method === 'HEAD' ? 0 : hit.size,
      ...(ref.kind === 'tag' ? { tag: ref.tag } : {}),
    });
    // The audit entry is recorded first, and statistics (a database query for a
    // first pull) may fail without consequence: the response is already sent.
    // A HEAD by digest adds nothing to the GET that follows it; a HEAD by tag is how
    // containerd resolves the tag it pulls, so that one is audited.
    if (req.method !== 'HEAD' || ref.kind !== 'digest') auditPull(req, ref, hit, { cache_result: hit.cacheResult ?? null });
    if (ref.kind === 'tag' && hit.cacheResult !== 'bypass') {
      try {
        // A first pull through a cache creates the repository during the lookup.
        const repository = ctx.repository ?? (await deps.repositories.find(ctx.target.org.id, ctx.target.repoName));
        if (repository) deps.pullStats.record(repository.id, ref.tag);
      } catch (err) {
        deps.logger.warn('pull statistics not recorded', { requestId: ctx.requestId, error: String(err) });
      }
    }
  }

  /**
   * Pull guards (plugins' policies, such as required signatures) and, on a GET,
   * the organization's security policy. A refusal is audited (`blocked`) and
   * counted, then answered as the policy's error.
   */
  async function checkPull(req: Request, ref: Reference, hit: ManifestHit): Promise<void> {
    const ctx = lookupContext(req);
    let refusal: { error: unknown; metadata: Record<string, unknown> } | null = null;
    try {
      await deps.registry.checkPull(ref, hit, ctx);
    } catch (err) {
      refusal = { error: err, metadata: { reason: err instanceof RegistryError ? err.message : 'refused' } };
    }
    // Only a GET hands out content; a HEAD (how clients resolve a tag) tells nothing the security policy protects.
    if (!refusal && req.method === 'GET') {
      const found = await deps.pullPolicy.checkPull(ctx.target.org, ctx.target.repoName, { digest: hit.digest, mediaType: hit.mediaType });
      if (found) {
        deps.pullPolicy.countBlocked(ctx.target.org.name);
        refusal = { error: found.error, metadata: { fetched: hit.cacheResult ?? null, vulnerability: found.vulnerability, severity: found.severity } };
      }
    }
    if (!refusal) return;
    deps.metrics.pulls.inc({ org: ctx.target.org.name, result: 'blocked', kind: 'manifest' });
    auditPull(req, ref, hit, { cache_result: 'blocked', ...refusal.metadata });
    throw refusal.error;
  }

  /** The `pull_repo` audit entry of a manifest request, queued (never blocking the response). */
  function auditPull(req: Request, ref: Reference, hit: ManifestHit, outcome: Record<string, unknown>): void {
    const ctx = lookupContext(req);
    void deps.audit.record({
      orgId: ctx.target.org.id,
      repo: ctx.target.repoName,
      kind: 'pull_repo',
      performer: ctx.principal,
      ip: ctx.clientIp,
      userAgent: ctx.userAgent,
      metadata: {
        reference: referenceString(ref),
        ...(ref.kind === 'tag' ? { tag: ref.tag } : {}),
        manifest_digest: hit.digest,
        ...outcome,
        route: ctx.target.route,
        method: req.method,
      },
    });
  }

  async function put(req: Request, res: Response): Promise<void> {
    const ctx = lookupContext(req);
    const path = registryPath(req);
    const ref = parseReference(path.rest);
    const body = await readLimitedBody(req, MAX_MANIFEST_BYTES, 'manifest');
    const algorithm = ref.kind === 'digest' ? ref.digest.slice(0, ref.digest.indexOf(':')) : 'sha256';
    if (ref.kind === 'digest' && digestOf(body, algorithm) !== ref.digest) {
      throw new RegistryError('DIGEST_INVALID', `manifest content does not match digest ${ref.digest}`);
    }
    const repository = ctx.repository ?? (await deps.repositories.ensure(ctx.target.org.id, ctx.target.repoName));
    const { digest, parsed } = await deps.content.putManifest(repository.id, body, req.get('content-type'), {
      tag: ref.kind === 'tag' ? ref.tag : undefined,
      requireReferences: true,
      algorithm,
    });
    res.status(201).set({ Location: `/v2/${path.name}/manifests/${digest}`, 'Docker-Content-Digest': digest });
    if (parsed.subject) res.set('OCI-Subject', parsed.subject.digest);
    res.end();
    void deps.audit.record({
      orgId: ctx.target.org.id,
      repo: ctx.target.repoName,
      kind: 'push_repo',
      performer: ctx.principal,
      ip: ctx.clientIp,
      userAgent: ctx.userAgent,
      metadata: { reference: referenceString(ref), manifest_digest: digest },
    });
  }

  async function remove(req: Request, res: Response): Promise<void> {
    const ctx = lookupContext(req);
    const ref = parseReference(registryPath(req).rest);
    const repoId = ctx.repository?.id;
    const deleted =
      repoId === undefined ? false : ref.kind === 'digest' ? await deps.content.deleteManifest(repoId, ref.digest) : await deps.content.deleteTag(repoId, ref.tag);
    if (!deleted) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${referenceString(ref)} not found`);
    res.status(202).end();
    void deps.audit.record({
      orgId: ctx.target.org.id,
      repo: ctx.target.repoName,
      kind: ref.kind === 'tag' ? 'delete_tag' : 'delete_manifest',
      performer: ctx.principal,
      ip: ctx.clientIp,
      userAgent: ctx.userAgent,
      metadata: { reference: referenceString(ref) },
    });
  }

  return { get, put, remove };
}
