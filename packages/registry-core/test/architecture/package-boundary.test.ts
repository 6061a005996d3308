/**
 * The seam between the core and the proxy-cache plugin: the core's public
 * entry exports exactly the names docs/architecture.md lists, the plugin's
 * sources import only those (never a path into the core), and the plugin's
 * queries name only its own tables.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const ROOT = join(__dirname, '..', '..', '..', '..');
const CORE_ENTRY = join(ROOT, 'packages/registry-core/src/index.ts');
const PLUGIN_SRC = join(ROOT, 'packages/proxy-cache/src');
/** At most half of what the entry exported (102) and the plugin imported (62) before the ports. */
const MAX_EXPORTS = 51;
const MAX_PLUGIN_IMPORTS = 31;

function documentedEntry(): string[] {
  const doc = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
  const block = /<!-- public-entry: begin -->([\s\S]*?)<!-- public-entry: end -->/.exec(doc);
  if (!block) throw new Error('docs/architecture.md has no public-entry block');
  const names: string[] = [];
  for (const row of block[1].split('\n').slice(2)) {
    const cells = row.split('|');
    if (cells.length < 3) continue;
    for (const m of cells[2].matchAll(/`([A-Za-z]+)`/g)) names.push(m[1]);
  }
  return names.sort();
}

function exportedByEntry(): string[] {
  const program = ts.createProgram([CORE_ENTRY], { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true, skipLibCheck: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(CORE_ENTRY);
  const symbol = source && checker.getSymbolAtLocation(source);
  if (!symbol) throw new Error('cannot read the core entry');
  return checker.getExportsOfModule(symbol).map((s) => s.getName()).sort();
}

function pluginSources(dir = PLUGIN_SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? pluginSources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

interface CoreImport {
  file: string;
  specifier: string;
  names: string[];
}

function coreImports(): CoreImport[] {
  const found: CoreImport[] = [];
  for (const file of pluginSources()) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    for (const statement of source.statements) {
      if (!ts.isImportDeclaration(statement) && !ts.isExportDeclaration(statement)) continue;
      const specifier = statement.moduleSpecifier && ts.isStringLiteral(statement.moduleSpecifier) ? statement.moduleSpecifier.text : null;
      if (!specifier || !(specifier.startsWith('@entrepot/registry-core') || specifier.includes('registry-core/'))) continue;
      const names: string[] = [];
      const bindings = ts.isImportDeclaration(statement) ? statement.importClause?.namedBindings : statement.exportClause;
      if (bindings && (ts.isNamedImports(bindings) || ts.isNamedExports(bindings))) {
        for (const element of bindings.elements) names.push((element.propertyName ?? element.name).text);
      } else if (bindings) names.push('*');
      found.push({ file: relative(ROOT, file), specifier, names });
    }
  }
  return found;
}

describe('the core/plugin boundary', () => {
  const documented = documentedEntry();
  const exported = exportedByEntry();

  it('the public entry exports exactly the names docs/architecture.md lists', () => {
    expect(exported).toEqual(documented);
    expect(exported.length).toBeLessThanOrEqual(MAX_EXPORTS);
  });

  it('proxy-cache imports only names of the public entry, never a path into the core', () => {
    const imports = coreImports();
    expect(imports.length).toBeGreaterThan(0);
    const deep = imports.filter((i) => i.specifier !== '@entrepot/registry-core').map((i) => `${i.file}: ${i.specifier}`);
    expect(deep).toEqual([]);
    const used = [...new Set(imports.flatMap((i) => i.names))].sort();
    expect(used.filter((name) => !exported.includes(name))).toEqual([]);
    expect(used.length).toBeLessThanOrEqual(MAX_PLUGIN_IMPORTS);
  });

  it("proxy-cache's queries name only its own tables", () => {
    const foreign: string[] = [];
    for (const file of pluginSources()) {
      const text = readFileSync(file, 'utf8');
      // Query-builder calls that name a table: db('t'), .join('t ...'), .from('t'), raw SQL FROM/JOIN.
      const tables = [
        ...text.matchAll(/\b(?:db|trx|this\.db|core\.db|\.db)\(\s*'([a-z_]+)/g),
        ...text.matchAll(/\.(?:join|leftJoin|from|into|table)\(\s*'([a-z_]+)/g),
        ...text.matchAll(/\b(?:FROM|JOIN|INTO|UPDATE)\s+([a-z_]+)/g),
      ].map((m) => m[1]);
      for (const table of tables) if (!table.startsWith('proxy_cache_')) foreign.push(`${relative(ROOT, file)}: ${table}`);
    }
    expect(foreign).toEqual([]);
  });
});
