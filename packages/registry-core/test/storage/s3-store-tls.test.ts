/**
 * The storage contract (writes, stats, whole and ranged reads, uploads)
 * against SeaweedFS serving S3 over HTTPS with a self-signed certificate,
 * trusted only through the storage's `ca`: what AWS S3 or an S3 behind a
 * private CA asks of the driver.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { S3Server, TempDir } from '../../../../testing';
import { digestOf } from '../../src/oci/digest';
import { createS3Storage, S3StorageOptions } from '../../src/storage/s3-store';
import { describeBlobStoreContract, readAll, streamOf } from './blob-store.contract';

const MIB = 1024 * 1024;
let server: S3Server | undefined;

beforeAll(async () => {
  server = await S3Server.start({ tls: true });
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

function optionsFor(prefix: string, extra: Partial<S3StorageOptions> = {}): S3StorageOptions {
  if (!server) throw new Error('S3 test server did not start (see the beforeAll error; run scripts/ci/setup.sh)');
  return {
    endpoint: server.endPoint,
    port: server.port,
    useSSL: true,
    ca: server.caCert,
    accessKey: server.accessKey,
    secretKey: server.secretKey,
    bucket: server.bucket,
    region: server.region,
    prefix,
    redirectDownloads: false,
    // The S3 minimum, so that the contract's blobs span several multipart parts.
    partSizeBytes: 5 * MIB,
    ...extra,
  };
}

describeBlobStoreContract('s3 over TLS', async () => {
  const scratch = await TempDir.create('entrepot-s3-scratch-');
  const storage = await createS3Storage(optionsFor(`contract-${randomUUID()}/`), scratch.path);
  return { storage, cleanup: () => scratch.remove() };
});

describe('s3 over TLS specifics', () => {
  let scratch: TempDir;

  beforeEach(async () => {
    scratch = await TempDir.create('entrepot-s3-scratch-');
  });

  afterEach(async () => {
    await scratch.remove();
  });

  test('the endpoint is https; a self-signed certificate not given as a CA is refused', async () => {
    expect(server?.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    await expect(createS3Storage(optionsFor('untrusted/', { ca: undefined }), scratch.path)).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });

  test('ranged reads of a multipart blob, one after another and at once', async () => {
    const storage = await createS3Storage(optionsFor(`ranges-${randomUUID()}/`), scratch.path);
    const data = randomBytes(12 * MIB + 3);
    const digest = digestOf(data);
    expect(await storage.blobs.write(digest, streamOf(data), data.length)).toEqual({ size: data.length });
    expect(await storage.blobs.stat(digest)).toEqual({ size: data.length });
    const ranges = [
      { start: 0, end: 0 },
      { start: 5 * MIB - 1, end: 10 * MIB + 1 },
      { start: data.length - 7, end: data.length - 1 },
    ];
    for (const range of ranges) expect((await readAll(await storage.blobs.read(digest, range))).equals(data.subarray(range.start, range.end + 1))).toBe(true);
    const together = await Promise.all(ranges.map(async (range) => readAll(await storage.blobs.read(digest, range))));
    together.forEach((bytes, i) => expect(bytes.equals(data.subarray(ranges[i].start, ranges[i].end + 1))).toBe(true));
    await expect(storage.blobs.read(digest, { start: data.length + 10, end: data.length + 20 })).rejects.toMatchObject({ code: 'RANGE_INVALID' });
  });
});
