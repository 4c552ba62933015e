// Hybrid mode in `serve`: incremental syncs on `schedule:`, one at a time, in their own lane.
// Their bulk writes go through the backfill lane, so webhook events never wait behind them.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Connector } from './connector.js';
import type { StreamName } from './backfill.js';
import { errorMessage, TajoError } from '../core/errors.js';
import { isOwnerGone } from './owner.js';

export interface ScheduleEntry {
  streams: StreamName[];
  everyMs: number;
  /** `schedule.reconcile`: reads Brevo back and queues the corrections (reconcile --fix) instead of a sync. */
  reconcile?: true;
}

/** The store state key where the last scheduled reconcile is recorded (its time decides when the next is due). */
export const RECONCILE_STATE_KEY = 'reconcile:last';

export function scheduleFor(c: Connector): ScheduleEntry[] {
  const ses = c.config.connectors['amazon-ses'];
  const out: ScheduleEntry[] = [];
  if (ses.sync.account) out.push({ streams: ['account'], everyMs: ses.schedule.account });
  if (ses.sync.suppressions) out.push({ streams: ['suppressions'], everyMs: ses.schedule.suppressions });
  if (ses.sync.contacts) out.push({ streams: ['contact_lists', 'contacts'], everyMs: ses.schedule.contacts });
  if (ses.schedule.reconcile > 0) out.push({ streams: [], everyMs: ses.schedule.reconcile, reconcile: true });
  return out;
}

/** The store lease that makes one process of a cluster the one running scheduled syncs. */
export const SCHEDULER_LEASE = 'scheduler';
/** How long the scheduler lease lasts without renewal: a dead holder is replaced within about this (sooner on its own host). */
export const SCHEDULER_LEASE_MS = 15_000;

export interface SchedulerOptions {
  leaseMs?: number;
}

/**
 * Scheduled syncs run in exactly one process of those sharing a store: the one holding the
 * `scheduler` lease, renewed every third of its term. Another process takes it over once it
 * runs out (at once when its holder is a dead pid on the same host), and starts with the
 * syncs that are due, resuming from their cursors. A process that loses the lease stops its
 * sync (its cursor is kept).
 */
export class Scheduler {
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<unknown> = Promise.resolve();
  private readonly abort = new AbortController();
  /** Aborted when this process stops leading. */
  private term: AbortController | undefined;
  private stopped = false;
  private leaseTimer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  private readonly leaseMs: number;

  constructor(
    private readonly connector: Connector,
    private readonly log: Logger,
    private readonly entries: ScheduleEntry[] = scheduleFor(connector),
    opts: SchedulerOptions = {},
  ) {
    this.leaseMs = opts.leaseMs ?? SCHEDULER_LEASE_MS;
  }

  /** True while this process holds the scheduler lease. */
  get leading(): boolean {
    return this.term !== undefined;
  }

  /** Competes for the scheduler lease now and then every third of its term. */
  async start(): Promise<void> {
    if (this.entries.length === 0) return;
    await this.tick();
    this.leaseTimer = setInterval(
      () => {
        this.ticking = this.ticking.then(() => this.tick());
      },
      Math.max(10, Math.floor(this.leaseMs / 3)),
    );
    this.leaseTimer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const { store, owner } = this.connector;
    let held: boolean;
    let holder: string;
    let takenFromTheDead = false;
    try {
      let r = await store.tryLease({ name: SCHEDULER_LEASE, owner, ttlMs: this.leaseMs });
      if (!r.acquired && isOwnerGone(r.holder)) {
        await store.releaseLease({ name: SCHEDULER_LEASE, owner: r.holder });
        r = await store.tryLease({ name: SCHEDULER_LEASE, owner, ttlMs: this.leaseMs });
        // Taken from a holder that died a moment ago: its last SES request may be less than
        // one limiter interval old, and this process's limiter does not know it.
        if (r.acquired) takenFromTheDead = true;
      }
      held = r.acquired;
      holder = r.holder;
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'scheduler lease: the store failed; trying again');
      return;
    }
    if (this.stopped) return;
    if (held && !this.leading) {
      if (takenFromTheDead) await sleep(this.sesIntervalMs() + 100, undefined, { ref: false });
      if (this.stopped) return;
      await this.lead();
    } else if (!held && this.leading) this.resign(holder);
  }

  /** The SES limiter's interval between requests (connectors.amazon-ses.ses_rate_limit per second). */
  private sesIntervalMs(): number {
    return Math.ceil(1000 / this.connector.config.connectors['amazon-ses'].ses_rate_limit);
  }

  /** Runs each entry now (when its last run is older than its period) and then on its period. */
  private async lead(): Promise<void> {
    this.term = new AbortController();
    this.log.info({ owner: this.connector.owner }, 'this process runs the scheduled syncs (scheduler lease taken)');
    for (const e of this.entries) {
      const due = await this.isDue(e);
      if (due) this.enqueue(e);
      const t = setInterval(() => this.enqueue(e), e.everyMs);
      t.unref();
      this.timers.push(t);
    }
  }

  private async isDue(e: ScheduleEntry): Promise<boolean> {
    if (e.reconcile) {
      const saved = await this.connector.store.getState(RECONCILE_STATE_KEY);
      const at = saved ? (JSON.parse(saved) as { at?: number }).at : undefined;
      return at === undefined || Date.now() - at >= e.everyMs;
    }
    const last = await this.connector.store.getCursor(e.streams[e.streams.length - 1]!);
    return !last || last.status !== 'complete' || Date.now() - last.updatedAt >= e.everyMs;
  }

  /** A scheduled reconcile: the drift is logged and its corrections queued for the workers. */
  private async reconcile(signal: AbortSignal): Promise<void> {
    const t0 = Date.now();
    try {
      const r = await this.connector.reconcile({ fix: true, signal });
      const drift = Object.fromEntries(
        Object.entries(r.drift)
          .filter(([, v]) => v.count > 0)
          .map(([k, v]) => [k, v.count]),
      );
      await this.connector.store.setState(RECONCILE_STATE_KEY, JSON.stringify({ at: t0, total: r.total, drift, queued: r.queued ?? 0 }), Date.now());
      if (r.total > 0)
        this.log.warn({ drift, queued: r.queued, seconds: (Date.now() - t0) / 1000 }, 'scheduled reconcile found drift in Brevo; corrections queued');
      else this.log.info({ checked: r.checked, seconds: (Date.now() - t0) / 1000 }, 'scheduled reconcile: no drift');
    } catch (err) {
      if (!this.stopped) this.log.error({ err: errorMessage(err) }, 'scheduled reconcile failed; it runs again at its next period');
    }
  }

  private resign(holder: string): void {
    this.log.warn({ holder }, 'scheduler lease now held by another process: stopping scheduled syncs here');
    for (const t of this.timers.splice(0)) clearInterval(t);
    this.term?.abort();
    this.term = undefined;
  }

  private enqueue(e: ScheduleEntry): void {
    const term = this.term;
    if (!term) return;
    // One sync at a time: they share SES's 1 req/s budget anyway.
    this.running = this.running.then(async () => {
      if (this.stopped || term.signal.aborted) return;
      if (e.reconcile) return this.reconcile(AbortSignal.any([this.abort.signal, term.signal]));
      const t0 = Date.now();
      try {
        const s = await this.connector.backfill({ streams: e.streams }, { signal: AbortSignal.any([this.abort.signal, term.signal]) });
        this.log.info(
          { streams: e.streams, seconds: (Date.now() - t0) / 1000, read: Object.fromEntries(Object.entries(s.streams).map(([k, v]) => [k, v?.read ?? 0])) },
          'scheduled sync done',
        );
      } catch (err) {
        if (err instanceof TajoError && err.code === 'backfill_running') this.log.info({ streams: e.streams, err: err.message }, 'scheduled sync skipped');
        else if (!this.stopped)
          this.log.error({ streams: e.streams, err: errorMessage(err) }, 'scheduled sync failed; its cursor is kept and the next run resumes');
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.leaseTimer);
    for (const t of this.timers) clearInterval(t);
    this.abort.abort();
    await this.ticking;
    await this.running;
    if (this.term) {
      this.term = undefined;
      await this.connector.store.releaseLease({ name: SCHEDULER_LEASE, owner: this.connector.owner }).catch(() => undefined);
    }
  }
}
