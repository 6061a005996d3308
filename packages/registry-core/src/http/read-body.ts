import type { Request } from 'express';
import { RegistryError } from '../errors/registry-error';

/**
 * Reads a request body into memory, refusing (413) anything over `limit` as soon
 * as the declared length or the bytes received pass it. Only for small bodies
 * such as manifests; blobs are always streamed.
 */
export async function readLimitedBody(req: Request, limit: number, what: string): Promise<Buffer> {
  const declared = Number(req.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new RegistryError('TOO_LARGE', `${what} exceeds ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      req.resume();
      throw new RegistryError('TOO_LARGE', `${what} exceeds ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
