import type { Readable } from 'node:stream';
import type { Client } from 'minio';
import type { Dispatcher } from 'undici';
import { RegistryError } from '../errors/registry-error';
import type { ByteRange } from './blob-store';
import type { BufferPool } from './buffer-pool';
import { requestIntoPool } from './pooled-response';

/** How long a locally signed read URL stays valid; it is used at once. */
const SIGNED_URL_SECONDS = 60;
/** Enough of an error body to find its `<Code>`. */
const ERROR_BODY_BYTES = 16 * 1024;

function storageUnavailable(cause?: unknown): RegistryError {
  return new RegistryError('UNAVAILABLE', 'blob storage is unavailable; try again shortly', { headers: { 'Retry-After': '1' }, cause });
}

/** The `<Code>` of an S3 XML error body, if any. */
function errorCodeOf(body: string): string | undefined {
  return /<Code>([^<]{1,100})<\/Code>/.exec(body)?.[1];
}

/** The start of a (small) error body; the rest is dropped with the connection. */
async function errorText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= ERROR_BODY_BYTES) break;
    }
  } catch {
    // A broken error body still leaves its status to go by.
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * GETs of stored objects, signed locally (SigV4 query signing by the minio
 * client, no network call when the region is configured) and sent through
 * undici (`createPooledAgent`: kept-alive connections, plain or TLS), the body
 * arriving in pool buffers (`requestIntoPool`). Node's own http client, which
 * minio's getObject uses, moved large bodies at under half that rate here
 * (docs/BENCHMARKS.md, S3 reads), and every warm blob served from S3 goes
 * through here.
 */
export class S3ObjectReader {
  constructor(
    private readonly client: Client,
    private readonly bucket: string,
    private readonly http: Dispatcher,
    private readonly buffers: BufferPool,
  ) {}

  /** Throws `missing()` when absent, RANGE_INVALID when the range starts past the end, UNAVAILABLE when S3 cannot be reached. */
  async read(key: string, range: ByteRange | undefined, missing: () => RegistryError): Promise<Readable> {
    const url = new URL(await this.client.presignedGetObject(this.bucket, key, SIGNED_URL_SECONDS));
    const headers: Record<string, string> = range ? { range: `bytes=${range.start}-${range.end}` } : {};
    let answer: { statusCode: number; body: Readable };
    try {
      answer = await requestIntoPool(this.http, { origin: url.origin, path: `${url.pathname}${url.search}`, method: 'GET', headers }, this.buffers);
    } catch (err) {
      throw storageUnavailable(err);
    }
    const { statusCode, body } = answer;
    // A ranged read must come back partial: a whole object in its place would be served as the range.
    if (statusCode === (range ? 206 : 200)) return body;
    const code = errorCodeOf(await errorText(body));
    if (statusCode === 404 && (code === undefined || code === 'NoSuchKey')) throw missing();
    if (statusCode === 416) throw new RegistryError('RANGE_INVALID', `range ${range?.start}-${range?.end} is not satisfiable`);
    if (statusCode === 503 || statusCode === 500) throw storageUnavailable();
    throw new Error(`S3 GET of ${key} answered ${statusCode}${code ? ` ${code}` : ''}`);
  }
}
