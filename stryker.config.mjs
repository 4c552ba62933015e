// npm run mutate: mutation testing (StrykerJS) of the modules where a silent regression costs
// most, against the unit tests only (vitest.mutate.config.ts). Not part of `npm test`; see TESTING.md.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts', related: true },
  coverageAnalysis: 'perTest',
  mutate: ['src/core/**/*.ts', '!src/core/**/*.test.ts', 'src/ses/sns.ts', 'src/ses/parse.ts', 'src/brevo/governor.ts'],
  ignorePatterns: ['dist', 'coverage', '.tajo', 'reports', '*.db', '*.db-wal', '*.db-shm'],
  // The machine this was tuned on has 2 cores; more workers only add contention.
  concurrency: 2,
  // Every run starts from scratch; `--incremental` reuses reports/stryker-incremental.json (git-ignored).
  incremental: false,
  incrementalFile: 'reports/stryker-incremental.json',
  timeoutMS: 5000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 85, break: 85 },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
