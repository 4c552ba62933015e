import { defineConfig } from 'vitest/config';

// Fast, I/O-free tests sit next to the code as *.test.ts; tests that start servers,
// processes or databases are *.itest.ts (under src/ or test/).
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['src/**/*.test.ts'], testTimeout: 20_000 } },
      {
        test: {
          name: 'integration',
          include: ['src/**/*.itest.ts', 'test/**/*.itest.ts'],
          testTimeout: 180_000,
          hookTimeout: 60_000,
          pool: 'forks',
          fileParallelism: false,
        },
      },
    ],
  },
});
