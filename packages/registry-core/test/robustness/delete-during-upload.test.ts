import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';

/** Sends a POST whose body arrives in two halves, running `between` after the first; resolves with status and body. */
function sendInTwoHalves(
  instance: TestInstance,
  method: 'POST' | 'PUT',
  path: string,
  contentType: string,
  body: Buffer,
  between: () => Promise<void>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: instance.port, method, path, headers: { authorization: instance.adminAuth, 'content-type': contentType, 'content-length': String(body.length) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.write(body.subarray(0, body.length / 2));
    // Give the server time to start storing the first half.
    setTimeout(() => {
      between().then(
        () => req.end(body.subarray(body.length / 2)),
        (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))),
      );
    }, 200);
  });
}

describe('a repository deleted while a blob is being pushed to it', () => {
  let instance: TestInstance;

  beforeAll(async () => {
    instance = await startEntrepot();
    expect((await instance.api('POST', '/organization/', { name: 'race' })).status).toBe(201);
  });

  afterAll(() => instance.stop());

  it('answers the push with a 4xx registry error, and the registry keeps working', async () => {
    const seed = Buffer.from('first blob');
    const seedDigest = `sha256:${createHash('sha256').update(seed).digest('hex')}`;
    const created = await fetch(`${instance.url}/v2/race/app/blobs/uploads/?digest=${seedDigest}`, { method: 'POST', headers: { authorization: instance.adminAuth }, body: seed });
    expect(created.status).toBe(201);

    const blob = randomBytes(256 * 1024);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const outcome = await sendInTwoHalves(instance, 'POST', `/v2/race/app/blobs/uploads/?digest=${digest}`, 'application/octet-stream', blob, async () => {
      expect((await instance.api('DELETE', '/repository/race/app')).status).toBe(204);
    });
    expect({ status: outcome.status, body: outcome.body }).toEqual({ status: 404, body: expect.stringContaining('NAME_UNKNOWN') });

    // The name can be pushed to again.
    const again = await fetch(`${instance.url}/v2/race/app/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { authorization: instance.adminAuth }, body: blob });
    expect(again.status).toBe(201);
    const read = await fetch(`${instance.url}/v2/race/app/blobs/${digest}`, { headers: { authorization: instance.adminAuth } });
    expect(Buffer.from(await read.arrayBuffer()).equals(blob)).toBe(true);
  });

  it('answers a manifest push with a 4xx registry error', async () => {
    const config = Buffer.from('{}');
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    const pushed = await fetch(`${instance.url}/v2/race/site/blobs/uploads/?digest=${configDigest}`, { method: 'POST', headers: { authorization: instance.adminAuth }, body: config });
    expect(pushed.status).toBe(201);
    const mediaType = 'application/vnd.oci.image.manifest.v1+json';
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length }, layers: [] }));
    const outcome = await sendInTwoHalves(instance, 'PUT', '/v2/race/site/manifests/v1', mediaType, manifest, async () => {
      expect((await instance.api('DELETE', '/repository/race/site')).status).toBe(204);
    });
    expect(outcome.status).toBeGreaterThanOrEqual(400);
    expect(outcome.status).toBeLessThan(500);
    expect(JSON.parse(outcome.body)).toEqual({ errors: [expect.objectContaining({ code: expect.stringMatching(/^(NAME_UNKNOWN|MANIFEST_BLOB_UNKNOWN)$/) })] });
  });
});
