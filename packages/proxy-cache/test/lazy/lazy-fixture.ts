/**
 * Shared set-up of the lazy-pulling tests: a real upstream (Distribution,
 * anonymous), an Entrepot allowed to reach loopback, throttling relays in
 * front of the upstream (one per cache organization), and blobs of random
 * bytes pushed straight to the upstream.
 */
import { createHash, randomBytes } from 'node:crypto';
import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';
import { ThrottleRelay, type ThrottleMode } from '../../../../testing/throttle-relay';

export interface RangeAnswer {
  status: number;
  contentRange: string | null;
  body: Buffer;
  /** Milliseconds from sending the request to the first body byte (to the headers for an empty body). */
  ttfbMs: number;
  /** Date.now() when the whole body had arrived. */
  doneAt: number;
}

export interface LazyFixture {
  fx: CacheFixture;
  /** A relay in front of the upstream and a cache organization reaching the upstream through it. */
  cacheOrg(name: string, mode: ThrottleMode, bytesPerSecond: number, body?: Record<string, unknown>): Promise<ThrottleRelay>;
  /** Pushes `size` random bytes to the upstream as a blob of `repo`. */
  pushBlob(repo: string, size: number): Promise<{ data: Buffer; digest: string }>;
  /** GET of a blob through Entrepot, with a Range header when given. */
  get(org: string, repo: string, digest: string, range?: string): Promise<RangeAnswer>;
  /** GET of a blob straight from `baseUrl` (the upstream, or a relay in front of it). */
  getDirect(baseUrl: string, repo: string, digest: string, range?: string): Promise<RangeAnswer>;
  stop(): Promise<void>;
}

export async function startLazyFixture(proxyCache: Record<string, unknown> = {}): Promise<LazyFixture> {
  const fx = await startCacheFixture({ auth: { mode: 'anonymous' }, entrepot: { overrides: { proxy_cache: proxyCache } } });
  const relays: ThrottleRelay[] = [];
  return {
    fx,
    async cacheOrg(name, mode, bytesPerSecond, body = {}) {
      const relay = await ThrottleRelay.start(fx.upstream.url, mode, bytesPerSecond);
      relays.push(relay);
      await fx.createCacheOrg(name, { upstream_endpoint: relay.url, ...body });
      return relay;
    },
    async pushBlob(repo, size) {
      const data = randomBytes(size);
      const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
      const start = await fetch(`${fx.upstream.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
      if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
      const location = new URL(start.headers.get('location') ?? '', fx.upstream.url);
      location.searchParams.set('digest', digest);
      const put = await fetch(location, { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } });
      if (put.status !== 201) throw new Error(`upload: ${put.status} ${await put.text()}`);
      return { data, digest };
    },
    get(org, repo, digest, range) {
      return timedGet(`${fx.entrepot.url}/v2/${org}/${repo}/blobs/${digest}`, { authorization: fx.entrepot.adminAuth, ...(range ? { range } : {}) });
    },
    getDirect(baseUrl, repo, digest, range) {
      return timedGet(`${baseUrl}/v2/${repo}/blobs/${digest}`, range ? { range } : {});
    },
    async stop() {
      for (const relay of relays) await relay.stop();
      await fx.stop();
    },
  };
}

async function timedGet(url: string, headers: Record<string, string>): Promise<RangeAnswer> {
  const sentAt = performance.now();
  const res = await fetch(url, { headers });
  let ttfbMs = -1;
  const parts: Buffer[] = [];
  for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
    if (ttfbMs < 0) ttfbMs = performance.now() - sentAt;
    parts.push(Buffer.from(chunk));
  }
  if (ttfbMs < 0) ttfbMs = performance.now() - sentAt;
  return { status: res.status, contentRange: res.headers.get('content-range'), body: Buffer.concat(parts), ttfbMs, doneAt: Date.now() };
}

/** `count` chunk ranges of 64 KiB–4 MiB at scattered offsets of a blob of `size` bytes (deterministic). */
export function scatteredChunks(size: number, count: number): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  let x = 12345;
  const next = (): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
  for (let i = 0; i < count; i++) {
    const length = 64 * 1024 + Math.floor(next() * (4 * 1024 * 1024 - 64 * 1024));
    const start = Math.floor(next() * (size - length));
    out.push({ start, end: start + length - 1 });
  }
  return out;
}
