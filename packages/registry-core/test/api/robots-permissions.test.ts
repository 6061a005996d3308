import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { basicAuth, createOrg, createRobot, createUser, pullManifest, pushImage, registryToken, tryPushBlob } from './api-helpers';

describe('robots and repository permissions', () => {
  let inst: TestInstance;

  beforeAll(async () => {
    inst = await startEntrepot();
    await createOrg(inst, 'orga');
    await createOrg(inst, 'orgb');
    await pushImage(inst, 'orga/app', 'v1', inst.adminAuth);
    await pushImage(inst, 'orgb/app', 'v1', inst.adminAuth);
  });

  afterAll(async () => {
    await inst?.stop();
  });

  describe('a robot of org A with read on A/app', () => {
    let robot: { name: string; token: string; auth: string };

    beforeAll(async () => {
      robot = await createRobot(inst, 'orga', 'reader');
      const res = await inst.api('PUT', '/repository/orga/app/permissions/user/orga+reader', { role: 'read' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ name: 'orga+reader', role: 'read', is_robot: true });
    });

    it('pulls with Basic credentials', async () => {
      expect(await pullManifest(inst, 'orga/app', 'v1', robot.auth)).toBe(200);
    });

    it('pulls through the /v2/auth token flow', async () => {
      const { status, token } = await registryToken(inst, 'repository:orga/app:pull', robot.auth);
      expect(status).toBe(200);
      expect(token).toEqual(expect.any(String));
      expect(await pullManifest(inst, 'orga/app', 'v1', `Bearer ${token}`)).toBe(200);
    });

    it('cannot push to A', async () => {
      expect(await tryPushBlob(inst, 'orga/app', robot.auth)).toBe(403);
      const { token } = await registryToken(inst, 'repository:orga/app:pull,push', robot.auth);
      expect(await tryPushBlob(inst, 'orga/app', `Bearer ${token}`)).toBe(403);
    });

    it('cannot pull from or push to org B', async () => {
      expect(await pullManifest(inst, 'orgb/app', 'v1', robot.auth)).toBe(403);
      expect(await tryPushBlob(inst, 'orgb/app', robot.auth)).toBe(403);
      const { token } = await registryToken(inst, 'repository:orgb/app:pull,push', robot.auth);
      expect(await pullManifest(inst, 'orgb/app', 'v1', `Bearer ${token}`)).toBe(403);
      expect(await tryPushBlob(inst, 'orgb/app', `Bearer ${token}`)).toBe(403);
    });

    it('is refused with a wrong token or a forged bearer token', async () => {
      expect(await pullManifest(inst, 'orga/app', 'v1', basicAuth(robot.name, `${robot.token}x`))).toBe(401);
      expect(await pullManifest(inst, 'orga/app', 'v1', basicAuth('orga+nosuchrobot', robot.token))).toBe(401);
      expect(await pullManifest(inst, 'orga/app', 'v1', 'Bearer not.a.jwt')).toBe(401);
      expect((await registryToken(inst, 'repository:orga/app:pull', basicAuth(robot.name, 'wrong'))).status).toBe(401);
    });

    it('cannot use account endpoints of the API', async () => {
      expect((await inst.api('GET', '/organization/orga/robots', undefined, robot.auth)).status).toBe(403);
      expect((await inst.api('PUT', '/repository/orga/app/permissions/user/orga+reader', { role: 'admin' }, robot.auth)).status).toBe(403);
      const me = await inst.api('GET', '/user/', undefined, robot.auth);
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({ username: 'orga+reader', is_robot: true });
    });
  });

  it('anonymous: 401 on private repositories, 200 on public ones', async () => {
    await pushImage(inst, 'orga/public-app', 'v1', inst.adminAuth);
    expect(await pullManifest(inst, 'orga/public-app', 'v1')).toBe(401);
    expect(await tryPushBlob(inst, 'orga/public-app')).toBe(401);
    const change = await inst.api('POST', '/repository/orga/public-app/changevisibility', { visibility: 'public' });
    expect(change.status).toBe(200);
    expect(await pullManifest(inst, 'orga/public-app', 'v1')).toBe(200);
    const { token } = await registryToken(inst, 'repository:orga/public-app:pull,push');
    expect(await pullManifest(inst, 'orga/public-app', 'v1', `Bearer ${token}`)).toBe(200);
    expect(await tryPushBlob(inst, 'orga/public-app', `Bearer ${token}`)).toBe(401);
    expect(await pullManifest(inst, 'orga/app', 'v1')).toBe(401);
    // And back to private.
    expect((await inst.api('POST', '/repository/orga/public-app/changevisibility', { visibility: 'private' })).status).toBe(200);
    expect(await pullManifest(inst, 'orga/public-app', 'v1')).toBe(401);
  });

  it('a public organization makes its repositories pullable anonymously unless a repository is private', async () => {
    await createOrg(inst, 'openorg');
    await pushImage(inst, 'openorg/tool', 'v1', inst.adminAuth);
    expect(await pullManifest(inst, 'openorg/tool', 'v1')).toBe(401);
    expect((await inst.api('PUT', '/organization/openorg', { is_public: true })).status).toBe(200);
    expect(await pullManifest(inst, 'openorg/tool', 'v1')).toBe(200);
    expect((await inst.api('POST', '/repository/openorg/tool/changevisibility', { visibility: 'private' })).status).toBe(200);
    expect(await pullManifest(inst, 'openorg/tool', 'v1')).toBe(401);
  });

  it('default permissions reach repositories created afterwards, by push and by the API', async () => {
    const robot = await createRobot(inst, 'orga', 'ci');
    expect(await pullManifest(inst, 'orga/later', 'v1', robot.auth)).toBe(403);
    const proto = await inst.api('POST', '/organization/orga/prototypes', { role: 'write', delegate: { kind: 'user', name: 'orga+ci' } });
    expect(proto.status).toBe(201);
    expect(proto.body).toMatchObject({ role: 'write', delegate: { name: 'orga+ci', is_robot: true, kind: 'user' } });
    // Existing repositories are not affected by a default permission.
    expect(await pullManifest(inst, 'orga/app', 'v1', robot.auth)).toBe(403);
    // The robot's write default lets it create a repository by pushing.
    await pushImage(inst, 'orga/later', 'v1', robot.auth);
    expect(await pullManifest(inst, 'orga/later', 'v1', robot.auth)).toBe(200);
    // A repository created by an administrator through the API gets it too.
    expect((await inst.api('POST', '/repository', { namespace: 'orga', repository: 'team/made-by-api', visibility: 'private' })).status).toBe(201);
    const perms = await inst.api('GET', '/repository/orga/team/made-by-api/permissions/user/');
    expect(perms.status).toBe(200);
    expect((perms.body as { permissions: Record<string, { role: string }> }).permissions['orga+ci']).toMatchObject({ role: 'write', is_robot: true });
    expect(await tryPushBlob(inst, 'orga/team/made-by-api', robot.auth)).toBe(201);
    // Kind 'robot' is accepted too; a user delegate as well.
    await createUser(inst, 'dora');
    const other = await inst.api('POST', '/organization/orga/prototypes', { role: 'read', delegate: { kind: 'user', name: 'dora' } });
    expect(other.status).toBe(201);
    const list = await inst.api('GET', '/organization/orga/prototypes');
    const prototypes = (list.body as { prototypes: Array<{ id: string; delegate: { name: string } }> }).prototypes;
    expect(prototypes.map((p) => p.delegate.name).sort()).toEqual(['dora', 'orga+ci']);
    // Deleting a default permission stops it applying.
    const doraId = prototypes.find((p) => p.delegate.name === 'dora')?.id;
    expect((await inst.api('DELETE', `/organization/orga/prototypes/${doraId}`)).status).toBe(204);
    expect((await inst.api('DELETE', `/organization/orga/prototypes/${doraId}`)).status).toBe(404);
    await pushImage(inst, 'orga/after-delete', 'v1', inst.adminAuth);
    const after = await inst.api('GET', '/repository/orga/after-delete/permissions/user/');
    expect(Object.keys((after.body as { permissions: object }).permissions)).toEqual(['orga+ci']);
  });

  it('rejects a default permission for a robot of another organization or an unknown account', async () => {
    await createRobot(inst, 'orgb', 'foreign');
    const foreign = await inst.api('POST', '/organization/orga/prototypes', { role: 'read', delegate: { kind: 'user', name: 'orgb+foreign' } });
    expect(foreign.status).toBe(400);
    expect(foreign.body).toMatchObject({ detail: { field: 'delegate.name' } });
    const unknown = await inst.api('POST', '/organization/orga/prototypes', { role: 'read', delegate: { kind: 'robot', name: 'orga+ghost' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ detail: { field: 'delegate.name' } });
  });

  it('the bulk grant reaches every repository that exists now, in one action', async () => {
    await createOrg(inst, 'bulk');
    const names = ['one', 'two', 'deep/three', 'deep/er/four'];
    for (const name of names) await pushImage(inst, `bulk/${name}`, 'v1', inst.adminAuth);
    const robot = await createRobot(inst, 'bulk', 'deployer');
    for (const name of names) expect(await pullManifest(inst, `bulk/${name}`, 'v1', robot.auth)).toBe(403);
    const grant = await inst.api('PUT', '/organization/bulk/permissions/user/bulk+deployer', { role: 'write' });
    expect(grant.status).toBe(200);
    expect(grant.body).toMatchObject({ repositories: names.length, role: 'write' });
    for (const name of names) {
      expect(await pullManifest(inst, `bulk/${name}`, 'v1', robot.auth)).toBe(200);
      expect(await tryPushBlob(inst, `bulk/${name}`, robot.auth)).toBe(201);
      const perms = await inst.api('GET', `/repository/bulk/${name}/permissions/user/bulk+deployer`);
      expect(perms.body).toMatchObject({ role: 'write' });
    }
    // Downgrade everywhere in one call.
    expect((await inst.api('PUT', '/organization/bulk/permissions/user/bulk+deployer', { role: 'read' })).body).toMatchObject({ repositories: names.length });
    for (const name of names) expect(await tryPushBlob(inst, `bulk/${name}`, robot.auth)).toBe(403);
    // A repository created afterwards is not covered (that is what default permissions are for).
    await pushImage(inst, 'bulk/five', 'v1', inst.adminAuth);
    expect(await pullManifest(inst, 'bulk/five', 'v1', robot.auth)).toBe(403);
  });

  it('grants repository permissions to users and lists, reads and deletes them', async () => {
    const carol = await createUser(inst, 'carol');
    expect(await pullManifest(inst, 'orga/app', 'v1', carol)).toBe(403);
    expect((await inst.api('PUT', '/repository/orga/app/permissions/user/carol', { role: 'admin' })).status).toBe(200);
    expect(await pullManifest(inst, 'orga/app', 'v1', carol)).toBe(200);
    // Repository admins manage the repository's permissions but not the organization.
    expect((await inst.api('GET', '/repository/orga/app/permissions/user/', undefined, carol)).status).toBe(200);
    expect((await inst.api('GET', '/organization/orga/robots', undefined, carol)).status).toBe(403);
    const list = await inst.api('GET', '/repository/orga/app/permissions/user/');
    expect((list.body as { permissions: Record<string, unknown> }).permissions).toMatchObject({
      carol: { role: 'admin', is_robot: false, is_org_member: false },
      'orga+reader': { role: 'read', is_robot: true },
    });
    expect((await inst.api('DELETE', '/repository/orga/app/permissions/user/carol')).status).toBe(204);
    expect((await inst.api('DELETE', '/repository/orga/app/permissions/user/carol')).status).toBe(404);
    expect(await pullManifest(inst, 'orga/app', 'v1', carol)).toBe(403);
    expect((await inst.api('GET', '/repository/orga/app/permissions/user/', undefined, carol)).status).toBe(403);
    // A robot of another organization cannot be given permissions here; unknown accounts are 404.
    const foreign = await inst.api('PUT', '/repository/orga/app/permissions/user/orgb+foreign', { role: 'read' });
    expect(foreign.status).toBe(400);
    expect((foreign.body as { error_message: string }).error_message).toMatch(/another organization/);
    expect((await inst.api('PUT', '/repository/orga/app/permissions/user/nobody', { role: 'read' })).status).toBe(404);
    expect((await inst.api('PUT', '/repository/orga/nothing-here/permissions/user/carol', { role: 'read' })).status).toBe(404);
    expect((await inst.api('PUT', '/repository/nosuchorg/app/permissions/user/carol', { role: 'read' })).status).toBe(404);
  });

  describe('robot tokens', () => {
    it('are shown to administrators unless they ask not to (Quay), never to other members', async () => {
      const created = await createRobot(inst, 'orga', 'viewer');
      const get = await inst.api('GET', '/organization/orga/robots/viewer');
      expect(get.status).toBe(200);
      expect(get.body).toMatchObject({ name: 'orga+viewer', description: 'robot viewer', token: created.token });
      const hidden = await inst.api('GET', '/organization/orga/robots/viewer?token=false');
      expect(hidden.body).not.toHaveProperty('token');
      const list = await inst.api('GET', '/organization/orga/robots?token=false');
      for (const r of (list.body as { robots: object[] }).robots) expect(r).not.toHaveProperty('token');
      expect((list.body as { robots: Array<{ name: string }> }).robots.map((r) => r.name)).toContain('orga+viewer');
      const listed = await inst.api('GET', '/organization/orga/robots');
      expect((listed.body as { robots: Array<{ name: string; token: string }> }).robots.find((r) => r.name === 'orga+viewer')?.token).toBe(created.token);
      // A member who is not an administrator lists robots by name, without tokens, and cannot read one robot.
      const member = await createUser(inst, 'member1');
      expect((await inst.api('PUT', '/organization/orga/members/member1', { role: 'member' })).status).toBe(201);
      const memberList = await inst.api('GET', '/organization/orga/robots?token=true&permissions=true', undefined, member);
      expect(memberList.status).toBe(200);
      const memberRobots = (memberList.body as { robots: Array<Record<string, unknown>> }).robots;
      expect(memberRobots.map((r) => r.name)).toContain('orga+viewer');
      for (const r of memberRobots) {
        expect(r).not.toHaveProperty('token');
        expect(r).not.toHaveProperty('repositories');
      }
      expect(JSON.stringify(memberList.body)).not.toContain(created.token);
      expect((await inst.api('GET', '/organization/orga/robots/viewer?token=true', undefined, member)).status).toBe(403);
      expect((await inst.api('GET', '/organization/orga/robots/viewer?token=true', undefined, '')).status).toBe(401);
    });

    it('are stored hashed and sealed, never in clear', async () => {
      const created = await createRobot(inst, 'orga', 'stored');
      const row = await inst.entrepot.services.db('robots').where({ short_name: 'stored' }).first();
      expect(JSON.stringify(row)).not.toContain(created.token);
      expect(row.token_hash).toMatch(/^[0-9a-f]{64}$/);
    });

    it('stop working when regenerated or deleted', async () => {
      const robot = await createRobot(inst, 'orga', 'rotated');
      expect((await inst.api('PUT', '/repository/orga/app/permissions/user/orga+rotated', { role: 'read' })).status).toBe(200);
      expect(await pullManifest(inst, 'orga/app', 'v1', robot.auth)).toBe(200);
      const regen = await inst.api('POST', '/organization/orga/robots/rotated/regenerate');
      expect(regen.status).toBe(200);
      const token = (regen.body as { token: string }).token;
      expect(token).not.toBe(robot.token);
      expect(await pullManifest(inst, 'orga/app', 'v1', robot.auth)).toBe(401);
      expect(await pullManifest(inst, 'orga/app', 'v1', basicAuth('orga+rotated', token))).toBe(200);
      expect((await inst.api('DELETE', '/organization/orga/robots/rotated')).status).toBe(204);
      expect(await pullManifest(inst, 'orga/app', 'v1', basicAuth('orga+rotated', token))).toBe(401);
      expect((await inst.api('GET', '/organization/orga/robots/rotated')).status).toBe(404);
      // Its permissions went with it: a new robot of the same name starts with none.
      const again = await createRobot(inst, 'orga', 'rotated');
      expect(await pullManifest(inst, 'orga/app', 'v1', again.auth)).toBe(403);
      const perms = await inst.api('GET', '/repository/orga/app/permissions/user/');
      expect((perms.body as { permissions: Record<string, unknown> }).permissions).not.toHaveProperty('orga+rotated');
    });

    it('cannot be created twice', async () => {
      await createRobot(inst, 'orga', 'twice');
      expect((await inst.api('PUT', '/organization/orga/robots/twice', {})).status).toBe(409);
    });
  });
});
