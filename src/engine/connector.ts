// The connector as one object: store, Brevo client under the governor, ingestion,
// processing and delivery loops. `serve`, `demo`, tests and library users all build it here.
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { createLogger, type LogFormat } from './log.js';
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import type { SesConnectorConfig, TajoConfig } from '../config/schema.js';
import { parseConfig } from '../config/load.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/port.js';
import { WriteGate } from '../store/sqlite/gate.js';
import { BrevoClient } from '../brevo/client.js';
import { Governor } from '../brevo/governor.js';
import { CertCache, type VerifySnsOptions } from '../ses/sns.js';
import { createSesClient, type RateLimiter, type SesClientOptions } from '../ses/client.js';
import { TajoError, errorMessage } from '../core/errors.js';
import { createMetrics, type Metrics } from './metrics.js';
import { InboxWriter, IngestRate, WebhookIngest, verifyOptions } from './ingest.js';
import { Processor } from './processor.js';
import { EventBridgeIngest } from './eventbridge.js';
import { SqsIntake } from './sqs.js';
import { BULK_FLUSH_KEY, Deliverer, DEFAULT_STOP_GRACE_MS, FLUSH_FRESH_MS, type DeliveryOptions } from './deliver.js';
import type { AttributeReport, BrevoSetup } from './setup.js';
import { BACKFILL_LEASE, HEARTBEAT_MS, isOwnerGone, makeOwnerId } from './owner.js';
import { LoopPressure } from './pressure.js';
import { BrevoLists, RECIPIENTS_LIST } from './lists.js';
import { runReconcile, type ReconcileOptions, type ReconcileReport } from './reconcile.js';
import { enabledStreams, runBackfill, type BackfillOptions, type BackfillProgress, type BackfillSummary } from './backfill.js';
import { recordSyncRun } from './sync-runs.js';
import { InlineEngine, ThreadEngine, type Engine, type EngineStatus, type InlineEngineOptions } from './engines.js';

/** Realtime contacts claimed per round; written in parallel (delivery.concurrency) within the governor's budget. */
const CONTACT_CLAIM = 50;

/**
 * How long a claimed operation stays with its worker: longer than any round takes (Brevo's
 * timeout, governor waits), so a live worker keeps its work, and a dead one's comes back after it.
 */
const DELIVERY_LEASE_MS = 120_000;

/** Backfill contacts per bulk claim: room for full imports (IMPORT_MAX_ROWS each) after the split by list set. */
const BULK_CLAIM = 20_000;

/**
 * How often the bulk worker asks to follow accepted imports. Asking is store reads only: the
 * GET /processes calls themselves are paced across the cluster within their share of the
 * hourly budget (imports.ts, FollowPacer).
 */
const RECONCILE_EVERY_MS = 2_000;

/**
 * Fuller imports: backfill rows wait for this many, or until the oldest is BULK_LINGER_MS old
 * (or the backfill waits for them): a 20,000-row backfill makes a handful of imports.
 */
const BULK_FILL_ROWS = 5_000;
const BULK_LINGER_MS = 5_000;

/** Envelopes planned per slice: small slices keep the event loop free for webhooks between them (benchmarked). */
const PLAN_SLICE = 50;

/** Notifications per second from which webhooks count as a burst (when the event loop is saturated too). */
const BURST_RATE = 200;

/** How often waitIdle looks at the queues, and follows accepted imports (at most). */
const WAIT_IDLE_POLL_MS = 100;
const WAIT_IDLE_RECONCILE_MS = 1000;

/** How often a backfill looks whether its bulk writes were accepted. */
const BACKFILL_ACCEPTED_POLL_MS = 50;

export interface ConnectorOptions {
  logger?: Logger;
  /** What this process runs (`serve`, `backfill`...), shown in the cluster's process list. */
  role?: string;
  now?: () => number;
  /** Test hooks for SNS verification (certificate fetcher, clock). */
  verify?: Partial<VerifySnsOptions>;
  delivery?: Partial<DeliveryOptions>;
  store?: Store;
  fetchImpl?: typeof fetch;
  /**
   * Create missing Brevo attributes. `background` (default): start does not wait for Brevo;
   * the set-up is retried until it succeeds and delivery waits for it, so the intake runs
   * whatever Brevo does (`serve`). `true`: start fails when Brevo does (a backfill needs
   * Brevo). `false`: not at all.
   */
  ensureAttributes?: boolean | 'background';
  /** Called when the Brevo set-up changes state (set by engine-worker.ts). */
  onBrevoSetup?: (setup: BrevoSetup) => void;
  /** SES client options (static credentials for simulators, a shared limiter). */
  ses?: SesClientOptions;
  defaultMetrics?: boolean;
  /**
   * `inline` (default) runs processing and delivery on this thread. `thread` runs them, and
   * the scheduled syncs, on an engine thread (what `serve` does): this thread then only
   * answers HTTP, verifies and commits. Needs the built package (dist/).
   */
  engine?: 'inline' | 'thread';
  /** Uncommitted envelopes from which the EventBridge intake answers 429 (default EVENTBRIDGE_MAX_BACKLOG). */
  eventbridgeMaxBacklog?: number;
  /** Thread engine only: called if the engine thread dies after it started. */
  onEngineFailure?: (reason: string) => void;
  /** The engine thread's side of the SQLite write gate (set by engine-worker.ts). */
  writeGate?: WriteGate;
  /** The engine thread's view of the answering thread's load (set by engine-worker.ts). */
  ingestPressure?: Int32Array;
}

export interface BackfillHooks {
  onProgress?: (p: BackfillProgress) => void;
  signal?: AbortSignal;
  /** An SES client (and its limiter) to read with instead of the connector's own. */
  ses?: SesParts;
}

type SesParts = { client: SESv2Client; limiter: RateLimiter };

export interface Connector {
  readonly config: TajoConfig;
  readonly store: Store;
  readonly client: BrevoClient;
  readonly governor: Governor;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly owner: string;
  readonly webhook: WebhookIngest;
  /** `POST /webhooks/amazon-ses/eventbridge` (off while eventbridge.secret is empty). */
  readonly eventbridge: EventBridgeIngest;
  /** The SQS intake of `sqs.queue_url` (undefined when none is set); its owner starts and stops it. */
  createSqsIntake(opts?: { credentials?: SesClientOptions['credentials'] }): SqsIntake | undefined;
  readonly writer: InboxWriter;
  readonly processor: Processor;
  readonly deliverer: Deliverer;
  /** Tells the workers (here or on the engine thread) that work is waiting: `stored` envelopes only, or `all` queues. */
  wake(what?: 'stored' | 'all'): void;
  /** Prometheus text of every metric, wherever the engine runs. */
  metricsText(): Promise<string>;
  /** What start found and created in Brevo (inline engine only). */
  readonly attributes: AttributeReport | undefined;
  /** Where the Brevo set-up stands: delivery runs once it is `ready`; `unauthorized` means Brevo refuses the key. */
  readonly brevoSetup: BrevoSetup;
  /** Migrates, recovers work left by a dead process, prepares Brevo, starts the loops. */
  start(): Promise<void>;
  /** Stops the loops after in-flight work is recorded, and closes the store. */
  stop(graceMs?: number): Promise<void>;
  status(): Promise<EngineStatus>;
  readonly lists: BrevoLists;
  /** Runs a backfill in this process (its bulk writes go through this connector's workers). */
  backfill(opts?: BackfillOptions, hooks?: BackfillHooks): Promise<BackfillSummary>;
  /**
   * Reads Brevo back and reports where it drifted from what the connector wrote; with `fix`,
   * queues the corrections for this connector's workers (reconcile.ts).
   */
  reconcile(opts?: ReconcileOptions): Promise<ReconcileReport>;
  /** The SES client (created on first use). */
  ses(): { client: SESv2Client; limiter: RateLimiter };
  /**
   * Resolves when nothing is left to deliver (unprocessed, pending or in flight), or rejects
   * at the timeout. Imports Brevo has accepted but not finished count as delivered unless
   * `includeAwaiting`, in which case they are followed to their end within the budget; with
   * `awaitingForMs` too, only while they keep settling: once everything else is written and
   * no import was found finished for that long (following them spends the scarce hourly
   * budget, paced), it resolves and `serve` settles the rest later. Resolves with the
   * operations still awaiting Brevo.
   */
  waitIdle(timeoutMs: number, opts?: WaitIdleOptions): Promise<{ awaiting: number }>;
}

export interface WaitIdleOptions {
  includeAwaiting?: boolean;
  awaitingForMs?: number;
}

/** The connector's log on stdout (1) or stderr (2), as `log.format` says (log.ts). */
export function defaultLogger(level: string, dest: 1 | 2 = 2, format: LogFormat = 'auto'): Logger {
  return createLogger(level, { fd: dest, format });
}

export async function createConnector(config: TajoConfig | Record<string, unknown>, opts: ConnectorOptions = {}): Promise<Connector> {
  const cfg: TajoConfig = 'connectors' in config && isParsed(config) ? (config as TajoConfig) : parseConfig(config);
  const ses = cfg.connectors['amazon-ses'];
  const log = opts.logger ?? defaultLogger(cfg.log.level, 2, cfg.log.format);
  const now = opts.now ?? Date.now;
  const metrics = createMetrics({ defaultMetrics: opts.defaultMetrics ?? false });
  // With an engine thread on the same SQLite file, acknowledgements go first (gate.ts).
  const writeGate = opts.writeGate ?? (opts.engine === 'thread' ? new WriteGate('ingest') : undefined);
  const store = opts.store ?? (await openStore(cfg.store.url, { sqlite: { ...(writeGate ? { gate: writeGate } : {}) } }));
  const governor = new Governor({
    plan: cfg.brevo.plan,
    now,
    onStoreError: (err, what) => log.warn({ err: errorMessage(err), what }, 'shared Brevo budget: the store failed; trying again'),
  });
  const client = new BrevoClient({
    baseUrl: cfg.brevo.base_url,
    apiKey: cfg.brevo.api_key,
    timeoutMs: cfg.brevo.timeout,
    governor,
    log,
    ...(opts.fetchImpl ? { fetchImpl: opts.fetchImpl } : {}),
  });
  const owner = makeOwnerId();
  const writer = new InboxWriter(store);
  const lists = new BrevoLists(client, store, ses.lists.folder, now, owner);
  const ingestRate = new IngestRate();
  const pressure = pressureProbe(ingestRate, opts.ingestPressure);
  const delivery = deliveryOptions(cfg, lists, pressure, opts.delivery);
  const deliverer = new Deliverer({ store, client, delivery, owner, log, metrics, now });
  const processor = new Processor({
    store,
    plan: ses,
    owner,
    log,
    metrics,
    onPlanned: (planned) => deliverer.wake('realtime', planned),
    batchSize: PLAN_SLICE,
    now,
    underPressure: pressure,
  });
  const engine = engineFor(cfg, opts, { store, governor, metrics, log, now, client, processor, deliverer, writeGate, underPressure: pressure });
  const wake = (what: 'stored' | 'all' = 'all') => engine.wake(what);
  // A stored envelope needs planning; planning wakes the delivery loops it feeds.
  const verify = verifyOptions(ses, new CertCache(), opts.verify);
  const webhook = new WebhookIngest({ writer, cfg: ses, verify, log, metrics, onStored: () => wake('stored'), rate: ingestRate, now });
  const eventbridge = new EventBridgeIngest({
    writer,
    cfg: ses,
    log,
    metrics,
    onStored: () => wake('stored'),
    rate: ingestRate,
    now,
    ...(opts.eventbridgeMaxBacklog !== undefined ? { maxBacklog: opts.eventbridgeMaxBacklog } : {}),
  });

  const heartbeat = new Heartbeat(store, { owner, host: hostname(), pid: process.pid, role: opts.role ?? 'connector' }, log);
  let sesClient: SesParts | undefined;
  const getSes = () => (sesClient ??= createSesClient(ses, { log, ...opts.ses }));
  return {
    config: cfg,
    store,
    client,
    governor,
    metrics,
    log,
    owner,
    webhook,
    eventbridge,
    createSqsIntake: (sopts = {}) =>
      ses.sqs.queue_url
        ? new SqsIntake({
            cfg: ses,
            writer,
            store,
            verify,
            log,
            metrics,
            onStored: () => wake('stored'),
            now,
            ...(sopts.credentials ? { credentials: sopts.credentials } : opts.ses?.credentials ? { credentials: opts.ses.credentials } : {}),
          })
        : undefined,
    writer,
    processor,
    deliverer,
    lists,
    wake,
    get attributes() {
      return engine.attributes;
    },
    get brevoSetup() {
      return engine.brevoSetup;
    },
    async start() {
      await store.migrate();
      await heartbeat.start();
      // Several processes share a PostgreSQL store: Brevo's budget is the account's (shared-budget.ts).
      if (store.kind === 'postgres') await governor.useStore(store);
      await engine.start();
    },
    async stop(graceMs = DEFAULT_STOP_GRACE_MS) {
      await writer.drain();
      await engine.stop(graceMs);
      await heartbeat.stop();
      await store.close();
    },
    metricsText: () => engine.metricsText(),
    ses: getSes,
    async backfill(bopts = {}, hooks = {}) {
      const run = (h: BackfillHooks) => backfillHere({ store, lists, cfg: ses, log, now, wake, ses: hooks.ses ?? getSes() }, bopts, h);
      // A dry run writes nothing: only real runs must not overlap.
      return bopts.dryRun ? run(hooks) : underBackfillLease({ store, owner, log }, hooks, run);
    },
    async reconcile(ropts = {}) {
      const report = await runReconcile({ store, client, lists }, { now, ...ropts });
      if (report.queued) wake('all');
      return report;
    },
    status: () => engine.status(),
    waitIdle: (timeoutMs, wopts = {}) => waitForIdle(store, engine, timeoutMs, wopts),
  };
}

/** Where processing and delivery run (engines.ts). */
function engineFor(
  cfg: TajoConfig,
  opts: ConnectorOptions,
  p: Omit<InlineEngineOptions, 'attributes' | 'onBrevoSetup'> & { writeGate: WriteGate | undefined; underPressure: () => boolean },
): Engine {
  const base = { store: p.store, governor: p.governor, metrics: p.metrics, log: p.log, now: p.now };
  if (opts.engine !== 'thread') {
    const want = opts.ensureAttributes ?? 'background';
    const attributes = want !== false && { mapped: Object.values(cfg.connectors['amazon-ses'].field_mapping), background: want === 'background' };
    return new InlineEngine({
      ...base,
      client: p.client,
      processor: p.processor,
      deliverer: p.deliverer,
      attributes,
      ...(opts.onBrevoSetup ? { onBrevoSetup: opts.onBrevoSetup } : {}),
    });
  }
  return new ThreadEngine({
    ...base,
    cfg,
    gate: p.writeGate ?? new WriteGate('ingest'),
    ingestPressure: opts.ingestPressure ?? new Int32Array(new SharedArrayBuffer(4)),
    underPressure: p.underPressure,
    onFailure: opts.onEngineFailure ?? (() => undefined),
  });
}

/**
 * Is the thread that answers webhooks saturated? On the engine thread the answer comes
 * from that thread, through shared memory (cell 0 is 1 while it is).
 */
function pressureProbe(rate: IngestRate, fromIngestThread: Int32Array | undefined): () => boolean {
  if (fromIngestThread) return () => Atomics.load(fromIngestThread, 0) === 1;
  const elu = new LoopPressure();
  return () => rate.perSecond() > BURST_RATE && elu.busy();
}

function deliveryOptions(cfg: TajoConfig, lists: BrevoLists, underPressure: () => boolean, overrides: Partial<DeliveryOptions> = {}): DeliveryOptions {
  return {
    maxAttempts: cfg.delivery.max_attempts,
    backoffBaseMs: cfg.delivery.backoff_base,
    backoffMaxMs: cfg.delivery.backoff_max,
    eventBatchSize: cfg.delivery.batch_size,
    contactBatchSize: CONTACT_CLAIM,
    contactConcurrency: cfg.delivery.concurrency,
    lingerMs: cfg.delivery.linger,
    leaseMs: DELIVERY_LEASE_MS,
    lanes: ['realtime'],
    underPressure,
    listId: lists,
    bulk: {
      lanes: ['backfill'],
      claimLimit: BULK_CLAIM,
      defaultListId: () => lists.ensure(RECIPIENTS_LIST),
      reconcileEveryMs: RECONCILE_EVERY_MS,
      fill: { rows: BULK_FILL_ROWS, lingerMs: BULK_LINGER_MS },
    },
    ...overrides,
  };
}

/** A backfill in this process: its bulk writes go through this connector's workers (here or on the engine thread). */
async function backfillHere(
  p: { store: Store; lists: BrevoLists; cfg: SesConnectorConfig; log: Logger; now: () => number; wake: () => void; ses: SesParts },
  bopts: BackfillOptions,
  hooks: BackfillHooks,
): Promise<BackfillSummary> {
  const { store } = p;
  if (bopts.dryRun) return backfillRun(p, bopts, hooks);
  // Every real run, scheduled or from the CLI, goes into the sync history (sync-runs.ts).
  const streams = bopts.streams && bopts.streams.length > 0 ? bopts.streams : enabledStreams(p.cfg);
  const startedAt = p.now();
  const record = (r: { read: number; written: number; error: string | null }) =>
    recordSyncRun(store, { streams, startedAt, endedAt: p.now(), ...r }, p.now()).catch((err: unknown) =>
      p.log.warn({ err: errorMessage(err) }, 'could not record the sync run in the history'),
    );
  try {
    const summary = await backfillRun(p, bopts, hooks);
    const totals = Object.values(summary.streams);
    await record({
      read: totals.reduce((a, s) => a + (s?.read ?? 0), 0),
      written: totals.reduce((a, s) => a + (s?.written ?? 0), 0),
      // A stopped run returns what it read; its cursor stays where the next run resumes.
      error: hooks.signal?.aborted ? 'stopped before the end (the next run resumes from the cursor)' : null,
    });
    return summary;
  } catch (err) {
    await record({ read: 0, written: 0, error: errorMessage(err) });
    throw err;
  }
}

function backfillRun(
  p: { store: Store; lists: BrevoLists; cfg: SesConnectorConfig; log: Logger; now: () => number; wake: () => void; ses: SesParts },
  bopts: BackfillOptions,
  hooks: BackfillHooks,
): Promise<BackfillSummary> {
  const { store, wake } = p;
  return runBackfill(
    {
      store,
      ses: p.ses.client,
      limiter: p.ses.limiter,
      ...(bopts.dryRun ? {} : { lists: p.lists }),
      cfg: p.cfg,
      log: p.log,
      now: p.now,
      onQueued: () => wake(),
      waitAccepted: async () => {
        let flushedAt = 0;
        while ((await backfillOpen(store)) > 0) {
          if (hooks.signal?.aborted) throw new TajoError('backfill_stopped', 'backfill stopped');
          // The bulk workers (of any process) hold rows back for fuller imports: not these.
          if (p.now() - flushedAt >= FLUSH_FRESH_MS / 3) {
            flushedAt = p.now();
            await store.setState(BULK_FLUSH_KEY, String(flushedAt), flushedAt).catch(() => undefined);
          }
          wake();
          await sleep(BACKFILL_ACCEPTED_POLL_MS);
        }
      },
      ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
      ...(hooks.signal ? { signal: hooks.signal } : {}),
    },
    bopts,
  );
}

/** This process in the store's process list (status, /admin/status) while it runs. */
class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly store: Store,
    private readonly beat: { owner: string; host: string; pid: number; role: string },
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.store.heartbeat(this.beat);
    this.timer = setInterval(() => {
      this.store.heartbeat(this.beat).catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'heartbeat: the store failed; trying again'));
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.store.forgetProcess(this.beat.owner).catch(() => undefined);
  }
}

export { BACKFILL_LEASE };
const BACKFILL_LEASE_MS = 30_000;

/**
 * Runs `fn` holding the backfill lease, renewed every third of its term: two backfills (a
 * manual one and serve's scheduled sync, or two processes of a cluster) never run at once.
 * Refused with `backfill_running` while another live process holds it. A run whose lease was
 * taken over (it could not renew in time) stops, its cursor kept.
 */
async function underBackfillLease<T>(
  p: { store: Store; owner: string; log: Logger },
  hooks: BackfillHooks,
  fn: (hooks: BackfillHooks) => Promise<T>,
): Promise<T> {
  const { store, owner } = p;
  const take = () => store.tryLease({ name: BACKFILL_LEASE, owner, ttlMs: BACKFILL_LEASE_MS });
  let r = await take();
  if (!r.acquired && isOwnerGone(r.holder)) {
    await store.releaseLease({ name: BACKFILL_LEASE, owner: r.holder });
    r = await take();
  }
  if (!r.acquired) {
    const proc = (await store.listProcesses({ staleAfterMs: BACKFILL_LEASE_MS })).find((x) => x.owner === r.holder);
    const who = proc ? `${proc.role ?? 'process'} pid ${proc.pid} on ${proc.host}` : `process ${r.holder}`;
    throw new TajoError(
      'backfill_running',
      `another backfill or scheduled sync is running on this store (${who}, lease until ${new Date(r.expiresAt).toISOString()}); ` +
        'two never run at once: wait for it to finish, then run this again (it resumes from the cursors)',
      { retryable: true },
    );
  }
  const lost = new AbortController();
  let lostErr: TajoError | undefined;
  const renew = setInterval(() => {
    take().then(
      (again) => {
        if (again.acquired || lost.signal.aborted) return;
        lostErr = new TajoError('backfill_lease_lost', `the backfill lease was taken over by ${again.holder}; this run stopped (its cursor is kept)`, {
          retryable: true,
        });
        p.log.error({ holder: again.holder }, lostErr.message);
        lost.abort(lostErr);
      },
      (err: unknown) => p.log.warn({ err: errorMessage(err) }, 'backfill lease: renewal failed; trying again'),
    );
  }, BACKFILL_LEASE_MS / 3);
  renew.unref();
  try {
    const signal = hooks.signal ? AbortSignal.any([hooks.signal, lost.signal]) : lost.signal;
    const out = await fn({ ...hooks, signal });
    if (lostErr) throw lostErr;
    return out;
  } finally {
    clearInterval(renew);
    await store.releaseLease({ name: BACKFILL_LEASE, owner }).catch(() => undefined);
  }
}

/** Backfill operations not yet written (pending or in flight). */
async function backfillOpen(store: Store): Promise<number> {
  const st = await store.stats();
  return st.ops.filter((o) => o.lane === 'backfill' && (o.state === 'pending' || o.state === 'inflight')).reduce((a, o) => a + o.count, 0);
}

async function waitForIdle(store: Store, engine: Engine, timeoutMs: number, opts: WaitIdleOptions): Promise<{ awaiting: number }> {
  const deadline = Date.now() + timeoutMs;
  let lastReconcile = 0;
  /** When everything but the awaiting imports was found written, or the awaiting last went down. */
  let writtenAt: number | undefined;
  let lastAwaiting = Infinity;
  for (;;) {
    const st = await store.stats();
    const count = (states: string[]) => st.ops.filter((o) => states.includes(o.state)).reduce((a, o) => a + o.count, 0);
    const busy = (st.inbox.pending ?? 0) + count(['pending', 'inflight']);
    const awaiting = count(['awaiting']);
    if (busy === 0 && (!opts.includeAwaiting || awaiting === 0)) return { awaiting };
    if (busy === 0 && opts.awaitingForMs !== undefined) {
      // Waiting on the awaiting imports only while they keep settling.
      if (writtenAt === undefined || awaiting < lastAwaiting) writtenAt = Date.now();
      lastAwaiting = awaiting;
      if (Date.now() - writtenAt >= opts.awaitingForMs) return { awaiting };
    } else writtenAt = undefined;
    const open = busy + (opts.includeAwaiting ? awaiting : 0);
    if (Date.now() > deadline)
      throw new TajoError('wait_idle_timeout', `still ${open} open item(s) after ${timeoutMs} ms`, { retryable: true, details: { open } });
    engine.wake('all');
    if (engine.followImports && opts.includeAwaiting && Date.now() - lastReconcile > WAIT_IDLE_RECONCILE_MS && awaiting > 0) {
      lastReconcile = Date.now();
      await engine.followImports().catch(() => undefined);
    }
    await sleep(WAIT_IDLE_POLL_MS);
  }
}

function isParsed(c: Record<string, unknown>): boolean {
  // A parsed config has every section filled in by defaults.
  return typeof c.store === 'object' && c.store !== null && typeof (c.store as { url?: unknown }).url === 'string' && typeof c.delivery === 'object';
}
