/**
 * How robots, users and anonymous clients reach the registry (/v2) under the
 * permissions the API sets: Basic credentials and the /v2/auth token flow.
 */
import { createHash } from 'node:crypto';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { createOrg, createRobot, createUser, pullManifest, pushImage, registryToken, tryPushBlob } from '../api/api-helpers';

describe('registry access under API-managed permissions', () => {
  let inst: TestInstance;

  beforeAll(async () => {
    inst = await startEntrepot();
    await createOrg(inst, 'alpha');
    await createOrg(inst, 'beta');
    await pushImage(inst, 'alpha/svc/api', 'v1', inst.adminAuth);
    await pushImage(inst, 'beta/svc/api', 'v1', inst.adminAuth);
  });

  afterAll(async () => {
    await inst?.stop();
  });

  it.each([
    ['read', { pull: 200, push: 403 }],
    ['write', { pull: 200, push: 201 }],
    ['admin', { pull: 200, push: 201 }],
  ] as const)('a robot with %s on a repository', async (role, expected) => {
    const robot = await createRobot(inst, 'alpha', `r_${role}`);
    expect((await inst.api('PUT', `/repository/alpha/svc/api/permissions/user/${robot.name}`, { role })).status).toBe(200);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', robot.auth)).toBe(expected.pull);
    expect(await tryPushBlob(inst, 'alpha/svc/api', robot.auth)).toBe(expected.push);
    const { token } = await registryToken(inst, 'repository:alpha/svc/api:pull,push', robot.auth);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', `Bearer ${token}`)).toBe(expected.pull);
    expect(await tryPushBlob(inst, 'alpha/svc/api', `Bearer ${token}`)).toBe(expected.push);
    // Never anything in the other organization, whatever the role.
    expect(await pullManifest(inst, 'beta/svc/api', 'v1', robot.auth)).toBe(403);
    expect(await tryPushBlob(inst, 'beta/svc/api', robot.auth)).toBe(403);
  });

  it('mounts a blob from another repository only when the caller may pull it there', async () => {
    const blob = async (name: string, text: string): Promise<string> => {
      const data = Buffer.from(`${text} ${Math.random()}`);
      const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
      const res = await fetch(`${inst.url}/v2/${name}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { authorization: inst.adminAuth, 'content-type': 'application/octet-stream' }, body: data });
      expect(res.status).toBe(201);
      return digest;
    };
    await pushImage(inst, 'alpha/svc/target', 'v1', inst.adminAuth);
    const readable = await blob('alpha/svc/api', 'readable');
    const secret = await blob('beta/svc/api', 'secret');
    const robot = await createRobot(inst, 'alpha', 'mounter');
    expect((await inst.api('PUT', `/repository/alpha/svc/target/permissions/user/${robot.name}`, { role: 'write' })).status).toBe(200);
    expect((await inst.api('PUT', `/repository/alpha/svc/api/permissions/user/${robot.name}`, { role: 'read' })).status).toBe(200);
    const mount = async (digest: string, from: string): Promise<number> => {
      const res = await fetch(`${inst.url}/v2/alpha/svc/target/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST', headers: { authorization: robot.auth } });
      await res.arrayBuffer();
      return res.status;
    };
    const blobStatus = async (digest: string): Promise<number> => {
      const res = await fetch(`${inst.url}/v2/alpha/svc/target/blobs/${digest}`, { headers: { authorization: robot.auth } });
      await res.arrayBuffer();
      return res.status;
    };

    expect(await mount(readable, 'alpha/svc/api')).toBe(201);
    expect(await blobStatus(readable)).toBe(200);
    // Not readable by the robot, not in the named repository, or no such repository: an ordinary upload session instead.
    expect(await mount(secret, 'beta/svc/api')).toBe(202);
    expect(await mount(secret, 'alpha/svc/api')).toBe(202);
    expect(await mount(readable, 'alpha/svc/none')).toBe(202);
    expect(await blobStatus(secret)).toBe(404);
  });

  it('a bearer token never grants more than was asked for', async () => {
    const robot = await createRobot(inst, 'alpha', 'scoped');
    expect((await inst.api('PUT', '/repository/alpha/svc/api/permissions/user/alpha+scoped', { role: 'write' })).status).toBe(200);
    const pullOnly = await registryToken(inst, 'repository:alpha/svc/api:pull', robot.auth);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', `Bearer ${pullOnly.token}`)).toBe(200);
    expect(await tryPushBlob(inst, 'alpha/svc/api', `Bearer ${pullOnly.token}`)).toBe(403);
    const otherRepo = await registryToken(inst, 'repository:alpha/other:pull', robot.auth);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', `Bearer ${otherRepo.token}`)).toBe(403);
  });

  it('a token stops working for a repository once the permission is removed', async () => {
    const robot = await createRobot(inst, 'alpha', 'revoked');
    expect((await inst.api('PUT', '/repository/alpha/svc/api/permissions/user/alpha+revoked', { role: 'read' })).status).toBe(200);
    const { token } = await registryToken(inst, 'repository:alpha/svc/api:pull', robot.auth);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', `Bearer ${token}`)).toBe(200);
    expect((await inst.api('DELETE', '/repository/alpha/svc/api/permissions/user/alpha+revoked')).status).toBe(204);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', `Bearer ${token}`)).toBe(403);
  });

  it('users: organization members pull everything, outsiders only what they were given', async () => {
    const member = await createUser(inst, 'member');
    const outsider = await createUser(inst, 'outsider');
    expect((await inst.api('PUT', '/organization/alpha/members/member', { role: 'member' })).status).toBe(201);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', member)).toBe(200);
    expect(await tryPushBlob(inst, 'alpha/svc/api', member)).toBe(403);
    expect(await tryPushBlob(inst, 'alpha/new/repo', member)).toBe(201);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', outsider)).toBe(403);
    expect((await inst.api('PUT', '/repository/alpha/svc/api/permissions/user/outsider', { role: 'read' })).status).toBe(200);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', outsider)).toBe(200);
    expect(await pullManifest(inst, 'beta/svc/api', 'v1', outsider)).toBe(403);
    // Removing the membership removes the access.
    expect((await inst.api('DELETE', '/organization/alpha/members/member')).status).toBe(204);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', member)).toBe(403);
  });

  it('anonymous clients: 401 with a challenge on private content, 200 on public', async () => {
    const res = await fetch(`${inst.url}/v2/alpha/svc/api/manifests/v1`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm=".*\/v2\/auth"/);
    expect(res.headers.get('www-authenticate')).not.toContain('error=');
    const anonymousToken = await registryToken(inst, 'repository:alpha/svc/api:pull');
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', `Bearer ${anonymousToken.token}`)).toBe(401);
    // A token that does not cover the request: RFC 6750's insufficient_scope (Docker then says "pull access denied").
    const withToken = await fetch(`${inst.url}/v2/alpha/svc/api/manifests/v1`, { headers: { authorization: `Bearer ${anonymousToken.token}` } });
    expect(withToken.status).toBe(401);
    expect(withToken.headers.get('www-authenticate')).toMatch(/,scope="repository:alpha\/svc\/api:pull",error="insufficient_scope"$/);
    expect((await inst.api('POST', '/repository/alpha/svc/api/changevisibility', { visibility: 'public' })).status).toBe(200);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1')).toBe(200);
    expect(await pullManifest(inst, 'alpha/svc/api', 'v1', `Bearer ${anonymousToken.token}`)).toBe(200);
    expect(await tryPushBlob(inst, 'alpha/svc/api')).toBe(401);
  });
});
