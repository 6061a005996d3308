import { join } from 'node:path';
import { TokenService } from '../../../registry-core/src/auth/token-service';
import { ClairServer } from '../../../../testing/clair';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { pushImage, skopeo, skopeoCopyOut, MULTI_ARCH } from '../../../../testing/oci-images';
import { ALPINE_DISTRIBUTION, createOsImage, type OsImage } from '../../../../testing/os-images';
import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';
import { eventually } from '../../../../testing/tools';
import {
  ALPINE_FIXED,
  ALPINE_VULNERABLE,
  capturingLogger,
  DEBIAN_FIXED,
  DEBIAN_VULNERABLE,
  JWT_PATTERN,
  scannerEnv,
  type SecurityAnswer,
  securityPath,
  VULNERABILITIES,
  vulnerabilitiesOf,
  waitForStatus,
} from './scan-fixture';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;

interface TagEntry {
  name: string;
  manifest_digest: string;
  security: { status: string; counts: Record<string, number>; highest: string | null } | null;
}

/**
 * Scanning with a real Clair v4.9.0 (combo mode, its own PostgreSQL database,
 * a small vulnerability fixture loaded with clairctl): images pulled through a
 * cache organization and pushed to a normal one, a multi-arch index, the pull
 * policy, and what never leaks (PSK, layer tokens).
 */
describe('security scanning with Clair', () => {
  let clair: ClairServer;
  let fx: CacheFixture;
  const logger = capturingLogger();
  const jobs: Array<{ name: string; data: unknown }> = [];
  const answers: string[] = [];
  let vulnerable: OsImage;
  let fixed: OsImage;
  let multi: OsImage;

  beforeAll(async () => {
    clair = await ClairServer.start();
    await clair.importVulnerabilities(VULNERABILITIES);
    fx = await startCacheFixture({ auth: { mode: 'anonymous' }, entrepot: { env: scannerEnv(clair), logger } });
    // Every job the instance queues, to show what job data holds.
    const queue = fx.entrepot.entrepot.services.queue;
    const enqueue = queue.enqueue.bind(queue);
    queue.enqueue = (name, data, options) => {
      jobs.push({ name, data });
      return enqueue(name, data, options);
    };
    vulnerable = await createOsImage(join(fx.work, 'alpine'), { tag: 'vuln', flavour: 'alpine', packages: ALPINE_VULNERABLE });
    fixed = await createOsImage(join(fx.work, 'alpine'), { tag: 'fixed', flavour: 'alpine', packages: ALPINE_FIXED });
    multi = await createOsImage(join(fx.work, 'multi'), { tag: 'multi', flavour: 'alpine', packages: ALPINE_VULNERABLE, platforms: MULTI_ARCH });
    for (const tag of ['vuln', 'fixed']) await pushImage(join(fx.work, 'alpine'), tag, fx.upstream.ref('library/alpine', tag));
    await pushImage(join(fx.work, 'multi'), 'multi', fx.upstream.ref('library/multi', 'multi'), { all: true });
    await fx.createCacheOrg('hub');
    expect((await fx.entrepot.api('POST', '/organization/', { name: 'team' })).status).toBe(201);
  });

  afterAll(async () => {
    await fx?.stop();
    await clair?.stop();
  });

  async function security(org: string, repo: string, digest: string, vulnerabilities = true) {
    const res = await fx.entrepot.api('GET', securityPath(org, repo, digest, vulnerabilities));
    answers.push(JSON.stringify(res.body));
    return res;
  }

  async function scanned(org: string, repo: string, digest: string) {
    const answer = await waitForStatus(fx.entrepot, securityPath(org, repo, digest), 'scanned');
    answers.push(JSON.stringify(answer));
    return answer;
  }

  /**
   * A tag's scan summary once its report is stored: `scanned` may have had its
   * answer live from Clair while the scan job was still storing the report.
   */
  async function storedSummary(org: string, repo: string, name: string): Promise<TagEntry['security']> {
    let entry: TagEntry | undefined;
    await eventually(async () => {
      entry = (await tags(org, repo)).find((t) => t.name === name);
      return entry !== undefined && entry.security?.status !== 'queued';
    }, 30_000, `the stored scan summary of ${org}/${repo}:${name}`);
    return entry!.security;
  }

  async function tags(org: string, repo: string): Promise<TagEntry[]> {
    const res = await fx.entrepot.api('GET', `/repository/${org}/${repo}/tag/`);
    answers.push(JSON.stringify(res.body));
    expect(res.status).toBe(200);
    return (res.body as { tags: TagEntry[] }).tags;
  }

  it('reports the fixture vulnerability for an image pulled through a cache, and none for the fixed version', async () => {
    expect(await skopeoCopyOut(`${fx.entrepot.host}/hub/library/alpine:vuln`, join(fx.work, 'out-vuln'), { creds })).toBe(vulnerable.digest);
    expect(await skopeoCopyOut(`${fx.entrepot.host}/hub/library/alpine:fixed`, join(fx.work, 'out-fixed'), { creds })).toBe(fixed.digest);

    const bad = await scanned('hub', 'library/alpine', vulnerable.digest);
    expect(bad.data!.Layer.Name).toBe(vulnerable.digest);
    expect(bad.data!.Layer.IndexedByVersion).toBe(4);
    const busybox = bad.data!.Layer.Features.find((f) => f.Name === 'busybox')!;
    expect(busybox).toMatchObject({ Version: '1.36.1-r0', AddedBy: vulnerable.layerDigest });
    expect(busybox.Vulnerabilities).toEqual([
      expect.objectContaining({ Name: 'CVE-2099-0001', Severity: 'High', FixedBy: '1.36.1-r1', Link: 'https://security.example.test/CVE-2099-0001' }),
    ]);
    expect(vulnerabilitiesOf(bad).map((v) => `${v.Name}:${v.package}`).sort()).toEqual(['CVE-2099-0001:busybox', 'CVE-2099-0003:musl']);

    const good = await scanned('hub', 'library/alpine', fixed.digest);
    expect(good.data!.Layer.Features.map((f) => `${f.Name}@${f.Version}`).sort()).toEqual(['busybox@1.36.1-r1', 'musl@1.2.4-r2']);
    expect(vulnerabilitiesOf(good)).toEqual([]);

    // Without ?vulnerabilities=true the packages are listed without their vulnerabilities (Quay).
    const plain = await security('hub', 'library/alpine', vulnerable.digest, false);
    expect((plain.body as { data: { Layer: { Features: Array<{ Vulnerabilities: unknown[] }> } } }).data.Layer.Features.every((f) => f.Vulnerabilities.length === 0)).toBe(true);

    // The reports above may have come live from Clair while the scan jobs were still storing them.
    expect(await storedSummary('hub', 'library/alpine', 'vuln')).toEqual({ status: 'scanned', counts: expect.objectContaining({ High: 1, Low: 1, Critical: 0 }), highest: 'High' });
    expect(await storedSummary('hub', 'library/alpine', 'fixed')).toMatchObject({ status: 'scanned', highest: null });
  });

  it('answers 404 for a manifest the repository does not hold, 400 for a malformed digest', async () => {
    expect((await security('hub', 'library/alpine', `sha256:${'a'.repeat(64)}`)).status).toBe(404);
    expect((await security('hub', 'library/alpine', 'sha256:nothex')).status).toBe(400);
    expect((await security('hub', 'library/nothere', vulnerable.digest)).status).toBe(404);
  });

  it('scans an image pushed to a normal organization (Debian)', async () => {
    const layout = join(fx.work, 'debian');
    const deb = await createOsImage(layout, { tag: 'vuln', flavour: 'debian', packages: DEBIAN_VULNERABLE });
    const debFixed = await createOsImage(layout, { tag: 'fixed', flavour: 'debian', packages: DEBIAN_FIXED });
    for (const tag of ['vuln', 'fixed']) await pushImage(layout, tag, `${fx.entrepot.host}/team/debian:${tag}`, { creds });

    const bad = await scanned('team', 'debian', deb.digest);
    expect(vulnerabilitiesOf(bad)).toEqual([expect.objectContaining({ Name: 'CVE-2099-0002', Severity: 'Critical', FixedBy: '3.0.11-1~deb12u2', package: 'openssl', version: '3.0.11-1~deb12u1' })]);
    const good = await scanned('team', 'debian', debFixed.digest);
    expect(good.data!.Layer.Features.map((f) => f.Name).sort()).toEqual(['bash', 'openssl']);
    expect(vulnerabilitiesOf(good)).toEqual([]);
    expect(await storedSummary('team', 'debian', 'vuln')).toMatchObject({ status: 'scanned', highest: 'Critical', counts: expect.objectContaining({ Critical: 1 }) });
  });

  it('scans the platforms of an index that were pulled, and only those', async () => {
    const [amd64, arm64] = multi.manifests;
    const res = await skopeo(['--override-arch', 'arm64', 'copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${fx.entrepot.host}/hub/library/multi:multi`, `oci:${join(fx.work, 'out-multi')}:x`]);
    expect(res.code).toBe(0);
    const child = await scanned('hub', 'library/multi', arm64.digest);
    expect(vulnerabilitiesOf(child).map((v) => v.Name).sort()).toEqual(['CVE-2099-0001', 'CVE-2099-0003']);
    // The index itself has no packages (Quay: unsupported); the platform never pulled is not stored, so not scanned.
    expect((await security('hub', 'library/multi', multi.digest)).body).toMatchObject({ status: 'unsupported', data: null });
    expect((await security('hub', 'library/multi', amd64.digest)).status).toBe(404);
    expect(await storedSummary('hub', 'library/multi', 'multi')).toMatchObject({ status: 'scanned', highest: 'High', counts: expect.objectContaining({ High: 1, Low: 1 }) });
  });

  it('refuses pulls at or above the policy severity, with an audit entry; the fixed image and the allow-list go through', async () => {
    const set = await fx.entrepot.api('PUT', '/organization/hub/securitypolicy', { block_pulls_at_severity: 'High' });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ block_pulls_at_severity: 'High', block_unscanned: false, allowlist: [] });

    const refused = await skopeo(['copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${fx.entrepot.host}/hub/library/alpine:vuln`, `oci:${join(fx.work, 'blocked')}:x`]).then(
      () => '',
      (err: Error) => err.message,
    );
    expect(refused).toMatch(/denied: pull of hub\/library\/alpine@sha256:[0-9a-f]{64} refused by the security policy of hub/);
    expect(refused).toContain('CVE-2099-0001 (High) in busybox 1.36.1-r0, fixed in 1.36.1-r1');
    expect(refused).toContain('allow-list');

    const direct = await fetch(`${fx.entrepot.url}/v2/hub/library/alpine/manifests/vuln`, { headers: { authorization: fx.entrepot.adminAuth } });
    expect(direct.status).toBe(403);
    const envelope = (await direct.json()) as { errors: Array<{ code: string; message: string; detail: Record<string, unknown> }> };
    expect(envelope.errors[0]).toMatchObject({ code: 'DENIED', detail: { vulnerability: 'CVE-2099-0001', severity: 'High', package: 'busybox', fixed_by: '1.36.1-r1' } });

    expect(await skopeoCopyOut(`${fx.entrepot.host}/hub/library/alpine:fixed`, join(fx.work, 'fixed-ok'), { creds })).toBe(fixed.digest);

    await fx.entrepot.entrepot.services.audit.flush();
    await fx.entrepot.entrepot.services.queue.drain();
    const logs = await fx.entrepot.api('GET', '/organization/hub/logs?kind=pull_repo');
    const blocked = (logs.body as { logs: Array<{ metadata: Record<string, unknown> }> }).logs.filter((l) => l.metadata.cache_result === 'blocked');
    expect(blocked.length).toBeGreaterThanOrEqual(2);
    expect(blocked[0].metadata).toMatchObject({ manifest_digest: vulnerable.digest, vulnerability: 'CVE-2099-0001', severity: 'High' });
    const metrics = await (await fetch(`${fx.entrepot.url}/metrics`)).text();
    expect(metrics).toMatch(/entrepot_security_pulls_blocked_total\{org="hub"\} [2-9]/);

    const allow = await fx.entrepot.api('PUT', '/organization/hub/securitypolicy', { allowlist: ['CVE-2099-0001'] });
    expect(allow.body).toMatchObject({ block_pulls_at_severity: 'High', allowlist: ['CVE-2099-0001'] });
    expect(await skopeoCopyOut(`${fx.entrepot.host}/hub/library/alpine:vuln`, join(fx.work, 'allowed'), { creds })).toBe(vulnerable.digest);

    // A lower threshold catches the remaining Low one; "off" turns the policy off.
    await fx.entrepot.api('PUT', '/organization/hub/securitypolicy', { block_pulls_at_severity: 'Low' });
    expect((await fetch(`${fx.entrepot.url}/v2/hub/library/alpine/manifests/vuln`, { headers: { authorization: fx.entrepot.adminAuth } })).status).toBe(403);
    await fx.entrepot.api('PUT', '/organization/hub/securitypolicy', { block_pulls_at_severity: 'off', allowlist: [] });
    expect((await fetch(`${fx.entrepot.url}/v2/hub/library/alpine/manifests/vuln`, { headers: { authorization: fx.entrepot.adminAuth } })).status).toBe(200);
  });

  it('validates policy changes and keeps them to administrators', async () => {
    expect((await fx.entrepot.api('PUT', '/organization/hub/securitypolicy', { block_pulls_at_severity: 'Severe' })).status).toBe(400);
    expect((await fx.entrepot.api('PUT', '/organization/hub/securitypolicy', { allowlist: ['not a name'] })).status).toBe(400);
    expect((await fx.entrepot.api('PUT', '/organization/hub/securitypolicy', { surprise: true })).status).toBe(400);
    expect((await fx.entrepot.api('PUT', '/organization/hub/securitypolicy', { block_unscanned: true }, '')).status).toBe(401);
  });

  it('reports metrics and a healthy scanner', async () => {
    const metrics = await (await fetch(`${fx.entrepot.url}/metrics`)).text();
    expect(metrics).toMatch(/entrepot_security_scans_queued_total [1-9]/);
    expect(metrics).toMatch(/entrepot_security_scans_completed_total [1-9]/);
    expect(metrics).toMatch(/entrepot_security_scan_latency_seconds_count [1-9]/);
    expect(metrics).toMatch(/entrepot_security_vulnerabilities\{org="hub",severity="High"\} [1-9]/);
    expect(metrics).toMatch(/entrepot_security_vulnerabilities\{org="team",severity="Critical"\} 1/);
    const health = await fetch(`${fx.entrepot.url}/health`);
    const body = (await health.json()) as { services: Record<string, { status: string }> };
    answers.push(JSON.stringify(body));
    expect(health.status).toBe(200);
    expect(body.services.security_scanner.status).toBe('ok');
  });

  it('fetches reports again on the periodic pass: new vulnerability data reaches images scanned before', async () => {
    // An update replaces what the updater said before, so the new record comes with the old ones.
    await clair.importVulnerabilities([
      ...VULNERABILITIES,
      { updater: 'alpine', name: 'CVE-2099-0004', severity: 'Medium', packageName: 'musl', fixedInVersion: '1.2.4-r3', distribution: ALPINE_DISTRIBUTION },
    ]);
    const deadline = Date.now() + 60_000;
    let names: string[] = [];
    while (Date.now() < deadline) {
      const res = await security('hub', 'library/alpine', fixed.digest);
      names = vulnerabilitiesOf(res.body as SecurityAnswer).map((v) => v.Name);
      if (names.length > 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(names).toEqual(['CVE-2099-0004']);
    const tag = (await tags('hub', 'library/alpine')).find((t) => t.name === 'fixed')!;
    expect(tag.security).toMatchObject({ status: 'scanned', highest: 'Medium' });
  });

  it('gives Clair tokens that pull one repository and nothing else', async () => {
    // A token as the scan job makes it, signed with the instance's own key.
    const tokens = new TokenService(fx.entrepot.entrepot.services.db, { now: () => Date.now() }, 300);
    await tokens.init();
    const { token } = tokens.issue({ kind: 'scanner' }, [{ type: 'repository', name: 'hub/library/alpine', actions: ['pull'] }], fx.entrepot.host, 600);
    const bearer = { authorization: `Bearer ${token}` };
    const get = (path: string, init: RequestInit = {}) => fetch(`${fx.entrepot.url}${path}`, { ...init, headers: { ...bearer, ...(init.headers as Record<string, string> | undefined) } });
    expect((await get(`/v2/hub/library/alpine/blobs/${vulnerable.layerDigest}`)).status).toBe(200);
    expect((await get(`/v2/hub/library/multi/blobs/${multi.layerDigest}`)).status).toBe(403);
    expect((await get('/v2/team/debian/manifests/vuln')).status).toBe(403);
    expect((await get('/v2/hub/library/alpine/blobs/uploads/', { method: 'POST' })).status).toBe(403);
    expect((await get('/v2/_catalog')).status).toBe(403);
    expect((await get('/api/v1/repository/hub/library/alpine/tag/')).status).toBe(403);
    expect((await get('/api/v1/user/')).status).toBe(403);
  });

  it('never puts the PSK or the layer tokens in logs, job data or API answers', async () => {
    await fx.entrepot.entrepot.services.queue.drain();
    const psk = clair.psk!;
    const scanJobs = jobs.filter((j) => j.name.startsWith('scan.'));
    expect(scanJobs.length).toBeGreaterThan(0);
    for (const job of scanJobs) {
      expect(Object.keys(job.data as object).every((k) => k === 'digest')).toBe(true);
      expect(JSON.stringify(job.data)).not.toMatch(JWT_PATTERN);
    }
    for (const text of [...logger.lines, ...answers, ...jobs.map((j) => JSON.stringify(j.data))]) {
      expect(text).not.toContain(psk);
      expect(text).not.toMatch(JWT_PATTERN);
    }
    expect(clair.log()).not.toContain(psk);
  });
});
