/**
 * R-AUDIT with the database failing at one precise moment: just after a cold
 * manifest pull was answered, when the handler looks the new repository up
 * again for its pull statistics. A real server produces this failure only by
 * chance during a database restart (mariadb-restart.test.ts), so the lookup is
 * made to fail here. The client's answer stays complete and correct, and the
 * pull is still audited.
 */
import type { TestInstance } from '../../../../testing/entrepot-instance';
import { startEntrepot } from '../../../../testing/entrepot-instance';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { createPlugin } from '../../src/index';
import { createCacheOrg, pullImage, pushRandomImage, waitUntil } from './infra-fixture';

describe('a database error right after a manifest was answered', () => {
  let upstream: UpstreamRegistry;
  let entrepot: TestInstance;

  beforeAll(async () => {
    upstream = await UpstreamRegistry.start({ auth: { mode: 'anonymous' } });
    entrepot = await startEntrepot({ plugins: [createPlugin], env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' } });
    await createCacheOrg((m, p, b) => entrepot.api(m, p, b), 'hub', upstream.url);
  }, 60_000);

  afterAll(async () => {
    await entrepot?.stop();
    await upstream?.stop();
  });

  it('still records the pull in the audit log and keeps the connection usable', async () => {
    const image = await pushRandomImage(upstream.url, 'library/late', 'v1', [4096]);
    const repositories = entrepot.entrepot.services.repositories;
    const find = repositories.find.bind(repositories);
    let failed = 0;
    // Lookups before the answer work; the manifest handler's own lookup, after the answer, fails.
    repositories.find = async (orgId, name) => {
      const caller = new Error().stack?.split('\n')[2] ?? '';
      if (name === 'library/late' && caller.includes('manifest-handlers')) {
        failed++;
        throw new Error('Connection lost: The server closed the connection.');
      }
      return find(orgId, name);
    };
    try {
      const pulled = await pullImage(entrepot.url, image, { name: 'hub/library/late', auth: entrepot.adminAuth });
      expect(pulled.responses.map((r) => r.verdict)).toEqual(['ok', 'ok', 'ok']);
      expect(failed).toBe(1);
    } finally {
      repositories.find = find;
    }
    await entrepot.entrepot.services.audit.flush();
    await entrepot.entrepot.services.queue.drain(10_000);
    const logged = await waitUntil(async () => {
      const res = await entrepot.api('GET', '/organization/hub/logs?kind=pull_repo');
      const logs = (res.body as { logs: Array<{ repository: string; metadata: { tag?: string } }> }).logs;
      return logs.some((l) => l.repository === 'library/late' && l.metadata.tag === 'v1');
    }, 5000);
    expect(logged).toBe(true);
  });
});
