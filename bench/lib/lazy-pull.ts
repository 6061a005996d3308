/**
 * Scenarios 8 and 9: the upstream behind a throttling relay (testing/throttle-relay.ts).
 *
 * 8. Lazy pulling: the range pattern of eStargz / SOCI snapshotters — the
 *    layer's last 10 KiB, a table of contents before it, 1 MiB from the
 *    middle, then 30 chunk ranges
 *    of 64 KiB–4 MiB in no order (4 at a time) — on a cold layer, with the
 *    whole relay at 20 MB/s (`--lazy-mbps`); then the same pattern again once the cache has
 *    the layer.
 * 9. A cold GET of a whole layer with the relay capping each connection at
 *    20 MB/s (as CDNs do): one client through each contender.
 *
 * Each contender gets its own cold layer (random bytes pushed to the
 * upstream), and each cache its own process pointed at the relay, warmed up
 * with one small cold blob first.
 */
import * as http from 'node:http';
import { randomBytes } from 'node:crypto';
import { ThrottleRelay, type ThrottleMode } from '../../testing/throttle-relay';
import type { UpstreamRegistry } from '../../testing/upstream-registry';
import { LABELS, startDistributionProxy, startEntrepot, type Contender, type ContenderId } from './contenders';
import { uploadBlob } from './images';
import type { Results } from './report';
import { MiB, log, mapLimit, median, now } from './util';

export const S8 = '8. Lazy pulling of a cold layer (upstream link capped)';
export const S9 = '9. Cold layer GET, upstream capped per connection';
const LAZY_REPO = 'library/lazy';

export interface LazyCtx {
  upstream: UpstreamRegistry;
  results: Results;
  repoRoot: string;
  /** A built checkout of an earlier commit, measured as `entrepot-baseline` (`--baseline DIR`). */
  baselineRoot?: string;
  layerBytes: number;
  /** The relay's cap: the whole link (7) or each connection (8), bytes per second. */
  rate: number;
  /** Which of direct, distribution, entrepot, entrepot-baseline to measure. */
  contenders: ContenderId[];
}

interface Timed {
  status: number;
  bytes: number;
  ttfbMs: number;
  totalMs: number;
  body: Buffer;
}

function timedGet(url: string, range?: string): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    let ttfb = -1;
    const req = http.get(url, { headers: range ? { range } : {}, timeout: 900_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        if (ttfb < 0) ttfb = now() - t0;
        chunks.push(c);
      });
      res.on('end', () => {
        // Timed at the last byte: joining 200 MiB of chunks afterwards takes long enough to blur the ratio.
        const totalMs = now() - t0;
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, bytes: body.length, ttfbMs: ttfb < 0 ? totalMs : ttfb, totalMs, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: GET ${url}`)));
    req.on('error', reject);
  });
}

/** The bytes a range answer stands for: a 206 must match the slice; a 200 (Range ignored) must be the whole blob. */
function check(got: Timed, data: Buffer, start: number, end: number, who: string): void {
  const expected = got.status === 200 ? data : data.subarray(start, end + 1);
  if ((got.status !== 206 && got.status !== 200) || !got.body.equals(expected)) {
    throw new Error(`${who}: range ${start}-${end} answered ${got.status} with ${got.bytes} wrong bytes`);
  }
}

function chunkRanges(size: number, count: number): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  for (let i = 0; i < count; i++) {
    const length = 64 * 1024 + Math.floor(Math.random() * (4 * MiB - 64 * 1024));
    const start = Math.floor(Math.random() * (size - length));
    out.push({ start, end: start + length - 1 });
  }
  return out;
}

/** A contender fetching through `relay`; `stop` stops what was started for it. */
async function startBehind(ctx: LazyCtx, id: ContenderId, relay: ThrottleRelay): Promise<Contender> {
  if (id === 'direct') {
    const host = relay.url.replace('http://', '');
    return { id, host, url: relay.url, isCache: false, pid: () => undefined, repo: (r) => r, stop: () => Promise.resolve() };
  }
  if (id === 'distribution') return startDistributionProxy(ctx.upstream, relay.url);
  if (id === 'entrepot-baseline' && ctx.baselineRoot) return startEntrepot({ repoRoot: ctx.baselineRoot, baseline: true, upstreamUrl: relay.url });
  return startEntrepot({ repoRoot: ctx.repoRoot, upstreamUrl: relay.url });
}

/**
 * A cache in service has talked to its upstream before: one small cold blob,
 * a range of it and then all of it, so the figures measure the pull path and
 * not the first request of a new process (connections, compiled code).
 */
async function warmUp(ctx: LazyCtx, c: Contender): Promise<void> {
  const data = randomBytes(4 * MiB);
  const { digest } = await uploadBlob(ctx.upstream.url, LAZY_REPO, data);
  const url = blobUrl(c, digest);
  check(await timedGet(url, `bytes=${data.length - 10240}-${data.length - 1}`), data, data.length - 10240, data.length - 1, c.id);
  check(await timedGet(url), data, 0, data.length - 1, c.id);
  await fillsDone(c);
}

/** Waits until an Entrepot contender stored everything it was filling. */
async function fillsDone(c: Contender): Promise<void> {
  if (c.id !== 'entrepot' && c.id !== 'entrepot-baseline') return;
  const deadline = now() + 600_000;
  for (;;) {
    const text = await fetch(`${c.url}/metrics`).then((r) => r.text());
    const line = text.split('\n').find((l) => l.startsWith('entrepot_cache_fills_in_flight '));
    if (line && Number(line.split(' ')[1]) === 0) return;
    if (now() > deadline) throw new Error('fills still running after 10 minutes');
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function withRelay(ctx: LazyCtx, mode: ThrottleMode, scenario: string, fn: (c: Contender, relay: ThrottleRelay) => Promise<void>): Promise<void> {
  for (const id of ctx.contenders) {
    const relay = await ThrottleRelay.start(ctx.upstream.url, mode, ctx.rate);
    let c: Contender | null = null;
    try {
      c = await startBehind(ctx, id, relay);
      await warmUp(ctx, c);
      relay.resetLog();
      await fn(c, relay);
    } catch (err) {
      const msg = `${LABELS[id]} failed: ${(err as Error).message.split('\n')[0]}`;
      log(`${scenario}: ${msg}`);
      ctx.results.note(scenario, msg);
    } finally {
      await c?.stop().catch(() => undefined);
      await relay.stop();
    }
  }
}

function blobUrl(c: Contender, digest: string): string {
  return `${c.url}/v2/${c.repo(LAZY_REPO)}/blobs/${digest}`;
}

async function lazyPattern(c: Contender, data: Buffer, digest: string, label: string, results: Results): Promise<void> {
  const size = data.length;
  const url = blobUrl(c, digest);
  const t0 = now();
  // Absolute, as the snapshotters send it: they know the layer's size from the manifest.
  const tail = await timedGet(url, `bytes=${size - 10240}-${size - 1}`);
  check(tail, data, size - 10240, size - 1, c.id);
  const tocStart = size - 10240 - 700_000;
  const toc = await timedGet(url, `bytes=${tocStart}-${size - 10241}`);
  check(toc, data, tocStart, size - 10241, c.id);
  const midStart = Math.floor(size / 2) + 333;
  const mid = await timedGet(url, `bytes=${midStart}-${midStart + MiB - 1}`);
  check(mid, data, midStart, midStart + MiB - 1, c.id);
  let received = tail.bytes + toc.bytes + mid.bytes;
  const chunkTtfb: number[] = [];
  await mapLimit(chunkRanges(size, 30), 4, async (r) => {
    const got = await timedGet(url, `bytes=${r.start}-${r.end}`);
    check(got, data, r.start, r.end, c.id);
    chunkTtfb.push(got.ttfbMs);
    received += got.bytes;
  });
  const total = (now() - t0) / 1000;
  results.add(S8, `${label}: tail 10 KiB, time to first byte`, 'ms', 'lower', c.id, tail.ttfbMs, { limit: 'direct' });
  results.add(S8, `${label}: tail 10 KiB, complete`, 'ms', 'lower', c.id, tail.totalMs, { limit: 'direct' });
  results.add(S8, `${label}: table of contents 700 KB, time to first byte`, 'ms', 'lower', c.id, toc.ttfbMs, { limit: 'direct' });
  results.add(S8, `${label}: 1 MiB mid-blob range, time to first byte`, 'ms', 'lower', c.id, mid.ttfbMs, { limit: 'direct' });
  results.add(S8, `${label}: 30 chunks (4 at a time), median time to first byte`, 'ms', 'lower', c.id, median(chunkTtfb), { limit: 'direct' });
  results.add(S8, `${label}: 30 chunks (4 at a time), slowest time to first byte`, 'ms', 'lower', c.id, Math.max(...chunkTtfb), { limit: 'direct' });
  results.add(S8, `${label}: tail + TOC + mid + 30 chunks`, 's', 'lower', c.id, total, { limit: 'direct' });
  results.add(S8, `${label}: bytes sent to the client`, 'MB', 'info', c.id, received / 1e6);
  if (tail.status === 200) ctx7Note(results, c.id);
  log(`${S8}: ${c.id} ${label} TTFB tail ${tail.ttfbMs.toFixed(1)} ms (${tail.status}), TOC ${toc.ttfbMs.toFixed(1)} ms, mid ${mid.ttfbMs.toFixed(1)} ms, chunks median ${median(chunkTtfb).toFixed(1)} ms; pattern ${total.toFixed(2)} s`);
}

function ctx7Note(results: Results, id: ContenderId): void {
  results.note(S8, `${LABELS[id]} answered the tail range with 200 and the whole layer.`);
}

export async function lazyScenarios(ctx: LazyCtx, only: (key: string) => boolean): Promise<void> {
  const size = ctx.layerBytes;
  const mb = Math.round(size / MiB);
  const cap = `${ctx.rate / 1e6} MB/s`;
  if (only('8')) {
    await withRelay(ctx, 'total', S8, async (c) => {
      const data = randomBytes(size);
      const { digest } = await uploadBlob(ctx.upstream.url, LAZY_REPO, data);
      await lazyPattern(c, data, digest, `cold ${mb} MiB layer, link at ${cap}`, ctx.results);
      if (!c.isCache) return;
      await fillsDone(c);
      await lazyPattern(c, data, digest, `same layer, cached`, ctx.results);
    });
  }
  if (only('9')) {
    await withRelay(ctx, 'per-connection', S9, async (c, relay) => {
      const data = randomBytes(size);
      const { digest } = await uploadBlob(ctx.upstream.url, LAZY_REPO, data);
      relay.resetLog();
      const got = await timedGet(blobUrl(c, digest));
      if (got.status !== 200 || !got.body.equals(data)) throw new Error(`${c.id}: cold GET answered ${got.status} with ${got.bytes} bytes that differ`);
      const blobGets = relay.requests().filter((r) => r.path.endsWith(digest) && r.method === 'GET');
      const relayed = blobGets.reduce((sum, r) => sum + r.bytes, 0);
      ctx.results.add(S9, `cold ${mb} MiB layer GET, ${cap} per connection`, 's', 'lower', c.id, got.totalMs / 1000, { limit: 'direct', target: '≥ 3× faster than direct' });
      ctx.results.add(S9, `cold ${mb} MiB layer GET throughput, ${cap} per connection`, 'MB/s', 'higher', c.id, size / 1e6 / (got.totalMs / 1000), { limit: 'direct' });
      ctx.results.add(S9, 'upstream requests for the layer', 'n', 'info', c.id, blobGets.length);
      ctx.results.add(S9, 'upstream connections streaming at once (most)', 'n', 'info', c.id, relay.maxConcurrentBodies);
      ctx.results.add(S9, 'bytes fetched from the upstream / layer size', '×', 'lower', c.id, relayed / size);
      log(`${S9}: ${c.id} ${(got.totalMs / 1000).toFixed(2)} s over ${blobGets.length} requests (${relay.maxConcurrentBodies} at once)`);
    });
  }
}
