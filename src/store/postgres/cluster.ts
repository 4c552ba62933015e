// Coordination tables on PostgreSQL, where several processes (on several hosts) share them.
// - Time: when the caller gives no `now`, statements read the database server's clock, so
//   processes whose own clocks disagree still agree on lease expiry and budget windows.
// - Leases: one INSERT ... ON CONFLICT DO UPDATE ... WHERE: PostgreSQL locks the existing row
//   and checks the WHERE against its newest version, so of two racers exactly one wins.
// - Budget: a take locks its bucket's row first (upsert), in its own statement, and only then
//   counts the grants: in READ COMMITTED each later statement sees every grant committed by
//   the previous holder of the lock. (One statement that both waited for the lock and counted
//   would count from a snapshot taken before the wait, and over-grant.)
import type pg from 'pg';
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
import { TajoError } from '../../core/errors.js';

/** The database server's clock in epoch ms; clock_timestamp(), unlike now(), moves within a transaction. */
const DB_NOW = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

/** `now` as a statement parameter: the caller's time, else the server's. */
const nowParam = (n: number) => `COALESCE($${n}::bigint, ${DB_NOW})`;

/** Rounds of "try to take, else read the holder" when the holder releases in between. */
const MAX_LEASE_ROUNDS = 5;

export interface PgAccess {
  query(sql: string, params?: unknown[]): Promise<Row[]>;
  /** One transaction on one connection; `fn` may be run again after a lost race. */
  tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T>;
  /** A schema-qualified table name. */
  table(name: string): string;
}

export class PgCluster implements ClusterStore {
  constructor(private readonly db: PgAccess) {}

  private t(name: string): string {
    return this.db.table(name);
  }

  async clock(): Promise<number> {
    const [r] = await this.db.query(`SELECT ${DB_NOW} AS now`);
    return Number(r!.now);
  }

  async heartbeat(beat: ProcessBeat): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.t('processes')} AS p (owner, host, pid, role, started_at, last_seen)
       SELECT $1, $2, $3, $4, t.now, t.now FROM (SELECT ${nowParam(5)} AS now) t
       ON CONFLICT (owner) DO UPDATE SET host = excluded.host, pid = excluded.pid, role = COALESCE(excluded.role, p.role), last_seen = excluded.last_seen`,
      [beat.owner, beat.host, beat.pid, beat.role ?? null, beat.now ?? null],
    );
  }

  async listProcesses(q: { now?: number; staleAfterMs: number }): Promise<ProcessRow[]> {
    const rows = await this.db.query(`SELECT p.*, ${nowParam(1)} AS now FROM ${this.t('processes')} p ORDER BY owner`, [q.now ?? null]);
    return rows.map((r) => toProcessRow(r, Number(r.now), q.staleAfterMs));
  }

  async forgetProcess(owner: string): Promise<boolean> {
    return (await this.db.query(`DELETE FROM ${this.t('processes')} WHERE owner = $1 RETURNING owner`, [owner])).length > 0;
  }

  async tryLease(req: LeaseRequest): Promise<LeaseResult> {
    checkLeaseRequest(req);
    for (let round = 0; round < MAX_LEASE_ROUNDS; round++) {
      // Taken when free or expired, renewed by its holder; a renewal keeps acquired_at.
      const [won] = await this.db.query(
        `INSERT INTO ${this.t('leases')} AS l (name, owner, acquired_at, expires_at, updated_at)
         SELECT $1, $2, t.now, t.now + $3, t.now FROM (SELECT ${nowParam(4)} AS now) t
         ON CONFLICT (name) DO UPDATE SET
           acquired_at = CASE WHEN l.owner = excluded.owner AND l.expires_at > excluded.updated_at THEN l.acquired_at ELSE excluded.acquired_at END,
           owner = excluded.owner, expires_at = excluded.expires_at, updated_at = excluded.updated_at
         WHERE l.owner = excluded.owner OR l.expires_at <= excluded.updated_at
         RETURNING owner, expires_at`,
        [req.name, req.owner, req.ttlMs, req.now ?? null],
      );
      if (won) return { acquired: true, holder: String(won.owner), expiresAt: Number(won.expires_at) };
      const [held] = await this.db.query(`SELECT owner, expires_at FROM ${this.t('leases')} WHERE name = $1`, [req.name]);
      // Missing: the holder released it just now; try again.
      if (held) return { acquired: false, holder: String(held.owner), expiresAt: Number(held.expires_at) };
    }
    throw new TajoError('store_conflict', `PostgreSQL store: lease ${req.name} kept changing hands; retry later`, { retryable: true });
  }

  async releaseLease(req: { name: string; owner: string }): Promise<boolean> {
    return (await this.db.query(`DELETE FROM ${this.t('leases')} WHERE name = $1 AND owner = $2 RETURNING name`, [req.name, req.owner])).length > 0;
  }

  async getLease(name: string): Promise<LeaseRow | undefined> {
    const [r] = await this.db.query(`SELECT * FROM ${this.t('leases')} WHERE name = $1`, [name]);
    return r ? toLeaseRow(r) : undefined;
  }

  async listLeases(): Promise<LeaseRow[]> {
    return (await this.db.query(`SELECT * FROM ${this.t('leases')} ORDER BY name`)).map(toLeaseRow);
  }

  /**
   * Per window (in order), the requests granted in `bucket` before the window of windowMs
   * ending at `now` (see grantOf): the running total of the last grant at or before the
   * window's start, else of what was pruned before the oldest grant kept, else (no grants
   * kept) all of them. One index lookup per window, however many grants it holds.
   */
  private async bases(c: Pick<PgAccess, 'query'>, bucket: string, granted: number, now: number, windows: BudgetWindow[]): Promise<number[]> {
    if (windows.length === 0) return [];
    const g = this.t('budget_grants');
    const rows = await c.query(
      `SELECT COALESCE(
         (SELECT g.cum FROM ${g} g WHERE g.bucket = $1 AND g.at <= $2::bigint - w.ms ORDER BY g.at DESC, g.cum DESC LIMIT 1),
         (SELECT g.cum - g.n FROM ${g} g WHERE g.bucket = $1 ORDER BY g.cum LIMIT 1),
         $3::bigint) AS base
       FROM unnest($4::bigint[]) WITH ORDINALITY AS w(ms, i) ORDER BY w.i`,
      [bucket, now, granted, windows.map((w) => w.windowMs)],
    );
    return rows.map((r) => Number(r.base));
  }

  async takeBudget(req: BudgetRequest): Promise<BudgetGrant> {
    const r = checkBudgetRequest(req);
    return this.db.tx(async (c) => {
      const q = async (sql: string, params: unknown[]) => (await c.query(sql, params)).rows as Row[];
      // The lock. RETURNING runs once it is held, so the server's clock is read after the wait.
      const [b] = await q(
        `INSERT INTO ${this.t('budget_buckets')} AS b (bucket, paused_until, horizon_ms, windows) VALUES ($1, 0, $2, $3)
         ON CONFLICT (bucket) DO UPDATE SET horizon_ms = GREATEST(b.horizon_ms, excluded.horizon_ms), windows = excluded.windows
         RETURNING paused_until, horizon_ms, granted, last_at, ${nowParam(4)} AS now`,
        [r.bucket, r.horizonMs, JSON.stringify(r.windows), req.now ?? null],
      );
      const now = Number(b!.now);
      const granted = Number(b!.granted);
      const pausedUntil = Number(b!.paused_until);
      const bases = await this.bases({ query: q }, r.bucket, granted, now, r.windows);
      const over = budgetExcess(
        r.windows.map((w, i) => ({ ...w, base: bases[i]!, used: granted - bases[i]! })),
        r.count,
      );
      if (over.length === 0 && pausedUntil <= now) {
        const g = grantOf({ now, lastAt: Number(b!.last_at), granted, count: r.count });
        await q(
          `WITH pruned AS (DELETE FROM ${this.t('budget_grants')} WHERE bucket = $1 AND at <= $3::bigint - $5::bigint),
           total AS (UPDATE ${this.t('budget_buckets')} SET granted = $2, last_at = $3 WHERE bucket = $1)
           INSERT INTO ${this.t('budget_grants')} (bucket, cum, at, n) VALUES ($1, $2, $3, $4)`,
          [r.bucket, g.cum, g.at, r.count, Number(b!.horizon_ms)],
        );
        return { granted: true, waitMs: 0 };
      }
      // A window has room for us once its `excess` oldest grants are windowMs old.
      const freeAt: number[] = [];
      for (const o of over) {
        const [t] = await q(`SELECT at FROM ${this.t('budget_grants')} WHERE bucket = $1 AND cum >= $2 ORDER BY cum LIMIT 1`, [r.bucket, o.base + o.excess]);
        freeAt.push(Number(t!.at) + o.windowMs);
      }
      return { granted: false, waitMs: budgetWaitMs(now, pausedUntil, freeAt) };
    });
  }

  async pauseBucket(pause: BucketPause): Promise<number> {
    const until = 'until' in pause ? `$2::bigint` : `${DB_NOW} + $2::bigint`;
    const [r] = await this.db.query(
      `INSERT INTO ${this.t('budget_buckets')} AS b (bucket, paused_until) VALUES ($1, ${until})
       ON CONFLICT (bucket) DO UPDATE SET paused_until = GREATEST(b.paused_until, excluded.paused_until) RETURNING paused_until`,
      [pause.bucket, 'until' in pause ? pause.until : pause.forMs],
    );
    return Number(r!.paused_until);
  }

  async budgetStatus(q: { now?: number; windows?: Record<string, BudgetWindow[]> } = {}): Promise<BudgetStatus> {
    const now = q.now ?? (await this.clock());
    const rows = await this.db.query(`SELECT bucket, paused_until, windows, granted FROM ${this.t('budget_buckets')}`);
    const byName = new Map(rows.map((r) => [String(r.bucket), r]));
    const names = [...new Set([...byName.keys(), ...Object.keys(q.windows ?? {})])].sort();
    const buckets: BudgetStatus['buckets'] = [];
    for (const bucket of names) {
      const r = byName.get(bucket);
      const windows = q.windows?.[bucket] ?? parseWindows(r?.windows ?? '[]');
      const granted = r ? Number(r.granted) : 0;
      const bases = await this.bases(this.db, bucket, granted, now, windows);
      buckets.push({
        bucket,
        pausedUntil: r ? Number(r.paused_until) : 0,
        windows: windows.map((w, i) => ({ limit: w.limit, windowMs: w.windowMs, used: granted - bases[i]! })),
      });
    }
    return { now, buckets };
  }

  async pruneBudget(q: { now?: number } = {}): Promise<number> {
    const [r] = await this.db.query(
      `WITH t AS (SELECT ${nowParam(1)} AS now),
       d AS (DELETE FROM ${this.t('budget_grants')} g USING ${this.t('budget_buckets')} b, t WHERE g.bucket = b.bucket AND g.at <= t.now - b.horizon_ms RETURNING 1)
       SELECT COUNT(*) AS n FROM d`,
      [q.now ?? null],
    );
    return Number(r!.n);
  }

  async setRouteBucket(fact: { route: string; bucket: string; limit: number; windowMs: number; now?: number }): Promise<void> {
    checkRouteBucket(fact);
    await this.db.query(
      `INSERT INTO ${this.t('route_buckets')} (route, window_ms, bucket, limit_count, updated_at) VALUES ($1, $2, $3, $4, ${nowParam(5)})
       ON CONFLICT (route, window_ms) DO UPDATE SET bucket = excluded.bucket, limit_count = excluded.limit_count, updated_at = excluded.updated_at`,
      [fact.route, fact.windowMs, fact.bucket, fact.limit, fact.now ?? null],
    );
  }

  async listRouteBuckets(): Promise<RouteBucket[]> {
    return (await this.db.query(`SELECT * FROM ${this.t('route_buckets')} ORDER BY route, window_ms`)).map(toRouteBucket);
  }
}
