import { startCacheFixture, type CacheFixture } from './cache-fixture';

describe('loop guard', () => {
  let fx: CacheFixture;

  beforeAll(async () => {
    fx = await startCacheFixture({ auth: { mode: 'anonymous' } });
  });

  afterAll(() => fx.stop());

  it('refuses to use itself as its own upstream', async () => {
    await fx.createCacheOrg('selfish', { upstream_endpoint: fx.entrepot.url, upstream_registry: 'registry.loop' });
    const started = Date.now();
    const res = await fetch(`${fx.entrepot.url}/v2/selfish/app/manifests/1`, { headers: { authorization: fx.entrepot.adminAuth } });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0].message).toMatch(/this registry itself|ourselves/);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res.headers.get('via')).toMatch(/^1\.1 entrepot-/);
  });
});
