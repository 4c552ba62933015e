#!/usr/bin/env node
// The AWS SDK warns at every start that its releases after early 2027 need Node 22; the
// README says so once and the lock file pins the SDK, so the CLI keeps its output clean.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { main } = await import('../dist/cli/main.js');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
