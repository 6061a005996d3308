// ESLint flat config for the whole monorepo (`npm run lint`).
//
// - Every TypeScript file gets typescript-eslint's `recommended` rules.
// - Files covered by a tsconfig (the packages' sources and tests, the
//   `testing/` harnesses and benchmarks) also get a handful of type-aware rules that catch
//   real bugs on a registry's hot path (unhandled promises, promises passed
//   where a callback is expected, awaiting non-promises). The full
//   `recommendedTypeChecked` set is not enabled: most of it restates what
//   `tsc --strict` already checks, and its no-unsafe-* rules fire on every
//   knex row (knex types query results as `any`; the db layer narrows them).
// - `no-explicit-any` is an error in source code: no `any` at the seams.
//   Tests may use it where a fixture pokes at internals.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const TYPED_FILES = ['packages/*/src/**/*.ts', 'packages/*/test/**/*.ts', 'testing/**/*.ts', 'bench/**/*.ts'];
const TEST_FILES = ['packages/*/test/**/*.ts', 'testing/**/*.ts', 'bench/**/*.ts'];
// Every tsconfig that owns linted files; a file must belong to one of them.
const PROJECTS = [
  './packages/registry-core/tsconfig.json',
  './packages/proxy-cache/tsconfig.json',
  './packages/web-ui/tsconfig.json',
  './packages/web-ui/test/tsconfig.json',
  './tsconfig.tests.json',
];

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      'packages/web-ui/dist/**',
      'dist-tests/**',
      'coverage/**',
      'data/**',
      '**/*.d.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx', '**/*.mts', '**/*.cts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // `_`-prefixed names mark deliberately unused parameters and bindings
      // (express error handlers, destructuring that drops a field).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      // Declaration merging of an interface with a class is used for typed event emitters.
      '@typescript-eslint/no-unsafe-declaration-merging': 'off',
      // `const self = this` for generators and callbacks that need the instance.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['self'] }],
    },
  },
  {
    files: TYPED_FILES,
    languageOptions: {
      parserOptions: {
        project: PROJECTS,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-for-in-array': 'error',
      '@typescript-eslint/only-throw-error': 'error',
    },
  },
  {
    files: TEST_FILES,
    rules: {
      // Fixtures reach into internals and fake partial objects.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', require: 'readonly', __dirname: 'readonly', process: 'readonly', console: 'readonly' },
    },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', globals: { process: 'readonly', console: 'readonly' } },
  },
);
