// Runs the Brevo simulator standalone:
//   node dist/sim/brevo/main.js [--port N] [--api-key K] [--plan general|advanced|extended|unlimited] [--events-batch-bucket events|other]
// Port, key, plan and batch bucket also come from BREVO_SIM_PORT, BREVO_SIM_API_KEY, BREVO_SIM_PLAN
// and BREVO_SIM_EVENTS_BATCH_BUCKET.
import { startBrevoSim } from './server.js';
import type { BrevoPlan } from './types.js';

const PLANS: readonly BrevoPlan[] = ['general', 'advanced', 'extended', 'unlimited'];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const portRaw = arg('port') ?? process.env.BREVO_SIM_PORT ?? '0';
  const port = Number(portRaw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port: expected an integer between 0 and 65535, got '${portRaw}'`);
    process.exit(2);
  }
  const plan = (arg('plan') ?? process.env.BREVO_SIM_PLAN ?? 'general') as BrevoPlan;
  if (!PLANS.includes(plan)) {
    console.error(`--plan: expected one of ${PLANS.join(', ')}, got '${plan}'`);
    process.exit(2);
  }
  const apiKey = arg('api-key') ?? process.env.BREVO_SIM_API_KEY ?? 'sim-key';
  const batchBucket = arg('events-batch-bucket') ?? process.env.BREVO_SIM_EVENTS_BATCH_BUCKET ?? 'events';
  if (batchBucket !== 'events' && batchBucket !== 'other') {
    console.error(`--events-batch-bucket: expected events or other, got '${batchBucket}'`);
    process.exit(2);
  }
  const sim = await startBrevoSim({ port, plan, apiKey, eventsBatchBucket: batchBucket });
  console.log(sim.url);
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

void main();
