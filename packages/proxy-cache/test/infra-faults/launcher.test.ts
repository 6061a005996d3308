/**
 * The server launcher `npm start` runs (packages/registry-core/bin/entrepot-server):
 * Node with the recommended V8 flags, and the Node options it is given.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_FLAGS } from '../../../registry-core/src/runtime/node-flags';
import { freePort } from '../../../../testing/tools';
import { EntrepotProcess } from './entrepot-process';

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

  const processFacts = (entrepot: EntrepotProcess): { cmdline: string[] } => {
    const pid = entrepot.pid;
    if (!pid) throw new Error('Entrepot is not running');
    return {
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

  it('starts Node with the recommended flags', async () => {
    const entrepot = await start('default', {});
    try {
      const facts = processFacts(entrepot);
      expect(facts.cmdline).toEqual(expect.arrayContaining([...NODE_FLAGS]));
      expect(facts.cmdline[facts.cmdline.length - 1]).toMatch(/registry-core\/dist\/main\.js$/);
      expect(listening(entrepot)).toMatchObject({ heapTrim: true });
      expect(entrepot.log()).not.toMatch(/started without the recommended Node flags/);
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
});
