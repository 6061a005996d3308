import type { Request, Response } from 'express';
import { RegistryError } from '../../../errors/registry-error';
import { parseDigest } from '../../../oci/digest';
import { MediaType } from '../../../oci/media-types';
import { lookupContext, registryPath } from '../../request-state';
import type { RegistryRouteDeps } from './deps';

const MAX_PAGE = 10_000;

/** `n` and `last` paging parameters; throws INVALID_REQUEST (400) for bad values. */
export function pageParams(req: Request): { n?: number; last?: string } {
  const page: { n?: number; last?: string } = {};
  if (req.query.n !== undefined) {
    const n = Number(req.query.n);
    if (typeof req.query.n !== 'string' || !/^\d+$/.test(req.query.n) || n > MAX_PAGE) {
      throw new RegistryError('INVALID_REQUEST', `n must be an integer from 0 to ${MAX_PAGE}`);
    }
    page.n = n;
  }
  if (req.query.last !== undefined) {
    if (typeof req.query.last !== 'string') throw new RegistryError('INVALID_REQUEST', 'last must be a string');
    page.last = req.query.last;
  }
  return page;
}

export function nextLink(path: string, page: { n?: number }, items: string[]): string | undefined {
  if (page.n === undefined || page.n === 0 || items.length < page.n) return undefined;
  return `<${path}?n=${page.n}&last=${encodeURIComponent(items[items.length - 1])}>; rel="next"`;
}

export function listingHandlers(deps: RegistryRouteDeps) {
  async function tags(req: Request, res: Response): Promise<void> {
    const path = registryPath(req);
    if (path.rest !== 'list') throw new RegistryError('NOT_FOUND', 'unknown tags endpoint');
    const page = pageParams(req);
    const list = await deps.registry.listTags(lookupContext(req), page);
    const link = nextLink(`/v2/${path.name}/tags/list`, page, list);
    if (link) res.set('Link', link);
    res.json({ name: path.name, tags: list });
  }

  async function referrers(req: Request, res: Response): Promise<void> {
    const subject = parseDigest(registryPath(req).rest);
    const artifactType = typeof req.query.artifactType === 'string' ? req.query.artifactType : undefined;
    const manifests = await deps.registry.referrers(subject, lookupContext(req), artifactType);
    if (artifactType) res.set('OCI-Filters-Applied', 'artifactType');
    // Set by hand: express would append "; charset=utf-8", which clients compare literally.
    res.status(200).setHeader('Content-Type', MediaType.OciIndex);
    res.end(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
  }

  return { tags, referrers };
}
