import { dirname, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * The layering of registry-core (docs/architecture.md): http → services →
 * storage / db / jobs, never back. Two rules are checked on the sources:
 *
 * 1. Routes hold no SQL: no file under `src/http` imports knex or a database
 *    driver, imports anything from `src/db` (the `Db` type, the knex factory,
 *    point reads), or touches a knex value (calls a query builder, passes a
 *    connection on). Queries live in `src/services` and `src/db`.
 * 2. Nothing outside `src/http` imports from it, except the modules listed in
 *    `HTTP_IMPORT_EXCEPTIONS`.
 */

/** Packages whose import from `src/http` means SQL in a route. */
const DATABASE_PACKAGES = ['knex', 'better-sqlite3', 'mysql2'];

export interface HttpImportException {
  /** Importing file, relative to `src`. */
  from: string;
  /** Imported module under `src/http` (relative to `src`, no extension), or '*' for any. */
  module: string;
  /** Whether the import must be type-only (`import type` / `export type`). */
  typeOnly: boolean;
  why: string;
}

export const HTTP_IMPORT_EXCEPTIONS: HttpImportException[] = [
  { from: 'server.ts', module: '*', typeOnly: false, why: 'the composition root builds the HTTP application' },
  { from: 'main.ts', module: '*', typeOnly: false, why: 'the process entry point may start the HTTP server' },
  { from: 'plugin/contract.ts', module: 'http/openapi/api-docs', typeOnly: true, why: "plugins describe their API routes (`addApiRoutes`'s `docs`)" },
  { from: 'plugin/ports.ts', module: 'http/http-helpers', typeOnly: true, why: "plugins' routes use the core's request helpers (`CorePorts.http`)" },
  { from: 'plugin/loader.ts', module: 'http/openapi/api-docs', typeOnly: true, why: 'the loader collects the plugins\' `addApiRoutes` registrations' },
];

interface ImportSite {
  specifier: string;
  typeOnly: boolean;
  line: number;
}

function lineOf(source: ts.SourceFile, node: ts.Node): number {
  return source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
}

/** Every module a file refers to: imports, re-exports, `import x = require()`, `import()` (also in types) and `require()`. */
function importsOf(source: ts.SourceFile): ImportSite[] {
  const sites: ImportSite[] = [];
  const add = (literal: ts.Expression | undefined, typeOnly: boolean, node: ts.Node) => {
    if (literal && ts.isStringLiteralLike(literal)) sites.push({ specifier: literal.text, typeOnly, line: lineOf(source, node) });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : undefined;
      const allTypes = clause !== undefined && (clause.isTypeOnly || (!clause.name && named !== undefined && named.length > 0 && named.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier, allTypes, node);
    } else if (ts.isExportDeclaration(node)) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      add(node.moduleSpecifier, node.isTypeOnly || (named !== undefined && named.length > 0 && named.every((e) => e.isTypeOnly)), node);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly, node);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true, node);
    } else if (ts.isCallExpression(node) && (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))) {
      add(node.arguments[0], false, node);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return sites;
}

/** The imported module relative to `src` without extension, or null for a package or a module outside `src`. */
function srcModule(srcDir: string, fileName: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const path = relative(srcDir, resolve(dirname(fileName), specifier)).split(sep).join('/');
  return path.startsWith('..') ? null : path.replace(/\.(ts|js)$/, '').replace(/\/index$/, '');
}

const isUnder = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);

function isKnexDeclaration(declaration: ts.Declaration | undefined): boolean {
  return declaration !== undefined && /[\\/]node_modules[\\/]knex[\\/]/.test(declaration.getSourceFile().fileName);
}

function isKnexType(type: ts.Type): boolean {
  return [type.getSymbol(), type.aliasSymbol].some((symbol) => symbol?.declarations?.some(isKnexDeclaration));
}

/** Rule 1 for one file under `src/http`. */
function sqlInHttp(program: ts.Program, srcDir: string, source: ts.SourceFile): string[] {
  const file = relative(srcDir, source.fileName).split(sep).join('/');
  const found: string[] = [];
  for (const site of importsOf(source)) {
    const pkg = site.specifier.split('/')[0];
    const module = srcModule(srcDir, source.fileName, site.specifier);
    if (DATABASE_PACKAGES.includes(pkg)) found.push(`${file}:${site.line} imports ${site.specifier}: routes hold no SQL, move the query into a service`);
    else if (module !== null && isUnder(module, 'db')) found.push(`${file}:${site.line} imports ${module}: routes hold no SQL, move the query into a service`);
  }
  const checker = program.getTypeChecker();
  const reported = new Set<number>();
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) return;
    const call = ts.isCallExpression(node) && isKnexDeclaration(checker.getResolvedSignature(node)?.declaration as ts.Declaration | undefined);
    if (call || (ts.isIdentifier(node) && isKnexType(checker.getTypeAtLocation(node)))) {
      // One finding per line: a query chain is one use.
      const line = lineOf(source, node);
      if (!reported.has(line)) found.push(`${file}:${line} uses the database directly (\`${node.getText(source).replace(/\s+/g, ' ').slice(0, 60)}\`): routes hold no SQL, move the query into a service`);
      reported.add(line);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Rule 2 for one file outside `src/http`. */
function upwardImports(srcDir: string, source: ts.SourceFile): string[] {
  const file = relative(srcDir, source.fileName).split(sep).join('/');
  const found: string[] = [];
  for (const site of importsOf(source)) {
    const module = srcModule(srcDir, source.fileName, site.specifier);
    if (module === null || !isUnder(module, 'http')) continue;
    const allowed = HTTP_IMPORT_EXCEPTIONS.some((e) => e.from === file && (e.module === '*' || e.module === module) && (!e.typeOnly || site.typeOnly));
    if (!allowed) found.push(`${file}:${site.line} imports ${module}: only http/ and the composition root may import from http/ (move what is shared below http, or pass it in)`);
  }
  return found;
}

/**
 * Every violation of both rules among the program's files under `srcDir` (or
 * only among `only`, absolute paths), as `file:line explanation`.
 */
export function layeringViolations(program: ts.Program, srcDir: string, only?: string[]): string[] {
  const found: string[] = [];
  for (const source of program.getSourceFiles()) {
    const file = relative(srcDir, source.fileName).split(sep).join('/');
    if (file.startsWith('..') || source.isDeclarationFile || (only && !only.includes(source.fileName))) continue;
    if (isUnder(file, 'http')) found.push(...sqlInHttp(program, srcDir, source));
    else found.push(...upwardImports(srcDir, source));
  }
  return found;
}

/** The registry-core sources as `tsc` sees them, with `extra` files (path → text) added in memory. */
export function sourceProgram(tsconfigPath: string, extra: Record<string, string> = {}, oldProgram?: ts.Program): ts.Program {
  const { config } = ts.readConfigFile(tsconfigPath, (path) => ts.sys.readFile(path));
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, dirname(tsconfigPath));
  const options: ts.CompilerOptions = { ...parsed.options, noEmit: true, composite: false, declaration: false, incremental: false };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, version, ...rest) =>
    name in extra ? ts.createSourceFile(name, extra[name], version, true) : getSourceFile(name, version, ...rest);
  host.fileExists = (name) => name in extra || fileExists(name);
  return ts.createProgram([...parsed.fileNames, ...Object.keys(extra)], options, host, oldProgram);
}
