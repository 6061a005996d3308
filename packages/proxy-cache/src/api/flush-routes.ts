import type { Router } from 'express';
import { z } from 'zod';
import { invalidField, RegistryError, type CorePorts, oci } from '@entrepot/registry-core';
import type { Removed } from '../core-types';
import type { CacheConfigStore } from '../config/cache-config-store';
import type { TagFreshness } from '../freshness/tag-freshness';
import type { ReferrerLists } from '../freshness/referrer-lists';

export const flushQuery = z.object({ repository: z.string().max(255).optional(), tag: z.string().max(128).optional() });

export interface FlushRouteDeps {
  core: CorePorts;
  configs: CacheConfigStore;
  freshness: TagFreshness;
  referrerLists: ReferrerLists;
}

/**
 * R-FLUSH: `DELETE /organization/{org}/proxycache/cache[?repository=R[&tag=T]]`
 * empties a whole cache organization, one repository or one tag (with the
 * signatures, attestations and other referrers of what it removes); the cache
 * configuration and repository permissions stay. Storage is reclaimed by
 * garbage collection once nothing references the content (after the grace
 * period, so pulls in progress complete).
 */
export function flushRoutes(router: Router, deps: FlushRouteDeps): void {
  const { asyncHandler, requireOrgAdmin, principal, clientIp } = deps.core.http;

  router.delete('/organization/:org/proxycache/cache', asyncHandler(async (req, res) => {
    const org = await requireOrgAdmin(req);
    if (!(await deps.configs.get(org.id))) throw new RegistryError('NOT_FOUND', `organization ${org.name} is not a proxy cache`);
    const query = flushQuery.safeParse(req.query);
    if (!query.success) throw invalidField(String(query.error.issues[0].path[0] ?? 'query'), query.error.issues[0].message);
    const { repository, tag } = query.data;
    if (tag !== undefined && repository === undefined) throw invalidField('tag', 'give the repository of the tag');
    if (tag !== undefined && !oci.isValidTag(tag)) throw invalidField('tag', 'not a valid tag name');
    if (repository !== undefined) oci.validateRepositoryName(repository);

    const repos = repository === undefined ? await deps.core.repositories.listByOrg(org.id) : [await deps.core.repositories.find(org.id, repository)];
    if (repos.some((r) => r === null)) throw new RegistryError('NOT_FOUND', `repository ${repository} not found in ${org.name}`);
    const total: Pick<Removed, 'tags' | 'manifests'> = { tags: 0, manifests: 0 };
    for (const repo of repos) {
      if (!repo) continue;
      const digest = tag !== undefined ? await deps.core.content.tagDigest(repo.id, tag) : null;
      const removed = tag !== undefined ? await deps.core.removal.removeTag(repo.id, tag, undefined, { referrers: true }) : await deps.core.removal.purgeRepository(repo.id);
      if (tag !== undefined) await deps.freshness.forget(repo.id, tag);
      await deps.referrerLists.forget(repo.id, tag === undefined ? undefined : digest ? [digest] : []);
      total.tags += removed.tags;
      total.manifests += removed.manifests;
    }
    if (tag !== undefined && total.tags === 0) throw new RegistryError('NOT_FOUND', `tag ${tag} not found in ${org.name}/${repository}`);
    await deps.core.requestGc();
    await deps.core.audit.record({
      orgId: org.id,
      repo: repository,
      kind: 'flush_proxy_cache',
      performer: principal(req),
      ip: clientIp(req),
      userAgent: req.get('user-agent'),
      metadata: { scope: tag !== undefined ? 'tag' : repository !== undefined ? 'repository' : 'organization', repository: repository ?? null, tag: tag ?? null, ...total },
    });
    res.json({ removed: total, usage_bytes: await deps.core.quotas.usage(org.id) });
  }));
}
