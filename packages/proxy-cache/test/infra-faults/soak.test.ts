/**
 * A bounded soak (SPEC §6): 20 clients pull through Entrepot (the real
 * `main.js` in a child process) for ENTREPOT_SOAK_SECONDS (default 120):
 * some images again and again, and new images pushed to the upstream while
 * the soak runs, which several clients then pull cold at once. A fault proxy
 * between Entrepot and the upstream injects a fault for five seconds in every
 * period (resets mid-blob, 503, a black hole, a trickle, in turn; the period
 * is a minute, shortened so that a short run still sees each kind once).
 *
 * Asserted: no corrupt body ever; no 5xx (nor cut body) on content already
 * cached; every pull that ran wholly outside fault windows succeeded; what is
 * stored re-hashes; resident memory does not grow grossly (final RSS below the
 * RSS after warm-up + 150 MB). The RSS slope is printed for the report.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knex from 'knex';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { freePort, sleep } from '../../../../testing/tools';
import { FaultProxy, type FaultMode } from '../faults/fault-proxy';
import { EntrepotProcess } from './entrepot-process';
import {
  KiB,
  MiB,
  checkDbReferences,
  checkFsBlobStore,
  pullImage,
  pushRandomImage,
  report,
  runClients,
  type PushedImage,
  type TimedPull,
  waitUntil,
} from './infra-fixture';

const ORG = 'hub';
const SECONDS = Number(process.env.ENTREPOT_SOAK_SECONDS ?? 120);
const CLIENTS = 20;
/** A fault every minute, or four in a shorter run. */
const PERIOD_S = Math.max(15, Math.min(60, Math.floor(SECONDS / 4)));
const FAULT_S = 5;
const FAULTS: Array<{ name: string; mode: FaultMode }> = [
  { name: 'reset mid-blob', mode: { kind: 'reset', atByte: 100 * KiB } },
  { name: '503', mode: { kind: 'status', status: 503 } },
  { name: 'black hole', mode: { kind: 'blackhole' } },
  { name: 'trickle', mode: { kind: 'trickle', bytesPerTick: 8 * KiB, tickMs: 50 } },
];

interface Window {
  name: string;
  start: number;
  end: number;
}

/** Entrepot's `entrepot_cache_fills_in_flight` (NaN when the metric is missing). */
async function fillsInFlight(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('entrepot_cache_fills_in_flight '));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Least-squares slope of y over x. */
function slope(points: Array<{ x: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const num = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

describe(`soak: ${CLIENTS} clients for ${SECONDS} s with a fault every ${PERIOD_S} s`, () => {
  let upstream: UpstreamRegistry;
  let proxy: FaultProxy;
  let entrepot: EntrepotProcess;
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'entrepot-soak-'));
    upstream = await UpstreamRegistry.start({ auth: { mode: 'anonymous' } });
    proxy = await FaultProxy.start(upstream.url);
    entrepot = await EntrepotProcess.start({
      dataDir: join(work, 'data'),
      port: await freePort(),
      configPath: join(work, 'entrepot.yml'),
      env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' },
      config: {
        log_level: 'error',
        proxy_cache: {
          // Shorter than the five-second faults, generous for a loaded machine outside them.
          connect_timeout_ms: 2000,
          headers_timeout_ms: 3000,
          idle_timeout_ms: 3000,
          breaker_failures: 3,
          breaker_cooldown_ms: 2000,
          revalidation_deadline_ms: 2000,
          // Cached tags go stale during the run, so revalidation meets the faults too.
          orgs: [{ name: ORG, upstream_registry: 'docker.io', upstream_endpoint: proxy.url, insecure: true, is_public: true, expiration_s: 10 }],
        },
      },
    });
  }, 120_000);

  afterAll(async () => {
    await entrepot?.kill9();
    await proxy?.stop();
    await upstream?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('serves nothing corrupt, no 5xx on cached content, and keeps memory flat', async () => {
    // Images pulled again and again.
    const hot: PushedImage[] = [];
    for (let i = 0; i < 6; i++) hot.push(await pushRandomImage(upstream.url, `library/hot${i}`, 'v1', [(i + 1) * 256 * KiB, 64 * KiB]));
    // New images appear upstream while the soak runs.
    const fresh: PushedImage[] = [];
    const startedAt = Date.now();
    const endAt = startedAt + SECONDS * 1000;
    let stop = false;
    const pusher = (async () => {
      for (let i = 0; !stop && i < 10_000; i++) {
        fresh.push(await pushRandomImage(upstream.url, `library/new${i}`, 'v1', [32 * KiB * (1 + (i % 16)), 16 * KiB, 128 * KiB]));
        await sleep(2000);
      }
    })();

    // The fault schedule: one fault of FAULT_S seconds early in every period (after the hot images are cached).
    const windows: Window[] = [];
    const faults = (async () => {
      for (let k = 0; !stop && k < 1000; k++) {
        const faultStart = startedAt + k * PERIOD_S * 1000 + Math.min(10, PERIOD_S / 3) * 1000;
        if (faultStart + FAULT_S * 1000 > endAt - 5000) break;
        await sleep(Math.max(0, faultStart - Date.now()));
        const fault = FAULTS[k % FAULTS.length];
        const window: Window = { name: fault.name, start: Date.now(), end: Number.POSITIVE_INFINITY };
        windows.push(window);
        await proxy.set(fault.mode);
        await sleep(FAULT_S * 1000);
        await proxy.set({ kind: 'pass' });
        window.end = Date.now();
      }
    })();

    // Memory of the Entrepot process, every two seconds.
    const rss: Array<{ t: number; bytes: number }> = [];
    const sampler = (async () => {
      while (!stop) {
        rss.push({ t: Date.now(), bytes: entrepot.rssBytes() });
        await sleep(2000);
      }
    })();

    // Images known to be wholly cached (a full pull succeeded), when they became so.
    const cachedSince = new Map<string, number>();
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const pulls = await runClients(
      CLIENTS,
      () => {
        if (fresh.length > 0 && random() < 0.35) return fresh[Math.max(0, fresh.length - 1 - Math.floor(random() * 4))];
        return hot[Math.floor(random() * hot.length)];
      },
      async (image) => {
        const result = await pullImage(entrepot.url, image, { name: `${ORG}/${image.repo}`, timeoutMs: 60_000 });
        if (result.ok && !cachedSince.has(image.repo)) cachedSince.set(image.repo, Date.now());
        return result;
      },
      () => Date.now() >= endAt,
    );
    stop = true;
    await Promise.all([pusher, faults, sampler]);
    await proxy.set({ kind: 'pass' });

    // Classify every pull.
    const inWindow = (p: TimedPull): boolean => windows.some((w) => p.startedAt < w.end + 5000 && p.endedAt > w.start);
    const wasCached = (p: TimedPull): boolean => (cachedSince.get(p.result.image.repo) ?? Number.POSITIVE_INFINITY) < p.startedAt;
    const corrupt = pulls.flatMap((p) => p.result.corrupt.map((c) => c.url));
    const badOnCached = pulls
      .filter(wasCached)
      .flatMap((p) => p.result.responses.filter((r) => r.status >= 500 || r.verdict === 'cut' || r.verdict === 'no-response').map((r) => `${r.status} ${r.verdict} ${r.errorCode ?? r.bodyError ?? ''} ${r.url}`));
    const badOutsideFaults = pulls.filter((p) => !inWindow(p) && !p.result.ok).map((p) => `${p.result.image.repo}: ${p.result.responses.map((r) => `${r.status} ${r.verdict}`).join(', ')}`);
    const statuses: Record<string, number> = {};
    for (const p of pulls) for (const r of p.result.responses) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const cold = pulls.filter((p) => !wasCached(p));

    // Memory: after a warm-up of a fifth of the run (at least 20 s).
    const warmEnd = startedAt + Math.max(20_000, (SECONDS * 1000) / 5);
    const steady = rss.filter((s) => s.t >= warmEnd);
    const initial = steady[0]?.bytes ?? rss[0].bytes;
    const final = rss[rss.length - 1].bytes;
    const peak = Math.max(...rss.map((s) => s.bytes));
    const mbPerMin = slope(steady.map((s) => ({ x: (s.t - startedAt) / 60_000, y: s.bytes / MiB })));
    report(
      'soak',
      `${SECONDS} s, ${CLIENTS} clients: ${pulls.length} pulls (${pulls.filter((p) => p.result.ok).length} ok, ${cold.length} of not-yet-cached images), ` +
        `${fresh.length} images pushed during the run; statuses ${JSON.stringify(statuses)}; ` +
        `faults ${JSON.stringify(windows.map((w) => ({ name: w.name, at: Math.round((w.start - startedAt) / 1000) })))}; ` +
        `RSS after warm-up ${(initial / MiB).toFixed(1)} MB, final ${(final / MiB).toFixed(1)} MB, peak ${(peak / MiB).toFixed(1)} MB, ` +
        `slope ${mbPerMin.toFixed(2)} MB/min over ${steady.length} samples`,
    );

    expect(corrupt).toEqual([]);
    expect(badOnCached.slice(0, 20)).toEqual([]);
    expect(badOutsideFaults.slice(0, 20)).toEqual([]);
    expect(windows.length).toBeGreaterThanOrEqual(Math.min(FAULTS.length, Math.floor(SECONDS / PERIOD_S)));
    expect(cold.filter((p) => p.result.ok).length).toBeGreaterThan(0);
    expect(final).toBeLessThan(initial + 150 * MiB);

    // After the soak every image pulls whole, and what is stored re-hashes.
    const images = [...hot, ...fresh];
    const after = await Promise.all(images.map((image) => pullImage(entrepot.url, image, { name: `${ORG}/${image.repo}`, timeoutMs: 60_000 })));
    expect(after.filter((r) => !r.ok).map((r) => r.image.repo)).toEqual([]);
    // A fill moves its file into the store and records it just after its client has the last byte.
    expect(await waitUntil(async () => (await fillsInFlight(entrepot.url)) === 0, 30_000)).toBe(true);
    const fs = await checkFsBlobStore(entrepot.dataDir);
    expect(fs.mismatched).toEqual([]);
    const stored = new Set(fs.stored);
    const db = knex({ client: 'better-sqlite3', connection: { filename: join(entrepot.dataDir, 'entrepot.db'), options: { readonly: true } }, useNullAsDefault: true });
    try {
      const refs = await checkDbReferences(db, async (d) => stored.has(d));
      expect(refs.manifestsWithoutBytes).toEqual([]);
      expect(refs.blobsWithoutBytes).toEqual([]);
    } finally {
      await db.destroy();
    }
  }, SECONDS * 1000 + 300_000);
});
