import { join, resolve } from 'node:path';
import type ts from 'typescript';
import { layeringViolations, sourceProgram } from './layering-rules';

const PACKAGE = resolve(__dirname, '../..');
const SRC = join(PACKAGE, 'src');
const TSCONFIG = join(PACKAGE, 'tsconfig.json');

describe('registry-core layering (docs/architecture.md)', () => {
  let program: ts.Program;
  beforeAll(() => {
    program = sourceProgram(TSCONFIG);
  });

  test('routes hold no SQL, and only the composition root and the plugin contract import from http/', () => {
    expect(layeringViolations(program, SRC)).toEqual([]);
  });

  test('a route with a query and a service importing from http/ are reported, naming the file', () => {
    const route = join(SRC, 'http/routes/layering-fixture-route.ts');
    const service = join(SRC, 'services/layering-fixture-service.ts');
    const withViolations = sourceProgram(
      TSCONFIG,
      {
        [route]: [
          "import type { Db } from '../../db/database';",
          'export async function names(deps: { db: Db }): Promise<unknown[]> {',
          "  return deps.db('repositories').select('name');",
          '}',
        ].join('\n'),
        [service]: ["import { clientIp } from '../auth/client-ip';", "import type { HttpHelpers } from '../http/http-helpers';", 'export type Seen = [HttpHelpers, typeof clientIp];'].join('\n'),
      },
      program,
    );
    const found = layeringViolations(withViolations, SRC, [route, service]);
    expect(found).toEqual([
      expect.stringMatching(/^http\/routes\/layering-fixture-route\.ts:1 imports db\/database: routes hold no SQL/),
      expect.stringMatching(/^http\/routes\/layering-fixture-route\.ts:2 uses the database directly \(`db`\)/),
      expect.stringMatching(/^http\/routes\/layering-fixture-route\.ts:3 uses the database directly \(`deps.db\('repositories'\).select\('name'\)`\)/),
      expect.stringMatching(/^services\/layering-fixture-service\.ts:2 imports http\/http-helpers: only http\/ and the composition root/),
    ]);
  });
});
