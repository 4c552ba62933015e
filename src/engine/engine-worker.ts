// The engine thread of `serve` (see thread.ts): processing, delivery and scheduled syncs.
import { parentPort, workerData } from 'node:worker_threads';
import { WriteGate } from '../store/sqlite/gate.js';
import { createConnector, defaultLogger } from './connector.js';
import { Scheduler } from './scheduler.js';
import { lowerThreadPriority, type EngineWorkerData, type FromEngine, type ToEngine } from './thread.js';
import { errorMessage, TajoError } from '../core/errors.js';
import { ENGINE_METRICS } from './metrics.js';
import { InboxRetention, retentionPolicy } from './retention.js';

const port = parentPort;
if (!port) throw new TajoError('engine_worker_misuse', 'engine-worker.js runs as a worker thread of `tajo-ses serve`');
const { config, nice, gate, pressure } = workerData as EngineWorkerData;
const post = (msg: FromEngine) => port!.postMessage(msg);

async function main(): Promise<void> {
  const log = defaultLogger(config.log.level, 1, config.log.format).child({ thread: 'engine' });
  lowerThreadPriority(nice);
  const connector = await createConnector(config, {
    logger: log,
    role: 'serve-engine',
    writeGate: new WriteGate('engine', gate),
    ingestPressure: new Int32Array(pressure),
    onBrevoSetup: (setup) => post({ type: 'brevo', setup }),
  });
  try {
    await connector.start();
  } catch (err) {
    post({ type: 'failed', error: errorMessage(err), ...(err instanceof TajoError ? { code: err.code, retryable: err.retryable } : {}) });
    await connector.stop(0).catch(() => undefined);
    port!.close();
    return;
  }
  const scheduler = config.connectors['amazon-ses'].enabled ? new Scheduler(connector, log) : undefined;
  await scheduler?.start();
  const retention = new InboxRetention({ store: connector.store, log, policy: retentionPolicy(config) });
  retention.start();

  const sendGovernor = () => post({ type: 'governor', status: connector.governor.status() });
  const governorTimer = setInterval(sendGovernor, 1000);
  sendGovernor();

  port!.on('message', (msg: ToEngine) => {
    switch (msg.type) {
      case 'wake':
        connector.wake(msg.what);
        return;
      case 'metrics':
        void Promise.all(ENGINE_METRICS.map((name) => connector.metrics.registry.getSingleMetricAsString(name))).then((parts) =>
          post({ type: 'metrics', id: msg.id, text: parts.join('\n') }),
        );
        return;
      case 'stop':
        clearInterval(governorTimer);
        void (async () => {
          await scheduler?.stop();
          await retention.stop();
          await connector.stop(msg.graceMs);
          post({ type: 'stopped' });
          port!.close();
        })();
        return;
    }
  });
  post({ type: 'ready' });
}

await main();
