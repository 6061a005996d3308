/**
 * R-OFFLINE's deadline: with the production-like header timeout, a black-holed
 * revalidation must not hold a pull that cached content can answer.
 */
import { sleep } from '../../../../testing/tools';
import { registryGet, startFaultFixture, type FaultFixture } from './fault-fixture';

describe('revalidation deadline', () => {
  let ff: FaultFixture;

  beforeAll(async () => {
    ff = await startFaultFixture({ headers_timeout_ms: 20_000, breaker_failures: 50, revalidation_deadline_ms: 1000 });
  });

  afterAll(() => ff.stop());

  it('serves a cached tag stale within the deadline while the upstream black-holes the revalidation', async () => {
    const proxy = await ff.cacheOrg('deadline', { expiration_s: 1, stale_if_error_s: 3600 });
    const image = await ff.pushUpstream('library/deadline', 'v1', [100_000]);
    const warm = await registryGet(ff.fx, 'deadline/library/deadline/manifests/v1');
    expect(warm.digest).toBe(image.digest);
    await sleep(1100);
    await proxy.set({ kind: 'blackhole' });
    const stale = await registryGet(ff.fx, 'deadline/library/deadline/manifests/v1');
    expect(stale.status).toBe(200);
    expect(stale.digest).toBe(image.digest);
    // Well under the 20 s header timeout: the 1 s deadline plus overhead.
    expect(stale.elapsedMs).toBeLessThan(5000);
    await proxy.set({ kind: 'pass' });
  });
});
