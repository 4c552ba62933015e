// Standalone SES simulator for manual runs against the connector or the AWS CLI
// (`aws sesv2 list-contact-lists --endpoint-url <endpoint>`).
// Usage: node dist/sim/ses/main.js [--port 4579] [--rps 1] [--contacts 1000] [--lists 1]
//        [--topics 3] [--suppressions 100] [--seed 1] [--token-ttl-ms 300000]

import { parseArgs } from 'node:util';
import { startSesSim } from './index.js';

function num(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = raw === 'Infinity' ? Infinity : Number(raw);
  if (Number.isNaN(n)) throw new Error(`--${name} must be a number, got ${raw}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      rps: { type: 'string' },
      contacts: { type: 'string' },
      lists: { type: 'string' },
      topics: { type: 'string' },
      suppressions: { type: 'string' },
      seed: { type: 'string' },
      'token-ttl-ms': { type: 'string' },
    },
  });
  const sim = await startSesSim({
    port: num(values.port, 'port', 0),
    rps: num(values.rps, 'rps', 1),
    tokenTtlMs: num(values['token-ttl-ms'], 'token-ttl-ms', 5 * 60_000),
  });
  sim.generate({
    lists: num(values.lists, 'lists', 1),
    topicsPerList: num(values.topics, 'topics', 3),
    contacts: num(values.contacts, 'contacts', 1000),
    suppressions: num(values.suppressions, 'suppressions', 100),
    seed: num(values.seed, 'seed', 1),
  });
  process.stdout.write(`${JSON.stringify({ sim: 'ses', endpoint: sim.endpoint })}\n`);
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
