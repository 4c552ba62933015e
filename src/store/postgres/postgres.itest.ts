// The Store contract against a real PostgreSQL, plus what only a shared store must do:
// stay correct when several processes (here: several pools) work on the same schema.
// Each test gets its own schema, dropped afterwards, so runs never see each other.
import { randomBytes } from 'node:crypto';
import { describe, it, expect, afterEach } from 'vitest';
import pg from 'pg';
import { storeContract } from '../contract.js';
import { PostgresStore } from './index.js';
import { TajoError } from '../../core/errors.js';
import type { ContactOp, EventOp } from '../../core/plan.js';
import type { OpRow } from '../port.js';

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

function event(key: string): EventOp {
  return {
    kind: 'event',
    key,
    email: 'a@x.io',
    lane: 'realtime',
    priority: 2,
    sources: [key],
    payload: {
      event_name: 'ses_email_sent',
      event_date: new Date(T0).toISOString(),
      identifiers: { email_id: 'a@x.io' },
      event_properties: { event_key: key },
    },
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
    expect(await a.enqueue(keys.map(event), T0)).toEqual({ inserted: 600, merged: 0, duplicates: 0 });
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
        expect(rows.map((r) => r.table_name)).toEqual(['contact_ledger', 'cursors', 'inbox', 'kv', 'ops', 'schema_migrations']);
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
