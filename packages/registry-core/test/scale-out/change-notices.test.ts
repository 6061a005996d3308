/**
 * Each replica keeps the organizations and repositories that pulls ask for in
 * memory; a change of visibility made through one replica must apply on the
 * others at once. Replica B runs on a frozen clock, so nothing it keeps ever
 * expires: only a change notice from A can make it read the rows again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER, type TestInstance } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage } from '../../../../testing/oci-images';
import { startScaleOutBackends, type ScaleOutBackends } from './scale-out-backends';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Polls `read` until it gives `want`; fails after 10 s with the last value. */
async function eventually<T>(read: () => Promise<T>, want: T): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last = await read();
  while (last !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    last = await read();
  }
  expect(last).toBe(want);
}

describe('changes to organizations and repositories reach every replica (scale-out)', () => {
  let backends: ScaleOutBackends;
  let a: TestInstance;
  let b: TestInstance;
  let work: string;
  const frozen = Date.now();

  beforeAll(async () => {
    backends = await startScaleOutBackends();
    a = await backends.startReplica();
    b = await backends.startReplica({ clock: { now: () => frozen } });
    work = mkdtempSync(join(tmpdir(), 'entrepot-notices-'));
    expect((await a.api('POST', '/organization/', { name: 'open', is_public: true })).status).toBe(201);
    for (const repo of ['app', 'inherits']) {
      const image = await createOciImage(join(work, repo), { tag: 'v1' });
      await pushImage(image.layoutDir, 'v1', `${a.host}/open/${repo}:v1`, { creds });
    }
  }, 120_000);

  afterAll(async () => {
    await backends?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 60_000);

  const anonymousPull = (replica: TestInstance, repo: string) => async () =>
    (await fetch(`${replica.url}/v2/open/${repo}/manifests/v1`, { headers: { accept: OCI_MANIFEST } })).status;

  it('serves a public repository anonymously from both replicas', async () => {
    expect(await anonymousPull(a, 'app')()).toBe(200);
    expect(await anonymousPull(b, 'app')()).toBe(200);
    expect(await anonymousPull(b, 'inherits')()).toBe(200);
  });

  it('refuses anonymous pulls on the other replica once a repository is made private, and serves them again once public', async () => {
    expect((await a.api('POST', '/repository/open/app/changevisibility', { visibility: 'private' })).status).toBe(200);
    await eventually(anonymousPull(b, 'app'), 401);
    expect(await anonymousPull(b, 'inherits')()).toBe(200);
    expect((await a.api('POST', '/repository/open/app/changevisibility', { visibility: 'public' })).status).toBe(200);
    await eventually(anonymousPull(b, 'app'), 200);
  });

  it('applies an organization made private to the repositories that inherit its visibility', async () => {
    expect((await a.api('PUT', '/organization/open', { is_public: false })).status).toBe(200);
    await eventually(anonymousPull(b, 'inherits'), 401);
    // Made public explicitly in the test before: stays public.
    expect(await anonymousPull(b, 'app')()).toBe(200);
    const asAdmin = await fetch(`${b.url}/v2/open/inherits/manifests/v1`, { headers: { accept: OCI_MANIFEST, authorization: b.adminAuth } });
    expect(asAdmin.status).toBe(200);
  });
});
