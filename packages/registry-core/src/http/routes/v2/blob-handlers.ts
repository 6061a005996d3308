import type { Request, Response } from 'express';
import type { Readable } from 'node:stream';
import { RegistryError } from '../../../errors/registry-error';
import { parseDigest } from '../../../oci/digest';
import { parseRange } from '../../range';
import { sendBody } from '../../send-body';
import { lookupContext, registryPath } from '../../request-state';
import type { RegistryRouteDeps } from './deps';

export function blobHandlers(deps: RegistryRouteDeps) {
  /** GET and HEAD, with single byte ranges; streams from storage or an in-flight fill. */
  async function get(req: Request, res: Response): Promise<void> {
    const ctx = lookupContext(req);
    const digest = parseDigest(registryPath(req).rest);
    const hit = await deps.registry.getBlob(digest, ctx);
    const range = parseRange(req.get('range'), hit.size);
    res.set({
      'Docker-Content-Digest': hit.digest,
      'Content-Type': 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      ETag: `"${hit.digest}"`,
      'Cache-Control': 'max-age=31536000',
    });
    if (range) {
      res.status(206).set({ 'Content-Range': `bytes ${range.start}-${range.end}/${hit.size}`, 'Content-Length': String(range.end - range.start + 1) });
    } else {
      res.status(200).set('Content-Length', String(hit.size));
    }
    deps.metrics.pulls.inc({ org: ctx.target.org.name, result: hit.cacheResult ?? 'hit', kind: 'blob' });
    const result = hit.cacheResult ?? 'hit';
    if (req.method === 'HEAD') {
      res.end();
      deps.observePull({ target: ctx.target, kind: 'blob', method: 'HEAD', cacheResult: result, bytes: 0 });
      return;
    }
    if (!range && hit.redirectUrl) {
      const url = await hit.redirectUrl();
      if (url) {
        res.status(307).set('Location', url).removeHeader('Content-Length');
        res.end();
        return;
      }
    }
    const body = await hit.open(range);
    // Until the first byte, a failure (e.g. an upstream fill that cannot start) is still a proper error response.
    if (hit.size > 0) await firstBytes(body);
    const source = hit.cacheResult === 'miss' ? 'fill' : 'storage';
    const length = range ? range.end - range.start + 1 : hit.size;
    // Counted once per response: a listener per chunk would slow the hot path.
    res.once('finish', () => {
      deps.metrics.blobBytesServed.inc({ source }, length);
      deps.observePull({ target: ctx.target, kind: 'blob', method: 'GET', cacheResult: result, bytes: length });
    });
    try {
      await sendBody(body, res);
    } catch (err) {
      // A client that goes away is normal; anything else must not leave a half body looking complete.
      if (!res.writableFinished) res.destroy();
      if (!req.destroyed && !(err instanceof Error && /premature close|aborted/i.test(err.message))) {
        deps.logger.warn('blob stream failed', { requestId: ctx.requestId, digest, error: String(err) });
      }
    }
  }

  async function remove(req: Request, res: Response): Promise<void> {
    const ctx = lookupContext(req);
    const digest = parseDigest(registryPath(req).rest);
    const removed = ctx.repository ? await deps.content.unlinkBlob(ctx.repository.id, digest) : false;
    if (!removed) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} not found`);
    res.status(202).end();
  }

  return { get, remove };
}

/**
 * Resolves once `body` has bytes to give or has ended; rejects when it fails
 * (or closes) before that. Nothing is read, so the stream can then be piped.
 */
function firstBytes(body: Readable): Promise<void> {
  if (body.readableLength > 0 || body.readableEnded) return Promise.resolve();
  return new Promise((resolve, reject) => {
    // The error listener stays: an error before pipeline() attaches its own must not go unhandled.
    const settle = (err?: Error): void => {
      body.off('readable', onReadable);
      body.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onReadable = (): void => settle();
    const onError = (err: Error): void => settle(err);
    const onClose = (): void => settle(body.readableEnded ? undefined : new Error('blob stream closed before its first byte'));
    body.on('readable', onReadable);
    body.on('error', onError);
    body.on('close', onClose);
  });
}
