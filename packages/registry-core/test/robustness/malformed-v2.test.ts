import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';

/** Small deterministic PRNG so every run sends the same requests. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Probe {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

function send(instance: TestInstance, probe: Probe): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: instance.port, method: probe.method, path: probe.path, headers: { authorization: instance.adminAuth, ...probe.headers } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout: ${probe.method} ${probe.path}`)));
    req.on('error', reject);
    req.end(probe.body);
  });
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('malformed registry requests', () => {
  let instance: TestInstance;
  let uploadPath: string;
  const blob = Buffer.from('a real blob');
  const blobDigest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;

  beforeAll(async () => {
    instance = await startEntrepot();
    expect((await instance.api('POST', '/organization/', { name: 'fuzz' })).status).toBe(201);
    for (const repo of ['app', 'keep']) {
      const put = await fetch(`${instance.url}/v2/fuzz/${repo}/blobs/uploads/?digest=${blobDigest}`, { method: 'POST', headers: { authorization: instance.adminAuth }, body: blob });
      expect(put.status).toBe(201);
    }
    const started = await fetch(`${instance.url}/v2/fuzz/app/blobs/uploads/`, { method: 'POST', headers: { authorization: instance.adminAuth } });
    uploadPath = started.headers.get('location')!;
  });

  afterAll(() => instance.stop());

  function generate(count: number): Probe[] {
    const rand = prng(20261128);
    const pick = <T>(items: T[]): T => items[Math.floor(rand() * items.length)];
    const names = ['fuzz/app', 'Fuzz/App', 'fuzz/../etc', 'fuzz/%2e%2e/x', 'fuzz%2Fapp', 'fuzz//app', 'fuzz/app/', `fuzz/${'a'.repeat(300)}`, 'fuzz/a_-b', 'nope/app', '-/-', 'fuzz/app%00', 'fuzz/.hidden'];
    const digests = ['sha256:xyz', `sha256:${sha('x').slice(1)}`, `md5:${sha('x').slice(0, 32)}`, `sha512:${sha('x')}`, 'sha256:', ':', blobDigest.toUpperCase(), `sha256:${sha('missing')}`, blobDigest, '%2e%2e'];
    const refs = ['latest', '-bad', `${'t'.repeat(200)}`, 'sha256:zz', 'v1.0', '%00', 'a:b:c'];
    const ranges = ['bytes=0-0', 'bytes=5-2', 'bytes=-0', 'bytes=99999-', 'items=0-1', 'bytes=0-1,3-4', 'bytes=abc', 'bytes=--1'];
    const manifests = [
      '{',
      '[]',
      '{"schemaVersion":1}',
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'x', digest: 'sha256:nope', size: 1 }, layers: [] }),
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'x', digest: `sha256:${sha('absent')}`, size: 3 }, layers: [] }),
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'x', digest: `sha256:${sha('child')}`, size: -4 }] }),
      JSON.stringify({ schemaVersion: 2, manifests: 'no' }),
    ];
    const probes: Probe[] = [];
    for (let i = 0; i < count; i++) {
      const name = pick(names);
      switch (Math.floor(rand() * 9)) {
        case 0:
          probes.push({ method: pick(['GET', 'HEAD', 'DELETE']), path: `/v2/${name}/manifests/${pick(refs)}` });
          break;
        case 1:
          probes.push({ method: pick(['GET', 'HEAD', 'DELETE']), path: `/v2/${name}/blobs/${pick(digests)}` });
          break;
        case 2:
          probes.push({ method: 'GET', path: `/v2/fuzz/app/blobs/${blobDigest}`, headers: { range: pick(ranges) } });
          break;
        case 3:
          probes.push({ method: 'PUT', path: `/v2/${name}/manifests/${pick(refs)}`, headers: { 'content-type': pick(['application/vnd.oci.image.manifest.v1+json', 'text/plain', 'application/vnd.oci.image.index.v1+json']) }, body: Buffer.from(pick(manifests)) });
          break;
        case 4:
          probes.push({ method: pick(['GET', 'PATCH', 'PUT', 'DELETE']), path: `/v2/fuzz/app/blobs/uploads/${pick(['nope', '../../x', '00000000-0000-0000-0000-000000000000', 'a'.repeat(80)])}?digest=${pick(digests)}`, body: Buffer.from('data') });
          break;
        case 5:
          probes.push({ method: 'PATCH', path: uploadPath, headers: { 'content-range': pick(['0-3', '5-1', 'x', '100-200', '0-999999999999999999999']), 'content-type': 'application/octet-stream' }, body: Buffer.from('data') });
          break;
        case 6:
          probes.push({ method: 'POST', path: `/v2/${name}/blobs/uploads/?${pick([`digest=${pick(digests)}`, `mount=${pick(digests)}&from=${pick(names)}`, 'mount=&from=', 'digest='])}`, body: Buffer.from('x'.repeat(Math.floor(rand() * 100))) });
          break;
        case 7:
          probes.push({ method: 'GET', path: `/v2/${name}/tags/list?${pick(['n=-1', 'n=abc', 'n=99999999', 'last=%ff', 'n=1&n=2', ''])}` });
          break;
        default:
          probes.push({ method: 'GET', path: `/v2/${name}/referrers/${pick(digests)}?artifactType=${pick(['', '%zz', 'a/b'])}` });
      }
    }
    return probes;
  }

  it('answers 400 generated malformed requests with client errors, never 5xx', async () => {
    const probes = generate(400);
    const serverErrors: string[] = [];
    const seen = new Set<number>();
    for (const probe of probes) {
      const status = await send(instance, probe);
      seen.add(status);
      if (status >= 500 || status === 0) serverErrors.push(`${status} ${probe.method} ${probe.path}`);
    }
    expect(serverErrors).toEqual([]);
    // The generator reaches the distinct error paths, not one blanket refusal.
    for (const status of [400, 404, 416]) expect(seen).toContain(status);
    // Stored content the requests did not address is intact afterwards.
    const res = await fetch(`${instance.url}/v2/fuzz/keep/blobs/${blobDigest}`, { headers: { authorization: instance.adminAuth } });
    expect(Buffer.from(await res.arrayBuffer())).toEqual(blob);
  }, 120_000);

  it('refuses a manifest over 4 MiB without buffering it', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 10, 0x20);
    const status = await send(instance, { method: 'PUT', path: '/v2/fuzz/app/manifests/big', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: big });
    expect(status).toBe(413);
  });

  it('survives a body shorter than its Content-Length', async () => {
    await new Promise<void>((resolve) => {
      const socket = connect(instance.port, '127.0.0.1', () => {
        socket.write(`PUT ${uploadPath}?digest=${blobDigest} HTTP/1.1\r\nHost: x\r\nAuthorization: ${instance.adminAuth}\r\nContent-Length: 1000\r\n\r\nshort`);
        setTimeout(() => socket.destroy(), 200);
      });
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
    const health = await fetch(`${instance.url}/health/instance`);
    expect(health.status).toBe(200);
    const res = await fetch(`${instance.url}/v2/fuzz/keep/blobs/${blobDigest}`, { headers: { authorization: instance.adminAuth } });
    expect(Buffer.from(await res.arrayBuffer())).toEqual(blob);
  });
});
