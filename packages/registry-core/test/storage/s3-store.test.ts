/**
 * The storage contract against a real S3 server (SeaweedFS, built by
 * scripts/ci/setup.sh), plus what only S3 has: the key layout, no stray
 * temporary or multipart objects, presigned redirects and uploads continued by
 * another replica.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { BucketItem, Client, IncompleteUploadedBucketItem } from 'minio';
import { S3Server, TempDir } from '../../../../testing';
import { digestOf } from '../../src/oci/digest';
import { Storage } from '../../src/storage/blob-store';
import { createS3Storage, S3StorageOptions } from '../../src/storage/s3-store';
import { describeBlobStoreContract, PatternBlob, readAll, streamOf } from './blob-store.contract';

const MIB = 1024 * 1024;
let server: S3Server | undefined;

beforeAll(async () => {
  // Throws (failing every test) with a message naming scripts/ci/setup.sh when the `weed` binary is missing.
  server = await S3Server.start();
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

function s3(): S3Server {
  if (!server) throw new Error('S3 test server did not start (see the beforeAll error; run scripts/ci/setup.sh)');
  return server;
}

function optionsFor(prefix: string, extra: Partial<S3StorageOptions> = {}): S3StorageOptions {
  const srv = s3();
  return {
    endpoint: srv.endPoint,
    port: srv.port,
    useSSL: false,
    accessKey: srv.accessKey,
    secretKey: srv.secretKey,
    bucket: srv.bucket,
    region: srv.region,
    prefix,
    redirectDownloads: false,
    // The S3 minimum, so that the contract's blobs span several multipart parts.
    partSizeBytes: 5 * MIB,
    ...extra,
  };
}

function rawClient(): Client {
  const srv = s3();
  return new Client({ endPoint: srv.endPoint, port: srv.port, useSSL: false, accessKey: srv.accessKey, secretKey: srv.secretKey, region: srv.region });
}

async function objectsUnder(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const item of rawClient().listObjectsV2(s3().bucket, prefix, true)) names.push((item as BucketItem).name!);
  return names.sort();
}

async function incompleteUploadsUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of rawClient().listIncompleteUploads(s3().bucket, prefix, true)) keys.push((item as IncompleteUploadedBucketItem).key);
  return keys;
}

function httpGet(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describeBlobStoreContract('s3', async () => {
  const scratch = await TempDir.create('entrepot-s3-scratch-');
  const storage = await createS3Storage(optionsFor(`contract-${randomUUID()}/`), scratch.path);
  return { storage, cleanup: () => scratch.remove() };
});

describe('s3 storage specifics', () => {
  let scratch: TempDir;
  let prefix: string;

  beforeEach(async () => {
    scratch = await TempDir.create('entrepot-s3-scratch-');
    prefix = `specific-${randomUUID()}/`;
  });

  afterEach(async () => {
    await scratch.remove();
  });

  test('blobs are stored as <prefix>blobs/<algo>/<2 hex>/<hex>; refused writes leave no object or multipart upload', async () => {
    const storage = await createS3Storage(optionsFor(prefix), scratch.path);
    const data = randomBytes(1000);
    const digest = digestOf(data);
    await storage.blobs.write(digest, streamOf(data));
    const big = new PatternBlob(17 * MIB);
    await expect(storage.blobs.write(digestOf('wrong'), big.stream())).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    await expect(storage.blobs.write(digestOf('wrong too'), streamOf(data))).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    const hex = digest.slice('sha256:'.length);
    expect(await objectsUnder(prefix)).toEqual([`${prefix}blobs/sha256/${hex.slice(0, 2)}/${hex}`]);
    expect(await incompleteUploadsUnder(prefix)).toEqual([]);
  });

  test('a prefix without a trailing slash gets one', async () => {
    const bare = `bare-${randomUUID()}`;
    const storage = await createS3Storage(optionsFor(bare), scratch.path);
    const data = Buffer.from('hello');
    await storage.blobs.write(digestOf(data), streamOf(data));
    const hex = digestOf(data).slice('sha256:'.length);
    expect(await objectsUnder(bare)).toEqual([`${bare}/blobs/sha256/${hex.slice(0, 2)}/${hex}`]);
  });

  test('a blob larger than the default 16 MiB part size round-trips', async () => {
    const storage = await createS3Storage(optionsFor(prefix, { partSizeBytes: undefined }), scratch.path);
    const blob = new PatternBlob(40 * MIB + 1);
    const { digest, size } = await blob.digest();
    expect(await storage.blobs.write(digest, blob.stream(), size)).toEqual({ size });
    const range = await readAll(await storage.blobs.read(digest, { start: 16 * MIB - 3, end: 32 * MIB + 3 }));
    expect(range.equals(blob.slice(16 * MIB - 3, 32 * MIB + 3))).toBe(true);
    expect(await incompleteUploadsUnder(prefix)).toEqual([]);
  });

  test('content of a known size up to one part is one PUT; larger content goes in whole parts', async () => {
    const storage = await createS3Storage(optionsFor(prefix), scratch.path);
    const etagOf = async (digest: string): Promise<string> => (await rawClient().statObject(s3().bucket, `${prefix}blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}`)).etag;
    const onePart = new PatternBlob(5 * MIB);
    const one = await onePart.digest();
    await storage.blobs.write(one.digest, onePart.stream(), one.size);
    // A multipart object's ETag ends in "-<number of parts>".
    expect(await etagOf(one.digest)).not.toContain('-');
    const threeParts = new PatternBlob(12 * MIB + 7);
    const three = await threeParts.digest();
    await storage.blobs.write(three.digest, threeParts.stream(), three.size);
    expect(await etagOf(three.digest)).toMatch(/-3$/);
    expect((await readAll(await storage.blobs.read(three.digest))).equals(threeParts.slice(0, three.size - 1))).toBe(true);
  });

  test('content larger than its announced size is refused without leaving an object or a multipart upload', async () => {
    const storage = await createS3Storage(optionsFor(prefix), scratch.path);
    const blob = new PatternBlob(12 * MIB);
    const { digest } = await blob.digest();
    await expect(storage.blobs.write(digest, blob.stream(), 1000)).rejects.toMatchObject({ code: 'SIZE_INVALID' });
    expect(await objectsUnder(prefix)).toEqual([]);
    expect(await incompleteUploadsUnder(prefix)).toEqual([]);
    expect(await storage.blobs.write(digest, blob.stream(), 12 * MIB)).toEqual({ size: 12 * MIB });
  });

  test('redirectUrl is a working presigned GET only when redirectDownloads is on', async () => {
    const plain = await createS3Storage(optionsFor(prefix), scratch.path);
    const redirecting = await createS3Storage(optionsFor(prefix, { redirectDownloads: true }), scratch.path);
    const data = randomBytes(5000);
    const digest = digestOf(data);
    await plain.blobs.write(digest, streamOf(data));
    expect(await plain.blobs.redirectUrl!(digest, 300)).toBeNull();
    const url = await redirecting.blobs.redirectUrl!(digest, 300);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/.*X-Amz-Signature=/);
    const res = await httpGet(url!);
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });

  test('an upload started on one replica is continued and finished on others', async () => {
    const replicas: Storage[] = [];
    for (let i = 0; i < 3; i++) replicas.push(await createS3Storage(optionsFor(prefix), scratch.path));
    const id = randomUUID();
    await replicas[0].uploads.create(id);
    const a = randomBytes(6 * MIB);
    const b = randomBytes(1000);
    expect(await replicas[1].uploads.append(id, streamOf(a))).toBe(a.length);
    expect(await replicas[2].uploads.append(id, streamOf(b))).toBe(a.length + b.length);
    expect(await replicas[0].uploads.size(id)).toBe(a.length + b.length);
    const whole = Buffer.concat([a, b]);
    const digest = digestOf(whole);
    await replicas[1].blobs.write(digest, await replicas[2].uploads.open(id), whole.length);
    await replicas[0].uploads.delete(id);
    expect(await replicas[2].uploads.size(id)).toBeNull();
    expect((await readAll(await replicas[0].blobs.read(digest))).equals(whole)).toBe(true);
    expect(await objectsUnder(`${prefix}uploads/`)).toEqual([]);
  });

  test('createS3Storage creates a missing bucket', async () => {
    const bucket = `entrepot-new-${randomUUID().slice(0, 8)}`;
    expect(await s3().bucketExists(bucket)).toBe(false);
    const storage = await createS3Storage(optionsFor(prefix, { bucket }), scratch.path);
    expect(await s3().bucketExists(bucket)).toBe(true);
    const data = Buffer.from('in the new bucket');
    await storage.blobs.write(digestOf(data), streamOf(data));
    expect((await readAll(await storage.blobs.read(digestOf(data)))).toString()).toBe('in the new bucket');
    // Idempotent on an existing bucket.
    await createS3Storage(optionsFor(prefix, { bucket }), scratch.path);
  });
});

/**
 * Answers a real S3 server does not give on demand, from a small HTTP server
 * that accepts the bucket check at start and then answers reads as told.
 */
describe('s3 reads when S3 misbehaves', () => {
  let scratch: TempDir;
  let server: http.Server;
  let port: number;
  let answer: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  const seen: Array<{ url: string; range?: string }> = [];

  beforeEach(async () => {
    scratch = await TempDir.create('entrepot-s3-scratch-');
    seen.length = 0;
    server = http.createServer((req, res) => {
      if (req.method === 'HEAD') return void res.writeHead(200).end();
      seen.push({ url: req.url ?? '', range: req.headers.range });
      answer(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await scratch.remove();
  });

  async function blobs(): Promise<Storage['blobs']> {
    const options = { ...optionsFor('faults/'), endpoint: '127.0.0.1', port, bucket: 'faulty' };
    return (await createS3Storage(options, scratch.path)).blobs;
  }

  const digest = digestOf('some blob');
  const xmlError = (status: number, code: string) => (_req: http.IncomingMessage, res: http.ServerResponse) =>
    void res.writeHead(status, { 'content-type': 'application/xml' }).end(`<?xml version="1.0"?><Error><Code>${code}</Code></Error>`);

  test('a read is a signed GET of the blob key that carries the range', async () => {
    answer = (_req, res) => void res.writeHead(206, { 'content-length': 4 }).end('0123');
    expect((await readAll(await (await blobs()).read(digest, { start: 5, end: 8 }))).toString()).toBe('0123');
    const hex = digest.slice('sha256:'.length);
    expect(seen).toHaveLength(1);
    expect(seen[0].url).toMatch(new RegExp(`^/faulty/faults/blobs/sha256/${hex.slice(0, 2)}/${hex}\\?.*X-Amz-Signature=`));
    expect(seen[0].range).toBe('bytes=5-8');
  });

  test('a body S3 sends chunked is read in one request', async () => {
    answer = (_req, res) => {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.write('chunked ');
      res.end('body');
    };
    expect((await readAll(await (await blobs()).read(digest))).toString()).toBe('chunked body');
    expect(seen).toHaveLength(1);
  });

  test('a body S3 cuts short fails the read instead of ending early', async () => {
    answer = (_req, res) => {
      res.writeHead(200, { 'content-length': 1000 });
      res.write('only the first bytes', () => res.destroy());
    };
    await expect(readAll(await (await blobs()).read(digest))).rejects.toThrow(/other side closed/);
  });

  test('a whole object sent back for a ranged read is refused, not served as the range', async () => {
    answer = (_req, res) => void res.writeHead(200).end('the whole object');
    await expect((await blobs()).read(digest, { start: 2, end: 5 })).rejects.toThrow(/answered 200/);
  });

  test('NoSuchKey is BLOB_UNKNOWN; a missing bucket is not', async () => {
    const store = await blobs();
    answer = xmlError(404, 'NoSuchKey');
    await expect(store.read(digest)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    answer = xmlError(404, 'NoSuchBucket');
    await expect(store.read(digest)).rejects.toThrow(/answered 404 NoSuchBucket/);
  });

  test('a throttling or failing S3 and an unreachable one are UNAVAILABLE (503 with Retry-After)', async () => {
    const store = await blobs();
    answer = xmlError(503, 'SlowDown');
    await expect(store.read(digest)).rejects.toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    answer = xmlError(500, 'InternalError');
    await expect(store.read(digest)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await expect(store.read(digest)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    server = http.createServer();
  });

  test('an S3 416 is RANGE_INVALID', async () => {
    answer = xmlError(416, 'InvalidRange');
    await expect((await blobs()).read(digest, { start: 100, end: 200 })).rejects.toMatchObject({ code: 'RANGE_INVALID' });
  });
});
