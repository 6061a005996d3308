import type { Request, Response } from 'express';
import { RegistryError } from '../../../errors/registry-error';
import { parseDigest } from '../../../oci/digest';
import { validateRepositoryName } from '../../../oci/names';
import type { RepositoryRow } from '../../../services/repository-service';
import { lookupContext, registryPath } from '../../request-state';
import type { RegistryRouteDeps } from './deps';

function hasBody(req: Request): boolean {
  const length = req.get('content-length');
  return (length !== undefined && Number(length) > 0) || req.get('transfer-encoding') !== undefined;
}

function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

function rangeHeader(size: number): string {
  return size > 0 ? `0-${size - 1}` : '0-0';
}

/** OCI `Content-Range: <start>-<end>` on PATCH; returns the start offset. */
function chunkStart(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const match = /^(?:bytes )?(\d+)-(\d+)(?:\/\d+|\/\*)?$/.exec(header.trim());
  if (!match || Number(match[1]) > Number(match[2])) {
    throw new RegistryError('RANGE_INVALID', `invalid Content-Range "${header.slice(0, 100)}"`);
  }
  return Number(match[1]);
}

export function uploadHandlers(deps: RegistryRouteDeps) {
  async function repositoryFor(req: Request): Promise<RepositoryRow> {
    const ctx = lookupContext(req);
    return ctx.repository ?? deps.repositories.ensure(ctx.target.org.id, ctx.target.repoName);
  }

  /** Cross-repository mount: allowed only when the principal may pull the blob from `from`. */
  async function tryMount(req: Request, repo: RepositoryRow): Promise<boolean> {
    const ctx = lookupContext(req);
    const mount = typeof req.query.mount === 'string' ? parseDigest(req.query.mount) : null;
    const from = typeof req.query.from === 'string' ? req.query.from : null;
    if (!mount || !from) return false;
    validateRepositoryName(from);
    const source = await deps.names.targetOf(from, {});
    if (!source || source.target.route !== 'explicit') return false;
    const { target, repository: sourceRepo } = source;
    if (!sourceRepo || !(await deps.content.isBlobLinked(sourceRepo.id, mount))) return false;
    const isPublic = sourceRepo.visibility ? sourceRepo.visibility === 'public' : target.org.is_public;
    if (!(await deps.authorizer.canAccessRepo(ctx.principal, target.org.id, sourceRepo.id, 'pull', isPublic))) return false;
    return deps.content.linkStoredBlob(repo.id, mount);
  }

  async function start(req: Request, res: Response): Promise<void> {
    const path = registryPath(req);
    const repo = await repositoryFor(req);
    if (await tryMount(req, repo)) {
      const digest = String(req.query.mount);
      res.status(201).set({ Location: `/v2/${path.name}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': '0' }).end();
      return;
    }
    if (typeof req.query.digest === 'string') {
      const digest = parseDigest(req.query.digest);
      await deps.uploads.putWhole(repo.id, digest, req);
      res.status(201).set({ Location: `/v2/${path.name}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': '0' }).end();
      return;
    }
    req.resume();
    const id = await deps.uploads.start(repo.id);
    res.status(202).set({ Location: uploadLocation(path.name, id), 'Docker-Upload-UUID': id, Range: '0-0', 'Content-Length': '0' }).end();
  }

  async function status(req: Request, res: Response): Promise<void> {
    const path = registryPath(req);
    const repo = await requireRepository(req);
    const size = await deps.uploads.size(repo.id, path.rest);
    res.status(204).set({ Location: uploadLocation(path.name, path.rest), 'Docker-Upload-UUID': path.rest, Range: rangeHeader(size) }).end();
  }

  async function patch(req: Request, res: Response): Promise<void> {
    const path = registryPath(req);
    const repo = await requireRepository(req);
    const size = await deps.uploads.append(repo.id, path.rest, req, chunkStart(req.get('content-range')));
    res.status(202).set({ Location: uploadLocation(path.name, path.rest), 'Docker-Upload-UUID': path.rest, Range: rangeHeader(size), 'Content-Length': '0' }).end();
  }

  async function finish(req: Request, res: Response): Promise<void> {
    const path = registryPath(req);
    const repo = await requireRepository(req);
    if (typeof req.query.digest !== 'string') throw new RegistryError('DIGEST_INVALID', 'the digest query parameter is required to finish an upload');
    const digest = parseDigest(req.query.digest);
    const body = hasBody(req) ? req : undefined;
    await deps.uploads.finish(repo.id, path.rest, digest, body, body ? chunkStart(req.get('content-range')) : undefined);
    res.status(201).set({ Location: `/v2/${path.name}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': '0' }).end();
  }

  async function cancel(req: Request, res: Response): Promise<void> {
    const repo = await requireRepository(req);
    await deps.uploads.cancel(repo.id, registryPath(req).rest);
    res.status(204).end();
  }

  async function requireRepository(req: Request): Promise<RepositoryRow> {
    const repo = lookupContext(req).repository;
    if (!repo) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'unknown upload');
    return repo;
  }

  return { start, status, patch, finish, cancel };
}
