/**
 * Quay's quota limits on a cache organization: the Reject threshold is the hard
 * limit eviction keeps usage under; crossing a Warning threshold writes one
 * audit entry and counts once in a metric.
 */
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage, skopeoCopyOut, type BuiltImage } from '../../../../testing/oci-images';
import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;
const LIMIT = 40_000_000;
const LAYER = 8_000_000;
/** Reject at 50 %: 20 MB, room for two images of one 8 MB layer, not three. */
const REJECT_PERCENT = 50;
const WARNING_PERCENT = 30;

describe('quota thresholds on a cache organization', () => {
  let fx: CacheFixture;
  const images: Record<string, BuiltImage & { pushed: string }> = {};

  beforeAll(async () => {
    fx = await startCacheFixture({ auth: { mode: 'anonymous' }, entrepot: { overrides: { gc: { grace_seconds: 0, interval_seconds: 3600 } } } });
    for (const name of ['a', 'b', 'c']) {
      const image = await createOciImage(join(fx.work, name), { tag: '1', layerCount: 1, layerSize: LAYER });
      images[name] = { ...image, pushed: await pushImage(image.layoutDir, '1', fx.upstream.ref(`library/${name}`, '1')) };
    }
    await fx.createCacheOrg('qt', { expiration_s: 3600 });
    expect((await fx.entrepot.api('POST', '/organization/qt/quota', { limit_bytes: LIMIT })).status).toBe(201);
    const [quota] = (await fx.entrepot.api('GET', '/organization/qt/quota')).body as Array<{ id: number }>;
    expect((await fx.entrepot.api('POST', `/organization/qt/quota/${quota.id}/limit`, { type: 'Reject', threshold_percent: REJECT_PERCENT })).status).toBe(201);
    expect((await fx.entrepot.api('POST', `/organization/qt/quota/${quota.id}/limit`, { type: 'Warning', threshold_percent: WARNING_PERCENT })).status).toBe(201);
  }, 120_000);

  afterAll(() => fx?.stop());

  async function usage(): Promise<number> {
    const org = await fx.entrepot.entrepot.services.repositories.findOrg('qt');
    return fx.entrepot.entrepot.services.quotas.usage(org!.id);
  }
  const pull = (name: string) => skopeoCopyOut(`${fx.entrepot.host}/qt/library/${name}:1`, join(fx.work, `out-${name}-${Math.random()}`), { creds });

  it('evicts to stay under the Reject threshold, not the whole quota', async () => {
    expect(await pull('a')).toBe(images.a.pushed);
    expect(await pull('b')).toBe(images.b.pushed);
    expect(await pull('c')).toBe(images.c.pushed);
    const used = await usage();
    expect(used).toBeGreaterThan(LAYER);
    expect(used).toBeLessThanOrEqual((LIMIT * REJECT_PERCENT) / 100);
    const logs = await fx.entrepot.api('GET', '/organization/qt/logs?kind=evict_cache');
    expect((logs.body as { logs: unknown[] }).logs.length).toBeGreaterThan(0);
    const metrics = await (await fetch(`${fx.entrepot.url}/metrics`)).text();
    expect(metrics).toContain(`entrepot_cache_quota_bytes{org="qt"} ${(LIMIT * REJECT_PERCENT) / 100}`);
  }, 180_000);

  it('reports the Warning crossing once, in the audit log and a metric', async () => {
    await fx.entrepot.entrepot.services.audit.flush();
    await fx.entrepot.entrepot.services.queue.drain();
    const logs = await fx.entrepot.api('GET', '/organization/qt/logs?kind=quota_warning');
    const warnings = (logs.body as { logs: Array<{ metadata: Record<string, unknown> }> }).logs;
    expect(warnings).toHaveLength(1);
    expect(warnings[0].metadata).toMatchObject({ threshold_percent: WARNING_PERCENT, limit_bytes: LIMIT });
    expect(Number(warnings[0].metadata.usage_bytes)).toBeGreaterThanOrEqual((LIMIT * WARNING_PERCENT) / 100);
    const metrics = await (await fetch(`${fx.entrepot.url}/metrics`)).text();
    expect(metrics).toContain('entrepot_quota_warnings_total{org="qt"} 1');
  });
});
