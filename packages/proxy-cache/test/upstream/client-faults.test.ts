/**
 * Faults a real registry cannot produce, served by a small real HTTP server
 * on loopback: rate limits, 5xx, refused connections, a Via loop, oversized
 * or mismatching manifests, revoked tokens, paginated documents.
 */
import { randomBytes } from 'node:crypto';
import { UpstreamError } from '../../src/upstream';
import {
  RecordingLogger,
  TestServer,
  makeClient,
  rejection,
  sha256,
  sharedTestServer,
} from './helpers';

const BLOB = randomBytes(300_000);
const BLOB_DIGEST = sha256(BLOB);
const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: {}, layers: [] }));
const MANIFEST_DIGEST = sha256(MANIFEST);

const shared = sharedTestServer();
const useHandler = shared.useHandler;

describe('status faults', () => {
  it('turns 429 into TOOMANYREQUESTS carrying Retry-After, without counting an outage', async () => {
    useHandler((_req, res) => res.writeHead(429, { 'retry-after': '7' }).end('slow down'));
    const c = makeClient(shared.server().origin, { breakerOptions: { failureThreshold: 2 } });
    try {
      for (let i = 0; i < 3; i++) {
        const err = await rejection(c.getManifest('library/app', '1.0'));
        expect(err).toBeInstanceOf(UpstreamError);
        expect(err).toMatchObject({ code: 'TOOMANYREQUESTS', status: 429, headers: { 'Retry-After': '7' } });
        expect(err).toMatchObject({ failure: { kind: 'ratelimit', status: 429, retryAfterSeconds: 7, host: shared.server().authority } });
      }
      expect(c.breakerState()).toBe('closed');
    } finally {
      await c.close();
    }
  });

  it('turns 503 into UNAVAILABLE naming the host, never the credentials', async () => {
    useHandler((_req, res) => res.writeHead(503, { 'retry-after': '3' }).end('down for maintenance'));
    const password = 'Secret-Upstream-Pw';
    const c = makeClient(shared.server().origin, { credentials: { username: 'bob', password } });
    try {
      const err = await rejection(c.headBlob('library/app', BLOB_DIGEST));
      expect(err).toMatchObject({ code: 'UNAVAILABLE', status: 503, failure: { kind: 'status', status: 503, host: shared.server().authority } });
      expect((err as Error).message).toBe(`upstream ${shared.server().authority} failed with HTTP 503`);
      expect((err as UpstreamError).headers['Retry-After']).toBe('3');
      expect(JSON.stringify(err)).not.toContain(password);
    } finally {
      await c.close();
    }
  });

  it('reports a refused connection as a network failure', async () => {
    const gone = await TestServer.start(() => undefined);
    const origin = gone.origin;
    await gone.stop();
    const c = makeClient(origin);
    try {
      const err = await rejection(c.headManifest('library/app', '1.0'));
      expect(err).toMatchObject({ code: 'UNAVAILABLE', status: 503, failure: { kind: 'network', host: gone.authority } });
      expect((err as Error).message).toContain(`upstream ${gone.authority} is unreachable`);
    } finally {
      await c.close();
    }
  });
});

describe('loop guard', () => {
  it('sends Via and refuses an upstream that answers with our own Via token', async () => {
    useHandler((req, res) => {
      // What another Entrepot (or this one) does: it adds its Via to responses.
      res.writeHead(200, { via: `${req.headers.via ?? ''}, 1.1 upstream-node`, 'content-type': 'application/json' }).end('{}');
    });
    const c = makeClient(shared.server().origin, { via: 'entrepot-a' });
    try {
      const err = await rejection(c.getManifest('library/app', '1.0'));
      expect(shared.server().requests[0].headers.via).toBe('1.1 entrepot-a');
      expect(err).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'loop' } });
      expect((err as Error).message).toContain('is this registry itself');
    } finally {
      await c.close();
    }
    const other = makeClient(shared.server().origin, { via: 'entrepot-b' });
    try {
      useHandler((_req, res) => res.writeHead(200, { via: '1.1 entrepot-a', 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(MANIFEST));
      expect((await other.getManifest('library/app', '1.0')).digest).toBe(MANIFEST_DIGEST);
    } finally {
      await other.close();
    }
  });
});

describe('manifest content checks', () => {
  it('refuses manifests over 4 MiB, announced or not', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    useHandler((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': big.length }).end(big),
    );
    const c = makeClient(shared.server().origin);
    try {
      const announced = await rejection(c.getManifest('library/app', '1.0'));
      expect(announced).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'protocol' } });
      expect((announced as Error).message).toContain('limit is 4194304');
      useHandler((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'transfer-encoding': 'chunked' });
        res.write(big.subarray(0, 3 * 1024 * 1024));
        res.end(big.subarray(3 * 1024 * 1024));
      });
      const chunked = await rejection(c.getManifest('library/app', '1.0'));
      expect(chunked).toMatchObject({ failure: { kind: 'protocol' } });
      expect((chunked as Error).message).toContain('larger than 4194304 bytes');
    } finally {
      await c.close();
    }
  });

  it('refuses a manifest whose bytes or Docker-Content-Digest do not match the requested digest', async () => {
    const wrong = Buffer.from('{"schemaVersion":2}');
    useHandler((_req, res) => res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(wrong));
    const c = makeClient(shared.server().origin);
    try {
      const bytes = await rejection(c.getManifest('library/app', MANIFEST_DIGEST));
      expect(bytes).toMatchObject({ failure: { kind: 'protocol' } });
      expect((bytes as Error).message).toContain(`is not the requested ${MANIFEST_DIGEST}`);
      useHandler((_req, res) =>
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': sha256('other') }).end(MANIFEST),
      );
      expect(await rejection(c.getManifest('library/app', MANIFEST_DIGEST))).toMatchObject({ failure: { kind: 'protocol' } });
      expect(await rejection(c.headManifest('library/app', MANIFEST_DIGEST))).toMatchObject({ failure: { kind: 'protocol' } });
      // A tag has no expected digest: the body's digest is the answer.
      expect((await c.getManifest('library/app', '1.0')).digest).toBe(MANIFEST_DIGEST);
    } finally {
      await c.close();
    }
  });

  it('falls back to GET when a HEAD lacks Docker-Content-Digest, and sends the manifest Accept types', async () => {
    useHandler((req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': MANIFEST.length });
      res.end(req.method === 'HEAD' ? undefined : MANIFEST);
    });
    const c = makeClient(shared.server().origin);
    try {
      expect(await c.headManifest('library/app', '1.0')).toEqual({
        digest: MANIFEST_DIGEST,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: MANIFEST.length,
      });
      expect(shared.server().requests.map((r) => r.method)).toEqual(['HEAD', 'GET']);
      const accept = String(shared.server().requests[0].headers.accept);
      for (const t of [
        'application/vnd.oci.image.index.v1+json',
        'application/vnd.oci.image.manifest.v1+json',
        'application/vnd.docker.distribution.manifest.list.v2+json',
        'application/vnd.docker.distribution.manifest.v2+json',
      ]) {
        expect(accept).toContain(t);
      }
    } finally {
      await c.close();
    }
  });
});

describe('bearer token refresh', () => {
  it('refreshes a refused cached token once and retries once', async () => {
    const valid = new Set<string>();
    let issued = 0;
    let revokeAll = false;
    useHandler((req, res) => {
      const url = new URL(req.url ?? '/', shared.server().origin);
      if (url.pathname === '/token') {
        const token = `tok-${++issued}`;
        if (!revokeAll) valid.add(token);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: token, expires_in: 300 }));
        return;
      }
      const sent = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!valid.has(sent)) {
        res
          .writeHead(401, { 'www-authenticate': `Bearer realm="${shared.server().origin}/token",service="fault",scope="repository:library/app:pull"` })
          .end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(MANIFEST);
    });
    const logger = new RecordingLogger();
    const c = makeClient(shared.server().origin, { logger });
    const tokenRequests = (): number => shared.server().count((r) => r.url.startsWith('/token'));
    try {
      await c.getManifest('library/app', '1.0');
      await c.getManifest('library/app', '1.0');
      expect(tokenRequests()).toBe(1);
      const tokenUrl = new URL(shared.server().requests.find((r) => r.url.startsWith('/token'))?.url ?? '', shared.server().origin);
      expect(tokenUrl.searchParams.get('service')).toBe('fault');
      expect(tokenUrl.searchParams.get('scope')).toBe('repository:library/app:pull');

      valid.clear(); // the upstream revokes tok-1
      expect((await c.getManifest('library/app', '1.0')).digest).toBe(MANIFEST_DIGEST);
      expect(tokenRequests()).toBe(2);

      valid.clear();
      revokeAll = true; // every token is refused now
      const err = await rejection(c.getManifest('library/app', '1.0'));
      expect(err).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'auth' } });
      expect(tokenRequests()).toBe(3);
      expect(logger.records.length).toBeGreaterThan(0);
      expect(logger.dump()).not.toContain('tok-');
    } finally {
      await c.close();
    }
  });
});

describe('tags and referrers documents', () => {
  it('follows the Link header of paginated tag lists', async () => {
    useHandler((req, res) => {
      const url = new URL(req.url ?? '/', shared.server().origin);
      const last = url.searchParams.get('last');
      const page = last === null ? ['a', 'b'] : ['c'];
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (last === null) headers.link = '</v2/library/app/tags/list?n=2&last=b>; rel="next"';
      res.writeHead(200, headers).end(JSON.stringify({ name: 'library/app', tags: page }));
    });
    const c = makeClient(shared.server().origin);
    try {
      const first = await c.listTags('library/app', { n: 2 });
      expect(first).toEqual({ name: 'library/app', tags: ['a', 'b'], next: { last: 'b', n: 2 } });
      expect(await c.listTags('library/app', { n: 2, last: 'b' })).toEqual({ name: 'library/app', tags: ['c'], next: null });
      expect(shared.server().requests[0].url).toBe('/v2/library/app/tags/list?n=2');
    } finally {
      await c.close();
    }
  });

  it('reads all referrer pages and filters by artifactType when the upstream did not', async () => {
    const d = (n: number, artifactType: string): Record<string, unknown> => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sha256(String(n)),
      size: n,
      artifactType,
    });
    useHandler((req, res) => {
      const second = (req.url ?? '').includes('page=2');
      const headers: Record<string, string> = { 'content-type': 'application/vnd.oci.image.index.v1+json' };
      if (!second) headers.link = `</v2/library/app/referrers/${MANIFEST_DIGEST}?page=2>; rel="next"`;
      const manifests = second ? [d(3, 'application/sbom')] : [d(1, 'application/sbom'), d(2, 'application/sig')];
      res.writeHead(200, headers).end(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
    });
    const c = makeClient(shared.server().origin);
    try {
      const all = await c.getReferrers('library/app', MANIFEST_DIGEST);
      expect(all?.map((m) => m.size)).toEqual([1, 2, 3]);
      const sboms = await c.getReferrers('library/app', MANIFEST_DIGEST, 'application/sbom');
      expect(sboms?.map((m) => m.size)).toEqual([1, 3]);
      expect(shared.server().requests[2].url).toBe(`/v2/library/app/referrers/${MANIFEST_DIGEST}?artifactType=application%2Fsbom`);
    } finally {
      await c.close();
    }
  });
});
