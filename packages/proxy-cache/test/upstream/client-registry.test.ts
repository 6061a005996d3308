/**
 * The upstream client against a real CNCF Distribution (`docker-registry`) in
 * anonymous, htpasswd (Basic) and token (Docker token flow) modes, with images
 * pushed by skopeo.
 */
import {
  MULTI_ARCH,
  MEDIA_TYPES,
  TempDir,
  UpstreamRegistry,
  createOciImage,
  pushImage,
  readBlob,
  skopeoInspectRaw,
  type BuiltImage,
} from '../../../../testing';
import { UpstreamError, type UpstreamResponseInfo } from '../../src/upstream';
import { ManualClock, RecordingLogger, makeClient, readAll, rejection, sha256 } from './helpers';

let work: TempDir;
let image: BuiltImage;

beforeAll(async () => {
  work = await TempDir.create('entrepot-upstream-client-');
  image = await createOciImage(work.join('layout'), { tag: '1.0', layerSize: [64 * 1024, 1024 * 1024 + 17] });
});

afterAll(async () => {
  await work?.remove();
});

const bigLayer = (): BuiltImage['manifests'][number]['layers'][number] => image.manifests[0].layers[1];

describe('anonymous upstream', () => {
  let reg: UpstreamRegistry;
  let dockerDigest: string;
  let indexDigest: string;
  const responses: UpstreamResponseInfo[] = [];

  beforeAll(async () => {
    reg = await UpstreamRegistry.start({ headers: { 'RateLimit-Remaining': '97;w=21600' } });
    await pushImage(image.layoutDir, '1.0', reg.ref('library/app', '1.0'));
    await pushImage(image.layoutDir, '1.0', reg.ref('library/app', '1.1'));
    dockerDigest = await pushImage(image.layoutDir, '1.0', reg.ref('library/dock', '1.0'), { format: 'v2s2' });
    const multi = await createOciImage(work.join('multi'), { tag: 'm', platforms: MULTI_ARCH });
    indexDigest = await pushImage(multi.layoutDir, 'm', reg.ref('library/multi', 'm'), { all: true });
  });

  afterAll(async () => {
    await reg?.stop();
  });

  const client = () => makeClient(reg.url, { onResponse: (i) => responses.push(i) });

  it('HEADs and GETs a manifest byte-exactly', async () => {
    const c = client();
    try {
      const head = await c.headManifest('library/app', '1.0');
      expect(head).toEqual({ digest: image.digest, mediaType: MEDIA_TYPES.ociManifest, size: image.size });
      const got = await c.getManifest('library/app', '1.0');
      const raw = await skopeoInspectRaw(reg.ref('library/app', '1.0'));
      expect(got.body.equals(raw)).toBe(true);
      expect(got.digest).toBe(sha256(raw));
      expect(got.digest).toBe(image.digest);
      expect(got.size).toBe(raw.length);
      const byDigest = await c.getManifest('library/app', image.digest);
      expect(byDigest.body.equals(raw)).toBe(true);
      expect(await c.headManifest('library/app', image.digest)).toEqual(head);
    } finally {
      await c.close();
    }
  });

  it('keeps Docker and index media types as the upstream serves them', async () => {
    const c = client();
    try {
      const dock = await c.getManifest('library/dock', '1.0');
      expect(dock.mediaType).toBe(MEDIA_TYPES.dockerManifest);
      expect(dock.digest).toBe(dockerDigest);
      const index = await c.getManifest('library/multi', 'm');
      expect(index.mediaType).toBe(MEDIA_TYPES.ociIndex);
      expect(index.digest).toBe(indexDigest);
      expect((await c.headManifest('library/multi', 'm'))?.digest).toBe(indexDigest);
    } finally {
      await c.close();
    }
  });

  it('GETs a blob whole and from an offset, and HEADs it', async () => {
    const c = client();
    try {
      const layer = bigLayer();
      const expected = await readBlob(image.layoutDir, layer.digest);
      expect(await c.headBlob('library/app', layer.digest)).toEqual({ size: layer.size });
      const full = await c.getBlob('library/app', layer.digest);
      expect(full.offset).toBe(0);
      expect(full.size).toBe(layer.size);
      expect(sha256(await readAll(full.stream))).toBe(layer.digest);

      const offset = 300_001;
      const tail = await c.getBlob('library/app', layer.digest, { offset });
      expect(tail.offset).toBe(offset);
      expect(tail.size).toBe(layer.size);
      const rest = await readAll(tail.stream);
      expect(rest.equals(expected.subarray(offset))).toBe(true);
      expect(sha256(Buffer.concat([expected.subarray(0, offset), rest]))).toBe(layer.digest);
    } finally {
      await c.close();
    }
  });

  it('answers 404s with null or MANIFEST_UNKNOWN / BLOB_UNKNOWN, without opening the breaker', async () => {
    const c = makeClient(reg.url, { breakerOptions: { failureThreshold: 2 } });
    const missing = `sha256:${'0'.repeat(64)}`;
    try {
      expect(await c.headManifest('library/app', 'nope')).toBeNull();
      expect(await c.headManifest('library/none', '1.0')).toBeNull();
      const m = await rejection(c.getManifest('library/app', 'nope'));
      expect(m).toBeInstanceOf(UpstreamError);
      expect(m).toMatchObject({ code: 'MANIFEST_UNKNOWN', status: 404, failure: { kind: 'notfound', host: reg.host } });
      expect(await c.headBlob('library/app', missing)).toBeNull();
      expect(await rejection(c.getBlob('library/app', missing))).toMatchObject({ code: 'BLOB_UNKNOWN', status: 404 });
      expect(await c.listTags('library/none')).toBeNull();
      expect(c.breakerState()).toBe('closed');
    } finally {
      await c.close();
    }
  });

  it('lists tags', async () => {
    // Distribution 2.8 ignores `n` for tags (pagination is covered against a fault server).
    const c = client();
    try {
      const all = await c.listTags('library/app');
      expect(all?.name).toBe('library/app');
      expect(all?.next).toBeNull();
      expect([...(all?.tags ?? [])].sort()).toEqual(['1.0', '1.1']);
    } finally {
      await c.close();
    }
  });

  it('returns null for referrers when the upstream lacks the API', async () => {
    const c = client();
    try {
      expect(await c.getReferrers('library/app', image.digest)).toBeNull();
    } finally {
      await c.close();
    }
  });

  it('reports every response with RateLimit-Remaining, matching the upstream access log', async () => {
    responses.length = 0;
    reg.resetLog();
    const c = client();
    try {
      await c.headManifest('library/app', '1.0');
      await c.getManifest('library/app', '1.0');
      await c.headBlob('library/app', bigLayer().digest);
    } finally {
      await c.close();
    }
    const logged = await reg.settledRequests();
    expect(responses.map((r) => [r.method, r.path, r.status])).toEqual(logged.map((r) => [r.method, r.path, r.status]));
    expect(responses.map((r) => r.operation)).toEqual(['manifest', 'manifest', 'blob']);
    expect(responses.every((r) => r.rateLimitRemaining === 97 && r.host === reg.host)).toBe(true);
  });
});

describe('htpasswd (Basic) upstream', () => {
  let reg: UpstreamRegistry;

  beforeAll(async () => {
    reg = await UpstreamRegistry.start({ auth: { mode: 'htpasswd' } });
    await pushImage(image.layoutDir, '1.0', reg.ref('team/app', '1.0'), { creds: reg.creds });
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('answers the Basic challenge once and then sends credentials up front', async () => {
    const c = makeClient(reg.url, { credentials: reg.credentials });
    try {
      reg.resetLog();
      expect((await c.getManifest('team/app', '1.0')).digest).toBe(image.digest);
      expect(await c.headManifest('team/app', '1.0')).not.toBeNull();
      const layer = bigLayer();
      expect(sha256(await readAll((await c.getBlob('team/app', layer.digest)).stream))).toBe(layer.digest);
      const log = await reg.settledRequests();
      expect(log.map((r) => r.status)).toEqual([401, 200, 200, 200]);
    } finally {
      await c.close();
    }
  });

  it('reports refused credentials as UNAVAILABLE without revealing them', async () => {
    const logger = new RecordingLogger();
    const password = 'wrong-Pa55word-xyz';
    const c = makeClient(reg.url, { credentials: { username: reg.credentials?.username ?? 'x', password }, logger });
    try {
      const err = await rejection(c.getManifest('team/app', '1.0'));
      expect(err).toMatchObject({ code: 'UNAVAILABLE', status: 503, failure: { kind: 'auth', host: reg.host, status: 401 } });
      expect((err as Error).message).toBe(`upstream ${reg.host} refused our credentials (HTTP 401)`);
      expect(JSON.stringify(err)).not.toContain(password);
      expect(logger.dump()).not.toContain(password);
      expect(logger.dump()).not.toContain(Buffer.from(`${reg.credentials?.username}:${password}`).toString('base64'));
    } finally {
      await c.close();
    }
  });

  it('says credentials are required when none are configured', async () => {
    const c = makeClient(reg.url);
    try {
      const err = await rejection(c.headManifest('team/app', '1.0'));
      expect(err).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'auth' } });
      expect((err as Error).message).toContain('requires credentials');
    } finally {
      await c.close();
    }
  });
});

describe('token (Bearer) upstream', () => {
  let reg: UpstreamRegistry;

  beforeAll(async () => {
    reg = await UpstreamRegistry.start({ auth: { mode: 'token', ttlSeconds: 300 } });
    await pushImage(image.layoutDir, '1.0', reg.ref('library/app', '1.0'), { creds: reg.creds });
    await pushImage(image.layoutDir, '1.0', reg.ref('library/other', '1.0'), { creds: reg.creds });
  });

  afterAll(async () => {
    await reg?.stop();
  });

  const tokens = () => {
    if (!reg.tokenServer) throw new Error('no token server');
    return reg.tokenServer;
  };

  it('requests one token per scope across many calls, with the configured account', async () => {
    const c = makeClient(reg.url, { credentials: reg.credentials });
    tokens().reset();
    try {
      const layer = bigLayer();
      for (let i = 0; i < 3; i++) {
        expect((await c.headManifest('library/app', '1.0'))?.digest).toBe(image.digest);
        expect((await c.getManifest('library/app', image.digest)).digest).toBe(image.digest);
        expect(await c.headBlob('library/app', layer.digest)).toEqual({ size: layer.size });
      }
      expect(sha256(await readAll((await c.getBlob('library/app', layer.digest, {})).stream))).toBe(layer.digest);
      expect(tokens().requests().map((r) => [r.scopes, r.account, r.status])).toEqual([[['repository:library/app:pull'], reg.credentials?.username, 200]]);
      await c.listTags('library/other');
      expect(tokens().requestCount).toBe(2);
      expect(tokens().requests()[1].scopes).toEqual(['repository:library/other:pull']);
    } finally {
      await c.close();
    }
  });

  it('shares one token fetch between concurrent requests', async () => {
    const c = makeClient(reg.url, { credentials: reg.credentials });
    tokens().reset();
    try {
      const results = await Promise.all(Array.from({ length: 20 }, () => c.headManifest('library/app', '1.0')));
      expect(results.every((r) => r?.digest === image.digest)).toBe(true);
      expect(tokens().requestCount).toBe(1);
    } finally {
      await c.close();
    }
  });

  it('fetches a new token once the cached one has expired', async () => {
    const clock = new ManualClock();
    const c = makeClient(reg.url, { credentials: reg.credentials, clock });
    tokens().reset();
    try {
      await c.headManifest('library/app', '1.0');
      clock.advance(200_000);
      await c.headManifest('library/app', '1.0');
      expect(tokens().requestCount).toBe(1);
      clock.advance(100_000);
      await c.headManifest('library/app', '1.0');
      expect(tokens().requestCount).toBe(2);
    } finally {
      await c.close();
    }
  });

  it('pings the registry through the token flow', async () => {
    const c = makeClient(reg.url, { credentials: reg.credentials });
    tokens().reset();
    try {
      await c.ping();
      expect(tokens().requests().map((r) => r.scopes)).toEqual([[]]);
      const stranger = makeClient(reg.url, { credentials: { username: 'nobody', password: 'x' } });
      try {
        expect(await rejection(stranger.ping())).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'auth' } });
      } finally {
        await stranger.close();
      }
    } finally {
      await c.close();
    }
  });

  it('reports a token service refusing our credentials', async () => {
    const password = 'not-the-Password-123';
    const logger = new RecordingLogger();
    const c = makeClient(reg.url, { credentials: { username: reg.credentials?.username ?? 'x', password }, logger });
    try {
      const err = await rejection(c.getManifest('library/app', '1.0'));
      expect(err).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'auth', status: 401 } });
      expect((err as Error).message).toContain('refused our credentials');
      expect(logger.dump()).not.toContain(password);
    } finally {
      await c.close();
    }
  });

  it('says credentials are required when anonymous tokens grant nothing', async () => {
    const c = makeClient(reg.url);
    tokens().reset();
    try {
      const err = await rejection(c.headManifest('library/app', '1.0'));
      expect(err).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'auth', host: reg.host } });
      expect((err as Error).message).toContain('requires credentials');
      expect(tokens().requestCount).toBe(1);
      // Next call: the cached token is refused, refreshed once, the retry refused: no loop.
      await rejection(c.headManifest('library/app', '1.0'));
      expect(tokens().requestCount).toBe(2);
    } finally {
      await c.close();
    }
  });
});
