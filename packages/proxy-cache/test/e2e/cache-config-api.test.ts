import { join } from 'node:path';
import { createOciImage, pushImage } from '../../../../testing/oci-images';
import { basicAuth, startEntrepot } from '../../../../testing/entrepot-instance';
import { createPlugin } from '../../src/index';
import { startCacheFixture, type CacheFixture } from './cache-fixture';

describe('proxy cache configuration API', () => {
  let fx: CacheFixture;

  beforeAll(async () => {
    fx = await startCacheFixture();
    await fx.createCacheOrg('cfg', { expiration_s: 600 });
  });

  afterAll(() => fx.stop());

  it('never returns the upstream password and stores it encrypted', async () => {
    const res = await fx.entrepot.api('GET', '/organization/cfg/proxycache');
    expect(res.status).toBe(200);
    const body = res.body as Record<string, unknown>;
    expect(body.upstream_registry).toBe('docker.io');
    expect(body.upstream_registry_username).toBe(fx.upstream.credentials!.username);
    expect(body.upstream_registry_password_set).toBe(true);
    expect(JSON.stringify(body)).not.toContain(fx.upstream.credentials!.password);
    const rows = await fx.entrepot.entrepot.services.db('proxy_cache_configs').select('password_sealed');
    expect(rows).toHaveLength(1);
    expect(String(rows[0].password_sealed)).not.toContain(fx.upstream.credentials!.password);
    expect(String(rows[0].password_sealed)).toMatch(/^v1:/);
  });

  it('validates reachability and credentials', async () => {
    const ok = await fx.entrepot.api('POST', '/organization/cfg/validateproxycache', {
      upstream_registry: 'docker.io',
      upstream_endpoint: fx.upstream.url,
      upstream_registry_username: fx.upstream.credentials!.username,
      upstream_registry_password: fx.upstream.credentials!.password,
    });
    expect(ok.status).toBe(202);
    expect(ok.body).toBe('Valid');
    const wrong = await fx.entrepot.api('POST', '/organization/cfg/validateproxycache', {
      upstream_registry: 'docker.io',
      upstream_endpoint: fx.upstream.url,
      upstream_registry_username: fx.upstream.credentials!.username,
      upstream_registry_password: 'not-the-password',
    });
    expect(wrong.status).toBe(400);
    expect(JSON.stringify(wrong.body)).toMatch(/refused our credentials/);
    expect(JSON.stringify(wrong.body)).not.toContain('not-the-password');
  });

  it.each([
    [{ upstream_registry: 'https://docker.io' }, 'upstream_registry'],
    [{ upstream_registry: 'docker.io', expiration_s: -1 }, 'expiration_s'],
    [{ upstream_registry: 'docker.io', upstream_endpoint: 'ftp://x' }, 'upstream_endpoint'],
    [{ upstream_registry: 'docker.io', upstream_endpoint: 'http://user:pw@example.com' }, 'upstream_endpoint'],
    [{ upstream_registry: 'docker.io', surprise: true }, 'surprise'],
    [{ upstream_registry: 'docker.io', on_upstream_404: 'explode' }, 'on_upstream_404'],
  ])('refuses invalid configuration %j naming the field', async (body, field) => {
    const res = await fx.entrepot.api('POST', '/organization/cfg/proxycache', body);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain(field);
  });

  it('refuses upstreams on internal addresses unless the operator allows them', async () => {
    const strict = await startEntrepot({ plugins: [createPlugin] });
    try {
      expect((await strict.api('POST', '/organization/', { name: 'ssrf' })).status).toBe(201);
      for (const endpoint of ['http://127.0.0.1:9', 'http://169.254.169.254', 'http://10.1.2.3:5000', 'http://[::1]:5000']) {
        const res = await strict.api('POST', '/organization/ssrf/proxycache', { upstream_registry: 'docker.io', upstream_endpoint: endpoint });
        expect(res.status).toBe(400);
        expect(JSON.stringify(res.body)).toMatch(/internal address/);
      }
    } finally {
      await strict.stop();
    }
  });

  it('lets only organization administrators configure a cache', async () => {
    expect((await fx.entrepot.api('POST', '/superuser/users/', { username: 'bob', password: 'bob-password-1' })).status).toBeLessThan(300);
    const bob = basicAuth('bob', 'bob-password-1');
    const res = await fx.entrepot.api('POST', '/organization/cfg/proxycache', { upstream_registry: 'docker.io' }, bob);
    expect([403, 404]).toContain(res.status);
    const anonymous = await fetch(`${fx.entrepot.url}/api/v1/organization/cfg/proxycache`);
    expect(anonymous.status).toBe(401);
  });

  it('audits configuration changes without secrets', async () => {
    await fx.entrepot.entrepot.services.audit.flush();
    await fx.entrepot.entrepot.services.queue.drain();
    const res = await fx.entrepot.api('GET', '/organization/cfg/logs');
    const text = JSON.stringify(res.body);
    expect(text).toContain('create_proxy_cache_config');
    expect(text).not.toContain(fx.upstream.credentials!.password);
  });
});

describe('FEATURE_PROXY_CACHE=false', () => {
  it('sends no request upstream, answers cache endpoints with "disabled", and still serves cached content', async () => {
    const fx = await startCacheFixture({ auth: { mode: 'anonymous' } });
    try {
      const image = await createOciImage(join(fx.work, 'off'), { tag: 't', layerCount: 1 });
      await pushImage(image.layoutDir, 't', fx.upstream.ref('library/cached', 't'));
      await pushImage(image.layoutDir, 't', fx.upstream.ref('library/uncached', 't'));
      await fx.createCacheOrg('off', { expiration_s: 0 });
      const warm = await fetch(`${fx.entrepot.url}/v2/off/library/cached/manifests/t`, { headers: { authorization: fx.entrepot.adminAuth } });
      expect(warm.status).toBe(200);
      const dataDir = fx.entrepot.dataDir;
      await fx.entrepot.entrepot.close();

      const disabled = await startEntrepot({ dataDir, env: { FEATURE_PROXY_CACHE: 'false' }, plugins: [createPlugin] });
      try {
        fx.upstream.resetLog();
        const cold = await fetch(`${disabled.url}/v2/off/library/uncached/manifests/t`, { headers: { authorization: disabled.adminAuth } });
        expect(cold.status).toBe(404);
        const cached = await fetch(`${disabled.url}/v2/off/library/cached/manifests/t`, { headers: { authorization: disabled.adminAuth } });
        expect(cached.status).toBe(200);
        const config = await disabled.api('GET', '/organization/off/proxycache');
        expect(config.status).toBe(404);
        expect(JSON.stringify(config.body)).toMatch(/disabled/);
        const create = await disabled.api('POST', '/organization/off/proxycache', { upstream_registry: 'docker.io' });
        expect(create.status).toBe(404);
        expect(await fx.upstream.settledRequests()).toEqual([]);
      } finally {
        await disabled.stop();
      }
    } finally {
      await fx.upstream.stop();
    }
  });
});
