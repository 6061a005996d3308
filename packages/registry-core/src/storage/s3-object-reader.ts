import type { Readable } from 'node:stream';
import type { Client } from 'minio';
import { Agent, type Dispatcher } from 'undici';
import { RegistryError } from '../errors/registry-error';
import type { ByteRange } from './blob-store';
import type { BufferPool } from './buffer-pool';
import { pooledGet, UnsupportedFramingError, type PooledGetTimeouts } from './pooled-http-get';

/** How long a locally signed read URL stays valid; it is used at once. */
const SIGNED_URL_SECONDS = 60;
/** Bytes buffered ahead of a slow client per read; socket reads pause beyond it. */
const BODY_HIGH_WATER_MARK = 256 * 1024;
/**
 * A stalled S3 server fails the read instead of hanging the client. Time the
 * body waits on a slow client (backpressure) does not count.
 */
const TIMEOUTS: PooledGetTimeouts = { connectMs: 10_000, headersMs: 30_000, bodyIdleMs: 60_000, closeGraceMs: 5_000 };
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

interface Answer {
  statusCode: number;
  body: Readable;
}

/**
 * GETs of stored objects, signed locally (SigV4 query signing by the minio
 * client, no network call when the region is configured). Over plain HTTP the
 * body is read into pooled buffers (`pooledGet`); over TLS, and for a body
 * not framed by Content-Length, through undici. Node's own http client, which
 * minio's getObject uses, moved large bodies at under half the pooled rate
 * here (docs/BENCHMARKS.md, S3 reads), and every warm blob served from
 * S3 goes through here.
 */
export class S3ObjectReader {
  private readonly http: Dispatcher;

  constructor(
    private readonly client: Client,
    private readonly bucket: string,
    private readonly buffers: BufferPool,
  ) {
    this.http = new Agent({ connectTimeout: TIMEOUTS.connectMs, headersTimeout: TIMEOUTS.headersMs, bodyTimeout: TIMEOUTS.bodyIdleMs });
  }

  /** Throws `missing()` when absent, RANGE_INVALID when the range starts past the end, UNAVAILABLE when S3 cannot be reached. */
  async read(key: string, range: ByteRange | undefined, missing: () => RegistryError): Promise<Readable> {
    const url = new URL(await this.client.presignedGetObject(this.bucket, key, SIGNED_URL_SECONDS));
    const headers: Record<string, string> = range ? { range: `bytes=${range.start}-${range.end}` } : {};
    let answer: Answer;
    try {
      answer = await this.get(url, headers);
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

  private async get(url: URL, headers: Record<string, string>): Promise<Answer> {
    if (url.protocol === 'http:') {
      try {
        return await pooledGet(url, headers, this.buffers, TIMEOUTS);
      } catch (err) {
        if (!(err instanceof UnsupportedFramingError)) throw err;
      }
    }
    return this.http.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method: 'GET', headers, highWaterMark: BODY_HIGH_WATER_MARK });
  }
}
