import { configDefaults, defineConfig } from 'vitest/config';

// Mutation testing (npm run mutate) runs the unit tests only: StrykerJS's vitest runner has no
// project filter, so this config holds that one project. Integration tests start servers and
// databases and would make each of the ~1800 mutant runs take seconds instead of milliseconds.
// The simulator's mix test parses 20,000 payloads and tests the simulator, not the parser: left out.
const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };

export default defineConfig({
  test: {
    name: 'unit',
    env,
    include: ['src/**/*.test.ts'],
    exclude: [...configDefaults.exclude, 'src/ses/ses-events-sim.test.ts'],
    testTimeout: 20_000,
  },
});
