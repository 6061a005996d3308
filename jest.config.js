/** Tests run from TypeScript sources; `tsc -b` type-checks them separately. */
const tsJest = ['ts-jest', { tsconfig: { module: 'commonjs', target: 'ES2022', esModuleInterop: true, isolatedModules: true } }];
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  moduleNameMapper: {
    '^@entrepot/registry-core$': '<rootDir>/packages/registry-core/src/index.ts',
    '^@entrepot/proxy-cache$': '<rootDir>/packages/proxy-cache/src/index.ts',
  },
  testMatch: ['<rootDir>/packages/*/test/**/*.test.ts'],
  testTimeout: 120000,
  maxWorkers: 2,
};
