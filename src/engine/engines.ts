// Where processing and delivery run: on this thread (`inline`: tests, `demo`, library users)
// or on an engine thread (`thread`: `serve`, so that this thread only answers webhooks). The
// connector talks to either through one interface.
import type { Logger } from 'pino';
import type { TajoConfig } from '../config/schema.js';
import type { BrevoClient } from '../brevo/client.js';
import type { Governor } from '../brevo/governor.js';
import type { Store } from '../store/port.js';
import type { WriteGate } from '../store/sqlite/gate.js';
import { ENGINE_METRICS, type Metrics } from './metrics.js';
import type { Processor } from './processor.js';
import type { Deliverer } from './deliver.js';
import { ensureAttributes, ensureAttributesInBackground, type AttributeReport, type BrevoSetup } from './setup.js';
import { isOwnerGone } from './owner.js';
import { collectStatus, type StatusReport } from './status.js';
import { startEngineThread, type EngineLink } from './thread.js';

/** How often the Brevo budget is saved to the store, where `tajo-ses status` (another process) reads it. */
const GOVERNOR_SNAPSHOT_MS = 5000;

/** How often the answering thread tells the engine thread whether it is saturated. */
const PRESSURE_PUBLISH_MS = 100;

export interface Engine {
  /** Recovers work left by a dead process, prepares Brevo and starts the loops (the store is migrated). */
  start(): Promise<void>;
  /** Stops the loops after in-flight work is recorded (cut after `graceMs`). */
  stop(graceMs: number): Promise<void>;
  /** Work is waiting: `stored` envelopes only, or `all` queues. */
  wake(what: 'stored' | 'all'): void;
  /** Prometheus text of every metric, wherever it is counted. */
  metricsText(): Promise<string>;
  status(): Promise<EngineStatus>;
  /** Where the Brevo set-up stands (the engine thread reports its own). */
  readonly brevoSetup: BrevoSetup;
  /** Follows accepted imports to their end now. Only where this thread delivers: an engine thread does it itself. */
  followImports?(): Promise<unknown>;
  /** What start found and created in Brevo (inline only: the engine thread keeps its own). */
  readonly attributes: AttributeReport | undefined;
}

/** The status report, with where the Brevo set-up stands. */
/** `brevoSetup`: whether the SES_* attributes are in place (delivery waits for them); `brevo` is the call health. */
export type EngineStatus = StatusReport & { brevoSetup: BrevoSetup };

/** What both engines read. */
interface EngineBase {
  store: Store;
  governor: Governor;
  metrics: Metrics;
  log: Logger;
  now: () => number;
}

export interface InlineEngineOptions extends EngineBase {
  client: BrevoClient;
  processor: Processor;
  deliverer: Deliverer;
  /**
   * Create missing SES_* attributes in Brevo, and check these field_mapping targets; false
   * skips both. `background`: start does not wait (nor fail) for Brevo; the set-up is retried
   * until it succeeds and delivery starts after it. Otherwise start fails when Brevo does.
   */
  attributes: { mapped: string[]; background: boolean } | false;
  /** Called when the Brevo set-up changes state. */
  onBrevoSetup?: (setup: BrevoSetup) => void;
}

export class InlineEngine implements Engine {
  attributes: AttributeReport | undefined;
  brevoSetup: BrevoSetup;
  private started = false;
  private snapshot: NodeJS.Timeout | undefined;
  private readonly setupAbort = new AbortController();
  private setup: Promise<void> | undefined;

  constructor(private readonly o: InlineEngineOptions) {
    this.brevoSetup = { state: o.attributes ? 'pending' : 'skipped' };
  }

  async start(): Promise<void> {
    const { store, log, now, client } = this.o;
    // Leases of a process that died on this host are released at once; others expire.
    for (const owner of await store.leaseOwners()) {
      if (isOwnerGone(owner)) {
        const n = await store.releaseOwner(owner);
        if (n > 0) log.info({ owner, operations: n }, 'released the work of a process that is gone');
      }
    }
    const recovered = await store.recoverExpired(now());
    if (recovered > 0) log.info({ operations: recovered }, 'resumed operations whose worker stopped');
    const want = this.o.attributes;
    if (want && !want.background) {
      this.attributes = await ensureAttributes(client, { create: true, mapped: want.mapped, log });
      this.setBrevo({ state: 'ready' });
    }
    this.o.processor.start();
    // Brevo drops values of attributes it does not know: nothing is delivered before they exist.
    if (want && want.background) this.setup = this.deliverOnceBrevoIsReady(want.mapped);
    else this.o.deliverer.start();
    this.snapshot = setInterval(() => void this.saveGovernor(), GOVERNOR_SNAPSHOT_MS);
    this.snapshot.unref();
    this.started = true;
  }

  async stop(graceMs: number): Promise<void> {
    if (!this.started) return;
    clearInterval(this.snapshot);
    this.setupAbort.abort();
    await this.setup;
    await this.o.processor.stop();
    await this.o.deliverer.stop(graceMs);
    await this.saveGovernor();
  }

  wake(what: 'stored' | 'all'): void {
    this.o.processor.wake();
    if (what === 'all') this.o.deliverer.wake();
  }

  metricsText(): Promise<string> {
    return this.o.metrics.registry.metrics();
  }

  async status(): Promise<EngineStatus> {
    return { ...(await collectStatus(this.o.store, this.o.governor, this.o.metrics, this.o.now())), brevoSetup: this.brevoSetup };
  }

  private async deliverOnceBrevoIsReady(mapped: string[]): Promise<void> {
    const { client, log } = this.o;
    const report = await ensureAttributesInBackground({ client, mapped, log, signal: this.setupAbort.signal, onState: (s) => this.setBrevo(s) });
    if (!report || this.setupAbort.signal.aborted) return;
    this.attributes = report;
    this.o.deliverer.start();
  }

  private setBrevo(setup: BrevoSetup): void {
    this.brevoSetup = setup;
    this.o.onBrevoSetup?.(setup);
  }

  followImports(): Promise<unknown> {
    return this.o.deliverer.imports.reconcile();
  }

  /** `tajo-ses status` runs in another process: it reads the budget from the store. */
  private saveGovernor(): Promise<void> {
    const { store, governor, now } = this.o;
    return store.setState('governor', JSON.stringify(governor.status()), now()).catch(() => undefined);
  }
}

export interface ThreadEngineOptions extends EngineBase {
  cfg: TajoConfig;
  /** This thread's side of the SQLite write gate. */
  gate: WriteGate;
  /** The cell the engine thread reads this thread's load from. */
  ingestPressure: Int32Array;
  /** Is this thread saturated by webhooks right now? */
  underPressure: () => boolean;
  /** Called if the engine thread dies after it started. */
  onFailure: (reason: string) => void;
}

export class ThreadEngine implements Engine {
  readonly attributes = undefined;
  get brevoSetup(): BrevoSetup {
    return this.link?.brevoSetup() ?? { state: 'pending' };
  }
  private link: EngineLink | undefined;
  private pressureTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ThreadEngineOptions) {}

  /** The engine thread recovers leases, prepares Brevo and runs the loops and schedules. */
  async start(): Promise<void> {
    const { cfg, log, gate, ingestPressure, underPressure, onFailure } = this.o;
    this.link = await startEngineThread(cfg, log, { onFailure, gate: gate.buffer, pressure: ingestPressure.buffer as SharedArrayBuffer });
    // During a burst the engine holds back (as the inline loops do), so acknowledgements get the CPU.
    this.pressureTimer = setInterval(() => Atomics.store(ingestPressure, 0, underPressure() ? 1 : 0), PRESSURE_PUBLISH_MS);
    this.pressureTimer.unref();
  }

  async stop(graceMs: number): Promise<void> {
    clearInterval(this.pressureTimer);
    await this.link?.stop(graceMs);
  }

  wake(what: 'stored' | 'all'): void {
    this.link?.wake(what);
  }

  /** This thread's own metrics (HTTP, ingestion) and the engine thread's. */
  async metricsText(): Promise<string> {
    const { registry } = this.o.metrics;
    if (!this.link) return registry.metrics();
    const own = registry
      .getMetricsAsArray()
      .map((m) => m.name)
      .filter((n) => !(ENGINE_METRICS as readonly string[]).includes(n));
    const parts = await Promise.all(own.map((n) => registry.getSingleMetricAsString(n)));
    return `${[...parts, await this.link.metricsText()].filter(Boolean).join('\n')}\n`;
  }

  async status(): Promise<EngineStatus> {
    const link = this.link;
    const report = await collectStatus(this.o.store, link ? { status: () => link.rateLimit() } : this.o.governor, this.o.metrics, this.o.now());
    return { ...report, brevoSetup: this.brevoSetup };
  }
}
