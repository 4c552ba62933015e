// Coordination tables on SQLite. One process (with its two threads) uses the file, so an
// IMMEDIATE transaction is all the atomicity a take or a lease needs; the behaviour is the
// PostgreSQL adapter's, checked by the same contract suite.
import type Database from 'better-sqlite3';
import {
  budgetExcess,
  budgetWaitMs,
  grantOf,
  checkBudgetRequest,
  checkLeaseRequest,
  checkRouteBucket,
  parseWindows,
  toLeaseRow,
  toProcessRow,
  toRouteBucket,
  type Row,
} from '../rows.js';
import type {
  BucketPause,
  BudgetGrant,
  BudgetRequest,
  BudgetStatus,
  BudgetWindow,
  ClusterStore,
  LeaseRequest,
  LeaseResult,
  LeaseRow,
  ProcessBeat,
  ProcessRow,
  RouteBucket,
} from '../port.js';

export interface SqliteAccess {
  stmt(sql: string): Database.Statement;
  /** An IMMEDIATE transaction (the write lock from its start). */
  tx<T>(fn: () => T): T;
}

export class SqliteCluster implements ClusterStore {
  constructor(private readonly db: SqliteAccess) {}

  async clock(): Promise<number> {
    return Date.now();
  }

  async heartbeat(beat: ProcessBeat): Promise<void> {
    const now = beat.now ?? Date.now();
    this.db
      .stmt(
        `INSERT INTO processes (owner, host, pid, role, started_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(owner) DO UPDATE SET host = excluded.host, pid = excluded.pid, role = COALESCE(excluded.role, processes.role), last_seen = excluded.last_seen`,
      )
      .run(beat.owner, beat.host, beat.pid, beat.role ?? null, now, now);
  }

  async listProcesses(q: { now?: number; staleAfterMs: number }): Promise<ProcessRow[]> {
    const now = q.now ?? Date.now();
    return (this.db.stmt('SELECT * FROM processes ORDER BY owner').all() as Row[]).map((r) => toProcessRow(r, now, q.staleAfterMs));
  }

  async forgetProcess(owner: string): Promise<boolean> {
    return this.db.stmt('DELETE FROM processes WHERE owner = ?').run(owner).changes > 0;
  }

  async tryLease(req: LeaseRequest): Promise<LeaseResult> {
    checkLeaseRequest(req);
    const now = req.now ?? Date.now();
    return this.db.tx(() => {
      // Taken when free or expired, renewed by its holder; a renewal keeps acquired_at.
      const won = this.db
        .stmt(
          `INSERT INTO leases (name, owner, acquired_at, expires_at, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET
             acquired_at = CASE WHEN leases.owner = excluded.owner AND leases.expires_at > excluded.updated_at THEN leases.acquired_at ELSE excluded.acquired_at END,
             owner = excluded.owner, expires_at = excluded.expires_at, updated_at = excluded.updated_at
           WHERE leases.owner = excluded.owner OR leases.expires_at <= excluded.updated_at
           RETURNING owner, expires_at`,
        )
        .get(req.name, req.owner, now, now + req.ttlMs, now) as Row | undefined;
      if (won) return { acquired: true, holder: String(won.owner), expiresAt: Number(won.expires_at) };
      const held = this.db.stmt('SELECT owner, expires_at FROM leases WHERE name = ?').get(req.name) as Row;
      return { acquired: false, holder: String(held.owner), expiresAt: Number(held.expires_at) };
    });
  }

  async releaseLease(req: { name: string; owner: string }): Promise<boolean> {
    return this.db.stmt('DELETE FROM leases WHERE name = ? AND owner = ?').run(req.name, req.owner).changes > 0;
  }

  async getLease(name: string): Promise<LeaseRow | undefined> {
    const r = this.db.stmt('SELECT * FROM leases WHERE name = ?').get(name) as Row | undefined;
    return r ? toLeaseRow(r) : undefined;
  }

  async listLeases(): Promise<LeaseRow[]> {
    return (this.db.stmt('SELECT * FROM leases ORDER BY name').all() as Row[]).map(toLeaseRow);
  }

  /**
   * Requests granted in `bucket` before its window of windowMs ending at `now` (see
   * grantOf): the running total of the last grant at or before the window's start, else of
   * what was pruned before the oldest grant kept, else (no grants kept) all of them.
   */
  private base(bucket: string, granted: number, now: number, windowMs: number): number {
    const r = this.db
      .stmt(
        `SELECT COALESCE(
           (SELECT cum FROM budget_grants WHERE bucket = @bucket AND at <= @start ORDER BY at DESC, cum DESC LIMIT 1),
           (SELECT cum - n FROM budget_grants WHERE bucket = @bucket ORDER BY cum LIMIT 1),
           @granted) AS base`,
      )
      .get({ bucket, start: now - windowMs, granted }) as Row;
    return Number(r.base);
  }

  async takeBudget(req: BudgetRequest): Promise<BudgetGrant> {
    const r = checkBudgetRequest(req);
    return this.db.tx(() => {
      const now = req.now ?? Date.now();
      const b = this.db
        .stmt(
          `INSERT INTO budget_buckets (bucket, paused_until, horizon_ms, windows) VALUES (?, 0, ?, ?)
           ON CONFLICT(bucket) DO UPDATE SET horizon_ms = MAX(horizon_ms, excluded.horizon_ms), windows = excluded.windows
           RETURNING paused_until, horizon_ms, granted, last_at`,
        )
        .get(r.bucket, r.horizonMs, JSON.stringify(r.windows)) as Row;
      const granted = Number(b.granted);
      const pausedUntil = Number(b.paused_until);
      const over = budgetExcess(
        r.windows.map((w) => {
          const base = this.base(r.bucket, granted, now, w.windowMs);
          return { ...w, base, used: granted - base };
        }),
        r.count,
      );
      if (over.length === 0 && pausedUntil <= now) {
        const g = grantOf({ now, lastAt: Number(b.last_at), granted, count: r.count });
        this.db.stmt('DELETE FROM budget_grants WHERE bucket = ? AND at <= ?').run(r.bucket, g.at - Number(b.horizon_ms));
        this.db.stmt('INSERT INTO budget_grants (bucket, cum, at, n) VALUES (?, ?, ?, ?)').run(r.bucket, g.cum, g.at, r.count);
        this.db.stmt('UPDATE budget_buckets SET granted = ?, last_at = ? WHERE bucket = ?').run(g.cum, g.at, r.bucket);
        return { granted: true, waitMs: 0 };
      }
      // A window has room for us once its `excess` oldest grants are windowMs old.
      const freeAt = over.map((o) => {
        const t = this.db.stmt('SELECT at FROM budget_grants WHERE bucket = ? AND cum >= ? ORDER BY cum LIMIT 1').get(r.bucket, o.base + o.excess) as Row;
        return Number(t.at) + o.windowMs;
      });
      return { granted: false, waitMs: budgetWaitMs(now, pausedUntil, freeAt) };
    });
  }

  async pauseBucket(pause: BucketPause): Promise<number> {
    const until = 'until' in pause ? pause.until : Date.now() + pause.forMs;
    const r = this.db
      .stmt(
        `INSERT INTO budget_buckets (bucket, paused_until) VALUES (?, ?)
         ON CONFLICT(bucket) DO UPDATE SET paused_until = MAX(paused_until, excluded.paused_until) RETURNING paused_until`,
      )
      .get(pause.bucket, until) as Row;
    return Number(r.paused_until);
  }

  async budgetStatus(q: { now?: number; windows?: Record<string, BudgetWindow[]> } = {}): Promise<BudgetStatus> {
    const now = q.now ?? Date.now();
    const rows = new Map((this.db.stmt('SELECT bucket, paused_until, windows, granted FROM budget_buckets').all() as Row[]).map((r) => [String(r.bucket), r]));
    const names = [...new Set([...rows.keys(), ...Object.keys(q.windows ?? {})])].sort();
    return {
      now,
      buckets: names.map((bucket) => {
        const r = rows.get(bucket);
        const windows = q.windows?.[bucket] ?? parseWindows(r?.windows ?? '[]');
        const granted = r ? Number(r.granted) : 0;
        return {
          bucket,
          pausedUntil: r ? Number(r.paused_until) : 0,
          windows: windows.map((w) => ({ limit: w.limit, windowMs: w.windowMs, used: granted - this.base(bucket, granted, now, w.windowMs) })),
        };
      }),
    };
  }

  async pruneBudget(q: { now?: number } = {}): Promise<number> {
    const now = q.now ?? Date.now();
    return this.db.stmt('DELETE FROM budget_grants WHERE at <= ? - (SELECT horizon_ms FROM budget_buckets b WHERE b.bucket = budget_grants.bucket)').run(now)
      .changes;
  }

  async setRouteBucket(fact: { route: string; bucket: string; limit: number; windowMs: number; now?: number }): Promise<void> {
    checkRouteBucket(fact);
    this.db
      .stmt(
        `INSERT INTO route_buckets (route, window_ms, bucket, limit_count, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(route, window_ms) DO UPDATE SET bucket = excluded.bucket, limit_count = excluded.limit_count, updated_at = excluded.updated_at`,
      )
      .run(fact.route, fact.windowMs, fact.bucket, fact.limit, fact.now ?? Date.now());
  }

  async listRouteBuckets(): Promise<RouteBucket[]> {
    return (this.db.stmt('SELECT * FROM route_buckets ORDER BY route, window_ms').all() as Row[]).map(toRouteBucket);
  }
}
