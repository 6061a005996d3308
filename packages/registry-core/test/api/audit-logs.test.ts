import { ADMIN_USER, startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { createOrg, createRobot, createUser, pullManifest, pushImage, waitForLogs, type LogEntry } from './api-helpers';

describe('organization and repository audit logs', () => {
  let inst: TestInstance;

  beforeAll(async () => {
    inst = await startEntrepot();
  });

  afterAll(async () => {
    await inst?.stop();
  });

  it('every admin action appears in the organization log with performer, address and time', async () => {
    await createOrg(inst, 'audited');
    await createUser(inst, 'eve');
    const steps: Array<[string, () => Promise<{ status: number }>]> = [
      ['org_add_member', () => inst.api('PUT', '/organization/audited/members/eve', { role: 'member' })],
      ['org_change_member_role', () => inst.api('PUT', '/organization/audited/members/eve', { role: 'admin' })],
      ['org_remove_member', () => inst.api('DELETE', '/organization/audited/members/eve')],
      ['org_change_visibility', () => inst.api('PUT', '/organization/audited', { is_public: true })],
      ['create_repo', () => inst.api('POST', '/repository', { namespace: 'audited', repository: 'svc/api', visibility: 'private' })],
      ['change_repo_visibility', () => inst.api('POST', '/repository/audited/svc/api/changevisibility', { visibility: 'public' })],
      ['set_repo_description', () => inst.api('PUT', '/repository/audited/svc/api', { description: 'the API' })],
      ['create_robot', () => inst.api('PUT', '/organization/audited/robots/builder', {})],
      ['regenerate_robot_token', () => inst.api('POST', '/organization/audited/robots/builder/regenerate')],
      ['change_repo_permission', () => inst.api('PUT', '/repository/audited/svc/api/permissions/user/audited+builder', { role: 'write' })],
      ['delete_repo_permission', () => inst.api('DELETE', '/repository/audited/svc/api/permissions/user/audited+builder')],
      ['create_prototype_permission', () => inst.api('POST', '/organization/audited/prototypes', { role: 'read', delegate: { kind: 'robot', name: 'audited+builder' } })],
    ];
    for (const [kind, step] of steps) {
      const res = await step();
      expect([kind, res.status < 300]).toEqual([kind, true]);
    }
    const protoList = await inst.api('GET', '/organization/audited/prototypes');
    const protoId = (protoList.body as { prototypes: Array<{ id: string }> }).prototypes[0].id;
    const more: Array<[string, () => Promise<{ status: number }>]> = [
      ['modify_prototype_permission', () => inst.api('PUT', `/organization/audited/prototypes/${protoId}`, { role: 'write' })],
      ['delete_prototype_permission', () => inst.api('DELETE', `/organization/audited/prototypes/${protoId}`)],
      ['change_repo_permission', () => inst.api('PUT', '/organization/audited/permissions/user/eve', { role: 'read' })],
      ['delete_robot', () => inst.api('DELETE', '/organization/audited/robots/builder')],
      ['delete_repo', () => inst.api('DELETE', '/repository/audited/svc/api')],
    ];
    for (const [, step] of more) expect((await step()).status).toBeLessThan(300);
    const kinds = ['org_create', ...steps.map(([k]) => k), ...more.map(([k]) => k)];
    const logs = await waitForLogs(inst, 'audited', (entries) => kinds.every((k) => entries.some((e) => e.kind === k)));
    for (const kind of kinds) {
      const entry = logs.find((e) => e.kind === kind) as LogEntry;
      expect(entry.performer).toMatchObject({ kind: 'user', name: ADMIN_USER });
      expect(entry.ip).toMatch(/127\.0\.0\.1/);
      expect(Number.isNaN(Date.parse(entry.datetime))).toBe(false);
    }
    const permissionChange = logs.find((e) => e.kind === 'change_repo_permission' && e.repository === 'svc/api') as LogEntry;
    expect(permissionChange.metadata).toMatchObject({ username: 'audited+builder', role: 'write', repo: 'svc/api', namespace: 'audited' });
    const bulk = logs.find((e) => e.kind === 'change_repo_permission' && e.metadata.repo === '*') as LogEntry;
    expect(bulk.metadata).toMatchObject({ username: 'eve', role: 'read', repositories: 1 });
    // Newest first.
    const times = logs.map((e) => Date.parse(e.datetime));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('filters by kind, performer, repository and time, and pages with next_page', async () => {
    await createOrg(inst, 'paged');
    const robot = await createRobot(inst, 'paged', 'puller');
    await pushImage(inst, 'paged/app', 'v1', inst.adminAuth);
    await pushImage(inst, 'paged/other', 'v1', inst.adminAuth);
    expect((await inst.api('PUT', '/repository/paged/app/permissions/user/paged+puller', { role: 'read' })).status).toBe(200);
    for (let i = 0; i < 5; i++) expect(await pullManifest(inst, 'paged/app', 'v1', robot.auth)).toBe(200);
    await waitForLogs(inst, 'paged', (logs) => logs.filter((e) => e.kind === 'pull_repo').length === 5);

    const pulls = await inst.api('GET', '/organization/paged/logs?kind=pull_repo');
    const pullLogs = (pulls.body as { logs: LogEntry[] }).logs;
    expect(pullLogs).toHaveLength(5);
    expect(pullLogs.every((e) => e.performer.name === 'paged+puller' && e.performer.kind === 'robot')).toBe(true);

    const two = await inst.api('GET', '/organization/paged/logs?kind=push_repo,create_robot');
    expect(new Set((two.body as { logs: LogEntry[] }).logs.map((e) => e.kind))).toEqual(new Set(['push_repo', 'create_robot']));

    const byRobot = await inst.api('GET', '/organization/paged/logs?performer=paged%2Bpuller');
    expect((byRobot.body as { logs: LogEntry[] }).logs).toHaveLength(5);

    const other = await inst.api('GET', '/organization/paged/logs?repository=other');
    expect((other.body as { logs: LogEntry[] }).logs.map((e) => e.kind)).toEqual(['push_repo']);

    const future = await inst.api('GET', `/organization/paged/logs?starttime=${Math.floor(Date.now() / 1000) + 3600}`);
    expect((future.body as { logs: LogEntry[] }).logs).toHaveLength(0);
    const today = new Date();
    const quayDay = `${today.getUTCMonth() + 1}/${today.getUTCDate()}/${today.getUTCFullYear()}`;
    const sameDay = await inst.api('GET', `/organization/paged/logs?starttime=${quayDay}&endtime=${quayDay}&kind=pull_repo`);
    expect((sameDay.body as { logs: LogEntry[] }).logs).toHaveLength(5);
    const past = await inst.api('GET', '/organization/paged/logs?starttime=2000-12-01T00:00:00Z&endtime=2001-01-01T00:00:00Z');
    expect((past.body as { logs: LogEntry[] }).logs).toHaveLength(0);
    // Without starttime the range starts a day ago (Quay), so an old endtime is before it.
    const beforeDefault = await inst.api('GET', '/organization/paged/logs?endtime=2001-01-01T00:00:00Z');
    expect(beforeDefault.status).toBe(400);
    expect(beforeDefault.body).toMatchObject({ detail: { field: 'endtime' } });

    // Paging: 2 + 2 + 1 pull entries, no overlap, then no next_page.
    const seen: string[] = [];
    let next: string | undefined;
    let pages = 0;
    do {
      const res = await inst.api('GET', `/organization/paged/logs?kind=pull_repo&limit=2${next ? `&next_page=${encodeURIComponent(next)}` : ''}`);
      expect(res.status).toBe(200);
      const body = res.body as { logs: LogEntry[]; next_page?: string };
      seen.push(...body.logs.map((e) => JSON.stringify(e)));
      next = body.next_page;
      pages++;
    } while (next && pages < 10);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(5);
  });

  it('exports CSV and serves a repository log to repository administrators only', async () => {
    await waitForLogs(inst, 'paged', (logs) => logs.some((e) => e.kind === 'pull_repo'));
    const res = await fetch(`${inst.url}/api/v1/organization/paged/logs?format=csv&kind=pull_repo`, { headers: { authorization: inst.adminAuth } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/csv/);
    const lines = (await res.text()).trim().split('\r\n');
    expect(lines[0]).toBe('datetime,kind,performer_kind,performer,ip,repository,user_agent,metadata');
    expect(lines).toHaveLength(6);
    expect(lines[1]).toContain('"pull_repo","robot","paged+puller"');

    const repoLog = await inst.api('GET', '/repository/paged/app/logs');
    expect(repoLog.status).toBe(200);
    const entries = (repoLog.body as { logs: LogEntry[] }).logs;
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((e) => e.repository === 'app')).toBe(true);

    const frank = await createUser(inst, 'frank');
    expect((await inst.api('GET', '/organization/paged/logs', undefined, frank)).status).toBe(403);
    expect((await inst.api('GET', '/repository/paged/app/logs', undefined, frank)).status).toBe(403);
    expect((await inst.api('GET', '/organization/paged/logs', undefined, '')).status).toBe(401);
    expect((await inst.api('PUT', '/repository/paged/app/permissions/user/frank', { role: 'admin' })).status).toBe(200);
    expect((await inst.api('GET', '/repository/paged/app/logs', undefined, frank)).status).toBe(200);
    expect((await inst.api('GET', '/organization/paged/logs', undefined, frank)).status).toBe(403);
    expect((await inst.api('GET', '/organization/nosuch/logs')).status).toBe(404);
  });
});
