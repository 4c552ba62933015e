// `serve` runs processing, delivery and the scheduled syncs on their own thread (the
// engine), so the thread that answers SNS only verifies and commits: a burst of Brevo work
// never sits between a webhook and its acknowledgement. Both threads open the same store;
// they talk through messages: "something was stored", metrics, the Brevo budget, stop.
import { Worker } from 'node:worker_threads';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { Logger } from 'pino';
import type { TajoConfig } from '../config/schema.js';
import type { BucketStatus } from '../brevo/governor.js';
import { errorMessage, TajoError } from '../core/errors.js';
import type { BrevoSetup } from './setup.js';

/** What the answering thread needs from an engine that runs elsewhere. */
export interface EngineLink {
  /** Stored envelopes (`stored`) or requeued operations (`all`) are waiting. Cheap; coalesced per turn. */
  wake(what: 'stored' | 'all'): void;
  /** The Brevo budget as the engine's governor last saw it. */
  rateLimit(): BucketStatus[];
  /** Where the engine's Brevo set-up stands, as it last said. */
  brevoSetup(): BrevoSetup;
  /** The engine's own metrics, in Prometheus text format. */
  metricsText(): Promise<string>;
  /** Stops the engine after its in-flight work is recorded. */
  stop(graceMs: number): Promise<void>;
}

export interface EngineWorkerData {
  config: TajoConfig;
  nice: number;
  gate: SharedArrayBuffer;
  pressure: SharedArrayBuffer;
}

/** Starting includes migrating the store and recovering leases (Brevo's attributes are set up in the background). */
const ENGINE_START_TIMEOUT_MS = 120_000;

/** A stop that is not done this long after its grace period ends the thread (its leases bring the work back). */
const STOP_TERMINATE_AFTER_GRACE_MS = 10_000;

/** The engine yields the CPU to the answering thread (Linux niceness of the engine thread). */
const ENGINE_NICE = 10;

export type ToEngine = { type: 'wake'; what: 'stored' | 'all' } | { type: 'metrics'; id: number } | { type: 'stop'; graceMs: number };
export type FromEngine =
  | { type: 'ready' }
  | { type: 'failed'; error: string; code?: string; retryable?: boolean }
  | { type: 'governor'; status: BucketStatus[] }
  | { type: 'brevo'; setup: BrevoSetup }
  | { type: 'metrics'; id: number; text: string }
  | { type: 'stopped' };

export interface EngineThreadOptions {
  /** Called when the engine dies after it started: the caller should exit so a supervisor restarts the process. */
  onFailure: (reason: string) => void;
  /** Niceness of the engine thread (Linux: per thread); 0 keeps it equal to the answering thread. */
  nice?: number;
  startTimeoutMs?: number;
  /** The shared cell of the SQLite write gate (store/sqlite/gate.ts). */
  gate: SharedArrayBuffer;
  /** Cell 0 is 1 while the answering thread is saturated (the engine then holds back). */
  pressure: SharedArrayBuffer;
}

/** Starts the engine thread and resolves once it has recovered leases and started its loops. */
export async function startEngineThread(cfg: TajoConfig, log: Logger, opts: EngineThreadOptions): Promise<EngineLink> {
  const worker = new Worker(new URL('./engine-worker.js', import.meta.url), {
    workerData: { config: cfg, nice: opts.nice ?? ENGINE_NICE, gate: opts.gate, pressure: opts.pressure } satisfies EngineWorkerData,
  });
  let rate: BucketStatus[] = [];
  let brevo: BrevoSetup = { state: 'pending' };
  let stopping = false;
  let wakeQueued: 'stored' | 'all' | undefined;
  let nextId = 0;
  const waiting = new Map<number, (text: string) => void>();
  let stopped: (() => void) | undefined;

  // Listening before `ready`: the Brevo set-up may report while the engine starts.
  worker.on('message', (msg: FromEngine) => {
    if (msg.type === 'governor') rate = msg.status;
    else if (msg.type === 'brevo') brevo = msg.setup;
    else if (msg.type === 'metrics') {
      waiting.get(msg.id)?.(msg.text);
      waiting.delete(msg.id);
    } else if (msg.type === 'stopped') stopped?.();
  });
  await whenReady(worker, opts.startTimeoutMs ?? ENGINE_START_TIMEOUT_MS);

  const died = (reason: string) => {
    for (const done of waiting.values()) done('');
    waiting.clear();
    if (stopping) {
      stopped?.();
      return;
    }
    log.fatal({ reason }, 'the engine thread stopped unexpectedly; what was accepted is stored and a restart resumes it');
    opts.onFailure(reason);
  };
  worker.on('error', (err) => died(errorMessage(err)));
  worker.on('exit', (code) => died(`exit code ${code}`));

  return {
    wake(what) {
      if (stopping) return;
      if (wakeQueued) {
        if (what === 'all') wakeQueued = 'all';
        return;
      }
      wakeQueued = what;
      setImmediate(() => {
        worker.postMessage({ type: 'wake', what: wakeQueued ?? what } satisfies ToEngine);
        wakeQueued = undefined;
      });
    },
    rateLimit: () => rate,
    brevoSetup: () => brevo,
    metricsText() {
      if (stopping) return Promise.resolve('');
      const id = ++nextId;
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        worker.postMessage({ type: 'metrics', id } satisfies ToEngine);
      });
    },
    async stop(graceMs) {
      if (stopping) return;
      stopping = true;
      const done = new Promise<void>((r) => (stopped = r));
      worker.postMessage({ type: 'stop', graceMs } satisfies ToEngine);
      const timer = setTimeout(() => void worker.terminate(), graceMs + STOP_TERMINATE_AFTER_GRACE_MS);
      await done;
      clearTimeout(timer);
    },
  };
}

/** Resolves once the engine thread says it is ready; otherwise ends it and rejects with why. */
async function whenReady(worker: Worker, startTimeoutMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new TajoError('engine_start_timeout', `the engine thread did not start within ${startTimeoutMs / 1000} s`, { retryable: true })),
      startTimeoutMs,
    );
    const early = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    worker.once('error', early);
    worker.once('exit', (code) =>
      early(new TajoError('engine_exited', `the engine thread exited with code ${code} while starting`, { details: { exitCode: code } })),
    );
    worker.on('message', function first(msg: FromEngine) {
      if (msg.type !== 'ready' && msg.type !== 'failed') return;
      clearTimeout(timer);
      worker.off('message', first);
      worker.off('error', early);
      worker.removeAllListeners('exit');
      if (msg.type === 'ready') resolve();
      // The engine's own error, code included (a refused Brevo key stays `unauthorized`).
      else reject(new TajoError(msg.code ?? 'engine_start_failed', msg.error, { retryable: msg.retryable ?? false }));
    });
  }).catch(async (err: unknown) => {
    await worker.terminate();
    throw err;
  });
}

/**
 * Lowers the calling thread's scheduling priority (Linux: setpriority on the thread id).
 * Where that is not possible it is a no-op: the engine then competes as an equal.
 */
export function lowerThreadPriority(nice: number): boolean {
  if (nice <= 0) return false;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
