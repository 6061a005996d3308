/**
 * Shared set-up of the fault tests: one real upstream (Distribution, anonymous
 * pulls), one Entrepot with short upstream timeouts and a small breaker, and
 * one fault proxy per cache organization — each proxy is its own upstream
 * endpoint, so each test has its own circuit breaker.
 */
import { createHash } from 'node:crypto';
import { describeError, readBody } from '../../../../testing/read-body';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '@entrepot/registry-core';
import { createOciImage, pushImage, type BuiltImage } from '../../../../testing/oci-images';
import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';
import { FaultProxy } from './fault-proxy';

/** Timeouts short enough for tests, long enough for a loaded machine. */
export const FAULT_SETTINGS = {
  connect_timeout_ms: 1000,
  headers_timeout_ms: 1500,
  idle_timeout_ms: 1000,
  breaker_failures: 3,
  breaker_cooldown_ms: 2000,
};

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export interface FaultFixture {
  fx: CacheFixture;
  /** Starts a fault proxy in front of the upstream and a cache org whose endpoint is that proxy. */
  cacheOrg(name: string, body?: Record<string, unknown>): Promise<FaultProxy>;
  /** Builds an image and pushes it to the upstream as `repo:tag`. */
  pushUpstream(repo: string, tag: string, layerSizes: number[]): Promise<BuiltImage>;
  stop(): Promise<void>;
}

export async function startFaultFixture(settings: Partial<typeof FAULT_SETTINGS> & { revalidation_deadline_ms?: number } = {}): Promise<FaultFixture> {
  const fx = await startCacheFixture({
    auth: { mode: 'anonymous' },
    entrepot: { overrides: { proxy_cache: { ...FAULT_SETTINGS, ...settings } } },
  });
  const proxies: FaultProxy[] = [];
  return {
    fx,
    async cacheOrg(name, body = {}) {
      const proxy = await FaultProxy.start(fx.upstream.url);
      proxies.push(proxy);
      await fx.createCacheOrg(name, { upstream_endpoint: proxy.url, ...body });
      return proxy;
    },
    async pushUpstream(repo, tag, layerSizes) {
      const image = await createOciImage(join(fx.work, `${repo.replace(/\//g, '_')}-${tag}`), { tag, layerSize: layerSizes });
      await pushImage(image.layoutDir, tag, fx.upstream.ref(repo, tag));
      return image;
    },
    async stop() {
      for (const proxy of proxies) await proxy.stop();
      await fx.stop();
    },
  };
}

export interface ClientResult {
  status: number;
  headers: Headers;
  /** Bytes received before the body ended or failed. */
  received: number;
  /** sha256 of what was received. */
  digest: string;
  /** Parsed OCI error envelope, when the answer was an error. */
  errors?: Array<{ code: string; message: string }>;
  /** Set when reading the body failed (connection cut, truncated body). */
  bodyError?: string;
  elapsedMs: number;
}

/** A GET (or HEAD) on Entrepot's /v2 as the admin, reading the whole body and noting how it ended. */
export async function registryGet(fx: CacheFixture, path: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<ClientResult> {
  const started = Date.now();
  let res: Response;
  try {
    res = await fetch(`${fx.entrepot.url}/v2/${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: fx.entrepot.adminAuth, accept: OCI_MANIFEST, ...(init.headers ?? {}) },
    });
  } catch (err) {
    // No response at all (connection closed before the status line): status 0.
    return { status: 0, headers: new Headers(), received: 0, digest: '', bodyError: describeError(err), elapsedMs: Date.now() - started };
  }
  const body = await readBody(res);
  const result: ClientResult = { status: res.status, headers: res.headers, received: body.received, digest: body.digest, elapsedMs: Date.now() - started };
  if (body.bodyError !== undefined) result.bodyError = body.bodyError;
  if (body.errors) result.errors = body.errors;
  return result;
}


/** What the blob store holds for `digest`: null, or its size and recomputed sha256. */
export async function storedBlob(fx: CacheFixture, digest: string): Promise<{ size: number; digest: string } | null> {
  const blobs = fx.entrepot.entrepot.services.storage.blobs;
  const stat = await blobs.stat(digest as Digest);
  if (!stat) return null;
  const hash = createHash('sha256');
  for await (const chunk of (await blobs.read(digest as Digest)) as AsyncIterable<Buffer>) hash.update(chunk);
  return { size: stat.size, digest: `sha256:${hash.digest('hex')}` };
}

/** Files left in the scratch directory (fills in progress or leaked). */
export async function scratchEntries(fx: CacheFixture): Promise<string[]> {
  return readdir(fx.entrepot.entrepot.services.storage.scratchDir);
}

export async function metricsText(fx: CacheFixture): Promise<string> {
  return (await fetch(`${fx.entrepot.url}/metrics`)).text();
}

/** The value of one sample of `/metrics` (0 when absent); `labels` must all match. */
export async function metricValue(fx: CacheFixture, name: string, labels: Record<string, string>): Promise<number> {
  const text = await metricsText(fx);
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** `cache_result` of the organization's most recent `pull_repo` audit entries, newest first. */
export async function auditResults(fx: CacheFixture, org: string): Promise<string[]> {
  const res = await fx.entrepot.api('GET', `/organization/${org}/logs?kind=pull_repo`);
  const body = res.body as { logs: Array<{ metadata: { cache_result?: string | null } }> };
  return body.logs.map((l) => l.metadata.cache_result ?? '');
}
