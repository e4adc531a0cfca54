// Lint: typed rules everywhere (no floating promises), and workflow-safety rules for workflows/:
// no Node built-ins, no runtime imports of activities/infra (types only), no non-deterministic APIs.
const tseslint = require('typescript-eslint');
const { builtinModules } = require('node:module');

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

module.exports = tseslint.config(
  { ignores: ['lib/**', 'node_modules/**', 'bin/**', 'test/reporter.js', 'eslint.config.js', 'bench/results/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { project: './tsconfig.json', tsconfigRootDir: __dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    files: ['workflows/**/*.ts', 'common/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'workflow code must be deterministic: no Node built-ins' })),
          patterns: [
            { group: ['../infra/*', '../workers/*', '../client/*', '../stack/*'], message: 'workflow code imports only workflow-safe modules' },
            { group: ['../activities/*'], message: 'import activity *types* only', allowTypeImports: true },
            { group: ['@temporalio/worker', '@temporalio/client', '@temporalio/activity'], message: 'not available inside the workflow sandbox' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'setTimeout', message: 'use sleep() from @temporalio/workflow' }, { name: 'setInterval', message: 'use timers from @temporalio/workflow' }, { name: 'process', message: 'workflows never read the environment' }],
    },
  },
);
