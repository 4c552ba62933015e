// `tajo-ses status`, `/admin/status` and the dashboard read the same report.
import type { Store, CursorRow, WaitingErrors } from '../store/port.js';
import type { BucketStatus } from '../brevo/governor.js';
import type { Metrics } from './metrics.js';
import { PRIORITY_NAMES } from '../core/plan.js';
import { loadBrevoHealth, type BrevoHealthSnapshot } from './brevo-health.js';
import { loadRetentionPass, type RetentionPass } from './retention.js';
import { lastRunsByStream, loadSyncRuns, type SyncRun } from './sync-runs.js';
import type { OpKind, OpState } from '../store/port.js';

/** Every kind of operation: its lag series exist (at 0) before the first one and after the last. */
const OP_KINDS: OpKind[] = ['contact', 'event'];
import { BACKFILL_LEASE, HEARTBEAT_STALE_MS } from './owner.js';
import { SCHEDULER_LEASE } from './scheduler.js';

/** The order of queue rows in a report: waiting work, then work needing an operator, then settled work. */
const STATE_ORDER: OpState[] = ['inflight', 'pending', 'awaiting', 'dead', 'done', 'superseded', 'discarded'];

/** Brevo's health as the delivering process last saved it (epoch ms), with the streak's age now. */
export interface BrevoHealthReport extends Omit<BrevoHealthSnapshot, 'streak'> {
  streak: { since: number; calls: number; seconds: number } | null;
}

export interface StatusReport {
  at: string;
  store: string;
  inbox: Record<string, number>;
  queues: Array<{ kind: string; lane: string; state: string; class: string; count: number }>;
  /** Age in seconds of the oldest open operation per kind and priority class. */
  lag: Array<{ kind: string; class: string; seconds: number; open: number }>;
  deadLetters: number;
  streams: CursorRow[];
  rateLimit: BucketStatus[];
  /** Null until a delivering process has saved it. */
  brevo: BrevoHealthReport | null;
  /** Pending operations that failed before and wait for their retry. */
  waitingErrors: WaitingErrors;
  /** Inbox retention: rows held (message ids that dedupe), bodies held, the oldest body (epoch ms), and serve's last pass. */
  retention: { rows: number; bodies: number; oldestBodyAt: number | null; lastPass: RetentionPass | null };
  /** Sync runs (backfills, scheduled syncs), newest first. */
  syncRuns: SyncRun[];
  /** The processes sharing the store, who runs the scheduled syncs, and the account's Brevo budget as the store counts it. */
  cluster: ClusterReport;
}

export interface ClusterReport {
  processes: Array<{ owner: string; host: string; pid: number; role: string | null; startedAt: string; lastSeen: string; secondsAgo: number; alive: boolean }>;
  /** The holder of the scheduler lease (scheduled syncs and their SES limiter), null when none holds it. */
  scheduler: { owner: string; since: string; expiresAt: string } | null;
  /** The holder of the backfill lease (a manual backfill or a scheduled sync running now). */
  backfill: { owner: string; since: string; expiresAt: string } | null;
  /** Shared Brevo budget per bucket (PostgreSQL: every process takes from it). */
  budget: Array<{ bucket: string; pausedUntil: string | null; windows: Array<{ limit: number; windowMs: number; used: number }> }>;
  /** Buckets learned from Brevo's x-sib-ratelimit-* headers, by route. */
  routes: Array<{ route: string; bucket: string; limit: number; windowMs: number }>;
}

async function clusterReport(store: Store): Promise<ClusterReport> {
  const now = await store.clock();
  const iso = (t: number) => new Date(t).toISOString();
  const leases = await store.listLeases();
  const live = (name: string) => {
    const l = leases.find((x) => x.name === name && x.expiresAt > now);
    return l ? { owner: l.owner, since: iso(l.acquiredAt), expiresAt: iso(l.expiresAt) } : null;
  };
  const budget = await store.budgetStatus({ now });
  return {
    processes: (await store.listProcesses({ now, staleAfterMs: HEARTBEAT_STALE_MS })).map((p) => ({
      owner: p.owner,
      host: p.host,
      pid: p.pid,
      role: p.role,
      startedAt: iso(p.startedAt),
      lastSeen: iso(p.lastSeen),
      secondsAgo: Math.max(0, (now - p.lastSeen) / 1000),
      alive: p.alive,
    })),
    scheduler: live(SCHEDULER_LEASE),
    backfill: live(BACKFILL_LEASE),
    budget: budget.buckets.map((b) => ({ bucket: b.bucket, pausedUntil: b.pausedUntil > now ? iso(b.pausedUntil) : null, windows: b.windows })),
    routes: (await store.listRouteBuckets()).map((r) => ({ route: r.route, bucket: r.bucket, limit: r.limit, windowMs: r.windowMs })),
  };
}

export async function collectStatus(
  store: Store,
  governor: { status(): BucketStatus[] } | undefined,
  metrics: Metrics | undefined,
  now: number,
): Promise<StatusReport> {
  const st = await store.stats();
  // One order whatever the store answers in: open work first (what an operator looks for), done last.
  const ops = [...st.ops].sort(
    (a, b) =>
      STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state) || a.kind.localeCompare(b.kind) || a.lane.localeCompare(b.lane) || a.priority - b.priority,
  );
  const queues = ops.map((o) => ({ kind: o.kind, lane: o.lane, state: o.state, class: PRIORITY_NAMES[o.priority] ?? String(o.priority), count: o.count }));
  const lagMap = new Map<string, { kind: string; class: string; oldest: number; open: number }>();
  for (const o of st.ops) {
    if (o.state !== 'pending' && o.state !== 'inflight' && o.state !== 'awaiting') continue;
    const cls = PRIORITY_NAMES[o.priority] ?? String(o.priority);
    const k = `${o.kind}/${cls}`;
    const cur = lagMap.get(k) ?? { kind: o.kind, class: cls, oldest: Infinity, open: 0 };
    cur.open += o.count;
    if (o.oldestCreatedAt !== null) cur.oldest = Math.min(cur.oldest, o.oldestCreatedAt);
    lagMap.set(k, cur);
  }
  const lag = [...lagMap.values()].map((l) => ({
    kind: l.kind,
    class: l.class,
    open: l.open,
    seconds: Number.isFinite(l.oldest) ? Math.max(0, (now - l.oldest) / 1000) : 0,
  }));
  const deadLetters = st.ops.filter((o) => o.state === 'dead').reduce((a, o) => a + o.count, 0);
  const report: StatusReport = {
    at: new Date(now).toISOString(),
    store: store.kind,
    inbox: st.inbox,
    queues,
    lag,
    deadLetters,
    streams: await store.listCursors(),
    rateLimit: governor?.status() ?? [],
    brevo: brevoReport(await loadBrevoHealth(store), now),
    waitingErrors: await store.waitingErrors(),
    retention: await retentionReport(store),
    syncRuns: await loadSyncRuns(store),
    cluster: await clusterReport(store),
  };
  if (metrics) {
    metrics.queue.reset();
    for (const q of queues) metrics.queue.inc({ kind: q.kind, state: q.state, priority: q.class }, q.count);
    metrics.lag.reset();
    // A series that vanishes when the queue empties breaks alerts and graphs: nothing open is lag 0.
    for (const kind of OP_KINDS) for (const priority of Object.values(PRIORITY_NAMES)) metrics.lag.set({ kind, priority }, 0);
    for (const l of lag) metrics.lag.set({ kind: l.kind, priority: l.class }, l.seconds);
    metrics.deadLetters.set(deadLetters);
    for (const [stream, r] of lastRunsByStream(report.syncRuns)) {
      metrics.syncLastFailed.set({ stream }, r.last.error === null ? 0 : 1);
      if (!r.lastSuccess) continue;
      metrics.syncLastSuccess.set({ stream }, r.lastSuccess.endedAt / 1000);
      metrics.syncLastDuration.set({ stream }, (r.lastSuccess.endedAt - r.lastSuccess.startedAt) / 1000);
    }
    metrics.inbox.reset();
    for (const [state, n] of Object.entries(st.inbox)) metrics.inbox.set({ state }, n);
    for (const b of report.rateLimit) {
      metrics.throttled.set({ bucket: b.bucket }, b.throttled);
      for (const w of b.windows) metrics.rateBudget.set({ bucket: b.bucket, window: `${Math.round(w.windowMs / 1000)}s` }, w.used);
    }
  }
  return report;
}

async function retentionReport(store: Store): Promise<StatusReport['retention']> {
  const held = await store.inboxRetention();
  return { rows: held.rows, bodies: held.bodies, oldestBodyAt: held.oldestBody, lastPass: (await loadRetentionPass(store)) ?? null };
}

function brevoReport(h: BrevoHealthSnapshot | undefined, now: number): BrevoHealthReport | null {
  if (!h) return null;
  return { ...h, streak: h.streak ? { ...h.streak, seconds: Math.max(0, (now - h.streak.since) / 1000) } : null };
}

/** A Brevo failure streak older than this needs an operator (`status --check`). */
export const CHECK_STREAK_SECONDS = 60;

/** Default of `status --check --max-lag` (seconds). */
export const CHECK_MAX_LAG_SECONDS = 900;

/** Why an operator is needed (`tajo-ses status --check`); empty when nothing is wrong. */
export function operatorReasons(s: StatusReport, opts: { maxLagSeconds: number }): string[] {
  const reasons: string[] = [];
  if (s.deadLetters > 0) reasons.push(`${s.deadLetters} dead letter(s): see 'tajo-ses failures list'`);
  const streak = s.brevo?.streak;
  if (streak && streak.seconds > CHECK_STREAK_SECONDS) {
    const e = s.brevo?.lastError;
    reasons.push(
      `Brevo has been failing for ${Math.round(streak.seconds)} s (${streak.calls} calls in a row${e ? `, last: ${e.status ?? e.code} ${e.message}` : ''}; as saved at ${new Date(s.brevo!.savedAt).toISOString()})`,
    );
  }
  for (const l of s.lag) {
    if (l.seconds > opts.maxLagSeconds)
      reasons.push(`${l.kind}/${l.class} lag ${Math.round(l.seconds)} s is over ${opts.maxLagSeconds} s (${l.open} open operation(s))`);
  }
  return reasons;
}
