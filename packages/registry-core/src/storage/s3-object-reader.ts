import { Readable } from 'node:stream';
import type { Client } from 'minio';
import { Agent, type Dispatcher } from 'undici';
import { RegistryError } from '../errors/registry-error';
import type { ByteRange } from './blob-store';

/** How long a locally signed read URL stays valid; it is used at once. */
const SIGNED_URL_SECONDS = 60;
/** Bytes buffered ahead of a slow client per read; socket reads pause beyond it. */
const BODY_HIGH_WATER_MARK = 256 * 1024;
/**
 * A stalled S3 server fails the read instead of hanging the client. Time the
 * body waits on a slow client (backpressure) does not count.
 */
const TIMEOUTS = { connectTimeout: 10_000, headersTimeout: 30_000, bodyTimeout: 60_000 } as const;

function storageUnavailable(cause?: unknown): RegistryError {
  return new RegistryError('UNAVAILABLE', 'blob storage is unavailable; try again shortly', { headers: { 'Retry-After': '1' }, cause });
}

/** The `<Code>` of an S3 XML error body, if any. */
function errorCodeOf(body: string): string | undefined {
  return /<Code>([^<]{1,100})<\/Code>/.exec(body)?.[1];
}

/**
 * GETs of stored objects over undici, signed locally (SigV4 query signing by
 * the minio client, no network call when the region is configured). Node's
 * http client, which minio's own getObject uses, moved large bodies at about
 * three quarters of undici's rate here (docs/BENCHMARKS.md, item 31), and
 * every warm blob served from S3 goes through here.
 */
export class S3ObjectReader {
  private readonly http: Dispatcher;

  constructor(
    private readonly client: Client,
    private readonly bucket: string,
  ) {
    this.http = new Agent(TIMEOUTS);
  }

  /** Throws `missing()` when absent, RANGE_INVALID when the range starts past the end, UNAVAILABLE when S3 cannot be reached. */
  async read(key: string, range: ByteRange | undefined, missing: () => RegistryError): Promise<Readable> {
    const url = new URL(await this.client.presignedGetObject(this.bucket, key, SIGNED_URL_SECONDS));
    let response: Dispatcher.ResponseData;
    try {
      response = await this.http.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: range ? { range: `bytes=${range.start}-${range.end}` } : {},
        highWaterMark: BODY_HIGH_WATER_MARK,
      });
    } catch (err) {
      throw storageUnavailable(err);
    }
    const { statusCode, body } = response;
    // A ranged read must come back partial: a whole object in its place would be served as the range.
    if (statusCode === (range ? 206 : 200)) return body;
    const text = await body.text().catch(() => '');
    const code = errorCodeOf(text);
    if (statusCode === 404 && (code === undefined || code === 'NoSuchKey')) throw missing();
    if (statusCode === 416) throw new RegistryError('RANGE_INVALID', `range ${range?.start}-${range?.end} is not satisfiable`);
    if (statusCode === 503 || statusCode === 500) throw storageUnavailable();
    throw new Error(`S3 GET of ${key} answered ${statusCode}${code ? ` ${code}` : ''}`);
  }
}
