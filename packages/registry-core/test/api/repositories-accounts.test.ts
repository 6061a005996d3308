import { createHash } from 'node:crypto';
import { ADMIN_USER, startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { createOrg, createUser, pullManifest, pushImage } from './api-helpers';

interface TagView {
  name: string;
  manifest_digest: string;
  size: number;
  last_modified: string;
  last_pulled: string | null;
  pull_count: number;
  pinned: boolean;
  is_manifest_list: boolean;
}

describe('repositories, tags and accounts', () => {
  let inst: TestInstance;

  beforeAll(async () => {
    inst = await startEntrepot();
    await createOrg(inst, 'shop');
  });

  afterAll(async () => {
    await inst?.stop();
  });

  it('lists tags with the size of their blobs, pull statistics and paging', async () => {
    const v1 = await pushImage(inst, 'shop/library/postgres', 'v1', inst.adminAuth);
    const v2 = await pushImage(inst, 'shop/library/postgres', 'v2', inst.adminAuth);
    const res = await inst.api('GET', '/repository/shop/library/postgres/tag/');
    expect(res.status).toBe(200);
    const body = res.body as { tags: TagView[]; page: number; has_additional: boolean };
    expect(body.page).toBe(1);
    expect(body.has_additional).toBe(false);
    expect(body.tags.map((t) => t.name)).toEqual(['v1', 'v2']);
    expect(body.tags[0]).toMatchObject({ manifest_digest: v1.digest, size: v1.size, pinned: false, is_manifest_list: false });
    expect(body.tags[1]).toMatchObject({ manifest_digest: v2.digest, size: v2.size });
    expect(Number.isNaN(Date.parse(body.tags[0].last_modified))).toBe(false);

    const page1 = await inst.api('GET', '/repository/shop/library/postgres/tag?limit=1');
    expect(page1.body).toMatchObject({ page: 1, has_additional: true, tags: [{ name: 'v1' }] });
    const page2 = await inst.api('GET', '/repository/shop/library/postgres/tag/?limit=1&page=2');
    expect(page2.body).toMatchObject({ page: 2, has_additional: false, tags: [{ name: 'v2' }] });
    const specific = await inst.api('GET', '/repository/shop/library/postgres/tag/?specificTag=v2');
    expect((specific.body as { tags: TagView[] }).tags.map((t) => t.name)).toEqual(['v2']);
  });

  it('sums the children of an index', async () => {
    const a = await pushImage(inst, 'shop/multi', 'amd64', inst.adminAuth);
    const b = await pushImage(inst, 'shop/multi', 'arm64', inst.adminAuth);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: a.digest, size: 1, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: b.digest, size: 1, platform: { os: 'linux', architecture: 'arm64' } },
        ],
      }),
    );
    const put = await fetch(`${inst.url}/v2/shop/multi/manifests/latest`, {
      method: 'PUT',
      headers: { authorization: inst.adminAuth, 'content-type': 'application/vnd.oci.image.index.v1+json' },
      body: index,
    });
    expect(put.status).toBe(201);
    const res = await inst.api('GET', '/repository/shop/multi/tag/?specificTag=latest');
    expect((res.body as { tags: TagView[] }).tags[0]).toMatchObject({
      name: 'latest',
      is_manifest_list: true,
      size: a.size + b.size,
      manifest_digest: `sha256:${createHash('sha256').update(index).digest('hex')}`,
    });
  });

  it('deletes a tag, and only with write access', async () => {
    await pushImage(inst, 'shop/deltag', 'gone', inst.adminAuth);
    await pushImage(inst, 'shop/deltag', 'kept', inst.adminAuth);
    const reader = await createUser(inst, 'reader');
    expect((await inst.api('PUT', '/repository/shop/deltag/permissions/user/reader', { role: 'read' })).status).toBe(200);
    expect((await inst.api('DELETE', '/repository/shop/deltag/tag/gone', undefined, reader)).status).toBe(403);
    expect((await inst.api('DELETE', '/repository/shop/deltag/tag/gone')).status).toBe(204);
    expect(await pullManifest(inst, 'shop/deltag', 'gone', inst.adminAuth)).toBe(404);
    expect(await pullManifest(inst, 'shop/deltag', 'kept', inst.adminAuth)).toBe(200);
    expect((await inst.api('DELETE', '/repository/shop/deltag/tag/gone')).status).toBe(404);
  });

  it('creates, describes, lists, changes and deletes repositories', async () => {
    const created = await inst.api('POST', '/repository', { namespace: 'shop', repository: 'apps/web', visibility: 'public', description: 'front end' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ namespace: 'shop', name: 'apps/web' });
    expect((await inst.api('POST', '/repository', { namespace: 'shop', repository: 'apps/web', visibility: 'public' })).status).toBe(409);
    const got = await inst.api('GET', '/repository/shop/apps/web');
    expect(got.body).toMatchObject({ namespace: 'shop', name: 'apps/web', is_public: true, description: 'front end', can_admin: true, can_write: true, tag_count: 0, size: 0 });
    // Public: anonymous may read it, not change it.
    expect((await inst.api('GET', '/repository/shop/apps/web', undefined, '')).status).toBe(200);
    expect((await inst.api('DELETE', '/repository/shop/apps/web', undefined, '')).status).toBe(401);
    expect((await inst.api('PUT', '/repository/shop/apps/web', { description: 'new' })).body).toMatchObject({ description: 'new' });

    const list = await inst.api('GET', '/repository?namespace=shop');
    expect(list.status).toBe(200);
    const repos = (list.body as { repositories: Array<{ name: string; is_public: boolean; size: number; last_modified: number | null }> }).repositories;
    expect(repos.map((r) => r.name)).toEqual([...repos.map((r) => r.name)].sort());
    expect(repos.find((r) => r.name === 'apps/web')).toMatchObject({ is_public: true, last_modified: null, size: 0 });
    const postgres = repos.find((r) => r.name === 'library/postgres');
    expect(postgres?.size).toBeGreaterThan(0);
    expect(postgres?.last_modified).toEqual(expect.any(Number));

    // Paging with next_page covers every repository once.
    const names: string[] = [];
    let next: string | undefined;
    do {
      const page = await inst.api('GET', `/repository?namespace=shop&limit=2${next ? `&next_page=${encodeURIComponent(next)}` : ''}`);
      const body = page.body as { repositories: Array<{ name: string }>; next_page?: string };
      names.push(...body.repositories.map((r) => r.name));
      next = body.next_page;
    } while (next);
    expect(names).toEqual(repos.map((r) => r.name));

    // Anonymous callers see only public repositories of a private organization; outsiders see those they were given.
    const anonymous = await inst.api('GET', '/repository?namespace=shop', undefined, '');
    expect((anonymous.body as { repositories: Array<{ name: string }> }).repositories.map((r) => r.name)).toEqual(['apps/web']);
    const outsider = await createUser(inst, 'outsider');
    expect((await inst.api('PUT', '/repository/shop/multi/permissions/user/outsider', { role: 'read' })).status).toBe(200);
    const seen = await inst.api('GET', '/repository?namespace=shop', undefined, outsider);
    expect((seen.body as { repositories: Array<{ name: string }> }).repositories.map((r) => r.name)).toEqual(['apps/web', 'multi']);

    expect((await inst.api('POST', '/repository/shop/apps/web/changevisibility', { visibility: 'private' })).status).toBe(200);
    expect((await inst.api('GET', '/repository/shop/apps/web', undefined, '')).status).toBe(401);
    expect((await inst.api('DELETE', '/repository/shop/apps/web')).status).toBe(204);
    expect((await inst.api('GET', '/repository/shop/apps/web')).status).toBe(404);
  });

  it('lets members create repositories but not administer the organization', async () => {
    const mia = await createUser(inst, 'mia');
    expect((await inst.api('POST', '/repository', { namespace: 'shop', repository: 'mine', visibility: 'private' }, mia)).status).toBe(403);
    expect((await inst.api('PUT', '/organization/shop/members/mia', { role: 'member' })).status).toBe(201);
    expect((await inst.api('POST', '/repository', { namespace: 'shop', repository: 'mine', visibility: 'private' }, mia)).status).toBe(201);
    expect((await inst.api('GET', '/repository/shop/library/postgres', undefined, mia)).status).toBe(200);
    expect((await inst.api('DELETE', '/repository/shop/library/postgres', undefined, mia)).status).toBe(403);
    expect((await inst.api('PUT', '/organization/shop', { is_public: true }, mia)).status).toBe(403);
    const org = await inst.api('GET', '/organization/shop', undefined, mia);
    expect(org.body).toMatchObject({ name: 'shop', is_admin: false, is_member: true, member_count: 2 });
    expect(org.body).not.toHaveProperty('email');
    const anonymous = await inst.api('GET', '/organization/shop', undefined, '');
    expect(anonymous.status).toBe(401);
  });

  it('manages organization members and keeps at least one administrator', async () => {
    await createOrg(inst, 'team');
    const nina = await createUser(inst, 'nina');
    expect((await inst.api('GET', '/organization/team', undefined, nina)).status).toBe(404);
    expect((await inst.api('PUT', '/organization/team/members/nina', { role: 'admin' })).status).toBe(201);
    const members = await inst.api('GET', '/organization/team/members', undefined, nina);
    expect(members.body).toEqual({ members: [{ name: ADMIN_USER, kind: 'user', role: 'admin' }, { name: 'nina', kind: 'user', role: 'admin' }] });
    expect((await inst.api('GET', '/organization/team/members/nina')).body).toMatchObject({ role: 'admin' });
    // nina, now admin, removes the bootstrap admin; then she cannot remove or demote herself.
    expect((await inst.api('DELETE', `/organization/team/members/${ADMIN_USER}`, undefined, nina)).status).toBe(204);
    expect((await inst.api('DELETE', '/organization/team/members/nina', undefined, nina)).status).toBe(409);
    expect((await inst.api('PUT', '/organization/team/members/nina', { role: 'member' }, nina)).status).toBe(409);
    const org = await inst.api('GET', '/organization/team', undefined, nina);
    expect(org.body).toMatchObject({ name: 'team', is_admin: true, member_count: 1, robot_count: 0, repository_count: 0 });
    // The superuser cannot delete a last administrator either, but can delete the organization.
    expect((await inst.api('DELETE', '/superuser/users/nina')).status).toBe(409);
    expect((await inst.api('DELETE', '/organization/team')).status).toBe(204);
    expect((await inst.api('DELETE', '/superuser/users/nina')).status).toBe(204);
    expect((await inst.api('GET', '/user/', undefined, nina)).status).toBe(401);
  });

  it('creates users as a superuser and shows the current user', async () => {
    const created = await inst.api('POST', '/superuser/users/', { username: 'gen', email: 'gen@example.com' });
    expect(created.status).toBe(201);
    const password = (created.body as { password: string }).password;
    expect(password.length).toBeGreaterThanOrEqual(16);
    const auth = `Basic ${Buffer.from(`gen:${password}`).toString('base64')}`;
    expect((await inst.api('PUT', '/organization/shop/members/gen', { role: 'member' })).status).toBe(201);
    const me = await inst.api('GET', '/user/', undefined, auth);
    expect(me.body).toMatchObject({ username: 'gen', email: 'gen@example.com', super_user: false, organizations: [{ name: 'shop', is_org_admin: false }] });
    const admin = await inst.api('GET', '/user/');
    expect(admin.body).toMatchObject({ username: ADMIN_USER, super_user: true });
    const users = await inst.api('GET', '/superuser/users/');
    expect((users.body as { users: Array<{ username: string }> }).users.map((u) => u.username)).toEqual(expect.arrayContaining([ADMIN_USER, 'gen']));
    expect((await inst.api('GET', '/superuser/users/', undefined, auth)).status).toBe(403);
    // A deleted user loses repository permissions and memberships with the account.
    expect((await inst.api('PUT', '/repository/shop/multi/permissions/user/gen', { role: 'write' })).status).toBe(200);
    const genId = Number((await inst.entrepot.services.db('users').where({ username: 'gen' }).first('id')).id);
    expect(await inst.entrepot.services.db('permissions').where({ subject_kind: 'user', subject_id: genId })).toHaveLength(1);
    expect((await inst.api('DELETE', '/superuser/users/gen')).status).toBe(204);
    expect(await inst.entrepot.services.db('permissions').where({ subject_kind: 'user', subject_id: genId })).toHaveLength(0);
    expect(await inst.entrepot.services.db('org_members').where({ user_id: genId })).toHaveLength(0);
    const perms = await inst.api('GET', '/repository/shop/multi/permissions/user/');
    expect((perms.body as { permissions: object }).permissions).not.toHaveProperty('gen');
  });
});
