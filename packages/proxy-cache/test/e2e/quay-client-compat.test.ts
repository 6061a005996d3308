/**
 * Replays the requests Quay's web UI and API clients send for organizations,
 * proxy cache, quota, robots and logs against a real Entrepot with a real
 * upstream registry, asserting the status codes Quay answers and the response
 * fields Quay's UI reads.
 */
import type { z } from 'zod';
import { basicAuth } from '../../../../testing/entrepot-instance';
import * as schemas from '../../../registry-core/src/http/openapi/api-schemas';
import { proxyCacheConfigSchema } from '../../src/api/proxycache-docs';
import { startCacheFixture, type CacheFixture } from './cache-fixture';

type Body = Record<string, unknown>;

/** The answer matches the schema the OpenAPI document (and the web UI's types) describe it with. */
function expectDescribed(schema: z.ZodType, body: unknown): void {
  const result = schema.safeParse(body);
  expect(result.success ? 'matches' : result.error.issues).toBe('matches');
}

describe("Quay's clients against Entrepot", () => {
  let fx: CacheFixture;
  let member: string;
  const call = (method: string, path: string, body?: unknown, auth?: string) => fx.entrepot.api(method, path, body, auth);

  beforeAll(async () => {
    fx = await startCacheFixture({ auth: { mode: 'anonymous' } });
    // The UI's "create organization" form.
    const created = await call('POST', '/organization/', { name: 'quaycache', email: 'ops@example.com' });
    expect(created.status).toBe(201);
    expect((await call('POST', '/organization/', { name: 'quayplain' })).status).toBe(201);
    expect((await call('POST', '/superuser/users/', { username: 'mia', password: 'mia-password-1' })).status).toBe(201);
    member = basicAuth('mia', 'mia-password-1');
    expect((await call('PUT', '/organization/quaycache/members/mia', { role: 'member' })).status).toBe(201);
  });

  afterAll(() => fx?.stop());

  describe('organization', () => {
    it('createOrganization with a taken name is 400 with error_message', async () => {
      const res = await call('POST', '/organization/', { name: 'quaycache' });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error_message: 'A user or organization with this name already exists' });
      expect((await call('POST', '/organization/', { name: 'mia' })).status).toBe(400);
    });

    it('getOrganization returns the fields the UI reads', async () => {
      const admin = await call('GET', '/organization/quaycache');
      expect(admin.status).toBe(200);
      expect(admin.body).toMatchObject({ name: 'quaycache', email: 'ops@example.com', is_admin: true, is_member: true, teams: {}, ordered_teams: [], tag_expiration_s: 0, quotas: [] });
      expect((admin.body as Body).quota_report).toMatchObject({ quota_bytes: 0 });
      expectDescribed(schemas.organizationSchema, admin.body);
      const asMember = await call('GET', '/organization/quaycache', undefined, member);
      expect(asMember.status).toBe(200);
      expect(asMember.body).toMatchObject({ name: 'quaycache', is_admin: false, is_member: true, teams: {}, ordered_teams: [] });
      expect(asMember.body).not.toHaveProperty('email');
      expect((await call('GET', '/organization/nosuchorg')).status).toBe(404);
    });
  });

  describe('proxy cache (ProxyCacheResource)', () => {
    const form = () => ({
      upstream_registry: fx.upstream.host,
      expiration_s: 86400,
      insecure: true,
      org_name: 'quaycache',
      upstream_registry_username: null,
      upstream_registry_password: null,
    });

    it('fetchProxyCacheConfig of an organization that is not a cache: 200 with empty fields, members included', async () => {
      for (const auth of [undefined, member]) {
        const res = await call('GET', '/organization/quaycache/proxycache', undefined, auth);
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ upstream_registry: '', expiration_s: '', insecure: '' });
      }
    });

    it('validateProxyCacheConfig with the UI payload: 202 "Anonymous" without credentials', async () => {
      const res = await call('POST', '/organization/quaycache/validateproxycache', form());
      expect(res.status).toBe(202);
      expect(res.body).toBe('Anonymous');
    });

    it('createProxyCacheConfig with the UI payload (org_name included): 201 "Created"', async () => {
      const res = await call('POST', '/organization/quaycache/proxycache', form());
      expect(res.status).toBe(201);
      expect(res.body).toBe('Created');
      const read = await call('GET', '/organization/quaycache/proxycache', undefined, member);
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ upstream_registry: fx.upstream.host, expiration_s: 86400, insecure: true });
      expectDescribed(proxyCacheConfigSchema, read.body);
      expectDescribed(proxyCacheConfigSchema, (await call('GET', '/organization/quaycache/proxycache')).body);
      // A member does not learn the upstream account.
      expect(read.body).not.toHaveProperty('upstream_registry_username');
    });

    it('members cannot change the configuration', async () => {
      expect((await call('POST', '/organization/quaycache/proxycache', form(), member)).status).toBe(403);
      expect((await call('DELETE', '/organization/quaycache/proxycache', undefined, member)).status).toBe(403);
    });

    it('deleteProxyCacheConfig: 201 "Deleted", then 404', async () => {
      const res = await call('DELETE', '/organization/quaycache/proxycache');
      expect(res.status).toBe(201);
      expect(res.body).toBe('Deleted');
      expect((await call('DELETE', '/organization/quaycache/proxycache')).status).toBe(404);
      expect((await call('POST', '/organization/quaycache/proxycache', form())).status).toBe(201);
    });

    it('a validation failure is a 400 with error_message', async () => {
      const res = await call('POST', '/organization/quayplain/validateproxycache', { ...form(), org_name: 'quayplain', upstream_registry: '127.0.0.1:1' });
      expect(res.status).toBe(400);
      expect(typeof (res.body as Body).error_message).toBe('string');
    });
  });

  describe('robots (RobotsResource)', () => {
    let token = '';

    it('createNewRobotForNamespace: 201 with the token', async () => {
      const res = await call('PUT', '/organization/quaycache/robots/deployer', { description: 'deploys', unstructured_metadata: {} });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ name: 'quaycache+deployer', description: 'deploys', token: expect.any(String) });
      token = (res.body as { token: string }).token;
    });

    it('descriptions longer than 255 characters are refused', async () => {
      expect((await call('PUT', '/organization/quaycache/robots/wordy', { description: 'x'.repeat(256) })).status).toBe(400);
    });

    it('fetchRobotsForNamespace (?permissions=true&token=false) lists repositories and teams, no token', async () => {
      const pulled = await fetch(`${fx.entrepot.url}/v2/quaycache/library/app/manifests/latest`, { headers: { authorization: fx.entrepot.adminAuth } });
      await pulled.arrayBuffer();
      const repo = await call('POST', '/repository', { namespace: 'quayplain', repository: 'web', visibility: 'private' });
      expect(repo.status).toBe(201);
      expect((await call('PUT', '/organization/quayplain/robots/ci', {})).status).toBe(201);
      expect((await call('PUT', '/repository/quayplain/web/permissions/user/quayplain+ci', { role: 'write' })).status).toBe(200);
      const res = await call('GET', '/organization/quayplain/robots?permissions=true&token=false');
      expect(res.status).toBe(200);
      const robot = (res.body as { robots: Body[] }).robots.find((r) => r.name === 'quayplain+ci');
      expect(robot).toMatchObject({ name: 'quayplain+ci', teams: [], repositories: ['web'], description: '' });
      expect(robot).toHaveProperty('created');
      expect(robot).not.toHaveProperty('token');
      expectDescribed(schemas.robotListSchema, res.body);
    });

    it('getRobotAccount and the default list include the token for administrators', async () => {
      const one = await call('GET', '/organization/quaycache/robots/deployer');
      expect(one.status).toBe(200);
      expect(one.body).toMatchObject({ name: 'quaycache+deployer', token });
      const list = await call('GET', '/organization/quaycache/robots?limit=1');
      expect((list.body as { robots: Body[] }).robots).toHaveLength(1);
      expect((list.body as { robots: Body[] }).robots[0]).toHaveProperty('token');
    });

    it('fetchRobotPermissionsForNamespace: repository and role', async () => {
      const res = await call('GET', '/organization/quayplain/robots/ci/permissions');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ permissions: [{ repository: { name: 'web', is_public: false }, role: 'write' }] });
      expectDescribed(schemas.robotPermissionsSchema, res.body);
      expect((await call('GET', '/organization/quayplain/robots/ghost/permissions')).status).toBe(404);
    });

    it('regenerateRobotToken: 200 with a new token', async () => {
      const res = await call('POST', '/organization/quaycache/robots/deployer/regenerate', {});
      expect(res.status).toBe(200);
      expect((res.body as { token: string }).token).not.toBe(token);
    });

    it('deleteRobotAccount: 204', async () => {
      expect((await call('DELETE', '/organization/quaycache/robots/deployer')).status).toBe(204);
    });
  });

  describe('quota (QuotaResource)', () => {
    let quotaId = 0;

    it('createOrganizationQuota: 201; a second quota is 400', async () => {
      expect((await call('POST', '/organization/quayplain/quota', { limit_bytes: 10_000_000 })).status).toBe(201);
      expect((await call('POST', '/organization/quayplain/quota', { limit_bytes: 20_000_000 })).status).toBe(400);
      const list = await call('GET', '/organization/quayplain/quota');
      expect(list.status).toBe(200);
      const [quota] = list.body as Array<{ id: number; limit_bytes: number; limits: unknown[] }>;
      expect(quota).toMatchObject({ limit_bytes: 10_000_000, limits: [] });
      expect(Number.isInteger(quota.id)).toBe(true);
      quotaId = quota.id;
    });

    it('createOrganizationQuotaLimit: Warning and one Reject; duplicates are 400', async () => {
      const base = `/organization/quayplain/quota/${quotaId}/limit`;
      expect((await call('POST', base, { type: 'Warning', threshold_percent: 80 })).status).toBe(201);
      expect((await call('POST', base, { type: 'Reject', threshold_percent: 95 })).status).toBe(201);
      const second = await call('POST', base, { type: 'Reject', threshold_percent: 99 });
      expect(second.status).toBe(400);
      expect(second.body).toMatchObject({ error_message: "Only one quota limit of type 'Reject' allowed." });
      expect((await call('POST', base, { type: 'Warning', threshold_percent: 80 })).status).toBe(400);
      expect((await call('POST', base, { type: 'Warning', threshold_percent: 101 })).status).toBe(400);
      expect((await call('POST', base, { type: 'Warning', threshold_percent: 50 }, member)).status).toBe(403);
    });

    it('the quota, its limits and the organization show the thresholds as the UI reads them', async () => {
      const quota = await call('GET', `/organization/quayplain/quota/${quotaId}`);
      const limits = (quota.body as { limits: Array<{ id: number; type: string; limit_percent: number }> }).limits;
      expect(limits.map((l) => [l.type, l.limit_percent])).toEqual([
        ['Warning', 80],
        ['Reject', 95],
      ]);
      const list = await call('GET', `/organization/quayplain/quota/${quotaId}/limit`);
      expect(list.body).toEqual(limits);
      const one = await call('GET', `/organization/quayplain/quota/${quotaId}/limit/${limits[0].id}`);
      expect(one.body).toEqual(limits[0]);
      const org = await call('GET', '/organization/quayplain');
      expectDescribed(schemas.quotaSchema, quota.body);
      expectDescribed(schemas.organizationSchema, org.body);
      expect((org.body as { quotas: unknown[] }).quotas).toEqual([expect.objectContaining({ id: quotaId, limit_bytes: 10_000_000, limits })]);
    });

    it('changeOrganizationQuotaLimit and deleteOrganizationQuotaLimit', async () => {
      const [warning] = (await call('GET', `/organization/quayplain/quota/${quotaId}/limit`)).body as Array<{ id: number }>;
      const changed = await call('PUT', `/organization/quayplain/quota/${quotaId}/limit/${warning.id}`, { type: 'Warning', threshold_percent: 70 });
      expect(changed.status).toBe(200);
      expect((changed.body as { limits: Array<{ limit_percent: number }> }).limits[0].limit_percent).toBe(70);
      expect((await call('DELETE', `/organization/quayplain/quota/${quotaId}/limit/${warning.id}`)).status).toBe(204);
      expect((await call('DELETE', `/organization/quayplain/quota/${quotaId}/limit/${warning.id}`)).status).toBe(404);
      expect((await call('GET', `/organization/quayplain/quota/${quotaId + 1000}/limit`)).status).toBe(404);
    });

    it('listUserQuota: 200 with no quotas (users have no namespaces here)', async () => {
      const res = await call('GET', '/user/quota', undefined, member);
      expect(res.status).toBe(200);
      expect(res.body).toEqual([]);
      expect((await call('GET', '/user/quota/1', undefined, member)).status).toBe(404);
    });
  });

  describe('usage logs (UseUsageLogs)', () => {
    const today = new Date();
    const mdy = (d: Date) => `${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCDate()).padStart(2, '0')}/${d.getUTCFullYear()}`;

    beforeAll(async () => {
      await fx.entrepot.entrepot.services.audit.flush();
      await fx.entrepot.entrepot.services.queue.drain();
    });

    it('getLogs without a range returns the last day', async () => {
      const res = await call('GET', '/organization/quayplain/logs');
      expect(res.status).toBe(200);
      const body = res.body as { start_time: string; logs: Array<{ kind: string; datetime: string }> };
      expect(Date.now() - Date.parse(body.start_time)).toBeGreaterThanOrEqual(86_400_000 - 60_000);
      expect(body.logs.map((l) => l.kind)).toContain('create_robot');
      expectDescribed(schemas.logPageSchema, res.body);
    });

    it('getAggregateLogs: counts per kind and day', async () => {
      const res = await call('GET', `/organization/quayplain/aggregatelogs?starttime=${encodeURIComponent(mdy(today))}&endtime=${encodeURIComponent(mdy(today))}`);
      expect(res.status).toBe(200);
      const aggregated = (res.body as { aggregated: Array<{ kind: string; count: number; datetime: string }> }).aggregated;
      const robots = aggregated.find((a) => a.kind === 'create_robot');
      expect(robots).toMatchObject({ count: 1, datetime: expect.any(String) });
      expect(new Date(robots!.datetime).getUTCDate()).toBe(today.getUTCDate());
      expectDescribed(schemas.aggregatedLogsSchema, res.body);
      const repo = await call('GET', '/repository/quayplain/web/aggregatelogs');
      expect(repo.status).toBe(200);
      expect((repo.body as { aggregated: Array<{ kind: string }> }).aggregated.map((a) => a.kind)).toContain('create_repo');
    });

    it('exportLogs with a callback: an export id whose download holds the entries', async () => {
      const res = await call('POST', `/organization/quayplain/exportlogs?starttime=${encodeURIComponent(mdy(today))}&endtime=${encodeURIComponent(mdy(today))}`, { callback_email: 'ops@example.com' });
      expect(res.status).toBe(200);
      const { export_id: exportId, download_url: url } = res.body as { export_id: string; download_url: string };
      expect(exportId).toEqual(expect.any(String));
      const download = await call('GET', url.replace(/^\/api\/v1/, ''));
      expect(download.status).toBe(200);
      expect((download.body as { logs: Array<{ kind: string }> }).logs.map((l) => l.kind)).toContain('create_robot');
      expectDescribed(schemas.logExportSchema, res.body);
      expectDescribed(schemas.logExportFileSchema, download.body);
      expect((await call('GET', url.replace(/^\/api\/v1/, ''), undefined, member)).status).toBe(403);
      const repo = await call('POST', '/repository/quayplain/web/exportlogs', { callback_url: 'https://hooks.example.com/x' });
      expect(repo.status).toBe(200);
      expect((await call('POST', '/organization/quayplain/exportlogs', { callback_url: 'ftp://x' })).status).toBe(400);
      expect((await call('GET', '/organization/quayplain/exportlogs/not-an-id')).status).toBe(400);
    });
  });
});
