// Normalize + plan: stored envelopes -> SES records -> Brevo operations, committed in the
// same transaction that closes the envelopes, so a crash in between replays the batch.
import type { Logger } from 'pino';
import type { Store, InboxOutcome, InboxRow } from '../store/port.js';
import { parseSesNotification } from '../ses/parse.js';
import { isSoftBounce, planBrevoOperations, PRIORITY, type PlanConfig } from '../core/plan.js';
import { isEventBridgeEvent, parseEventBridgeEvent } from '../ses/eventbridge.js';
import type { SesEventRecord } from '../core/types.js';
import type { Metrics } from './metrics.js';
import { errorMessage } from '../core/errors.js';
import { DEFAULT_MAX_DEFER_MS, PollLoop } from './loop.js';
import { persist, PERSIST_LEASE_MARGIN_MS } from './persist.js';

export interface ProcessResult {
  envelopes: number;
  records: number;
  ops: number;
  duplicates: number;
}

/** Parses stored envelopes; pure except for metrics. */
const PERMISSIVE: PlanConfig = {
  events: {
    Send: 'both',
    Delivery: 'both',
    Open: 'both',
    Click: 'both',
    Bounce: 'both',
    Complaint: 'both',
    Reject: 'both',
    DeliveryDelay: 'both',
    RenderingFailure: 'both',
    Subscription: 'both',
  },
};

/** An SES time further than this past the envelope's receipt is not believed (CONTRACT.md section 4). */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;

/** Default `bounce_policy.soft_bounce_window` when a plan config has none. */
const DEFAULT_SOFT_BOUNCE_WINDOW_MS = 7 * 86_400_000;

/** A stored envelope whose SES event time lay in the future of its receipt and was clamped to it. */
export interface ClampedEnvelope {
  messageId: string;
  records: number;
  /** The SES time as sent. */
  timestamp: string;
  receivedAt: number;
}

/**
 * Attributes only move forward in time, so one validly signed event dated in the future
 * would freeze a contact's attributes until that date: its time becomes the receipt time.
 * The key (built from the time as sent) does not change, so a replay is still a duplicate.
 */
function clampFuture(records: SesEventRecord[], receivedAt: number): string | undefined {
  let sent: string | undefined;
  for (const r of records) {
    if (Date.parse(r.timestamp) > receivedAt + MAX_FUTURE_SKEW_MS) {
      sent ??= r.timestamp;
      r.timestamp = new Date(receivedAt).toISOString();
    }
  }
  return sent;
}

/**
 * With `isolate`, each envelope is planned alone, so one that cannot be planned is marked
 * unparseable instead of holding up the batch it came in (used after a batch failed).
 */
export function normalizeInbox(
  rows: InboxRow[],
  metrics?: Metrics,
  plan?: PlanConfig,
  isolate = false,
): { outcomes: InboxOutcome[]; records: SesEventRecord[]; clamped: ClampedEnvelope[] } {
  const outcomes: InboxOutcome[] = [];
  const records: SesEventRecord[] = [];
  const clamped: ClampedEnvelope[] = [];
  for (const row of rows) {
    try {
      const env = JSON.parse(row.body) as { Message?: unknown; Type?: unknown };
      // SQS raw delivery stores the SES payload itself; SNS envelopes carry it in Message;
      // EventBridge events in `detail`.
      const parsed = isEventBridgeEvent(env)
        ? parseEventBridgeEvent(env)
        : parseSesNotification(typeof env.Message === 'string' && env.Type ? env.Message : row.body);
      const sent = clampFuture(parsed.records, row.receivedAt);
      if (sent !== undefined) {
        clamped.push({ messageId: row.messageId, records: parsed.records.length, timestamp: sent, receivedAt: row.receivedAt });
        metrics?.clampedTimestamps.inc();
      }
      if (isolate) planBrevoOperations(parsed.records, plan ?? PERMISSIVE);
      for (const r of parsed.records) {
        records.push(r);
        metrics?.records.inc({ type: r.type });
      }
      for (const u of parsed.unknown) metrics?.unknownRecords.inc({ type: u.rawType.slice(0, 40) || 'none' });
      const note =
        parsed.unknown.length > 0
          ? parsed.unknown
              .map((u) => `${u.rawType}: ${u.reason}`)
              .join('; ')
              .slice(0, 500)
          : undefined;
      outcomes.push(note ? { id: row.id, state: 'done', note } : { id: row.id, state: 'done' });
    } catch (err) {
      metrics?.unparseable.inc();
      outcomes.push({ id: row.id, state: 'unparseable', note: errorMessage(err).slice(0, 500) });
    }
  }
  return { outcomes, records, clamped };
}

export interface ProcessorOptions {
  store: Store;
  plan: PlanConfig;
  owner: string;
  log: Logger;
  metrics: Metrics;
  /** Called after a batch planned operations (wakes the delivery loops they feed); `urgent` when one is a blocklisting. */
  onPlanned: (planned: { urgent: boolean }) => void;
  /** Envelopes claimed per batch (default 500). */
  batchSize?: number;
  now?: () => number;
  /**
   * During a burst of webhooks, acknowledging SNS quickly matters more than planning:
   * the stored envelopes wait (at most `maxDeferMs`, default 2000) and the CPU goes to ingestion.
   */
  underPressure?: () => boolean;
  maxDeferMs?: number;
  /** Small slices keep the event loop free for webhooks between them (default 1 ms). */
  slicePauseMs?: number;
  /** After a partial batch, wait this long (not cut short by new envelopes) so the next one is fuller (default 50 ms). */
  lingerMs?: number;
}

/** Wait after a round that found no stored envelope (a new one cuts it short). */
const PROCESSOR_IDLE_MS = 200;

/** How long a claimed envelope stays with this worker: far longer than any batch takes to plan and commit. */
const INBOX_LEASE_MS = 60_000;

export class Processor {
  private readonly loop: PollLoop;
  private readonly batchSize: number;
  private readonly now: () => number;
  private stopping = false;

  constructor(private readonly o: ProcessorOptions) {
    this.batchSize = o.batchSize ?? 500;
    this.now = o.now ?? Date.now;
    const { slicePauseMs = 1, lingerMs = 50 } = o;
    this.loop = new PollLoop({
      round: async () => (await this.runOnce()).envelopes,
      onError: (err) => this.o.log.error({ err: errorMessage(err) }, 'processing stored envelopes failed; will retry'),
      idleMs: PROCESSOR_IDLE_MS,
      pauseMs: (n) => (n < this.batchSize ? lingerMs : slicePauseMs),
      defer: { underPressure: o.underPressure ?? (() => false), maxDeferMs: o.maxDeferMs ?? DEFAULT_MAX_DEFER_MS, catchUp: true },
      now: this.now,
    });
  }

  async runOnce(): Promise<ProcessResult> {
    const claimedAt = this.now();
    const rows = await this.o.store.claimInbox(this.batchSize, this.o.owner, INBOX_LEASE_MS, claimedAt);
    if (rows.length === 0) return { envelopes: 0, records: 0, ops: 0, duplicates: 0 };
    const first = normalizeInbox(rows, this.o.metrics, this.o.plan);
    let { outcomes, records } = first;
    for (const c of first.clamped) {
      this.o.log.warn(
        { messageId: c.messageId, sesTimestamp: c.timestamp.slice(0, 40), receivedAt: new Date(c.receivedAt).toISOString(), records: c.records },
        'SES event time lies in the future of its receipt; counted as received now',
      );
    }
    await this.countSoftBounces(records);
    let ops: ReturnType<typeof planBrevoOperations>;
    try {
      ops = planBrevoOperations(records, this.o.plan, 'realtime');
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err), envelopes: rows.length }, 'planning a batch failed; planning its envelopes one by one');
      ({ outcomes, records } = normalizeInbox(rows, undefined, this.o.plan, true));
      await this.countSoftBounces(records);
      ops = planBrevoOperations(records, this.o.plan, 'realtime');
    }
    // A store briefly away (PostgreSQL unreachable, a full disk) gets the same commit again
    // while the envelopes are leased here, rather than leaving them until the lease runs out.
    let res = { inserted: 0, merged: 0, duplicates: 0 };
    await persist(
      async () => {
        res = await this.o.store.commitInbox(outcomes, ops, this.now());
      },
      {
        what: 'planned envelopes',
        deadline: claimedAt + INBOX_LEASE_MS - PERSIST_LEASE_MARGIN_MS,
        now: this.now,
        log: this.o.log,
        stopped: () => this.stopping,
      },
    );
    if (ops.length > 0) this.o.onPlanned({ urgent: ops.some((o) => o.priority <= PRIORITY.blocklist) });
    return { envelopes: rows.length, records: records.length, ops: res.inserted + res.merged, duplicates: res.duplicates };
  }

  /** Transient bounces get their count within the window from the store (kept across restarts, replays counted once). */
  private async countSoftBounces(records: SesEventRecord[]): Promise<void> {
    const soft = records.filter(isSoftBounce);
    if (soft.length === 0) return;
    const windowMs = this.o.plan.bounce_policy?.soft_bounce_window ?? DEFAULT_SOFT_BOUNCE_WINDOW_MS;
    const counts = await this.o.store.recordSoftBounces(
      soft.map((r) => ({ key: r.key, email: r.email, at: Date.parse(r.timestamp) })),
      windowMs,
      this.now(),
    );
    soft.forEach((r, i) => (r.softBounceCount = counts[i]));
  }

  start(): void {
    this.stopping = false;
    this.loop.start();
  }

  /** Envelopes were stored: stop idling. */
  wake(): void {
    this.loop.wake();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop.stop();
  }
}
