import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER, startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { fullConformanceEnv, runConformance } from '../../../../testing/oci-conformance';

describe('OCI distribution-spec conformance (embedded backends)', () => {
  let instance: TestInstance;

  beforeAll(async () => {
    instance = await startEntrepot();
    expect((await instance.api('POST', '/organization/', { name: 'conformance' })).status).toBe(201);
  });

  afterAll(async () => {
    await instance.stop();
  });

  it('passes pull, push, content discovery and content management', async () => {
    const result = await runConformance(fullConformanceEnv(instance.host, ADMIN_USER, ADMIN_PASSWORD), mkdtempSync(join(tmpdir(), 'entrepot-conformance-')));
    process.stdout.write(`OCI conformance (embedded): ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped\n`);
    expect(result.failures).toEqual([]);
    expect(result.passed).toBeGreaterThan(50);
  }, 600_000);
});
