import { defineConfig } from 'vitest/config';

// Fast, I/O-free tests sit next to the code as *.test.ts; tests that start servers,
// processes or databases are *.itest.ts (under src/ or test/).
// The AWS SDK's Node 22 notice (see README) would repeat in every test that makes a client.
const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', env, include: ['src/**/*.test.ts'], testTimeout: 20_000 } },
      {
        test: {
          name: 'integration',
          env,
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
