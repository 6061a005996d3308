import type { Request, Response } from 'express';
import { z } from 'zod';
import { invalidField, RegistryError } from '../../../errors/registry-error';
import type { Digest } from '../../../oci/digest';
import { isValidTag } from '../../../oci/names';
import type { ApiContext } from './api-context';
import { epochSeconds, quayDate } from './quay-format';
import type { ApiRepoPath } from './repo-path';
import { parseQuery, queryInt } from './validation';

export const tagQuery = z.object({
  page: queryInt(1, 100_000, 1),
  limit: queryInt(1, 100, 50),
  specificTag: z.string().max(128).optional(),
  /** Quay distinguishes expired tags; every tag here is active. */
  onlyActiveTags: z.string().max(8).optional(),
});

/** `.../tag/`: a repository's tags with size and pull statistics; deleting a tag. */
export function tagHandlers(ctx: ApiContext) {
  const { deps, access, stats } = ctx;

  async function list(req: Request, res: Response, path: ApiRepoPath): Promise<void> {
    const { repo } = await access.requireRepo(req, path.org, path.repo, 'pull');
    const query = parseQuery(tagQuery, req.query);
    if (query.specificTag !== undefined && !isValidTag(query.specificTag)) throw invalidField('specificTag', 'not a valid tag name');
    const { tags, hasAdditional } = await stats.tagPage(repo.id, { page: query.page, limit: query.limit, specificTag: query.specificTag });
    const scans = await deps.scanning.summaries(repo.id, tags.map((t) => ({ digest: t.manifest_digest as Digest, isIndex: t.is_manifest_list })));
    res.json({
      tags: tags.map((t) => ({
        name: t.name,
        manifest_digest: t.manifest_digest,
        is_manifest_list: t.is_manifest_list,
        media_type: t.media_type,
        size: t.size,
        reversion: false,
        start_ts: epochSeconds(t.updated_at),
        last_modified: quayDate(t.updated_at),
        last_pulled: t.last_pulled_at === null ? null : quayDate(t.last_pulled_at),
        pull_count: t.pull_count,
        pinned: t.pinned,
        // Scan status and vulnerability counts (null while scanning is off or the manifest was never queued).
        security: scans.get(t.manifest_digest as Digest) ?? null,
      })),
      page: query.page,
      has_additional: hasAdditional,
    });
  }

  async function remove(req: Request, res: Response, path: ApiRepoPath, tag: string): Promise<void> {
    if (!isValidTag(tag)) throw invalidField('tag', 'not a valid tag name');
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'delete');
    const digest = await deps.content.tagDigest(repo.id, tag);
    if (!digest || !(await deps.content.deleteTag(repo.id, tag))) throw new RegistryError('NOT_FOUND', `tag ${tag} not found in ${org.name}/${repo.name}`);
    await ctx.audit(req, { orgId: org.id, repo: repo.name, kind: 'delete_tag', metadata: { tag, manifest_digest: digest, namespace: org.name, repo: repo.name } });
    await deps.requestGc();
    res.status(204).end();
  }

  /** Pinned tags are never evicted from a cache; they still count against the quota. */
  async function pin(req: Request, res: Response, path: ApiRepoPath, tag: string, pinned: boolean): Promise<void> {
    if (!isValidTag(tag)) throw invalidField('tag', 'not a valid tag name');
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'admin');
    if (!(await deps.content.setPinned(repo.id, tag, pinned))) throw new RegistryError('NOT_FOUND', `tag ${tag} not found in ${org.name}/${repo.name}`);
    await ctx.audit(req, { orgId: org.id, repo: repo.name, kind: pinned ? 'pin_tag' : 'unpin_tag', metadata: { tag, namespace: org.name, repo: repo.name } });
    res.json({ name: tag, pinned });
  }

  return { list, remove, pin };
}
