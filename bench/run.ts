/**
 * `npm run bench [-- --quick] [-- --runs N --only 1,4 --contenders entrepot,distribution --cpu-prof DIR --scanner --s3-tls]`
 *
 * Measures Entrepot (embedded: SQLite + fs; scale-out: MariaDB + Redis + S3)
 * against CNCF Distribution in proxy mode, direct pulls from the upstream and
 * nginx serving the same files, in one run on this machine, and writes
 * markdown tables (medians over runs) plus raw numbers to bench/results/ (ignored by git).
 * See docs/BENCHMARKS.md.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as os from 'node:os';
import { join, resolve } from 'node:path';
import { skopeoCopyOut } from '../testing/oci-images';
import { ClairServer } from '../testing/clair';
import { TempDir, sleep } from '../testing/tools';
import { UpstreamRegistry } from '../testing/upstream-registry';
import {
  ADMIN,
  GROWTH_ORG,
  basic,
  LABELS,
  NginxStatic,
  directContender,
  startDistributionProxy,
  startNodeRelay,
  startDistributionS3Proxy,
  startEntrepot,
  type Contender,
  type ContenderId,
  type EntrepotContender,
} from './lib/contenders';
import { curl, expectOk } from './lib/curl';
import { MANIFEST_ACCEPT, buildAndPush, uploadBlob, populateUpstream, pullAll, request, type PublishedImage } from './lib/images';
import { RssSampler, machineBusySeconds, readMemory, resetPeak, residentByKind, waitForQuietMachine } from './lib/proc';
import { Results } from './lib/report';
import { MiB, log, median, now, rotate } from './lib/util';
import { hey, wrk } from './lib/wrk';
import { lazyScenarios } from './lib/lazy-pull';
import { S10, scaleOutTable } from './scale-out-replicas';

const REPO_ROOT = resolve(__dirname, '../../..');

interface Sizes {
  runs: number;
  coldLayers: number[];
  ttfbLayer: number;
  herdClients: number;
  memBlob: number;
  memClients: number;
  wrkSeconds: number;
  wrkConnections: number;
  growthRepos: number;
  growthTagsPerRepo: number;
  /** Give the growth organization a quota far above its content before caching, so every fill takes an admission decision. */
  growthQuota: boolean;
  idleWaitMs: number;
  /** Layer of the lazy-pulling and per-connection-capped scenarios (7, 8). */
  lazyLayer: number;
  /** Their relay's cap in MB/s (10^6 bytes). */
  lazyMbps: number;
  /** Blob of scenario 11 (one cold stream, then one warm stream). */
  streamBlob: number;
}

const FULL: Sizes = {
  runs: 3,
  coldLayers: [100, 60, 40, 30, 20].map((m) => m * MiB),
  ttfbLayer: 100 * MiB,
  herdClients: 50,
  memBlob: 500 * MiB,
  memClients: 50,
  wrkSeconds: 20,
  wrkConnections: 50,
  growthRepos: 1000,
  growthTagsPerRepo: 10,
  growthQuota: false,
  idleWaitMs: 10_000,
  lazyLayer: 200 * MiB,
  lazyMbps: 20,
  streamBlob: 200 * MiB,
};

const QUICK: Sizes = {
  runs: 1,
  coldLayers: [8, 6, 4, 3, 2].map((m) => m * MiB),
  ttfbLayer: 8 * MiB,
  herdClients: 50,
  memBlob: 64 * MiB,
  memClients: 50,
  wrkSeconds: 2,
  wrkConnections: 50,
  growthRepos: 100,
  growthTagsPerRepo: 10,
  growthQuota: false,
  idleWaitMs: 3_000,
  lazyLayer: 100 * MiB,
  lazyMbps: 20,
  streamBlob: 64 * MiB,
};

interface Options {
  quick: boolean;
  sizes: Sizes;
  only: Set<string> | null;
  contenders: Set<ContenderId> | null;
  cpuProfDir?: string;
  scaleOut: boolean;
  /** SeaweedFS of Entrepot scale-out and of Distribution on S3 serves HTTPS (self-signed, its certificate given to both as a CA). */
  s3Tls: boolean;
  /** Also run Entrepot with Clair scanning on (a real Clair) for scenario 7. */
  scanner: boolean;
  /** A built checkout of an earlier commit, measured beside this one (`--baseline DIR`). */
  baseline?: string;
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const sizes = { ...(quick ? QUICK : FULL) };
  let only: Set<string> | null = null;
  let contenders: Set<ContenderId> | null = null;
  let cpuProfDir: string | undefined;
  let scaleOut = true;
  let s3Tls = false;
  let scanner = false;
  let baseline: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') continue;
    else if (a === '--runs') sizes.runs = Number(next());
    else if (a === '--only') only = new Set(next().split(','));
    else if (a === '--contenders') contenders = new Set(next().split(',') as ContenderId[]);
    else if (a === '--cpu-prof') cpuProfDir = resolve(next());
    else if (a === '--no-scaleout') scaleOut = false;
    else if (a === '--s3-tls') s3Tls = true;
    else if (a === '--scanner') scanner = true;
    else if (a === '--baseline') baseline = resolve(next());
    else if (a === '--wrk-seconds') sizes.wrkSeconds = Number(next());
    else if (a === '--growth-repos') sizes.growthRepos = Number(next());
    else if (a === '--growth-quota') sizes.growthQuota = true;
    else if (a === '--lazy-mib') sizes.lazyLayer = Number(next()) * MiB;
    else if (a === '--lazy-mbps') sizes.lazyMbps = Number(next());
    else if (a === '--stream-mib') sizes.streamBlob = Number(next()) * MiB;
    else throw new Error(`unknown argument ${a}`);
  }
  return { quick, sizes, only, contenders, cpuProfDir, scaleOut, s3Tls, scanner, baseline };
}

/** First line a command prints of its version (some print on stderr, some exit non-zero). */
function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0].trim() || `(no output from ${cmd})`;
}

function machineFacts(baseline?: string): Record<string, string> {
  const git = (args: string[]): string => version('git', ['-C', REPO_ROOT, ...args]);
  return {
    date: new Date().toISOString(),
    commit: `${git(['rev-parse', '--short', 'HEAD'])}${git(['status', '--porcelain', '--untracked-files=no', 'packages']) ? ' (+ uncommitted changes in packages/)' : ''}`,
    cpu: `${os.cpus()[0]?.model ?? '?'} × ${os.cpus().length} (nproc ${version('nproc', [])})`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    ...(baseline ? { baseline: `${version('git', ['-C', baseline, 'rev-parse', '--short', 'HEAD'])} in ${baseline}` } : {}),
    node: process.version,
    distribution: version('/usr/bin/docker-registry', ['--version']),
    nginx: version('/usr/sbin/nginx', ['-v']),
    skopeo: version('/usr/bin/skopeo', ['--version']),
    curl: version('/usr/bin/curl', ['--version']),
    wrk: version('/usr/bin/wrk', ['--version']),
    mariadb: version('/usr/bin/mariadb', ['--version']),
    redis: version('/usr/bin/redis-server', ['--version']),
  };
}

/** Everything a scenario needs. */
interface Ctx {
  opts: Options;
  s: Sizes;
  work: TempDir;
  upstream: UpstreamRegistry;
  nginx?: NginxStatic;
  all: Contender[];
  results: Results;
}

const byId = (ctx: Ctx, ids: ContenderId[]): Contender[] => ids.map((id) => ctx.all.find((c) => c.id === id)).filter((c): c is Contender => c !== undefined);
const CACHES: ContenderId[] = ['distribution', 'distribution-s3', 'entrepot', 'entrepot-scaleout', 'entrepot-baseline', 'entrepot-scaleout-baseline'];
const PULLERS: ContenderId[] = ['direct', ...CACHES];
const SERVERS: ContenderId[] = ['direct', 'nginx', ...CACHES];
const RELAYS: ContenderId[] = ['node-relay', 'node-relay-hash', 'node-relay-bare'];

function blobUrl(c: Contender, img: PublishedImage, digest: string): string {
  return `${c.url}/v2/${c.repo(img.repo)}/blobs/${digest}`;
}
function manifestUrl(c: Contender, img: PublishedImage, ref = img.tag): string {
  return `${c.url}/v2/${c.repo(img.repo)}/manifests/${ref}`;
}

async function getManifest(c: Contender, img: PublishedImage, ref = img.tag): Promise<void> {
  const r = await curl([manifestUrl(c, img, ref)], { headers: [MANIFEST_ACCEPT] });
  expectOk(r, [img.manifest.length], `${c.id} manifest ${img.repo}:${ref}`);
}

async function skopeoPull(ctx: Ctx, c: Contender, img: PublishedImage): Promise<number> {
  const dest = ctx.work.join(`pull-${c.id}-${Date.now()}`);
  try {
    const t0 = now();
    const digest = await skopeoCopyOut(`${c.host}/${c.repo(img.repo)}:${img.tag}`, dest, { timeoutMs: 900_000 });
    const elapsed = (now() - t0) / 1000;
    if (digest !== img.digest) throw new Error(`${c.id}: pulled ${digest}, expected ${img.digest}`);
    return elapsed;
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
}

/** Reads samples from an Entrepot contender's `/metrics` (a name, with its labels when it has any); NaN for one it does not report. */
async function metricSamples(c: Contender, names: string[]): Promise<number[]> {
  const lines = (await fetch(`${c.url}/metrics`).then((r) => r.text())).split('\n');
  return names.map((name) => Number(lines.find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? NaN));
}

/**
 * Waits until an Entrepot contender has stored what it was downloading. Clients
 * of a fill can finish before the fill is in storage (scale-out uploads it to
 * S3 afterwards), and a warm phase started then would read the fill's scratch
 * file instead of storage.
 */
async function fillsStored(c: Contender): Promise<void> {
  if (!c.id.startsWith('entrepot')) return;
  const deadline = now() + 600_000;
  for (;;) {
    const [inFlight] = await metricSamples(c, ['entrepot_cache_fills_in_flight']);
    if (inFlight === 0) return;
    if (now() > deadline) throw new Error(`${c.id}: fills still running after 10 minutes`);
    await sleep(200);
  }
}

async function each(ctx: Ctx, scenario: string, list: Contender[], fn: (c: Contender) => Promise<void>): Promise<void> {
  for (const c of list) {
    try {
      await fn(c);
    } catch (err) {
      const msg = `${LABELS[c.id]} failed: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`;
      log(`${scenario}: ${msg}`);
      ctx.results.note(scenario, msg);
    }
  }
}

// ---------------------------------------------------------------------------
// 1 + 2: cold pull, then warm pull and warm throughput of the same image

const S1 = '1. Cold pull';
const S2 = '2. Warm pull and blob throughput';

async function coldAndWarm(ctx: Ctx, run: number): Promise<void> {
  const { s, results } = ctx;
  const mb = s.coldLayers.reduce((a, b) => a + b, 0) / MiB;
  log(`${S1} run ${run + 1}: building a ${s.coldLayers.length}-layer ${mb} MiB image and a ${s.ttfbLayer / MiB} MiB one-layer image`);
  const img = await buildAndPush(ctx.upstream, ctx.work.path, `library/cold${run}`, s.coldLayers, ctx.nginx);
  const ttfbImg = await buildAndPush(ctx.upstream, ctx.work.path, `library/ttfb${run}`, [s.ttfbLayer]);

  if (!ctx.opts.only || ctx.opts.only.has('1')) {
    await each(ctx, S1, rotate(byId(ctx, PULLERS), run), async (c) => {
      await waitForQuietMachine();
      const busyBefore = machineBusySeconds();
      const wall = await skopeoPull(ctx, c, img);
      const busy = machineBusySeconds() - busyBefore;
      results.add(S1, `skopeo pull ${mb} MiB, ${s.coldLayers.length} layers`, 's', 'lower', c.id, wall, { limit: 'direct', target: '≤ 1.1× direct' });
      // Client, upstream and cache share the machine: how much of it the pull used.
      results.add(S1, 'machine CPU used by the pull (all processes)', 'CPU-s', 'lower', c.id, busy, { limit: 'direct' });
      results.add(S1, `cores busy during the pull (of ${os.cpus().length})`, 'cores', 'lower', c.id, busy / wall);
      await getManifest(c, ttfbImg);
      const r = await curl([blobUrl(c, ttfbImg, ttfbImg.largest.digest)]);
      expectOk(r, [ttfbImg.largest.size], `${c.id} cold layer`);
      const t = r.transfers[0];
      results.add(S1, `TTFB of a cold ${s.ttfbLayer / MiB} MiB layer (raw GET)`, 'ms', 'lower', c.id, t.ttfb * 1000, { limit: 'direct' });
      results.add(S1, `cold ${s.ttfbLayer / MiB} MiB layer GET throughput`, 'MB/s', 'higher', c.id, t.bytes / 1e6 / t.total, { limit: 'direct' });
      log(`${S1}: ${c.id} pull ${wall.toFixed(2)} s, TTFB ${(t.ttfb * 1000).toFixed(1)} ms`);
    });
  }

  if (!ctx.opts.only || ctx.opts.only.has('2')) {
    await each(ctx, S2, rotate(byId(ctx, SERVERS), run), async (c) => {
      // A cache that missed scenario 1 (--only 2) fills first.
      if (c.isCache && ctx.opts.only && !ctx.opts.only.has('1')) await skopeoPull(ctx, c, img);
      await fillsStored(c);
      const wall = await skopeoPull(ctx, c, img);
      results.add(S2, `warm skopeo pull ${mb} MiB`, 's', 'lower', c.id, wall, { limit: 'nginx' });
      const one = await curl([blobUrl(c, img, img.largest.digest)]);
      expectOk(one, [img.largest.size], `${c.id} warm blob`);
      results.add(S2, `1 stream, ${img.largest.size / MiB | 0} MiB blob`, 'MB/s', 'higher', c.id, one.transfers[0].bytes / 1e6 / one.transfers[0].total, { limit: 'nginx' });
      const urls = Array.from({ length: 8 }, () => blobUrl(c, img, img.largest.digest));
      const par = await curl(urls, { parallel: 8 });
      expectOk(par, urls.map(() => img.largest.size), `${c.id} warm parallel blobs`);
      const bytes = par.transfers.reduce((a, t) => a + t.bytes, 0);
      const secs = Math.max(...par.transfers.map((t) => t.total));
      results.add(S2, '8 parallel streams, aggregate', 'MB/s', 'higher', c.id, bytes / 1e6 / secs, { limit: 'nginx', target: '≥ Dist and ≥ 0.8× nginx' });
      results.add(S2, 'TTFB warm blob (median of 8)', 'ms', 'lower', c.id, median(par.transfers.map((t) => t.ttfb * 1000)), { limit: 'nginx' });
      log(`${S2}: ${c.id} warm pull ${wall.toFixed(2)} s, 8× ${(bytes / 1e6 / secs).toFixed(0)} MB/s`);
    });
  }
}

// ---------------------------------------------------------------------------
// 11: one stream of one large blob, cold then warm

const S11 = '11. One stream of one blob';

async function oneStream(ctx: Ctx, run: number): Promise<void> {
  const { s, results } = ctx;
  const mb = Math.round(s.streamBlob / MiB);
  await each(ctx, S11, rotate(byId(ctx, [...CACHES, ...RELAYS]), run), async (c) => {
    // A new blob per contender and run: cold for every cache.
    const blob = await uploadBlob(ctx.upstream.url, 'library/stream', randomBytes(s.streamBlob));
    const url = `${c.url}/v2/${c.repo('library/stream')}/blobs/${blob.digest}`;
    await ctx.upstream.settledRequests(200, 5000);
    await waitForQuietMachine();
    ctx.upstream.resetLog();
    const busyBefore = machineBusySeconds();
    const cold = await curl([url]);
    expectOk(cold, [blob.size], `${c.id} cold blob`);
    const t = cold.transfers[0];
    results.add(S11, `one cold stream, ${mb} MiB blob`, 'MB/s', 'higher', c.id, t.bytes / 1e6 / t.total, { limit: 'node-relay', target: '≥ Dist' });
    // What the stream cost, counted until the cache has stored the blob: Distribution stores it from a second upstream GET after the client's.
    await fillsStored(c);
    await waitForQuietMachine();
    const upstreamBytes = (await ctx.upstream.settledRequests(300, 30_000)).filter((q) => q.method === 'GET' && q.path.endsWith(blob.digest)).reduce((a, q) => a + q.bytes, 0);
    results.add(S11, 'upstream bytes for the cold stream / blob size', '×', 'lower', c.id, upstreamBytes / blob.size);
    results.add(S11, 'machine CPU for the cold stream until stored (all processes)', 'CPU-s', 'lower', c.id, machineBusySeconds() - busyBefore, { limit: 'node-relay' });
    // Only the storing relay keeps the blob: through the others every stream is cold.
    if (c.id === 'node-relay-hash' || c.id === 'node-relay-bare') {
      log(`${S11}: ${c.id} cold ${(t.bytes / 1e6 / t.total).toFixed(0)} MB/s`);
      return;
    }
    const warm = await curl([url]);
    expectOk(warm, [blob.size], `${c.id} warm blob`);
    const w = warm.transfers[0];
    results.add(S11, `one warm stream, ${mb} MiB blob`, 'MB/s', 'higher', c.id, w.bytes / 1e6 / w.total, { limit: 'node-relay', target: '≥ Dist' });
    log(`${S11}: ${c.id} cold ${(t.bytes / 1e6 / t.total).toFixed(0)} MB/s, warm ${(w.bytes / 1e6 / w.total).toFixed(0)} MB/s`);
  });
}

// ---------------------------------------------------------------------------
// 3: herd

const S3 = '3. Herd: concurrent cold pulls of one image';

async function herd(ctx: Ctx, run: number): Promise<void> {
  const { s, results } = ctx;
  const mb = s.coldLayers.reduce((a, b) => a + b, 0) / MiB;
  log(`${S3} run ${run + 1}: ${s.herdClients} clients, ${mb} MiB image`);
  const img = await buildAndPush(ctx.upstream, ctx.work.path, `library/herd${run}`, s.coldLayers);
  await each(ctx, S3, rotate(byId(ctx, PULLERS), run), async (c) => {
    await ctx.upstream.settledRequests(200, 5000);
    await waitForQuietMachine();
    ctx.upstream.resetLog();
    const t0 = now();
    // Each client: the manifest by tag, then config and layers six at a time (as containers/image does).
    await Promise.all(
      Array.from({ length: s.herdClients }, async () => {
        await getManifest(c, img);
        const r = await curl(img.blobs.map((b) => blobUrl(c, img, b.digest)), { parallel: 6 });
        expectOk(r, undefined, `${c.id} herd blobs`);
        const got = r.transfers.map((t) => t.bytes).sort((a, b) => a - b);
        const want = img.blobs.map((b) => b.size).sort((a, b) => a - b);
        if (got.join() !== want.join()) throw new Error(`${c.id} herd: sizes ${got.join()} ≠ ${want.join()}`);
      }),
    );
    const wall = (now() - t0) / 1000;
    const reqs = await ctx.upstream.settledRequests(300, 10_000);
    const perBlob = img.blobs.map((b) => reqs.filter((q) => q.method === 'GET' && q.path === `/v2/${img.repo}/blobs/${b.digest}`).length);
    const manifestReqs = reqs.filter((q) => q.path.startsWith(`/v2/${img.repo}/manifests/`)).length;
    results.add(S3, `wall time, ${s.herdClients} clients × ${mb} MiB`, 's', 'lower', c.id, wall, { limit: 'direct' });
    results.add(S3, 'upstream GETs per blob (max over blobs)', 'GETs', 'lower', c.id, Math.max(...perBlob), { target: '1 (direct = N clients)' });
    results.add(S3, 'upstream manifest requests (GET+HEAD)', 'requests', 'lower', c.id, manifestReqs);
    results.add(S3, 'bytes read from the upstream / image size', '×', 'lower', c.id, reqs.filter((q) => q.path.startsWith(`/v2/${img.repo}/blobs/`)).reduce((a, q) => a + q.bytes, 0) / img.totalBytes);
    log(`${S3}: ${c.id} ${wall.toFixed(2)} s, upstream GETs per blob ${perBlob.join(',')}, manifest requests ${manifestReqs}`);
  });
}

// ---------------------------------------------------------------------------
// 4: warm manifest requests with wrk

const S4 = '4. Warm manifest requests (wrk)';
/** Unrecorded load before each measured case. */
const WARMUP_S = 2;

async function manifests(ctx: Ctx, run: number): Promise<void> {
  const { s, results } = ctx;
  log(`${S4} run ${run + 1}: ${s.wrkConnections} connections, ${s.wrkSeconds} s per case`);
  const img = await buildAndPush(ctx.upstream, ctx.work.path, `library/mf${run}`, [64 * 1024], ctx.nginx);
  await each(ctx, S4, rotate(byId(ctx, SERVERS), run), async (c) => {
    await getManifest(c, img);
    await getManifest(c, img, img.digest);
    const cases: Array<{ name: string; method: 'GET' | 'HEAD'; ref: string; headers?: string[] }> = [
      { name: 'GET by tag', method: 'GET', ref: img.tag },
      { name: 'GET by digest', method: 'GET', ref: img.digest },
      { name: 'HEAD by tag (hey)', method: 'HEAD', ref: img.tag },
      { name: 'HEAD by digest (hey)', method: 'HEAD', ref: img.digest },
    ];
    if (c.id.startsWith('entrepot')) {
      const token = await request(`${c.url}/v2/auth?service=${encodeURIComponent(c.host)}&scope=repository:${c.repo(img.repo)}:pull`, 'GET');
      const t = (JSON.parse(token.body.toString()) as { token: string }).token;
      cases.push({ name: 'GET by tag, Bearer token', method: 'GET', ref: img.tag, headers: [`Authorization: Bearer ${t}`] });
    }
    for (const k of cases) {
      const load = { method: k.method, headers: [MANIFEST_ACCEPT, ...(k.headers ?? [])], connections: s.wrkConnections, durationS: s.wrkSeconds };
      const measure = (durationS: number) =>
        k.method === 'HEAD' ? hey(manifestUrl(c, img, k.ref), { ...load, durationS }) : wrk(manifestUrl(c, img, k.ref), { ...load, durationS, scratchDir: ctx.work.path });
      // Every contender gets the same unrecorded warm-up (connections, JIT, caches), as a server in service is warm.
      await measure(WARMUP_S);
      const r = await measure(s.wrkSeconds);
      if (r.errors > 0 || r.socketErrors > 0) ctx.results.note(S4, `${LABELS[c.id]} ${k.name}: ${r.errors} non-2xx responses, ${r.socketErrors} socket errors of ${r.requests}`);
      results.add(S4, `${k.name}: requests/s`, 'req/s', 'higher', c.id, r.rps, { limit: 'nginx', target: '≥ Dist' });
      results.add(S4, `${k.name}: p50`, 'ms', 'lower', c.id, r.p50, { limit: 'nginx' });
      results.add(S4, `${k.name}: p99`, 'ms', 'lower', c.id, r.p99, { limit: 'nginx', target: '< 20 ms' });
      log(`${S4}: ${c.id} ${k.name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms`);
    }
  });
}

// ---------------------------------------------------------------------------
// 5: memory under 50 concurrent pulls of one large blob

const S5 = '5. Memory: concurrent pulls of one large blob';

async function memory(ctx: Ctx, run: number): Promise<void> {
  const { s, results } = ctx;
  const mb = s.memBlob / MiB;
  log(`${S5} run ${run + 1}: ${s.memClients} × ${mb} MiB`);
  const img = await buildAndPush(ctx.upstream, ctx.work.path, `library/mem${run}`, [s.memBlob]);
  await each(ctx, S5, rotate(byId(ctx, PULLERS), run), async (c) => {
    const pid = c.pid();
    if (!pid) throw new Error('no server process id');
    await getManifest(c, img);
    const before = readMemory(pid)?.rss ?? NaN;
    const beforeParts = await memoryParts(c, pid);
    const urls = Array.from({ length: s.memClients }, () => blobUrl(c, img, img.largest.digest));
    const phase = async (name: string): Promise<void> => {
      const hwmReset = resetPeak(pid);
      const sampler = new RssSampler(pid, 50);
      const r = await curl(urls, { parallel: s.memClients, timeoutMs: 1_800_000 });
      const peak = sampler.stop();
      expectOk(r, urls.map(() => img.largest.size), `${c.id} ${name} blob`);
      const bytes = r.transfers.reduce((a, t) => a + t.bytes, 0);
      results.add(S5, `peak RSS, ${s.memClients} ${name} pulls × ${mb} MiB`, 'MB', 'lower', c.id, peak / 1e6, { target: '< 300 MB' });
      results.add(S5, `aggregate throughput, ${name}`, 'MB/s', 'higher', c.id, bytes / 1e6 / (Math.max(...r.transfers.map((t) => t.total)) || 1));
      if (!hwmReset) ctx.results.note(S5, `could not reset VmHWM of ${c.id}; peak is sampled only`);
      log(`${S5}: ${c.id} ${name}: peak RSS ${(peak / 1e6).toFixed(0)} MB`);
    };
    if (c.isCache) await phase('cold');
    await fillsStored(c);
    // What the cold phase left (buffers awaiting collection, pages the C heap keeps until the idle trim) is not the warm phase's.
    if (c.isCache) await sleep(s.idleWaitMs);
    await phase('warm');
    await sleep(s.idleWaitMs);
    const idle = readMemory(pid)?.rss ?? NaN;
    const idleParts = await memoryParts(c, pid);
    results.add(S5, 'RSS before the pulls', 'MB', 'lower', c.id, before / 1e6);
    results.add(S5, `idle RSS ${s.idleWaitMs / 1000} s after`, 'MB', 'lower', c.id, idle / 1e6);
    for (const [part, value] of Object.entries(beforeParts)) results.add(S5, `before: ${part}`, 'MB', 'lower', c.id, value / 1e6);
    for (const [part, value] of Object.entries(idleParts)) results.add(S5, `${s.idleWaitMs / 1000} s after: ${part}`, 'MB', 'lower', c.id, value / 1e6);
  });
}

/**
 * Where a server's resident memory is: glibc's main arena, other anonymous
 * memory and files (from smaps), and for Entrepot V8's heap and the memory
 * outside it that V8 knows of (buffers), from its process metrics.
 */
async function memoryParts(c: Contender, pid: number): Promise<Record<string, number>> {
  const parts: Record<string, number> = {};
  const resident = residentByKind(pid);
  if (resident) {
    parts['malloc main arena ([heap])'] = resident.brkHeap;
    parts['other anonymous'] = resident.anonymous;
  }
  if (c.id.startsWith('entrepot')) {
    [parts['V8 heap (total)'], parts['V8 external (buffers)']] = await metricSamples(c, ['entrepot_nodejs_heap_size_total_bytes', 'entrepot_nodejs_external_memory_bytes']);
  }
  return parts;
}

// ---------------------------------------------------------------------------
// 6: growth

const S6 = '6. Growth: many cached tags';

async function growth(ctx: Ctx): Promise<void> {
  const { s, results } = ctx;
  const total = s.growthRepos * s.growthTagsPerRepo;
  log(`${S6}: populating the upstream with ${total} tags in ${s.growthRepos} repositories`);
  const t0 = now();
  const tags = await populateUpstream(ctx.upstream, s.growthRepos, s.growthTagsPerRepo);
  ctx.results.note(S6, `upstream populated with ${tags.length} manifests in ${((now() - t0) / 1000).toFixed(1)} s (registry API, 16 in flight)`);
  await each(ctx, S6, byId(ctx, CACHES), async (c) => {
    const repoPath = (r: string): string => (c.id.startsWith('entrepot') ? `${GROWTH_ORG}/${r}` : c.repo(r));
    const pid = c.pid();
    const rssBefore = pid ? (readMemory(pid)?.rss ?? NaN) : NaN;
    if (s.growthQuota && c.id.startsWith('entrepot')) await setGrowthQuota(c as EntrepotContender, 2 ** 40);
    const t1 = now();
    await pullAll(c.url, repoPath, tags);
    const fillS = (now() - t1) / 1000;
    results.add(S6, `cache ${total} tags (GET each by tag, 16 in flight)`, 'tags/s', 'higher', c.id, tags.length / fillS);
    log(`${S6}: ${c.id} cached ${tags.length} tags in ${fillS.toFixed(1)} s`);
    const pathsFile = ctx.work.join(`paths-${c.id}.txt`);
    writeFileSync(pathsFile, tags.map((t) => `/v2/${repoPath(t.repo)}/manifests/${t.tag}`).join('\n') + '\n');
    for (let r = 0; r < s.runs; r++) {
      const w = await wrk(`${c.url}/`, {
        method: 'GET',
        headers: [MANIFEST_ACCEPT],
        connections: s.wrkConnections,
        durationS: s.wrkSeconds,
        pathsFile,
        scratchDir: ctx.work.path,
      });
      if (w.errors > 0 || w.socketErrors > 0) ctx.results.note(S6, `${LABELS[c.id]}: ${w.errors} non-2xx responses, ${w.socketErrors} socket errors of ${w.requests}`);
      results.add(S6, `GET random tag of ${total}: requests/s`, 'req/s', 'higher', c.id, w.rps);
      results.add(S6, `GET random tag of ${total}: p50`, 'ms', 'lower', c.id, w.p50);
      results.add(S6, `GET random tag of ${total}: p99`, 'ms', 'lower', c.id, w.p99, { target: '≤ 2× scenario 4' });
      log(`${S6}: ${c.id} random tag: ${w.rps.toFixed(0)} req/s, p50 ${w.p50} ms, p99 ${w.p99} ms`);
    }
    const base = ctx.results.metrics.find((m) => m.scenario === S4 && m.name === 'GET by tag: p99')?.values[c.id];
    const base50 = ctx.results.metrics.find((m) => m.scenario === S4 && m.name === 'GET by tag: p50')?.values[c.id];
    const mine = ctx.results.metrics.find((m) => m.scenario === S6 && m.name.endsWith(': p99'))?.values[c.id];
    const mine50 = ctx.results.metrics.find((m) => m.scenario === S6 && m.name.endsWith(': p50'))?.values[c.id];
    if (base && mine) results.add(S6, 'p99 latency vs one hot tag (scenario 4)', '×', 'lower', c.id, median(mine) / median(base), { target: '≤ 2' });
    if (base50 && mine50) results.add(S6, 'p50 latency vs one hot tag (scenario 4)', '×', 'lower', c.id, median(mine50) / median(base50), { target: '≤ 2' });
    const rssAfter = pid ? (readMemory(pid)?.rss ?? NaN) : NaN;
    results.add(S6, 'RSS before caching the tags', 'MB', 'lower', c.id, rssBefore / 1e6);
    results.add(S6, `RSS with ${total} tags cached, after the load`, 'MB', 'lower', c.id, rssAfter / 1e6);
    if (c.id.startsWith('entrepot')) await eviction(ctx, c as EntrepotContender);
  });
}

/** Creates the growth organization's quota, or lowers the one `--growth-quota` created; returns once the eviction it starts is done. */
async function setGrowthQuota(c: EntrepotContender, limit: number): Promise<void> {
  const auth = basic(ADMIN.user, ADMIN.password);
  const existing = (await c.api('GET', `/organization/${GROWTH_ORG}/quota`)).body as Array<{ id: string }>;
  const path = `${c.url}/api/v1/organization/${GROWTH_ORG}/quota${existing.length > 0 ? `/${existing[0].id}` : ''}`;
  const res = await request(path, existing.length > 0 ? 'PUT' : 'POST', { authorization: auth, 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ limit_bytes: limit, eviction_policy: 'lru' })), 3_600_000);
  if (res.status !== 200 && res.status !== 201) throw new Error(`quota: HTTP ${res.status} ${res.body.toString().slice(0, 200)}`);
}

async function eviction(ctx: Ctx, c: EntrepotContender): Promise<void> {
  const usageOf = async (): Promise<number> => {
    const org = await c.api('GET', `/organization/${GROWTH_ORG}`);
    const report = (org.body as { quota_report?: { quota_bytes: number } }).quota_report;
    if (!report) throw new Error(`no quota_report: ${JSON.stringify(org.body).slice(0, 200)}`);
    return report.quota_bytes;
  };
  const usage = await usageOf();
  const limit = Math.floor(usage * 0.9);
  log(`${S6}: ${c.id} eviction pass: usage ${usage} B → quota ${limit} B (lru)`);
  const t0 = now();
  await setGrowthQuota(c, limit);
  // A lowered quota is enforced by a background job, which sets the size gauge when it ends. Waiting on that
  // gauge rather than asking for the usage over and over keeps the timing free of the waiting: each usage
  // answer measures the whole organization, work the pass would compete with.
  const reported = async (): Promise<number> => (await metricSamples(c, [`entrepot_cache_size_bytes{org="${GROWTH_ORG}"}`]))[0];
  while (!((await reported()) <= limit) && now() - t0 < 600_000) await sleep(50);
  let after = await usageOf();
  while (after > limit && now() - t0 < 600_000) {
    await sleep(50);
    after = await usageOf();
  }
  const secs = (now() - t0) / 1000;
  // Audit records are written asynchronously; count them once they stop changing.
  let evicted = -1;
  let stable = 0;
  for (let i = 0; i < 60 && stable < 3; i++) {
    let count = 0;
    let next: string | undefined;
    do {
      const page = await c.api('GET', `/organization/${GROWTH_ORG}/logs?kind=evict_cache&limit=1000${next ? `&next_page=${encodeURIComponent(next)}` : ''}`);
      const body = page.body as { logs?: unknown[]; next_page?: string };
      if (process.env.BENCH_DEBUG) log(`logs page: ${page.status} ${JSON.stringify(body).slice(0, 1500)}`);
      count += body.logs?.length ?? 0;
      next = body.next_page;
    } while (next);
    stable = count === evicted ? stable + 1 : 0;
    evicted = count;
    await sleep(1000);
  }
  ctx.results.add(S6, 'eviction pass to 90 % of usage (quota change → usage within it)', 's', 'lower', c.id, secs);
  ctx.results.add(S6, 'tags evicted in that pass', 'tags', 'info', c.id, evicted);
  ctx.results.add(S6, 'evictions per second', '1/s', 'higher', c.id, evicted / secs);
  ctx.results.note(S6, `${LABELS[c.id]}: usage ${usage} B → ${after} B under a ${limit} B quota`);
  log(`${S6}: ${c.id} eviction pass ${secs.toFixed(2)} s, ${evicted} tags evicted`);
}

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// 7: the same pulls with Clair scanning on beside off

const S7 = '7. Security scanning on beside off';

/**
 * Cold pull, warm manifest GETs and warm blob GETs of Entrepot with scanning
 * off and on. The cold pull queues a scan that Clair runs (fetching every
 * layer back from Entrepot) while the pull goes on; warm requests never
 * involve the scanner.
 */
async function scannerBeside(ctx: Ctx, run: number): Promise<void> {
  const { s, results } = ctx;
  const list = rotate(byId(ctx, ['entrepot', 'entrepot-scanner']), run);
  if (list.length < 2) throw new Error('scenario 7 needs both entrepot and entrepot-scanner (--scanner)');
  const mb = s.coldLayers.reduce((a, b) => a + b, 0) / MiB;
  const img = await buildAndPush(ctx.upstream, ctx.work.path, `library/scan${run}`, s.coldLayers);
  await each(ctx, S7, list, async (c) => {
    await waitForQuietMachine();
    results.add(S7, `cold skopeo pull ${mb} MiB, ${s.coldLayers.length} layers`, 's', 'lower', c.id, await skopeoPull(ctx, c, img));
    await fillsStored(c);
    const load = { method: 'GET' as const, headers: [MANIFEST_ACCEPT], connections: s.wrkConnections, durationS: s.wrkSeconds, scratchDir: ctx.work.path };
    await wrk(manifestUrl(c, img), { ...load, durationS: WARMUP_S });
    const r = await wrk(manifestUrl(c, img), load);
    results.add(S7, 'warm manifest GET by tag: requests/s', 'req/s', 'higher', c.id, r.rps);
    results.add(S7, 'warm manifest GET by tag: p99', 'ms', 'lower', c.id, r.p99);
    const one = await curl([blobUrl(c, img, img.largest.digest)]);
    expectOk(one, [img.largest.size], `${c.id} warm blob`);
    results.add(S7, `warm blob GET, 1 stream, ${img.largest.size / MiB | 0} MiB`, 'MB/s', 'higher', c.id, one.transfers[0].bytes / 1e6 / one.transfers[0].total);
    const urls = Array.from({ length: 8 }, () => blobUrl(c, img, img.largest.digest));
    const par = await curl(urls, { parallel: 8 });
    expectOk(par, urls.map(() => img.largest.size), `${c.id} warm parallel blobs`);
    const bytes = par.transfers.reduce((a, t) => a + t.bytes, 0);
    results.add(S7, 'warm blob GET, 8 parallel streams', 'MB/s', 'higher', c.id, bytes / 1e6 / Math.max(...par.transfers.map((t) => t.total)));
    log(`${S7}: ${c.id} manifest ${r.rps.toFixed(0)} req/s, p99 ${r.p99} ms`);
  });
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const s = opts.sizes;
  // Scenarios 8 and 9 start their own contenders: the shared ones only when another scenario runs.
  const sharedNeeded = !opts.only || [...opts.only].some((k) => k !== '8' && k !== '9');
  const want = (id: ContenderId): boolean => sharedNeeded && (!opts.contenders || opts.contenders.has(id));
  const facts = machineFacts(opts.baseline);
  log(`${opts.quick ? 'quick' : 'full'} run: ${JSON.stringify(s)}`);
  const results = new Results();
  const work = await TempDir.create('entrepot-bench-work-');
  const started: Contender[] = [];
  let upstream: UpstreamRegistry | undefined;
  let nginx: NginxStatic | undefined;
  let clair: ClairServer | undefined;
  const t0 = now();
  const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
  /** Writes what has been measured so far (after every scenario, so an interrupted run keeps its numbers). */
  const writeResults = (): { md: string; path: string } => {
    const elapsed = (now() - t0) / 1000;
    const mode = opts.quick ? 'quick' : 'full';
    const header = [
      `## Results (${mode} run, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${(elapsed / 60).toFixed(1)} min)`,
      '',
      `Runs per scenario: ${s.runs} (medians). Sizes: cold/herd image ${s.coldLayers.map((b) => b / MiB).join('+')} MiB, TTFB layer ${s.ttfbLayer / MiB} MiB, herd ${s.herdClients} clients, memory ${s.memClients} × ${s.memBlob / MiB} MiB, wrk ${s.wrkConnections} connections × ${s.wrkSeconds} s, growth ${s.growthRepos} repositories × ${s.growthTagsPerRepo} tags. Arguments: \`${process.argv.slice(2).join(' ')}\`.`,
      '',
      ...Object.entries(facts).map(([k, v]) => `- ${k}: ${v}`),
      '',
    ].join('\n');
    const md = `${header}\n${results.markdown()}`;
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${mode}-${stamp}`);
    writeFileSync(`${path}.md`, md + '\n');
    writeFileSync(`${path}.json`, JSON.stringify({ facts, sizes: s, argv: process.argv.slice(2), elapsedS: elapsed, ...(results.toJSON() as object) }, null, 2) + '\n');
    return { md, path };
  };
  try {
    upstream = await UpstreamRegistry.start();
    if (want('direct')) started.push(directContender(upstream));
    if (want('nginx')) {
      nginx = await NginxStatic.start();
      started.push(nginx);
    }
    if (!opts.only || opts.only.has('11')) {
      if (want('node-relay')) started.push(await startNodeRelay(upstream));
      // The partial relays only when asked for: they show where one cold stream's time goes.
      for (const id of ['node-relay-hash', 'node-relay-bare'] as const) if (opts.contenders?.has(id)) started.push(await startNodeRelay(upstream, id));
    }
    if (want('distribution')) started.push(await startDistributionProxy(upstream));
    if (want('distribution-s3')) started.push(await startDistributionS3Proxy(upstream, { tls: opts.s3Tls }));
    if (want('entrepot')) started.push(await startEntrepot({ repoRoot: REPO_ROOT, upstreamUrl: upstream.url, cpuProfDir: opts.cpuProfDir }));
    if (opts.scanner && want('entrepot-scanner')) {
      clair = await ClairServer.start();
      started.push(await startEntrepot({ repoRoot: REPO_ROOT, upstreamUrl: upstream.url, scanner: { url: clair.url, psk: clair.psk } }));
    }
    if (opts.baseline && want('entrepot-baseline')) started.push(await startEntrepot({ repoRoot: opts.baseline, baseline: true, upstreamUrl: upstream.url }));
    const scaleOuts: Array<{ id: ContenderId; repoRoot: string }> = [
      { id: 'entrepot-scaleout', repoRoot: REPO_ROOT },
      ...(opts.baseline ? [{ id: 'entrepot-scaleout-baseline' as const, repoRoot: opts.baseline }] : []),
    ];
    for (const { id, repoRoot } of scaleOuts) {
      if (!want(id) || !opts.scaleOut) continue;
      try {
        started.push(await startEntrepot({ repoRoot, baseline: repoRoot !== REPO_ROOT, upstreamUrl: upstream.url, scaleOut: true, s3Tls: opts.s3Tls, cpuProfDir: opts.cpuProfDir }));
      } catch (err) {
        const msg = `${LABELS[id]} did not start: ${(err as Error).message.split('\n').slice(0, 4).join(' ')}`;
        log(msg);
        results.note('Setup', msg);
      }
    }
    log(`contenders: ${started.map((c) => `${c.id}=${c.url}`).join(' ')}`);
    const ctx: Ctx = { opts, s, work, upstream, nginx, all: started, results };
    const runScenario = async (keys: string[], name: string, fn: () => Promise<void>): Promise<void> => {
      if (opts.only && !keys.some((k) => opts.only?.has(k))) return;
      try {
        await fn();
      } catch (err) {
        log(`${name} failed: ${(err as Error).stack ?? String(err)}`);
        results.note(name, `scenario failed: ${(err as Error).message.split('\n')[0]}`);
      }
      writeResults();
    };
    for (let r = 0; r < s.runs; r++) {
      await runScenario(['1', '2'], S1, () => coldAndWarm(ctx, r));
      await runScenario(['3'], S3, () => herd(ctx, r));
      await runScenario(['4'], S4, () => manifests(ctx, r));
      await runScenario(['5'], S5, () => memory(ctx, r));
      await runScenario(['11'], S11, () => oneStream(ctx, r));
      if (opts.scanner) await runScenario(['7'], S7, () => scannerBeside(ctx, r));
    }
    await runScenario(['6'], S6, () => growth(ctx));
    // Their own contender processes, each fetching through a throttling relay.
    const lazyIds: ContenderId[] = ['direct', 'distribution', 'entrepot', ...(opts.baseline ? (['entrepot-baseline'] as const) : [])];
    const lazyContenders = lazyIds.filter((id) => !opts.contenders || opts.contenders.has(id));
    for (let r = 0; r < s.runs; r++) {
      await runScenario(['8', '9'], 'Lazy pulling', () =>
        lazyScenarios({ upstream: ctx.upstream, results, repoRoot: REPO_ROOT, baselineRoot: opts.baseline, layerBytes: s.lazyLayer, rate: s.lazyMbps * 1e6, contenders: lazyContenders }, (key) => !opts.only || opts.only.has(key)),
      );
    }
    if (opts.scaleOut) {
      await runScenario(['10'], S10, async () => {
        const layer = opts.quick ? 32 * MiB : 200 * MiB;
        results.table(S10, await scaleOutTable(ctx.upstream, work.path, { layer, herdClients: s.herdClients, wrkSeconds: s.wrkSeconds, wrkConnections: 8 }));
      });
    }
  } finally {
    log('stopping servers');
    for (const c of started.reverse()) await c.stop().catch((err: unknown) => log(`stopping ${c.id}: ${String(err)}`));
    if (upstream) await upstream.stop();
    if (clair) await clair.stop();
    await work.remove();
  }
  const written = writeResults();
  process.stdout.write(written.md + '\n');
  log(`results written to ${written.path}.{md,json}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
