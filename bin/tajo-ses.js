#!/usr/bin/env node
// The AWS SDK warns on every start that its 2027 releases need Node 22; the README says so
// once, and the lock file pins the SDK. Other warnings are printed as usual.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  // @aws-sdk/core emits it as a plain Warning whose message starts with the name.
  if (w && (w.name === 'NodeVersionSupportWarning' || String(w.message).startsWith('NodeVersionSupportWarning'))) return;
  process.stderr.write(`${w && w.name ? w.name : 'Warning'}: ${w && w.message ? w.message : String(w)}\n`);
});

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
