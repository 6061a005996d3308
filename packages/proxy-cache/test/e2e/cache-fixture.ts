import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlugin } from '../../src/index';
import { startEntrepot, type TestInstance, type TestInstanceOptions } from '../../../../testing/entrepot-instance';
import { UpstreamRegistry, type UpstreamAuth } from '../../../../testing/upstream-registry';
import { startScaleOutBackends, type ScaleOutBackends } from '../../../registry-core/test/scale-out/scale-out-backends';

export interface CacheFixture {
  upstream: UpstreamRegistry;
  entrepot: TestInstance;
  work: string;
  /** Creates a cache organization for the upstream through the API. */
  createCacheOrg(name: string, body?: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

export type Backend = 'embedded' | 'scale-out';

/**
 * A real upstream registry and an Entrepot with the proxy-cache plugin allowed
 * to reach it, on the embedded backends (SQLite, filesystem, in-process queue)
 * or on scale-out ones (MariaDB, S3, BullMQ on Redis).
 */
export async function startCacheFixture(options: { auth?: UpstreamAuth; entrepot?: TestInstanceOptions; backend?: Backend; upstreamTls?: boolean } = {}): Promise<CacheFixture> {
  const upstream = await UpstreamRegistry.start({ auth: options.auth ?? { mode: 'htpasswd' }, tls: options.upstreamTls });
  const settings = {
    env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*', ...options.entrepot?.env },
    overrides: options.entrepot?.overrides,
    plugins: [createPlugin],
  };
  const backends: ScaleOutBackends | null = options.backend === 'scale-out' ? await startScaleOutBackends() : null;
  const entrepot = backends ? await backends.startReplica(settings) : await startEntrepot({ ...options.entrepot, ...settings });
  const work = mkdtempSync(join(tmpdir(), 'entrepot-cache-'));
  return {
    upstream,
    entrepot,
    work,
    async createCacheOrg(name, body = {}) {
      const org = await entrepot.api('POST', '/organization/', { name });
      if (org.status !== 201) throw new Error(`creating org ${name}: ${org.status} ${JSON.stringify(org.body)}`);
      const creds = upstream.credentials;
      const res = await entrepot.api('POST', `/organization/${name}/proxycache`, {
        upstream_registry: 'docker.io',
        upstream_endpoint: upstream.url,
        insecure: true,
        ...(creds ? { upstream_registry_username: creds.username, upstream_registry_password: creds.password } : {}),
        ...body,
      });
      if (res.status !== 201) throw new Error(`configuring cache ${name}: ${res.status} ${JSON.stringify(res.body)}`);
    },
    async stop() {
      if (backends) await backends.cleanup();
      else await entrepot.stop();
      await upstream.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
