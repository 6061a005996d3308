/**
 * The OCI distribution-spec conformance suite against Entrepot in its
 * scale-out configuration: MariaDB, BullMQ on Redis, S3 (SeaweedFS).
 * The same run as test/oci/conformance.test.ts, on the other backends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER, type TestInstance } from '../../../../testing/entrepot-instance';
import { fullConformanceEnv, runConformance } from '../../../../testing/oci-conformance';
import { startScaleOutBackends, type ScaleOutBackends } from './scale-out-backends';

describe('OCI distribution-spec conformance (scale-out: MariaDB + BullMQ + S3)', () => {
  let backends: ScaleOutBackends;
  let instance: TestInstance;
  let resultsDir: string;

  beforeAll(async () => {
    backends = await startScaleOutBackends();
    instance = await backends.startReplica();
    resultsDir = mkdtempSync(join(tmpdir(), 'entrepot-conformance-so-'));
    expect((await instance.api('POST', '/organization/', { name: 'conformance' })).status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await backends?.cleanup();
    if (resultsDir) rmSync(resultsDir, { recursive: true, force: true });
  }, 60_000);

  it('passes pull, push, content discovery and content management', async () => {
    const result = await runConformance(fullConformanceEnv(instance.host, ADMIN_USER, ADMIN_PASSWORD), resultsDir);
    process.stdout.write(`OCI conformance (scale-out): ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped\n`);
    expect(result.failures).toEqual([]);
    expect(result.passed).toBeGreaterThan(50);
  }, 600_000);

  it('kept its state in the shared backends', async () => {
    // Organization and repositories in MariaDB; audit entries are written by
    // BullMQ jobs under this run's prefix.
    expect(await backends.countRows('organizations')).toBeGreaterThan(0);
    expect(await backends.countRows('repositories')).toBeGreaterThan(0);
    await instance.entrepot.services.audit.flush();
    await instance.entrepot.services.queue.drain(30_000);
    expect(await backends.countRows('audit_logs')).toBeGreaterThan(0);
    expect((await backends.queueKeys()).length).toBeGreaterThan(0);
  }, 60_000);
});
