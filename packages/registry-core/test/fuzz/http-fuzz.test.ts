/**
 * Seeded HTTP fuzzing of /v2 and /api/v1 (a few thousand requests, see
 * fuzz-requests.ts) against an in-process Entrepot with the proxy-cache plugin,
 * a cache organization of a real upstream registry and content pushed to a
 * normal organization. No answer may be a 5xx, no request may go unanswered
 * (except bodies far past every limit, which the server may cut short), the
 * process must raise no uncaught error, and afterwards the server is healthy
 * and the content stored before is intact, byte for byte.
 *
 * Reproducible: the seed is printed; ENTREPOT_FUZZ_SEED=<n> replays a run
 * (ENTREPOT_FUZZ_SEED=random draws a new one) and ENTREPOT_FUZZ_REQUESTS
 * changes the count (default 3000).
 *
 * The fuzz never makes Entrepot contact anything but the local upstream: a
 * cache configuration it sends always names that upstream as its endpoint, and
 * only that host is allowed (PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS).
 */
import { createHash, randomInt } from 'node:crypto';
import { request } from 'node:http';
import type { Digest } from '../../src/oci/digest';
import { basicAuth, startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { createPlugin } from '../../../proxy-cache/src/index';
import { pullImage, pushRandomImage, sha256, type PushedImage } from '../../../proxy-cache/test/infra-faults/infra-fixture';
import { FuzzGenerator, type FuzzRequest, type FuzzWorld } from './fuzz-requests';

const DEFAULT_SEED = 20261128;
const SEED = process.env.ENTREPOT_FUZZ_SEED === 'random' ? randomInt(2 ** 31) : Number(process.env.ENTREPOT_FUZZ_SEED ?? DEFAULT_SEED);
const COUNT = Number(process.env.ENTREPOT_FUZZ_REQUESTS ?? 3000);
const CONCURRENCY = 6;
const READER = { name: 'reader', password: 'reader-password-1' };

interface Outcome {
  request: FuzzRequest;
  status: number;
  error?: string;
  /** The start of a 5xx answer's body, for the report. */
  body?: string;
}

function describeRequest(r: FuzzRequest): string {
  const body = r.body ? ` body ${r.body.length} B ${JSON.stringify(r.body.subarray(0, 120).toString('latin1'))}` : '';
  return `${r.method} ${r.path} auth=${r.auth} headers=${JSON.stringify(r.headers)}${body}`;
}

/** Pushes an image to a normal organization through Entrepot's /v2 (monolithic uploads). */
async function pushThroughEntrepot(instance: TestInstance, name: string, tag: string): Promise<PushedImage> {
  const layers = [Buffer.from(createHash('sha512').update(name).digest()), Buffer.alloc(70_000, 7)];
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const blobs = [config, ...layers].map((data) => ({ data, digest: sha256(data), size: data.length }));
  for (const blob of blobs) {
    const res = await fetch(`${instance.url}/v2/${name}/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', headers: { authorization: instance.adminAuth }, body: blob.data });
    if (res.status !== 201) throw new Error(`push of ${blob.digest}: ${res.status}`);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: blobs[0].digest, size: blobs[0].size },
      layers: blobs.slice(1).map((b) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: b.digest, size: b.size })),
    }),
  );
  const put = await fetch(`${instance.url}/v2/${name}/manifests/${tag}`, {
    method: 'PUT',
    headers: { authorization: instance.adminAuth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (put.status !== 201) throw new Error(`manifest push: ${put.status} ${await put.text()}`);
  return { repo: name, tag, manifestDigest: sha256(manifest), manifest, blobs: blobs.map(({ digest, size }) => ({ digest, size })) };
}

describe(`HTTP fuzz of /v2 and /api/v1 (seed ${SEED}, ${COUNT} requests)`, () => {
  let upstream: UpstreamRegistry;
  let entrepot: TestInstance;
  let cached: PushedImage;
  let pushed: PushedImage;
  let world: FuzzWorld;

  beforeAll(async () => {
    upstream = await UpstreamRegistry.start({ auth: { mode: 'anonymous' } });
    cached = await pushRandomImage(upstream.url, 'library/app', 'v1', [200_000, 3000]);
    // No grace before garbage collection: a flush of the sacrificial cache runs it at once, and must
    // not take blobs the protected organizations still reference.
    entrepot = await startEntrepot({
      plugins: [createPlugin],
      env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: upstream.host },
      overrides: { gc: { grace_seconds: 0, interval_seconds: 3600 } },
    });
    const api = (m: string, p: string, b?: unknown) => entrepot.api(m, p, b);
    for (const org of ['hub', 'acme', 'fz', 'fz2', 'fzc']) expect((await api('POST', '/organization/', { name: org })).status).toBe(201);
    for (const org of ['hub', 'fzc']) {
      expect((await api('POST', `/organization/${org}/proxycache`, { upstream_registry: 'docker.io', upstream_endpoint: upstream.url, insecure: true })).status).toBe(201);
    }
    pushed = await pushThroughEntrepot(entrepot, 'acme/app', 'v1');
    expect((await api('POST', '/superuser/users/', { username: READER.name, password: READER.password })).status).toBe(201);
    expect((await api('PUT', `/repository/acme/app/permissions/user/${READER.name}`, { role: 'read' })).status).toBe(200);
    const pulled = await pullImage(entrepot.url, cached, { name: 'hub/library/app', auth: entrepot.adminAuth });
    expect(pulled.ok).toBe(true);
    world = {
      sacrificialOrgs: ['fz', 'fz2', 'fzc'],
      protectedOrgs: ['hub', 'acme'],
      protectedUsers: ['admin', READER.name],
      repos: ['hub/library/app', 'acme/app', 'fz/app', 'fzc/library/app', 'fz2/x/y'],
      tags: ['v1', 'latest'],
      digests: [cached.manifestDigest, ...cached.blobs.map((b) => b.digest), pushed.manifestDigest, ...pushed.blobs.map((b) => b.digest)],
      upstreamUrl: upstream.url,
    };
  }, 60_000);

  afterAll(async () => {
    await entrepot?.stop();
    await upstream?.stop();
  });

  function authHeader(r: FuzzRequest): string | undefined {
    switch (r.auth) {
      case 'admin':
        return entrepot.adminAuth;
      case 'reader':
        return basicAuth(READER.name, READER.password);
      case 'junk-basic':
        return basicAuth(`u${r.path.length}`, 'wrong-password');
      case 'junk-bearer':
        return `Bearer ${Buffer.from(r.path).toString('base64url')}.e30.sig`;
      case 'garbage':
        return ['Basic', 'Basic !!!', 'Basic Og==', 'Negotiate abc', 'Bearer', 'bearer a.b.c', `Basic ${Buffer.from('admin').toString('base64')}`][r.path.length % 7];
      default:
        return undefined;
    }
  }

  /** A cache configuration the fuzz sends always names the local upstream as its endpoint (no other host is ever contacted). */
  function confine(r: FuzzRequest): FuzzRequest {
    if (!r.path.includes('proxycache') || !r.body) return r;
    try {
      const parsed: unknown = JSON.parse(r.body.toString('utf8'));
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return r;
      return { ...r, body: Buffer.from(JSON.stringify({ ...parsed, upstream_endpoint: upstream.url })) };
    } catch {
      return r;
    }
  }

  function send(r: FuzzRequest): Promise<Outcome> {
    return new Promise((resolve) => {
      const headers: Record<string, string> = { ...r.headers };
      const auth = authHeader(r);
      if (auth !== undefined) headers.authorization = auth;
      if (r.body) headers['content-length'] = String(r.body.length);
      let settled = false;
      const done = (o: Omit<Outcome, 'request'>): void => {
        if (settled) return;
        settled = true;
        resolve({ request: r, ...o });
      };
      let req;
      try {
        req = request({ host: '127.0.0.1', port: entrepot.port, method: r.method, path: r.path, headers }, (res) => {
          let head = '';
          res.on('data', (chunk: Buffer) => {
            if ((res.statusCode ?? 0) >= 500 && head.length < 300) head += chunk.toString('utf8');
          });
          res.on('end', () => done({ status: res.statusCode ?? 0, ...(head ? { body: head.slice(0, 300) } : {}) }));
          res.on('error', (err) => done({ status: res.statusCode ?? 0, error: `body: ${err.message}` }));
          res.on('aborted', () => done({ status: res.statusCode ?? 0, error: 'body aborted' }));
        });
      } catch (err) {
        // The client library refused to send it (not a server problem): counted apart.
        done({ status: -1, error: `not sent: ${(err as Error).message}` });
        return;
      }
      req.setTimeout(30_000, () => req.destroy(new Error('timeout after 30 s')));
      req.on('error', (err) => done({ status: 0, error: err.message }));
      req.end(r.body);
    });
  }

  it('answers every request without a 5xx, stays healthy, and keeps stored content intact', async () => {
    process.stderr.write(`[fuzz] seed ${SEED} (replay with ENTREPOT_FUZZ_SEED=${SEED}), ${COUNT} requests\n`);
    const crashes: string[] = [];
    const onUncaught = (err: unknown): void => void crashes.push(`uncaught: ${String(err)}`);
    const onRejection = (err: unknown): void => void crashes.push(`unhandled rejection: ${String(err)}`);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onRejection);
    const generator = new FuzzGenerator(SEED, world);
    const requests = Array.from({ length: COUNT }, () => confine(generator.next()));
    const outcomes: Outcome[] = [];
    const started = Date.now();
    try {
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < requests.length) {
            const r = requests[next++];
            outcomes.push(await send(r));
          }
        }),
      );
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onRejection);
    }
    const statuses: Record<string, number> = {};
    for (const o of outcomes) statuses[o.status] = (statuses[o.status] ?? 0) + 1;
    process.stderr.write(`[fuzz] seed ${SEED}: ${outcomes.length} requests in ${Date.now() - started} ms; statuses ${JSON.stringify(statuses)}\n`);

    // A 503 that passes on the upstream's own 5xx is right (Distribution answers 500 to a
    // manifest request naming a layer's digest): allowed when the upstream's log shows it.
    const upstreamLog = await upstream.settledRequests();
    const passedOn = (o: Outcome): boolean => {
      const m = /\/(manifests|blobs)\/([^/?]+)(\?|$)/.exec(o.request.path);
      return o.status === 503 && m !== null && upstreamLog.some((u) => u.status >= 500 && u.path.endsWith(`/${m[1]}/${m[2]}`));
    };
    const upstreamErrors = outcomes.filter(passedOn).length;
    process.stderr.write(`[fuzz] ${upstreamErrors} answers were 503 for the upstream's own 5xx\n`);
    const serverErrors = outcomes.filter((o) => o.status >= 500 && !passedOn(o)).map((o) => `${o.status} ${describeRequest(o.request)} -> ${o.body ?? ''}`);
    const unanswered = outcomes.filter((o) => o.status === 0 && !o.request.oversized).map((o) => `${o.error} ${describeRequest(o.request)}`);
    expect({ seed: SEED, serverErrors: serverErrors.slice(0, 10), count: serverErrors.length }).toEqual({ seed: SEED, serverErrors: [], count: 0 });
    expect({ seed: SEED, unanswered: unanswered.slice(0, 10) }).toEqual({ seed: SEED, unanswered: [] });
    expect(crashes).toEqual([]);
    // The generator reached many distinct answers, not one blanket refusal.
    expect(Object.keys(statuses).length).toBeGreaterThanOrEqual(8);

    // Healthy afterwards.
    expect((await fetch(`${entrepot.url}/health/instance`)).status).toBe(200);
    expect((await fetch(`${entrepot.url}/health/endtoend`)).status).toBe(200);
    // What was stored before is intact, through the API and in the store.
    for (const [image, name] of [[cached, 'hub/library/app'], [pushed, 'acme/app']] as const) {
      const again = await pullImage(entrepot.url, image, { name, auth: entrepot.adminAuth });
      expect(again.responses.map((r) => `${r.verdict} ${r.status}`)).toEqual(Array<string>(image.blobs.length + 1).fill('ok 200'));
    }
    const readerPull = await pullImage(entrepot.url, pushed, { name: 'acme/app', auth: basicAuth(READER.name, READER.password) });
    expect(readerPull.ok).toBe(true);
    const blobs = entrepot.entrepot.services.storage.blobs;
    const mismatched: string[] = [];
    for await (const digest of blobs.list()) {
      const hash = createHash('sha256');
      for await (const chunk of (await blobs.read(digest as Digest)) as AsyncIterable<Buffer>) hash.update(chunk);
      if (`sha256:${hash.digest('hex')}` !== digest) mismatched.push(digest);
    }
    expect(mismatched).toEqual([]);
  }, 300_000);
});
