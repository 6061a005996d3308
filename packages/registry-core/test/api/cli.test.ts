import { runCli } from '../../src/cli/main';
import { ADMIN_PASSWORD, ADMIN_USER, startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { basicAuth, pullManifest, pushImage, waitForLogs } from './api-helpers';

describe('entrepot CLI against a running instance', () => {
  let inst: TestInstance;

  beforeAll(async () => {
    inst = await startEntrepot();
  });

  afterAll(async () => {
    await inst?.stop();
  });

  /** Runs the CLI with credentials from the environment, like an operator's shell. */
  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await runCli(args, {
      out: (s) => (out += s),
      err: (s) => (err += s),
      env: { ENTREPOT_URL: inst.url, ENTREPOT_USER: ADMIN_USER, ENTREPOT_PASSWORD: ADMIN_PASSWORD },
    });
    return { code, out, err };
  }

  it('creates an organization, a robot, permissions and reads the logs', async () => {
    expect(await cli('org', 'create', 'clio')).toMatchObject({ code: 0, out: 'created organization clio\n' });
    await pushImage(inst, 'clio/one', 'v1', inst.adminAuth);
    await pushImage(inst, 'clio/two/deep', 'v1', inst.adminAuth);

    const created = await cli('robot', 'create', 'clio', 'deployer', '--description', 'CD pipeline');
    expect(created.code).toBe(0);
    const [name, token] = created.out.trim().split('\n');
    expect(name).toBe('clio+deployer');
    const robotAuth = basicAuth(name, token);
    expect(await pullManifest(inst, 'clio/one', 'v1', robotAuth)).toBe(403);

    expect(await cli('perm', 'grant', 'clio/one', 'clio+deployer', 'read')).toMatchObject({ code: 0 });
    expect(await pullManifest(inst, 'clio/one', 'v1', robotAuth)).toBe(200);
    expect(await pullManifest(inst, 'clio/two/deep', 'v1', robotAuth)).toBe(403);

    const all = await cli('perm', 'grant-all', 'clio', 'clio+deployer', 'read');
    expect(all).toMatchObject({ code: 0, out: 'clio+deployer has read on 2 repositories of clio\n' });
    expect(await pullManifest(inst, 'clio/two/deep', 'v1', robotAuth)).toBe(200);

    expect((await cli('prototype', 'add', 'clio', 'clio+deployer', 'read')).code).toBe(0);
    await pushImage(inst, 'clio/three', 'v1', inst.adminAuth);
    expect(await pullManifest(inst, 'clio/three', 'v1', robotAuth)).toBe(200);

    const list = await cli('--json', 'robot', 'list', 'clio');
    expect(JSON.parse(list.out)).toMatchObject({ robots: [{ name: 'clio+deployer', description: 'CD pipeline' }] });
    expect(list.out).not.toContain(token);
    const withToken = await cli('robot', 'list', 'clio', '--token');
    expect(withToken.out).toContain(token);

    await waitForLogs(inst, 'clio', (logs) => logs.some((e) => e.kind === 'create_prototype_permission'));
    const logs = await cli('logs', 'clio', '--kind', 'create_robot,create_prototype_permission');
    expect(logs.code).toBe(0);
    const lines = logs.out.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => l.split('\t')[1]).sort()).toEqual(['create_prototype_permission', 'create_robot']);
    const csv = await cli('logs', 'clio', '--csv', '--kind', 'create_robot');
    expect(csv.out.split('\r\n')[0]).toMatch(/^datetime,kind,/);
    const paged = await cli('--json', 'logs', 'clio', '--all', '--limit', '1');
    expect((JSON.parse(paged.out) as { logs: unknown[] }).logs.length).toBeGreaterThan(5);

    expect((await cli('robot', 'delete', 'clio', 'deployer')).code).toBe(0);
    expect(await pullManifest(inst, 'clio/one', 'v1', robotAuth)).toBe(401);
  });

  it('reports API errors and bad arguments with a non-zero exit code', async () => {
    const missing = await cli('robot', 'list', 'nosuchorg');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/404/);
    const role = await cli('perm', 'grant-all', 'clio', 'someone', 'owner');
    expect(role.code).toBe(1);
    expect(role.err).toMatch(/role must be one of/);
    const usage = await cli('robot', 'create', 'clio');
    expect(usage.code).not.toBe(0);
    expect(usage.err).toMatch(/missing required argument/);
    let err = '';
    const wrong = await runCli(['--url', inst.url, '--user', ADMIN_USER, '--password', 'wrong', 'org', 'create', 'nope'], { out: () => undefined, err: (s) => (err += s), env: {} });
    expect(wrong).toBe(1);
    expect(err).toMatch(/401/);
  });
});
