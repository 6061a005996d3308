import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER, startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { runConformance } from '../../../../testing/oci-conformance';

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
    const result = await runConformance(
      {
        OCI_REGISTRY: instance.host,
        OCI_REPO1: 'conformance/repo1',
        OCI_REPO2: 'conformance/repo2',
        OCI_USERNAME: ADMIN_USER,
        OCI_PASSWORD: ADMIN_PASSWORD,
        OCI_API_BLOBS_UPLOAD_CANCEL: 'true',
      },
      mkdtempSync(join(tmpdir(), 'entrepot-conformance-')),
    );
    process.stdout.write(`OCI conformance (embedded): ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped\n`);
    expect(result.failures).toEqual([]);
    expect(result.passed).toBeGreaterThan(50);
  }, 600_000);
});
