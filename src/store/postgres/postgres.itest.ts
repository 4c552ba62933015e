// The Store contract against a real PostgreSQL, plus what only a shared store must do:
// stay correct when several processes (here: several pools) work on the same schema.
// Each test gets its own schema, dropped afterwards, so runs never see each other.
import { randomBytes } from 'node:crypto';
import { describe, it, expect, afterEach, beforeEach, vi } from 'vitest';
import pg from 'pg';
import { event, storeContract } from '../contract.js';
import { claimLockKey, PostgresStore } from './index.js';
import { TajoError } from '../../core/errors.js';
import type { ContactOp } from '../../core/plan.js';
import type { BudgetWindow, OpRow } from '../port.js';

const T0 = 1_700_000_000_000;

/** TAJO_TEST_PG_URL, else the local server as `postgres`, else as `root`. */
async function findServer(): Promise<string> {
  const candidates = process.env.TAJO_TEST_PG_URL
    ? [process.env.TAJO_TEST_PG_URL]
    : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];
  const failures: string[] = [];
  for (const url of candidates) {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return url;
    } catch (err) {
      failures.push(`${new URL(url).username}@${new URL(url).host}: ${(err as Error).message}`);
    } finally {
      await c.end().catch(() => {});
    }
  }
  throw new Error(`no PostgreSQL for the integration tests (${failures.join('; ')}); set TAJO_TEST_PG_URL=postgres://user@host:5432/db`);
}

const SERVER = await findServer();

function withSchema(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('schema', schema);
  return u.toString();
}

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: SERVER });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}

function freshSchema(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

storeContract('postgres', async () => {
  const schema = freshSchema();
  const store = await PostgresStore.connect(withSchema(SERVER, schema), { poolSize: 4 });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await dropSchema(schema);
    },
  };
});

function contactChange(email: string, i: number): ContactOp {
  return {
    kind: 'contact',
    key: `contact:${email}`,
    email,
    lane: 'realtime',
    priority: 2,
    sources: [`s${i}`],
    payload: { attrs: { [`A${i}`]: { v: i, at: i } }, blocklist: false },
  };
}

describe('PostgresStore shared by several processes', () => {
  const open: PostgresStore[] = [];
  const schemas: string[] = [];

  async function twoProcesses(): Promise<[PostgresStore, PostgresStore]> {
    const schema = freshSchema();
    schemas.push(schema);
    const a = await PostgresStore.connect(withSchema(SERVER, schema), { poolSize: 8 });
    const b = await PostgresStore.connect(SERVER, { schema, poolSize: 8 });
    open.push(a, b);
    // Both start on an empty schema at once: the advisory lock must serialise them.
    await Promise.all([a.migrate(), b.migrate()]);
    return [a, b];
  }

  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    for (const schema of schemas.splice(0)) await dropSchema(schema);
  });

  it('concurrent claims never hand out the same op', async () => {
    const [a, b] = await twoProcesses();
    const keys = Array.from({ length: 600 }, (_, i) => `k${i}`);
    expect(
      await a.enqueue(
        keys.map((k) => event(k, 'a@x.io')),
        T0,
      ),
    ).toEqual({ inserted: 600, merged: 0, duplicates: 0 });
    const taken: OpRow[] = [];
    const worker = async (s: PostgresStore, owner: string) => {
      for (;;) {
        const got = await s.claimOps({ kind: 'event', limit: 7, owner, leaseMs: 60_000, now: T0 });
        if (got.length === 0) return;
        taken.push(...got);
      }
    };
    await Promise.all([a, b, a, b, a, b, a, b].map((s, i) => worker(s, `w${i}`)));
    const ids = taken.map((o) => o.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(600);
    expect(new Set(taken.map((o) => o.key))).toEqual(new Set(keys));
  });

  it('conditional claims of two processes take turns: each judges what the other left, none claims while another holds the turn, an idle one does not wait for it', async () => {
    const [a, b] = await twoProcesses();
    await a.enqueue([event('c1', 'a@x.io'), event('c2', 'b@x.io')], T0);
    const schema = schemas[schemas.length - 1]!;
    // Another process's turn, held by hand: neither claim may judge until it is given back.
    const holder = new pg.Client({ connectionString: SERVER });
    await holder.connect();
    const judged: number[] = [];
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [claimLockKey(schema, 'event', ['realtime'])]);
      const claims = [a, b].map((s, i) =>
        s.claimOps({
          kind: 'event',
          lanes: ['realtime'],
          limit: 10,
          owner: `w${i}`,
          leaseMs: 60_000,
          now: T0 + 10,
          when: (d) => (judged.push(d.count), d.count > 0),
        }),
      );
      await new Promise((r) => setTimeout(r, 300));
      // Each judged once without the turn (worth a claim), and waits for the turn to judge again.
      expect(judged).toEqual([2, 2]);
      expect((await a.stats()).ops.filter((o) => o.state === 'inflight')).toEqual([]);
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [claimLockKey(schema, 'event', ['realtime'])]);
      const got = await Promise.all(claims);
      expect(got.map((g) => g.length).sort()).toEqual([0, 2]);
      expect(judged).toEqual([2, 2, 2, 0]);
      // A claim not worth it (here: nothing due) is answered without the turn, though another holds it.
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [claimLockKey(schema, 'event', ['realtime'])]);
      const idle = a.claimOps({ kind: 'event', lanes: ['realtime'], limit: 10, owner: 'w9', leaseMs: 60_000, now: T0 + 20, when: (d) => d.count > 0 });
      const blocked = new Promise<'blocked'>((r) => setTimeout(() => r('blocked'), 5_000).unref());
      expect(await Promise.race([idle, blocked])).toEqual([]);
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [claimLockKey(schema, 'event', ['realtime'])]);
    } finally {
      await holder.end();
    }
  });

  it('200 concurrent changes of one contact from two processes coalesce into one pending row', async () => {
    const [a, b] = await twoProcesses();
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).enqueue([contactChange('same@x.io', i)], T0 + i)));
    const sum = results.reduce((acc, r) => ({ inserted: acc.inserted + r.inserted, merged: acc.merged + r.merged, duplicates: acc.duplicates + r.duplicates }));
    expect(sum).toEqual({ inserted: 1, merged: 199, duplicates: 0 });
    const pending = (await a.stats()).ops.filter((o) => o.kind === 'contact');
    expect(pending).toEqual([expect.objectContaining({ state: 'pending', count: 1 })]);
    const [row] = await b.claimOps({ kind: 'contact', limit: 10, owner: 'w', leaseMs: 1000, now: T0 + 1000 });
    const attrs = (row!.payload as ContactOp['payload']).attrs;
    expect(Object.keys(attrs)).toHaveLength(200);
    for (let i = 0; i < 200; i++) expect(attrs[`A${i}`]).toEqual({ v: i, at: i });
  });

  it('coalescing stays lossless while other workers claim and retry the same contact', async () => {
    const [a, b] = await twoProcesses();
    let producing = true;
    const churn = async (s: PostgresStore, owner: string) => {
      while (producing) {
        const got = await s.claimOps({ kind: 'contact', limit: 5, owner, leaseMs: 60_000, now: T0 });
        // Every claimed write fails and goes back: it must fold into the newer pending row.
        await s.retryOps(
          got.map((o) => ({ id: o.id, nextAt: T0, code: 'server_error', message: '503', status: 503 })),
          T0,
        );
        await new Promise((r) => setImmediate(r));
      }
    };
    const churners = [churn(a, 'ca'), churn(b, 'cb')];
    await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).enqueue([contactChange('busy@x.io', i)], T0)));
    producing = false;
    await Promise.all(churners);
    const open = (await a.stats()).ops.filter((o) => o.kind === 'contact' && o.state !== 'superseded');
    expect(open).toEqual([expect.objectContaining({ state: 'pending', count: 1 })]);
    const [row] = await a.claimOps({ kind: 'contact', limit: 10, owner: 'w', leaseMs: 1000, now: T0 });
    expect(Object.keys((row!.payload as ContactOp['payload']).attrs)).toHaveLength(200);
  });

  it('ledger writes for one contact from two processes keep every attribute', async () => {
    const [a, b] = await twoProcesses();
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        (i % 2 === 0 ? a : b).completeOps([], T0, [{ email: 'l@x.io', attrs: { [`A${i}`]: i, SHARED: i }, blocklisted: i === 37 }]),
      ),
    );
    const l = (await a.getLedger(['l@x.io'])).get('l@x.io')!;
    expect(Object.keys(l.attrs)).toHaveLength(101);
    expect(l.attrs.SHARED).toBe(99);
    expect(l.blocklisted).toBe(true);
  });
});

describe('PostgresStore: several processes spend one budget, elect one scheduler', () => {
  const open: PostgresStore[] = [];
  let schema = '';

  /** `n` processes on one fresh schema: each its own pool, as separate hosts would have. */
  async function processes(n: number, poolSize = 3): Promise<PostgresStore[]> {
    schema = freshSchema();
    const stores = await Promise.all(Array.from({ length: n }, () => PostgresStore.connect(withSchema(SERVER, schema), { poolSize })));
    open.push(...stores);
    await Promise.all(stores.map((s) => s.migrate()));
    return stores;
  }

  async function pair(poolSize?: number): Promise<[PostgresStore, PostgresStore]> {
    const [a, b] = await processes(2, poolSize);
    return [a!, b!];
  }

  /** Runs `sql` on the test schema from a connection of its own. */
  async function inspect<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    const c = new pg.Client({ connectionString: SERVER });
    await c.connect();
    try {
      return (await c.query<T>(sql.replaceAll('$schema', `"${schema}"`), params)).rows;
    } finally {
      await c.end();
    }
  }

  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(open.splice(0).map((s) => s.close()));
    if (schema) await dropSchema(schema);
    schema = '';
  });

  const PER_SECOND: BudgetWindow = { limit: 10, windowMs: 1000 };
  // Brevo's contacts budget: the hour never binds here, and it keeps every grant of the test
  // in the table (a bucket's grants are pruned past its longest window) for the check below.
  const CONTACTS: BudgetWindow[] = [PER_SECOND, { limit: 36_000, windowMs: 3_600_000 }];

  it('60 takes at the same instant from 6 processes: exactly 10 granted', async () => {
    const stores = await processes(6);
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => stores[i % 6]!.takeBudget({ bucket: 'contacts', windows: CONTACTS, now: T0 })));
    expect(results.filter((r) => r.granted)).toHaveLength(10);
    for (const r of results.filter((x) => !x.granted)) expect(r.waitMs).toBe(1000);
  });

  it('12 workers in 6 processes hammering 10/s for 3 s on the database clock: no 1 s window holds more than 10 grants', async () => {
    const stores = await processes(6);
    const deadline = Date.now() + 3000;
    let granted = 0;
    const worker = async (s: PostgresStore) => {
      while (Date.now() < deadline) {
        const r = await s.takeBudget({ bucket: 'contacts', windows: CONTACTS });
        if (r.granted) granted++;
        // Everyone refused wakes when room appears: the moment the race is closest.
        else await new Promise((res) => setTimeout(res, Math.min(r.waitMs, Math.max(0, deadline - Date.now()))));
      }
    };
    await Promise.all([...stores, ...stores].map(worker));
    const rows = (await inspect<{ at: string; n: number }>('SELECT at, n FROM $schema.budget_grants WHERE bucket = $1 ORDER BY at', ['contacts'])).map((r) => ({
      at: Number(r.at),
      n: r.n,
    }));
    expect(rows.reduce((sum, r) => sum + r.n, 0)).toBe(granted);
    let worst = 0;
    for (const first of rows)
      worst = Math.max(
        worst,
        rows.filter((r) => r.at >= first.at && r.at < first.at + 1000).reduce((sum, r) => sum + r.n, 0),
      );
    expect(worst).toBeLessThanOrEqual(10);
    // Nobody starves the others either: about 10 per second were handed out.
    expect(granted).toBeGreaterThanOrEqual(20);
  });

  it('a pause set by one process holds back the takes of the others', async () => {
    const [a, b] = await pair();
    await a.pauseBucket({ bucket: 'other', forMs: 60_000 });
    const r = await b.takeBudget({ bucket: 'other', windows: [{ limit: 100, windowMs: 3_600_000 }] });
    expect(r.granted).toBe(false);
    expect(r.waitMs).toBeGreaterThan(55_000);
  });

  it('two processes racing for a free or an expired lease: exactly one wins, and both name it', async () => {
    const [a, b] = await pair(8);
    for (let round = 0; round < 30; round++) {
      const name = `lease-${round}`;
      // Every other round the lease exists but expired: the takeover is the race.
      if (round % 2 === 1) await inspect('INSERT INTO $schema.leases VALUES ($1, $2, 0, 1, 0)', [name, 'dead']);
      const [ra, rb] = await Promise.all([a.tryLease({ name, owner: 'a', ttlMs: 60_000 }), b.tryLease({ name, owner: 'b', ttlMs: 60_000 })]);
      expect([ra.acquired, rb.acquired].filter(Boolean)).toHaveLength(1);
      expect(ra.holder).toBe(rb.holder);
      expect((await a.getLease(name))!.owner).toBe(ra.holder);
    }
  });

  it('the lease of a process that stopped renewing is taken over once its ttl has passed', async () => {
    const [a, b] = await pair();
    expect((await a.tryLease({ name: 'scheduler', owner: 'a', ttlMs: 400 })).acquired).toBe(true);
    expect(await b.tryLease({ name: 'scheduler', owner: 'b', ttlMs: 400 })).toMatchObject({ acquired: false, holder: 'a' });
    await new Promise((r) => setTimeout(r, 450));
    expect(await b.tryLease({ name: 'scheduler', owner: 'b', ttlMs: 400 })).toMatchObject({ acquired: true, holder: 'b' });
    expect(await a.tryLease({ name: 'scheduler', owner: 'a', ttlMs: 400 })).toMatchObject({ acquired: false, holder: 'b' });
  });

  it("times come from the database server, not from the process's clock", async () => {
    const a = (await processes(1))[0]!;
    const [server] = await inspect<{ now: string }>('SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now');
    // This process's clock is an hour late.
    const serverNow = Number(server!.now);
    const late = serverNow - 3_600_000;
    vi.spyOn(Date, 'now').mockImplementation(() => late);
    const near = (t: number) => Math.abs(t - serverNow) < 60_000;
    expect(near(await a.clock())).toBe(true);
    await a.heartbeat({ owner: 'p', host: 'h', pid: 1 });
    expect(near((await a.listProcesses({ staleAfterMs: 10_000 }))[0]!.lastSeen)).toBe(true);
    expect(near((await a.tryLease({ name: 'scheduler', owner: 'p', ttlMs: 1 })).expiresAt)).toBe(true);
    expect(near((await a.pauseBucket({ bucket: 'other', forMs: 1 })) - 1)).toBe(true);
    await a.takeBudget({ bucket: 'contacts', windows: CONTACTS });
    const [g] = await inspect<{ at: string }>('SELECT at FROM $schema.budget_grants');
    expect(near(Number(g!.at))).toBe(true);
  });

  it('contactsWithOpenImports is answered from its partial index', async () => {
    const a = (await processes(1))[0]!;
    // Many settled contact writes and a few awaiting: the index is what makes this cheap.
    await inspect(
      `INSERT INTO $schema.ops (kind, key, email, lane, priority, payload, sources, state, next_at, created_at, updated_at)
       SELECT 'contact', 'contact:' || i || '@x.io', i || '@x.io', 'realtime', 2, '{}', '[]', CASE WHEN i % 5000 = 0 THEN 'awaiting' ELSE 'done' END, 0, 0, 0
       FROM generate_series(1, 20000) i`,
    );
    await inspect('ANALYZE $schema.ops');
    const sent = vi.spyOn(pg.Pool.prototype, 'query');
    expect(await a.contactsWithOpenImports(['1@x.io', '5000@x.io', '10000@x.io', 'nobody@x.io'])).toEqual(new Set(['5000@x.io', '10000@x.io']));
    // The plan of the very statement the adapter sent.
    const [sql, params] = sent.mock.calls.at(-1) as unknown as [string, unknown[]];
    const plan = await inspect<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params);
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toContain('ops_awaiting_email');
  });
});

/** An open transaction on a connection of its own, holding the row locks of what it did until it ends. */
interface LockHolder {
  /** The server process of that connection: whoever waits for its locks names it in pg_blocking_pids(). */
  pid: number;
  commit: () => Promise<void>;
  rollback: () => Promise<void>;
}

/** Runs `sql` (a SELECT ... FOR UPDATE or an UPDATE of exactly one row) in a transaction left open. */
async function holdRowLock(sql: string, params: unknown[]): Promise<LockHolder> {
  const c = new pg.Client({ connectionString: SERVER });
  await c.connect();
  await c.query('BEGIN');
  expect((await c.query(sql, params)).rowCount).toBe(1);
  const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const end = async (how: 'COMMIT' | 'ROLLBACK') => {
    await c.query(how);
    await c.end();
  };
  return { pid, commit: () => end('COMMIT'), rollback: () => end('ROLLBACK') };
}

/** The sessions waiting for a lock that `holder` holds. */
async function waitersOf(watcher: pg.Client, holder: LockHolder): Promise<number[]> {
  const { rows } = await watcher.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [holder.pid]);
  return rows.map((r) => r.pid);
}

/** Resolves (never rejects) once `p` settles; `p` itself still carries its outcome. */
function settledOf(p: Promise<unknown>): Promise<'settled'> {
  return p.then(
    () => 'settled' as const,
    () => 'settled' as const,
  );
}

/** A fresh store per test, and the locks and store calls a test leaves open, ended after it. */
function lockBench() {
  const bench = {
    store: undefined as unknown as PostgresStore,
    schema: '',
    holder: undefined as LockHolder | undefined,
    running: undefined as Promise<unknown> | undefined,
  };
  let watcher: pg.Client;
  beforeEach(async () => {
    bench.schema = freshSchema();
    bench.store = await PostgresStore.connect(withSchema(SERVER, bench.schema), { poolSize: 2 });
    await bench.store.migrate();
    watcher = new pg.Client({ connectionString: SERVER });
    await watcher.connect();
  });
  afterEach(async () => {
    // A store call that waited is stuck until the lock goes: end the holder first.
    await bench.holder?.rollback();
    await bench.running?.catch(() => {});
    bench.holder = bench.running = undefined;
    await watcher.end();
    await bench.store.close();
    await dropSchema(bench.schema);
  });
  /** Starts `work` while another transaction holds the lock `sql` takes. */
  const start = async <T>(sql: string, params: unknown[], work: () => Promise<T>): Promise<{ holder: LockHolder; running: Promise<T> }> => {
    const holder = await holdRowLock(sql, params);
    bench.holder = holder;
    const running = work();
    bench.running = running;
    return { holder, running };
  };
  return {
    bench,
    /**
     * `work`'s result, failing as soon as it waits for a row another transaction has locked.
     * The server is asked who waits: no timing, so a slow machine cannot make it fail.
     */
    async withoutWaiting<T>(sql: string, params: unknown[], work: () => Promise<T>): Promise<T> {
      const { holder, running } = await start(sql, params, work);
      const settled = settledOf(running);
      while ((await Promise.race([settled, new Promise((r) => setTimeout(r, 20))])) !== 'settled') {
        const waiting = await waitersOf(watcher, holder);
        if (waiting.length > 0) throw new Error(`backend ${waiting[0]} waits for a row locked by another transaction instead of skipping it`);
      }
      await holder.rollback();
      bench.holder = undefined;
      return running;
    },
    /**
     * `work`'s result when the transaction that `sql` opens commits while `work` waits for it
     * (or commits after `work`, if `work` did not need to wait).
     */
    async afterCommitOf<T>(sql: string, params: unknown[], work: () => Promise<T>): Promise<T> {
      const { holder, running } = await start(sql, params, work);
      const settled = settledOf(running);
      while ((await waitersOf(watcher, holder)).length === 0) {
        if ((await Promise.race([settled, new Promise((r) => setTimeout(r, 20))])) === 'settled') break;
      }
      await holder.commit();
      bench.holder = undefined;
      return running;
    },
  };
}

describe('PostgresStore skips rows another transaction has locked', () => {
  const { bench, withoutWaiting } = lockBench();
  const lockOp = (schema: string) => `SELECT id FROM "${schema}".ops WHERE key = $1 FOR UPDATE`;

  it('claimOps hands out the other due operations without waiting for the locked one', async () => {
    const s = bench.store;
    await s.enqueue(
      ['k0', 'k1', 'k2'].map((k) => event(k, 'a@x.io')),
      T0,
    );
    const claimed = await withoutWaiting(lockOp(bench.schema), ['k0'], () => s.claimOps({ kind: 'event', limit: 10, owner: 'w', leaseMs: 60_000, now: T0 }));
    expect(claimed.map((o) => o.key)).toEqual(['k1', 'k2']);
    // Skipped, not lost: once free, it is claimed.
    expect((await s.claimOps({ kind: 'event', limit: 10, owner: 'w', leaseMs: 60_000, now: T0 })).map((o) => o.key)).toEqual(['k0']);
  });

  it('claimInbox hands out the other envelopes without waiting for the locked one', async () => {
    const s = bench.store;
    await s.insertInbox(['m0', 'm1', 'm2'].map((messageId) => ({ messageId, source: 'sns' as const, receivedAt: T0, body: '{}' })));
    const claimed = await withoutWaiting(`SELECT id FROM "${bench.schema}".inbox WHERE message_id = $1 FOR UPDATE`, ['m0'], () =>
      s.claimInbox(10, 'w', 60_000, T0),
    );
    expect(claimed.map((r) => r.messageId)).toEqual(['m1', 'm2']);
    expect((await s.claimInbox(10, 'w', 60_000, T0)).map((r) => r.messageId)).toEqual(['m0']);
  });

  it('recoverExpired leaves a locked operation to whoever holds it and recovers the others without waiting', async () => {
    const s = bench.store;
    await s.enqueue(
      ['k0', 'k1', 'k2'].map((k) => event(k, 'a@x.io')),
      T0,
    );
    expect(await s.claimOps({ kind: 'event', limit: 10, owner: 'gone', leaseMs: 1000, now: T0 })).toHaveLength(3);
    expect(await withoutWaiting(lockOp(bench.schema), ['k0'], () => s.recoverExpired(T0 + 1000))).toBe(2);
    expect(await s.recoverExpired(T0 + 1000)).toBe(1);
  });
});

describe('PostgresStore waits for rows another transaction is changing, then sees the change', () => {
  const { bench, afterCommitOf } = lockBench();

  it('retryOps leaves alone an operation another process completed meanwhile', async () => {
    const s = bench.store;
    await s.enqueue([event('k0', 'a@x.io')], T0);
    const [op] = await s.claimOps({ kind: 'event', limit: 1, owner: 'w', leaseMs: 60_000, now: T0 });
    await afterCommitOf(`UPDATE "${bench.schema}".ops SET state = 'done' WHERE id = $1`, [op!.id], () =>
      s.retryOps([{ id: op!.id, nextAt: T0, code: 'server_error', message: '503', status: 503 }], T0),
    );
    expect((await s.getOp(op!.id))!.state).toBe('done');
  });

  it('retryFailures leaves alone a dead letter another process discarded meanwhile', async () => {
    const s = bench.store;
    await s.enqueue(
      ['k0', 'k1', 'k2'].map((k) => event(k, 'a@x.io')),
      T0,
    );
    const ids = (await s.claimOps({ kind: 'event', limit: 3, owner: 'w', leaseMs: 60_000, now: T0 })).map((o) => o.id);
    await s.deadOps(
      ids.map((id) => ({ id, code: 'invalid_parameter', message: 'bad' })),
      T0,
    );
    const discard = `UPDATE "${bench.schema}".ops SET state = 'discarded' WHERE id = $1`;
    expect(await afterCommitOf(discard, [ids[0]], () => s.retryFailures([ids[0]!], T0))).toBe(0);
    expect(await afterCommitOf(discard, [ids[1]], () => s.retryFailures('all', T0))).toBe(1);
    expect(await Promise.all(ids.map(async (id) => (await s.getOp(id))!.state))).toEqual(['discarded', 'discarded', 'pending']);
  });
});

describe('PostgresStore connection', () => {
  it('an unreachable server is store_unavailable, retryable, without the password', async () => {
    const err = await PostgresStore.connect('postgres://tajo:s3cret-pw@127.0.0.1:1/db?schema=x', { connectTimeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TajoError);
    expect(err).toMatchObject({ code: 'store_unavailable', retryable: true });
    expect((err as Error).message).toContain('tajo@127.0.0.1:1/db');
    expect((err as Error).message).not.toContain('s3cret-pw');
  });

  it('a missing database is store_unavailable and says to check the database name', async () => {
    const u = new URL(SERVER);
    u.pathname = '/no_such_db_for_tajo';
    const err = await PostgresStore.connect(u.toString()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'store_unavailable', retryable: true });
    expect((err as Error).message).toMatch(/database name/);
  });

  it('creates the schema named in the URL and keeps every table in it', async () => {
    const schema = freshSchema();
    const s = await PostgresStore.connect(withSchema(SERVER, schema));
    try {
      expect(s.schema).toBe(schema);
      await s.migrate();
      await s.setState('k', 'v', T0);
      const c = new pg.Client({ connectionString: SERVER });
      await c.connect();
      try {
        const { rows } = await c.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name', [
          schema,
        ]);
        expect(rows.map((r) => r.table_name)).toEqual([
          'budget_buckets',
          'budget_grants',
          'contact_ledger',
          'cursors',
          'inbox',
          'kv',
          'leases',
          'list_members',
          'ops',
          'processes',
          'refused_messages',
          'route_buckets',
          'schema_migrations',
          'soft_bounces',
        ]);
      } finally {
        await c.end();
      }
    } finally {
      await s.close();
      await dropSchema(schema);
    }
  });
});

describe('PostgresStore when the server drops its connections', () => {
  it('discards the dead connections and carries on', async () => {
    const schema = freshSchema();
    const app = `tajo-test-${randomBytes(4).toString('hex')}`;
    const u = new URL(withSchema(SERVER, schema));
    u.searchParams.set('application_name', app);
    const s = await PostgresStore.connect(u.toString(), { poolSize: 3 });
    const admin = new pg.Client({ connectionString: SERVER });
    await admin.connect();
    try {
      await s.migrate();
      await Promise.all([s.setState('a', '1', T0), s.ping(), s.getState('a')]);
      const killed = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app]);
      expect(killed.rowCount).toBeGreaterThan(0);
      // Idle clients learn of it asynchronously; without the pool's error listener this
      // would have been an uncaught 'error' event.
      await new Promise((r) => setTimeout(r, 300));
      await s.setState('a', '2', T0);
      expect(await s.getState('a')).toBe('2');
      await s.close();
      await expect(s.ping()).rejects.toMatchObject({ code: 'store_closed' });
    } finally {
      await admin.end();
      await s.close();
      await dropSchema(schema);
    }
  });
});
