import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startScaleOutBackends, type ScaleOutBackends } from '../../../registry-core/test/scale-out/scale-out-backends';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { sleep } from '../../../../testing/tools';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { createPlugin } from '../../src/index';
import { jobRuns, lifecycleOverrides, pull, pushTestImage, tagsOf } from './lifecycle-fixture';

const INTERVAL_S = 1;

/**
 * The scheduled jobs on both queue backends: the in-process queue of one
 * embedded instance, and BullMQ shared by two replicas, where every interval's
 * job must run once, not once per replica.
 */
describe.each(['in-process', 'bullmq'] as const)('scheduled lifecycle jobs (%s queue)', (backend) => {
  let upstream: UpstreamRegistry;
  let backends: ScaleOutBackends | null = null;
  let replicas: TestInstance[];
  let work: string;

  beforeAll(async () => {
    upstream = await UpstreamRegistry.start({ auth: { mode: 'anonymous' } });
    work = mkdtempSync(join(tmpdir(), 'entrepot-lifecycle-'));
    const options = (name: string) => ({
      plugins: [createPlugin],
      env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' },
      overrides: { ...lifecycleOverrides(INTERVAL_S), instance_name: name },
    });
    if (backend === 'bullmq') {
      backends = await startScaleOutBackends();
      replicas = [await backends.startReplica(options('replica-a')), await backends.startReplica(options('replica-b'))];
    } else replicas = [await startEntrepot(options('embedded'))];
    const [first] = replicas;
    expect((await first.api('POST', '/organization/', { name: 'rep' })).status).toBe(201);
    const configured = await first.api('POST', '/organization/rep/proxycache', { upstream_registry: 'docker.io', upstream_endpoint: upstream.url, insecure: true, expiration_s: 3600, idle_expiration_s: 2 });
    expect(configured.status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    if (backends) await backends.cleanup();
    else for (const r of replicas ?? []) await r.stop();
    await upstream?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('expires an idle tag once, with one run per interval however many replicas tick', async () => {
    const image = await pushTestImage(upstream, work, 'library/idle', '1');
    const [first, last] = [replicas[0], replicas[replicas.length - 1]];
    const watchFrom = Date.now();
    expect(await pull(first, work, 'rep/library/idle:1')).toBe(image.pushed);
    const deadline = Date.now() + 20_000;
    while ((await tagsOf(last, 'rep/library/idle')).length > 0) {
      if (Date.now() > deadline) throw new Error('the idle tag was not expired in time');
      await sleep(250);
    }
    await sleep(4000);
    const watchedMs = Date.now() - watchFrom;

    const logs = await last.api('GET', '/organization/rep/logs?kind=expire_cache');
    expect((JSON.stringify(logs.body).match(/library\/idle:1/g) ?? []).length).toBe(1);
    const runs = (await jobRuns(last, 'rep', 'cache.expire')).filter((r) => Date.parse(r.started) >= watchFrom - 1000);
    expect(runs.filter((r) => Number(r.summary.tags) === 1)).toHaveLength(1);
    // One run per interval (a run per replica would double this), and never two at once.
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs.length).toBeLessThanOrEqual(Math.ceil(watchedMs / (INTERVAL_S * 1000)) + 1);
    const spans = runs.map((r) => [Date.parse(r.started), Date.parse(r.started) + r.duration_ms]).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
  }, 120_000);
});
