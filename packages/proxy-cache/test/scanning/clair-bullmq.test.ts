import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { ClairServer } from '../../../../testing/clair';
import { ADMIN_PASSWORD, ADMIN_USER, startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { pushImage, skopeoCopyOut } from '../../../../testing/oci-images';
import { createOsImage } from '../../../../testing/os-images';
import { TempDir } from '../../../../testing/tools';
import { DEBIAN_VULNERABLE, JWT_PATTERN, scannerEnv, securityPath, VULNERABILITIES, vulnerabilitiesOf, waitForStatus } from './scan-fixture';

const REDIS_URL = process.env.ENTREPOT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;

/** Scan submission on BullMQ (the scale-out queue): the jobs in Redis carry the digest and nothing secret. */
describe('security scanning on BullMQ', () => {
  let clair: ClairServer;
  let instance: TestInstance;
  let work: TempDir;
  const prefix = `entrepot-scan-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 2 });

  beforeAll(async () => {
    await redis.connect();
    clair = await ClairServer.start();
    await clair.importVulnerabilities(VULNERABILITIES);
    work = await TempDir.create('entrepot-scan-bullmq-');
    instance = await startEntrepot({ env: scannerEnv(clair), overrides: { queue: { driver: 'bullmq', redis_url: REDIS_URL, prefix } } });
    expect((await instance.api('POST', '/organization/', { name: 'team' })).status).toBe(201);
  });

  afterAll(async () => {
    await instance?.stop();
    await clair?.stop();
    await work?.remove();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('queues scan.index in Redis by manifest digest and stores the report', async () => {
    expect(instance.entrepot.services.queue.kind).toBe('bullmq');
    const image = await createOsImage(work.join('deb'), { tag: 'v1', flavour: 'debian', packages: DEBIAN_VULNERABLE });
    await pushImage(work.join('deb'), 'v1', `${instance.host}/team/deb:v1`, { creds });
    const answer = await waitForStatus(instance, securityPath('team', 'deb', image.digest), 'scanned');
    expect(vulnerabilitiesOf(answer).map((v) => `${v.Name}:${v.Severity}`)).toEqual(['CVE-2099-0002:Critical']);
    expect(await skopeoCopyOut(`${instance.host}/team/deb:v1`, work.join('out'), { creds })).toBe(image.digest);

    const jobKeys = (await redis.keys(`${prefix}:scan.index:*`)).filter((k) => k.includes('scan.index-'));
    expect(jobKeys.some((k) => k.endsWith(`scan.index-${image.digest.replace(':', '%3A')}`))).toBe(true);
    for (const key of jobKeys) {
      if ((await redis.type(key)) !== 'hash') continue;
      const data = await redis.hget(key, 'data');
      expect(JSON.parse(data ?? '{}')).toEqual({ digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
      const whole = JSON.stringify(await redis.hgetall(key));
      expect(whole).not.toContain(clair.psk!);
      expect(whole).not.toMatch(JWT_PATTERN);
    }
  });
});
