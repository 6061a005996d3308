/**
 * The server launcher `npm start` runs (packages/registry-core/bin/entrepot-server):
 * Node with the recommended V8 flags on the C library's allocator, jemalloc
 * preloaded on request, and a clear refusal of a setting it cannot honour.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NODE_FLAGS, allocatorInMaps, launcherSpawn } from '../../../registry-core/src/runtime/node-flags';
import { freePort } from '../../../../testing/tools';
import { EntrepotProcess } from './entrepot-process';

const REPO_ROOT = resolve(__dirname, '../../../..');

describe('the server launcher', () => {
  let work: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'entrepot-launcher-'));
  });

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  const start = async (name: string, env: Record<string, string>): Promise<EntrepotProcess> =>
    EntrepotProcess.start({
      dataDir: join(work, name, 'data'),
      port: await freePort(),
      configPath: join(work, `${name}.yml`),
      env,
      config: { log_level: 'info' },
    });

  const processFacts = (entrepot: EntrepotProcess): { allocator: string; cmdline: string[] } => {
    const pid = entrepot.pid;
    if (!pid) throw new Error('Entrepot is not running');
    return {
      allocator: allocatorInMaps(readFileSync(`/proc/${pid}/maps`, 'utf8')),
      cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean),
    };
  };

  /** The `Entrepot listening` log line, parsed. */
  const listening = (entrepot: EntrepotProcess): Record<string, unknown> => {
    const line = entrepot
      .log()
      .split('\n')
      .find((l) => l.includes('"message":"Entrepot listening"'));
    if (!line) throw new Error(`no "Entrepot listening" line in:\n${entrepot.log()}`);
    return JSON.parse(line) as Record<string, unknown>;
  };

  it('starts Node with the recommended flags on the C library allocator by default', async () => {
    const entrepot = await start('default', {});
    try {
      const facts = processFacts(entrepot);
      expect(facts.allocator).toBe('system');
      expect(facts.cmdline).toEqual(expect.arrayContaining([...NODE_FLAGS]));
      expect(facts.cmdline[facts.cmdline.length - 1]).toMatch(/registry-core\/dist\/main\.js$/);
      expect(listening(entrepot)).toMatchObject({ allocator: 'system', heapTrim: true });
      expect(entrepot.log()).not.toMatch(/started without the recommended Node flags/);
    } finally {
      await entrepot.stop();
    }
  }, 60_000);

  it('preloads jemalloc with ENTREPOT_ALLOCATOR=jemalloc (libjemalloc2 is installed by the test setup), and the server works on it', async () => {
    const entrepot = await start('jemalloc', { ENTREPOT_ALLOCATOR: 'jemalloc' });
    try {
      const facts = processFacts(entrepot);
      expect(facts.allocator).toBe('jemalloc');
      expect(facts.cmdline).toEqual(expect.arrayContaining([...NODE_FLAGS]));
      expect(listening(entrepot)).toMatchObject({ allocator: 'jemalloc', heapTrim: false });
      const environ = readFileSync(`/proc/${entrepot.pid}/environ`, 'utf8').split('\0');
      expect(environ).toContain('MALLOC_CONF=background_thread:true,dirty_decay_ms:2000,muzzy_decay_ms:0');
      const created = await entrepot.api('POST', '/organization/', { name: 'onjemalloc' });
      expect(created.status).toBe(201);
      const listed = await entrepot.api('GET', '/organization/onjemalloc');
      expect(listed.status).toBe(200);
    } finally {
      await entrepot.stop();
    }
  }, 60_000);

  it('passes ENTREPOT_NODE_ARGS to Node, options NODE_OPTIONS refuses included: a CPU profile is written at shutdown', async () => {
    const profiles = join(work, 'profiles');
    mkdirSync(profiles);
    const entrepot = await start('node-args', { ENTREPOT_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${profiles}` });
    try {
      const facts = processFacts(entrepot);
      expect(facts.cmdline).toEqual(expect.arrayContaining(['--cpu-prof', `--cpu-prof-dir=${profiles}`, ...NODE_FLAGS]));
      expect((await entrepot.api('GET', '/organization/nobody')).status).toBe(404);
    } finally {
      await entrepot.stop();
    }
    expect(readdirSync(profiles).filter((f) => f.endsWith('.cpuprofile'))).toHaveLength(1);
  }, 60_000);

  const launch = (env: Record<string, string>) => {
    const how = launcherSpawn(REPO_ROOT, process.execPath, { PATH: process.env.PATH, ...env });
    return spawnSync(how.command, how.args, { env: how.env, encoding: 'utf8', timeout: 20_000 });
  };

  it('refuses to start when jemalloc is required and missing', () => {
    const result = launch({ ENTREPOT_ALLOCATOR: 'jemalloc', ENTREPOT_JEMALLOC_PATH: join(work, 'no-such-libjemalloc.so.2') });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/ENTREPOT_ALLOCATOR=jemalloc but libjemalloc\.so\.2 was not found/);
  });

  it('refuses an unknown allocator', () => {
    const result = launch({ ENTREPOT_ALLOCATOR: 'tcmalloc' });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/ENTREPOT_ALLOCATOR must be system or jemalloc, not "tcmalloc"/);
  });
});
