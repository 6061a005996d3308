import { createHash } from 'node:crypto';

export interface ReadBody {
  received: number;
  /** sha256 of the bytes received. */
  digest: string;
  /** Set when reading the body failed (connection cut, truncated body). */
  bodyError?: string;
  /** The bytes, when kept (`keep`, or any error status). */
  body?: Buffer;
  /** The first OCI error code of an error response. */
  errors?: Array<{ code: string; message: string }>;
}

export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err);
}

/**
 * Reads a whole fetch() response body, hashing it and noting how it ended, so a
 * test can tell a complete body from a cut or corrupt one. Error bodies are kept
 * and their OCI envelope parsed.
 */
export async function readBody(res: Response, options: { keep?: boolean; onBytes?: (received: number) => void } = {}): Promise<ReadBody> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  const keep = options.keep === true || res.status >= 400;
  let received = 0;
  let bodyError: string | undefined;
  try {
    for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
      received += chunk.length;
      hash.update(chunk);
      options.onBytes?.(received);
      if (keep) chunks.push(Buffer.from(chunk));
    }
  } catch (err) {
    bodyError = describeError(err);
  }
  const out: ReadBody = { received, digest: `sha256:${hash.digest('hex')}` };
  if (bodyError !== undefined) out.bodyError = bodyError;
  if (keep) out.body = Buffer.concat(chunks);
  if (res.status >= 400 && chunks.length > 0) {
    try {
      out.errors = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { errors?: Array<{ code: string; message: string }> }).errors;
    } catch {
      // not an OCI envelope
    }
  }
  return out;
}
