import { defineConfig } from 'vitest/config';

// `npm run soak`: the long chaos run (test/chaos/*.soak.ts), never part of `npm test`.
export default defineConfig({
  test: {
    name: 'soak',
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    include: ['test/chaos/**/*.soak.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 24 * 3_600_000,
    hookTimeout: 60_000,
  },
});
