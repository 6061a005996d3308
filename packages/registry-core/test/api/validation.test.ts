import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { createOrg, createRobot, createUser, pushImage, rawRequest } from './api-helpers';

interface Case {
  name: string;
  method: string;
  path: string;
  /** A string is sent verbatim (malformed JSON); anything else as JSON. */
  body?: unknown;
  status: number;
  /** The field the error must name (`detail.field` and the start of `error_message`). */
  field?: string;
  auth?: 'admin' | 'user' | 'none';
}

const UNKNOWN_UUID = '00000000-0000-4000-8000-000000000000';

const cases: Case[] = [
  // Malformed JSON and wrong body shapes
  { name: 'truncated JSON', method: 'POST', path: '/organization/', body: '{"name":', status: 400 },
  { name: 'JSON null body', method: 'POST', path: '/organization/', body: 'null', status: 400 },
  { name: 'array body', method: 'POST', path: '/organization/', body: [], status: 400, field: '(body)' },
  { name: 'robot with broken JSON', method: 'PUT', path: '/organization/valorg/robots/newbot', body: '{description: x}', status: 400 },
  // Organizations
  { name: 'org name of wrong type', method: 'POST', path: '/organization/', body: { name: 5 }, status: 400, field: 'name' },
  { name: 'org name missing', method: 'POST', path: '/organization/', body: {}, status: 400, field: 'name' },
  { name: 'org name with capitals and spaces', method: 'POST', path: '/organization/', body: { name: 'Bad Name' }, status: 400, field: 'name' },
  { name: 'org name too short', method: 'POST', path: '/organization/', body: { name: 'x' }, status: 400, field: 'name' },
  { name: 'org name too long', method: 'POST', path: '/organization/', body: { name: 'a'.repeat(300) }, status: 400, field: 'name' },
  { name: 'org name ending in a separator', method: 'POST', path: '/organization/', body: { name: 'trailing_' }, status: 400, field: 'name' },
  { name: 'org is_public as a string', method: 'POST', path: '/organization/', body: { name: 'okname', is_public: 'yes' }, status: 400, field: 'is_public' },
  { name: 'org unknown field', method: 'POST', path: '/organization/', body: { name: 'okname', plan: 'gold' }, status: 400, field: 'plan' },
  { name: 'org bad email', method: 'POST', path: '/organization/', body: { name: 'okname', email: 'not-an-email' }, status: 400, field: 'email' },
  { name: 'org name taken by a user', method: 'POST', path: '/organization/', body: { name: 'valuser' }, status: 400 },
  { name: 'org already exists', method: 'POST', path: '/organization/', body: { name: 'valorg' }, status: 400 },
  { name: 'org change with wrong type', method: 'PUT', path: '/organization/valorg', body: { is_public: 'true' }, status: 400, field: 'is_public' },
  { name: 'org change unknown field', method: 'PUT', path: '/organization/valorg', body: { tag_expiration_s: 5 }, status: 400, field: 'tag_expiration_s' },
  { name: 'unknown org', method: 'GET', path: '/organization/nosuchorg', status: 404 },
  { name: 'change unknown org', method: 'PUT', path: '/organization/nosuchorg', body: { is_public: true }, status: 404 },
  // Members
  { name: 'member role invalid', method: 'PUT', path: '/organization/valorg/members/valuser', body: { role: 'owner' }, status: 400, field: 'role' },
  { name: 'member role missing', method: 'PUT', path: '/organization/valorg/members/valuser', body: {}, status: 400, field: 'role' },
  { name: 'member unknown user', method: 'PUT', path: '/organization/valorg/members/nobody', body: { role: 'member' }, status: 404 },
  { name: 'remove non-member', method: 'DELETE', path: '/organization/valorg/members/valuser', status: 404 },
  { name: 'remove last admin', method: 'DELETE', path: '/organization/valorg/members/admin', status: 409 },
  // Robots
  { name: 'robot name with capitals', method: 'PUT', path: '/organization/valorg/robots/BadName', body: {}, status: 400, field: 'robot_shortname' },
  { name: 'robot name too short', method: 'PUT', path: '/organization/valorg/robots/a', body: {}, status: 400, field: 'robot_shortname' },
  { name: 'robot name starting with a digit', method: 'PUT', path: '/organization/valorg/robots/1bot', body: {}, status: 400, field: 'robot_shortname' },
  { name: 'robot full name too long', method: 'PUT', path: `/organization/valorg/robots/r${'x'.repeat(250)}`, body: {}, status: 400, field: 'robot_shortname' },
  { name: 'robot name with a plus', method: 'PUT', path: '/organization/valorg/robots/a+b', body: {}, status: 400, field: 'robot_shortname' },
  { name: 'robot description of wrong type', method: 'PUT', path: '/organization/valorg/robots/newbot', body: { description: 5 }, status: 400, field: 'description' },
  { name: 'robot description too long', method: 'PUT', path: '/organization/valorg/robots/newbot', body: { description: 'x'.repeat(2000) }, status: 400, field: 'description' },
  { name: 'robot token cannot be chosen', method: 'PUT', path: '/organization/valorg/robots/newbot', body: { token: 'mine' }, status: 400, field: 'token' },
  { name: 'robot of unknown org', method: 'PUT', path: '/organization/nosuchorg/robots/newbot', body: {}, status: 404 },
  { name: 'unknown robot', method: 'GET', path: '/organization/valorg/robots/ghost', status: 404 },
  { name: 'robot token flag invalid', method: 'GET', path: '/organization/valorg/robots/valbot?token=yes', status: 400, field: 'token' },
  { name: 'robot token flag repeated', method: 'GET', path: '/organization/valorg/robots?token=true&token=false', status: 400, field: 'token' },
  { name: 'regenerate unknown robot', method: 'POST', path: '/organization/valorg/robots/ghost/regenerate', status: 404 },
  // Repository permissions
  { name: 'permission role invalid', method: 'PUT', path: '/repository/valorg/app/permissions/user/valuser', body: { role: 'owner' }, status: 400, field: 'role' },
  { name: 'permission role as array', method: 'PUT', path: '/repository/valorg/app/permissions/user/valuser', body: { role: ['read'] }, status: 400, field: 'role' },
  { name: 'permission role missing', method: 'PUT', path: '/repository/valorg/app/permissions/user/valuser', body: {}, status: 400, field: 'role' },
  { name: 'permission unknown field', method: 'PUT', path: '/repository/valorg/app/permissions/user/valuser', body: { role: 'read', expires: 1 }, status: 400, field: 'expires' },
  { name: 'permission bad account name', method: 'PUT', path: '/repository/valorg/app/permissions/user/Bad!Name', body: { role: 'read' }, status: 400, field: 'username' },
  { name: 'permission bad robot name', method: 'PUT', path: '/repository/valorg/app/permissions/user/valorg+X', body: { role: 'read' }, status: 400, field: 'username' },
  { name: 'permission unknown user', method: 'PUT', path: '/repository/valorg/app/permissions/user/nobody', body: { role: 'read' }, status: 404 },
  { name: 'permission unknown robot', method: 'PUT', path: '/repository/valorg/app/permissions/user/valorg+ghost', body: { role: 'read' }, status: 404 },
  { name: 'permission foreign robot', method: 'PUT', path: '/repository/valorg/app/permissions/user/otherorg+valbot', body: { role: 'read' }, status: 400, field: 'username' },
  { name: 'permission unknown repository', method: 'PUT', path: '/repository/valorg/nothing/permissions/user/valuser', body: { role: 'read' }, status: 404 },
  { name: 'permission unknown org', method: 'GET', path: '/repository/nosuchorg/app/permissions/user/', status: 404 },
  { name: 'delete absent permission', method: 'DELETE', path: '/repository/valorg/app/permissions/user/valuser', status: 404 },
  { name: 'bulk grant role invalid', method: 'PUT', path: '/organization/valorg/permissions/user/valuser', body: { role: 'superuser' }, status: 400, field: 'role' },
  { name: 'bulk grant unknown robot', method: 'PUT', path: '/organization/valorg/permissions/user/valorg+ghost', body: { role: 'read' }, status: 404 },
  { name: 'bulk grant unknown org', method: 'PUT', path: '/organization/nosuchorg/permissions/user/valuser', body: { role: 'read' }, status: 404 },
  // Default permissions
  { name: 'prototype without delegate', method: 'POST', path: '/organization/valorg/prototypes', body: { role: 'read' }, status: 400, field: 'delegate' },
  { name: 'prototype delegate of an unknown team', method: 'POST', path: '/organization/valorg/prototypes', body: { role: 'read', delegate: { kind: 'team', name: 'owners' } }, status: 400, field: 'delegate.name' },
  { name: 'prototype delegate without name', method: 'POST', path: '/organization/valorg/prototypes', body: { role: 'read', delegate: { kind: 'user' } }, status: 400, field: 'delegate.name' },
  { name: 'prototype delegate name of wrong type', method: 'POST', path: '/organization/valorg/prototypes', body: { role: 'read', delegate: { kind: 'user', name: 7 } }, status: 400, field: 'delegate.name' },
  { name: 'prototype unknown delegate', method: 'POST', path: '/organization/valorg/prototypes', body: { role: 'read', delegate: { kind: 'user', name: 'nobody' } }, status: 400, field: 'delegate.name' },
  { name: 'prototype robot kind without robot name', method: 'POST', path: '/organization/valorg/prototypes', body: { role: 'read', delegate: { kind: 'robot', name: 'valuser' } }, status: 400, field: 'delegate.name' },
  { name: 'prototype activating user', method: 'POST', path: '/organization/valorg/prototypes', body: { role: 'read', delegate: { kind: 'user', name: 'valuser' }, activating_user: { name: 'x' } }, status: 400, field: 'activating_user' },
  { name: 'prototype role invalid', method: 'POST', path: '/organization/valorg/prototypes', body: { role: 'owner', delegate: { kind: 'user', name: 'valuser' } }, status: 400, field: 'role' },
  { name: 'prototype id not a uuid', method: 'DELETE', path: '/organization/valorg/prototypes/not-a-uuid', status: 400, field: 'prototypeid' },
  { name: 'prototype unknown id', method: 'DELETE', path: `/organization/valorg/prototypes/${UNKNOWN_UUID}`, status: 404 },
  { name: 'prototype change unknown id', method: 'PUT', path: `/organization/valorg/prototypes/${UNKNOWN_UUID}`, body: { role: 'read' }, status: 404 },
  // Repositories and tags
  { name: 'repo name with capitals', method: 'POST', path: '/repository', body: { namespace: 'valorg', repository: 'UPPER', visibility: 'private' }, status: 400, field: 'repository' },
  { name: 'repo name with ..', method: 'POST', path: '/repository', body: { namespace: 'valorg', repository: 'a/../b', visibility: 'private' }, status: 400, field: 'repository' },
  { name: 'repo name with empty component', method: 'POST', path: '/repository', body: { namespace: 'valorg', repository: 'a//b', visibility: 'private' }, status: 400, field: 'repository' },
  { name: 'repo visibility invalid', method: 'POST', path: '/repository', body: { namespace: 'valorg', repository: 'app2', visibility: 'secret' }, status: 400, field: 'visibility' },
  { name: 'repo visibility missing', method: 'POST', path: '/repository', body: { namespace: 'valorg', repository: 'app2' }, status: 400, field: 'visibility' },
  { name: 'repo unknown field', method: 'POST', path: '/repository', body: { namespace: 'valorg', repository: 'app2', visibility: 'private', trust: true }, status: 400, field: 'trust' },
  { name: 'repo unknown namespace', method: 'POST', path: '/repository', body: { namespace: 'nosuchorg', repository: 'app2', visibility: 'private' }, status: 404 },
  { name: 'repo already exists', method: 'POST', path: '/repository', body: { namespace: 'valorg', repository: 'app', visibility: 'private' }, status: 409 },
  { name: 'repo list without namespace', method: 'GET', path: '/repository', status: 400, field: 'namespace' },
  { name: 'repo list unknown namespace', method: 'GET', path: '/repository?namespace=nosuchorg', status: 404 },
  { name: 'repo list limit zero', method: 'GET', path: '/repository?namespace=valorg&limit=0', status: 400, field: 'limit' },
  { name: 'repo list bad page token', method: 'GET', path: '/repository?namespace=valorg&next_page=garbage', status: 400, field: 'next_page' },
  { name: 'visibility of wrong type', method: 'POST', path: '/repository/valorg/app/changevisibility', body: { visibility: true }, status: 400, field: 'visibility' },
  { name: 'description of wrong type', method: 'PUT', path: '/repository/valorg/app', body: { description: 1 }, status: 400, field: 'description' },
  { name: 'unknown repository', method: 'GET', path: '/repository/valorg/nosuch', status: 404 },
  { name: 'unknown repository org', method: 'GET', path: '/repository/nosuchorg/app', status: 404 },
  { name: 'invalid repository name', method: 'GET', path: '/repository/valorg/UPPER', status: 404 },
  { name: 'unsupported method on tags', method: 'POST', path: '/repository/valorg/app/tag/', body: {}, status: 405 },
  { name: 'tag list limit too large', method: 'GET', path: '/repository/valorg/app/tag/?limit=1000', status: 400, field: 'limit' },
  { name: 'tag list page negative', method: 'GET', path: '/repository/valorg/app/tag/?page=-1', status: 400, field: 'page' },
  { name: 'tag list bad specificTag', method: 'GET', path: '/repository/valorg/app/tag/?specificTag=%24bad', status: 400, field: 'specificTag' },
  { name: 'delete invalid tag', method: 'DELETE', path: '/repository/valorg/app/tag/bad%20tag', status: 400, field: 'tag' },
  { name: 'delete missing tag', method: 'DELETE', path: '/repository/valorg/app/tag/missing', status: 404 },
  // Logs
  { name: 'logs starttime words', method: 'GET', path: '/organization/valorg/logs?starttime=yesterday', status: 400, field: 'starttime' },
  { name: 'logs endtime impossible date', method: 'GET', path: '/organization/valorg/logs?endtime=13/45/2020', status: 400, field: 'endtime' },
  { name: 'logs end before start', method: 'GET', path: '/organization/valorg/logs?starttime=2020-01-02&endtime=2020-01-01', status: 400, field: 'endtime' },
  { name: 'logs kind with spaces', method: 'GET', path: '/organization/valorg/logs?kind=DROP%20TABLE', status: 400, field: 'kind' },
  { name: 'logs forged page token', method: 'GET', path: '/organization/valorg/logs?next_page=eyJ2IjoxLCJiZWZvcmUiOi0xfQ', status: 400, field: 'next_page' },
  { name: 'logs limit not a number', method: 'GET', path: '/organization/valorg/logs?limit=abc', status: 400, field: 'limit' },
  { name: 'logs format unknown', method: 'GET', path: '/organization/valorg/logs?format=xml', status: 400, field: 'format' },
  { name: 'logs unknown filter', method: 'GET', path: '/organization/valorg/logs?kinds=pull_repo', status: 400, field: 'kinds' },
  { name: 'logs repository filter invalid', method: 'GET', path: '/organization/valorg/logs?repository=..', status: 400, field: 'repository' },
  { name: 'repository logs with repository filter', method: 'GET', path: '/repository/valorg/app/logs?repository=other', status: 400, field: 'repository' },
  // Users
  { name: 'user password too short', method: 'POST', path: '/superuser/users/', body: { username: 'newuser', password: 'short' }, status: 400, field: 'password' },
  { name: 'user name invalid', method: 'POST', path: '/superuser/users/', body: { username: 'Bad', password: 'long-enough' }, status: 400, field: 'username' },
  { name: 'user name with plus', method: 'POST', path: '/superuser/users/', body: { username: 'a+b', password: 'long-enough' }, status: 400, field: 'username' },
  { name: 'user superuser flag of wrong type', method: 'POST', path: '/superuser/users/', body: { username: 'newuser', password: 'long-enough', superuser: 'yes' }, status: 400, field: 'superuser' },
  { name: 'user name taken by an org', method: 'POST', path: '/superuser/users/', body: { username: 'valorg', password: 'long-enough' }, status: 409 },
  { name: 'user exists', method: 'POST', path: '/superuser/users/', body: { username: 'valuser', password: 'long-enough' }, status: 409 },
  { name: 'delete unknown user', method: 'DELETE', path: '/superuser/users/nobody', status: 404 },
  { name: 'delete yourself', method: 'DELETE', path: '/superuser/users/admin', status: 409 },
  { name: 'unknown endpoint', method: 'GET', path: '/nothing/here', status: 404 },
  // Who may call
  { name: 'current user, anonymous', method: 'GET', path: '/user/', status: 401, auth: 'none' },
  { name: 'create user, not a superuser', method: 'POST', path: '/superuser/users/', body: { username: 'newuser', password: 'long-enough' }, status: 403, auth: 'user' },
  { name: 'list users, anonymous', method: 'GET', path: '/superuser/users/', status: 401, auth: 'none' },
  { name: 'create org, anonymous', method: 'POST', path: '/organization/', body: { name: 'anonorg' }, status: 401, auth: 'none' },
  { name: 'create robot, not an admin', method: 'PUT', path: '/organization/valorg/robots/newbot', body: {}, status: 403, auth: 'user' },
  { name: 'bulk grant, not an admin', method: 'PUT', path: '/organization/valorg/permissions/user/valuser', body: { role: 'admin' }, status: 403, auth: 'user' },
  { name: 'permission, not a repo admin', method: 'PUT', path: '/repository/valorg/app/permissions/user/valuser', body: { role: 'admin' }, status: 403, auth: 'user' },
  { name: 'repository, anonymous', method: 'GET', path: '/repository/valorg/app', status: 401, auth: 'none' },
  { name: 'missing repository, anonymous on a private org', method: 'GET', path: '/repository/valorg/nosuch', status: 401, auth: 'none' },
  { name: 'create repository, not a member', method: 'POST', path: '/repository', body: { namespace: 'valorg', repository: 'mine', visibility: 'public' }, status: 403, auth: 'user' },
  { name: 'delete repository, not an admin', method: 'DELETE', path: '/repository/valorg/app', status: 403, auth: 'user' },
  { name: 'members, not an admin', method: 'GET', path: '/organization/valorg/members', status: 403, auth: 'user' },
];

/** Paths sent byte for byte: traversal and encoded slashes must be refused, never resolved. */
const rawCases: Array<{ name: string; method: string; path: string; body?: string }> = [
  { name: 'dot-dot segment', method: 'GET', path: '/api/v1/repository/valorg/../otherorg/app' },
  { name: 'dot-dot before an endpoint', method: 'GET', path: '/api/v1/repository/valorg/app/../app/tag/' },
  { name: 'encoded dot-dot', method: 'GET', path: '/api/v1/repository/valorg/%2e%2e/app' },
  { name: 'single dot segment', method: 'PUT', path: '/api/v1/repository/valorg/./app/permissions/user/valuser', body: '{"role":"read"}' },
  { name: 'encoded slash in the org', method: 'GET', path: '/api/v1/repository/valorg%2Fapp/tag/' },
  { name: 'encoded slash in the repository', method: 'GET', path: '/api/v1/repository/valorg/app%2Ftag/' },
  { name: 'lowercase encoded slash', method: 'DELETE', path: '/api/v1/repository/valorg/app/permissions/user/a%2fb' },
  { name: 'encoded backslash', method: 'DELETE', path: '/api/v1/repository/valorg/a%5Cb' },
  { name: 'malformed percent-encoding', method: 'GET', path: '/api/v1/repository/valorg/app/%ZZ' },
];

describe('malformed API input', () => {
  let inst: TestInstance;
  let userAuth: string;

  beforeAll(async () => {
    inst = await startEntrepot();
    await createOrg(inst, 'valorg');
    await createOrg(inst, 'otherorg');
    userAuth = await createUser(inst, 'valuser');
    await createRobot(inst, 'valorg', 'valbot');
    await createRobot(inst, 'otherorg', 'valbot');
    await pushImage(inst, 'valorg/app', 'v1', inst.adminAuth);
    await pushImage(inst, 'otherorg/app', 'v1', inst.adminAuth);
  });

  afterAll(async () => {
    await inst?.stop();
  });

  it.each(cases)('$name: $method $path → $status', async (c) => {
    const auth = c.auth === 'none' ? '' : c.auth === 'user' ? userAuth : inst.adminAuth;
    const res = await inst.api(c.method, c.path, c.body, auth);
    expect({ status: res.status, body: res.body }).toMatchObject({ status: c.status });
    const body = res.body as { error_message?: unknown; error_type?: unknown; detail?: { field?: unknown } | null };
    expect(typeof body.error_message).toBe('string');
    expect(typeof body.error_type).toBe('string');
    if (c.field !== undefined) {
      expect(body.detail?.field).toBe(c.field);
      expect(body.error_message).toMatch(new RegExp(`^${c.field.replace(/[.()]/g, '\\$&')}: `));
    }
  });

  it.each(rawCases)('raw path, $name → 400 naming the repository', async (c) => {
    const res = await rawRequest(inst, c.method, c.path, c.body);
    expect({ status: res.status, text: res.text }).toMatchObject({ status: 400 });
    expect(res.json).toMatchObject({ error_type: 'invalid_request', detail: { field: 'repository' } });
  });

  it('nothing it was asked above changed state: traversal did not reach otherorg', async () => {
    const perms = await inst.api('GET', '/repository/otherorg/app/permissions/user/');
    expect((perms.body as { permissions: object }).permissions).toEqual({});
    const robots = await inst.api('GET', '/organization/valorg/robots');
    expect((robots.body as { robots: Array<{ name: string }> }).robots.map((r) => r.name)).toEqual(['valorg+valbot']);
  });

  it('no body shape makes any endpoint fail with a 5xx', async () => {
    const endpoints: Array<[string, string]> = [
      ['POST', '/organization/'],
      ['PUT', '/organization/valorg'],
      ['PUT', '/organization/valorg/members/valuser'],
      ['PUT', '/organization/valorg/robots/fuzzbot'],
      ['PUT', '/organization/valorg/permissions/user/valuser'],
      ['POST', '/organization/valorg/prototypes'],
      ['PUT', `/organization/valorg/prototypes/${UNKNOWN_UUID}`],
      ['POST', '/repository'],
      ['PUT', '/repository/valorg/app'],
      ['POST', '/repository/valorg/app/changevisibility'],
      ['PUT', '/repository/valorg/app/permissions/user/valuser'],
      ['POST', '/superuser/users/'],
    ];
    const bodies: unknown[] = [
      '',
      '{',
      '[]',
      '"text"',
      '123',
      'true',
      {},
      { name: null },
      { role: {} },
      { role: 'read'.repeat(1000) },
      { visibility: ['public'] },
      { delegate: 'x' },
      { delegate: { kind: 'user', name: 'x'.repeat(5000) } },
      { namespace: 'valorg', repository: 'x'.repeat(400), visibility: 'public' },
      { username: 'ok-name', password: 'p'.repeat(5000) },
      { description: '\u0000\uffff'.repeat(10) },
      { __proto__: { role: 'admin' } },
      { constructor: { prototype: { admin: true } } },
    ];
    const failures: string[] = [];
    for (const [method, path] of endpoints) {
      for (const body of bodies) {
        const res = await inst.api(method, path, body);
        const error = res.body as { error_message?: unknown } | null;
        if (res.status >= 500 || (res.status >= 400 && typeof error?.error_message !== 'string')) {
          failures.push(`${method} ${path} ${JSON.stringify(body).slice(0, 60)} → ${res.status}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });
});
