/**
 * Quay's teams on a cache organization: a robot in a team granted read on all
 * current and future repositories pulls a repository that was never cached
 * (skopeo), and loses access when it leaves the team. A user in a team with the
 * `admin` role administers the organization.
 */
import { join } from 'node:path';
import { basicAuth } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage, skopeoCopyOut } from '../../../../testing/oci-images';
import { startCacheFixture, type CacheFixture } from './cache-fixture';

describe('team permissions on a cache organization', () => {
  let fx: CacheFixture;
  const pushed: Record<string, string> = {};
  let robot = { name: '', token: '' };
  const call = (method: string, path: string, body?: unknown, auth?: string) => fx.entrepot.api(method, path, body, auth);

  beforeAll(async () => {
    fx = await startCacheFixture({ auth: { mode: 'anonymous' } });
    for (const name of ['app', 'tool']) {
      const image = await createOciImage(join(fx.work, name), { tag: '1', layerCount: 1, layerSize: 100_000 });
      pushed[name] = await pushImage(image.layoutDir, '1', fx.upstream.ref(`library/${name}`, '1'));
    }
    await fx.createCacheOrg('teamcache', { expiration_s: 3600 });
    const created = await call('PUT', '/organization/teamcache/robots/puller', { description: 'CI pulls' });
    expect(created.status).toBe(201);
    robot = created.body as { name: string; token: string };
  }, 120_000);

  afterAll(() => fx?.stop());

  const pull = (name: string, creds: string) => skopeoCopyOut(`${fx.entrepot.host}/teamcache/library/${name}:1`, join(fx.work, `out-${name}-${Math.random()}`), { creds });

  it('without a team the robot cannot pull a repository that was never cached', async () => {
    await expect(pull('app', `${robot.name}:${robot.token}`)).rejects.toThrow();
  }, 60_000);

  it('a team with read on all current and future repositories is one action, and its robot pulls an uncached repository', async () => {
    const team = await call('PUT', '/organization/teamcache/team/readers', { role: 'member', description: 'pull everything' });
    expect(team.status).toBe(200);
    expect(team.body).toMatchObject({ name: 'readers', role: 'member', member_count: 0 });
    expect((await call('PUT', `/organization/teamcache/team/readers/members/${robot.name}`)).status).toBe(200);
    const grant = await call('PUT', '/organization/teamcache/permissions/team/readers', { role: 'read' });
    expect(grant.status).toBe(200);
    expect(grant.body).toMatchObject({ name: 'readers', role: 'read', repositories: 0, future_repositories: true });

    expect(await pull('app', `${robot.name}:${robot.token}`)).toBe(pushed.app);

    const perms = await call('GET', '/organization/teamcache/team/readers/permissions');
    expect(perms.body).toEqual({ permissions: [{ repository: { name: 'library/app', is_public: false }, role: 'read' }] });
    const robots = await call('GET', '/organization/teamcache/robots?permissions=true&token=false');
    expect((robots.body as { robots: Array<{ name: string; teams: unknown }> }).robots.find((r) => r.name === robot.name)?.teams).toEqual([{ name: 'readers' }]);
    const members = await call('GET', '/organization/teamcache/team/readers/members');
    expect(members.body).toMatchObject({ members: [{ name: robot.name, is_robot: true }] });
    const prototypes = await call('GET', '/organization/teamcache/prototypes');
    expect((prototypes.body as { prototypes: Array<{ delegate: unknown; role: string }> }).prototypes).toEqual([expect.objectContaining({ role: 'read', delegate: { name: 'readers', kind: 'team' } })]);
    const org = await call('GET', '/organization/teamcache');
    expect(org.body).toMatchObject({ ordered_teams: ['readers'], teams: { readers: { role: 'member', member_count: 1, repo_count: 1 } } });
  }, 120_000);

  it('loses access to cached and uncached repositories when removed from the team', async () => {
    expect((await call('DELETE', `/organization/teamcache/team/readers/members/${robot.name}`)).status).toBe(204);
    await expect(pull('app', `${robot.name}:${robot.token}`)).rejects.toThrow();
    await expect(pull('tool', `${robot.name}:${robot.token}`)).rejects.toThrow();
    const res = await fetch(`${fx.entrepot.url}/v2/teamcache/library/app/manifests/1`, { headers: { authorization: basicAuth(robot.name, robot.token), accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(res.status).toBe(403);
  }, 120_000);

  it("a team's admin role makes its users administrators of the organization, on /api/v1", async () => {
    expect((await call('POST', '/superuser/users/', { username: 'tina', password: 'tina-password-1' })).status).toBe(201);
    const tina = basicAuth('tina', 'tina-password-1');
    expect((await call('GET', '/organization/teamcache/members', undefined, tina)).status).toBe(403);
    expect((await call('PUT', '/organization/teamcache/team/owners', { role: 'admin' })).status).toBe(200);
    expect((await call('PUT', '/organization/teamcache/team/owners/members/tina')).status).toBe(200);
    expect((await call('GET', '/organization/teamcache/members', undefined, tina)).status).toBe(200);
    expect(await pull('tool', 'tina:tina-password-1')).toBe(pushed.tool);
    expect((await call('DELETE', '/organization/teamcache/team/owners')).status).toBe(204);
    expect((await call('GET', '/organization/teamcache/members', undefined, tina)).status).toBe(403);
  }, 120_000);

  it("a team's role on one repository lets its robot pull that repository only, until the grant is removed", async () => {
    expect((await call('PUT', '/organization/teamcache/team/apppullers', { role: 'member' })).status).toBe(200);
    expect((await call('PUT', `/organization/teamcache/team/apppullers/members/${robot.name}`)).status).toBe(200);
    await expect(pull('app', `${robot.name}:${robot.token}`)).rejects.toThrow();

    const grant = await call('PUT', '/repository/teamcache/library/app/permissions/team/apppullers', { role: 'read' });
    expect(grant.status).toBe(200);
    expect(grant.body).toEqual({ name: 'apppullers', role: 'read' });
    expect((await call('GET', '/repository/teamcache/library/app/permissions/team/apppullers')).body).toEqual({ name: 'apppullers', role: 'read' });
    const list = await call('GET', '/repository/teamcache/library/app/permissions/team/');
    expect((list.body as { permissions: Record<string, unknown> }).permissions.apppullers).toEqual({ name: 'apppullers', role: 'read' });

    expect(await pull('app', `${robot.name}:${robot.token}`)).toBe(pushed.app);
    await expect(pull('tool', `${robot.name}:${robot.token}`)).rejects.toThrow();
    // The robot reads the repository on /api/v1 too, but may not administer it.
    const robotAuth = basicAuth(robot.name, robot.token);
    expect((await call('GET', '/repository/teamcache/library/app/permissions/team/', undefined, robotAuth)).status).toBe(403);

    expect((await call('DELETE', '/repository/teamcache/library/app/permissions/team/apppullers')).status).toBe(204);
    expect((await call('GET', '/repository/teamcache/library/app/permissions/team/apppullers')).status).toBe(404);
    await expect(pull('app', `${robot.name}:${robot.token}`)).rejects.toThrow();
    const logs = await call('GET', '/repository/teamcache/library/app/logs');
    const kinds = (logs.body as { logs: Array<{ kind: string; metadata: { team?: string } }> }).logs.filter((l) => l.metadata.team === 'apppullers').map((l) => l.kind);
    expect(kinds).toEqual(expect.arrayContaining(['change_repo_permission', 'delete_repo_permission']));
  }, 120_000);

  it('refuses team grants on repositories for unknown teams, bad names and bad roles', async () => {
    expect((await call('PUT', '/repository/teamcache/library/app/permissions/team/ghosts', { role: 'read' })).status).toBe(404);
    expect((await call('PUT', '/repository/teamcache/library/app/permissions/team/Bad%20Name', { role: 'read' })).status).toBe(400);
    expect((await call('PUT', '/repository/teamcache/library/app/permissions/team/apppullers', { role: 'owner' })).status).toBe(400);
    expect((await call('DELETE', '/repository/teamcache/library/app/permissions/team/apppullers')).status).toBe(404);
  });

  it('refuses bad team names, roles and unknown members', async () => {
    expect((await call('PUT', '/organization/teamcache/team/Bad Name', { role: 'member' })).status).toBe(400);
    expect((await call('PUT', '/organization/teamcache/team/readers', { role: 'owner' })).status).toBe(400);
    expect((await call('PUT', '/organization/teamcache/team/readers/members/nobody')).status).toBe(404);
    expect((await call('PUT', '/organization/teamcache/team/ghosts/members/tina')).status).toBe(404);
    expect((await call('POST', '/organization/teamcache/prototypes', { role: 'read', delegate: { kind: 'team', name: 'ghosts' } })).status).toBe(400);
  });
});
