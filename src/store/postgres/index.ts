// The shared store: PostgreSQL, for several connector processes at once. It keeps the
// SQLite adapter's behaviour method for method; what differs is how it stays correct
// when other processes run the same statements concurrently:
// - claims lock candidate rows with FOR UPDATE SKIP LOCKED, so two workers never take
//   the same row and neither waits for the other;
// - every read-modify-write locks what it reads (FOR UPDATE) inside one transaction;
// - a transaction that loses a race (deadlock, or another process creating the pending
//   row of a contact first) is rolled back and run again from the start.
import pg from 'pg';
import { createHash } from 'node:crypto';
import { PG_MIGRATIONS } from './migrations.js';
import { parsePostgresUrl, quoteIdent, translate, unavailable, availabilityHint } from './connection.js';
import { mergeContactOps, type ContactOp, type EventOp, type PlannedOp } from '../../core/plan.js';
import { TajoError } from '../../core/errors.js';
import { PgCluster } from './cluster.js';
import { ForwardsCluster } from '../cluster.js';
import type {
  ClaimQuery,
  CursorRow,
  DueQuery,
  DueSummary,
  EnqueueResult,
  InboxInsert,
  InboxOutcome,
  InboxPruneQuery,
  InboxPruneResult,
  InboxRetentionStats,
  InboxRow,
  RefusedMessageInsert,
  RefusedMessageRow,
  LedgerEntry,
  OpError,
  OpRow,
  Store,
  StoreStats,
  WaitingErrors,
  SoftBounce,
} from '../port.js';
import {
  foldedDoubt,
  interruptedError,
  mergeLedgerEntry,
  noneEnqueued,
  rowToContactOp,
  toCursorRow,
  toRefusedMessage,
  REFUSED_BODY_MAX,
  claimTurnKey,
  dueSummary,
  toInboxRow,
  toOp,
  toOpStats,
  toWaitingError,
  withClaimDefaults,
  type Row,
} from '../rows.js';

export interface PostgresStoreOptions {
  /** Overrides `?schema=` of the URL. Default `public`. */
  schema?: string;
  /** Connections per process. Default 10. */
  poolSize?: number;
  /** How long to wait for a connection before failing with store_unavailable. Default 10 s. */
  connectTimeoutMs?: number;
}

/** Rows per INSERT statement: bounded statement size, still one round-trip per 1,000 rows. */
const CHUNK = 1000;
/** Whole-transaction reruns after losing a race before giving up (retryable) to the caller. */
const MAX_TX_ATTEMPTS = 8;
/** Rounds of "lock the pending row, else insert one" for a contact whose row keeps changing hands. */
const MAX_COALESCE_ROUNDS = 50;

function chunks<T>(xs: T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** First occurrence wins, as when the rows are applied one after the other. */
function firstById<T extends { id: number }>(xs: T[]): T[] {
  const first = new Map<number, T>();
  for (const x of xs) if (!first.has(x.id)) first.set(x.id, x);
  return [...first.values()];
}

function byOrder(a: OpRow, b: OpRow): number {
  return a.priority - b.priority || a.id - b.id;
}

/** A loser of a race between transactions: running the whole transaction again is safe. */
function isConflict(err: unknown): boolean {
  const e = err as { code?: unknown; constraint?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  // Deadlocks cannot be ruled out: events keep their arrival order (it is the delivery
  // order), so two batches sharing event keys may lock them in opposite orders.
  if (e.code === '40P01' || e.code === '40001') return true;
  // Another process made a contact's pending row between our check and our write.
  return e.code === '23505' && e.constraint === 'ops_contact_pending';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The advisory lock key of conditional claims (ClaimQuery.when) of one kind and set of lanes in one schema. */
export function claimLockKey(schema: string, kind: string, lanes: string[]): string {
  return createHash('sha256')
    .update(`tajo-ses:claim:${schema}:${kind}:${[...lanes].sort().join(',')}`)
    .digest()
    .readBigInt64BE(0)
    .toString();
}

/** The advisory lock key for migrations of one schema: stable across processes and versions. */
function migrationLockKey(schema: string): string {
  return createHash('sha256').update(`tajo-ses:migrate:${schema}`).digest().readBigInt64BE(0).toString();
}

interface Requeue {
  row: OpRow;
  nextAt: number;
  err?: OpError;
}

interface MergeTarget {
  id: number;
  op: ContactOp;
  nextAt: number;
  attempts: number;
  dirty: boolean;
  /** A write folded into it may have reached Brevo unseen (rows.foldedDoubt): see the SQLite store's requeue. */
  doubt?: Omit<OpError, 'id'>;
}

export class PostgresStore extends ForwardsCluster implements Store {
  readonly kind = 'postgres' as const;
  readonly schema: string;
  /** user@host:port/db, without the password. */
  readonly label: string;
  private readonly pool: pg.Pool;
  /** The quoted schema, prefixed to every table name. */
  private readonly quotedSchema: string;
  private closed = false;
  protected readonly cluster = new PgCluster({ query: (sql, params) => this.query(sql, params), tx: (fn) => this.tx(fn), table: (name) => this.table(name) });

  private constructor(pool: pg.Pool, schema: string, label: string) {
    super();
    this.pool = pool;
    this.schema = schema;
    this.label = label;
    this.quotedSchema = quoteIdent(schema);
  }

  /**
   * Opens a pool and checks that the server answers. `url` is a libpq URL whose optional
   * `?schema=NAME` selects the schema of every table (created by migrate() if missing).
   */
  static async connect(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const target = parsePostgresUrl(url, opts.schema);
    const poolSize = opts.poolSize ?? 10;
    if (!Number.isInteger(poolSize) || poolSize < 1)
      throw new TajoError('invalid_store_options', `PostgreSQL store: poolSize must be a positive integer, got ${poolSize}`);
    const pool = new pg.Pool({
      connectionString: target.connectionString,
      max: poolSize,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
      application_name: 'tajo-ses',
    });
    // An idle connection that dies (server restart, idle timeout) is reported here; the
    // pool discards it and opens a new one when needed. Without a listener, Node would
    // treat the event as an uncaught error and end the process.
    pool.on('error', () => {});
    const store = new PostgresStore(pool, target.schema, target.label);
    try {
      await pool.query('SELECT 1');
    } catch (err) {
      await pool.end().catch(() => {});
      throw unavailable(
        `cannot connect to ${target.label}`,
        err,
        availabilityHint(err, target.label) ?? `check store.url and that PostgreSQL accepts connections at ${target.label}`,
      );
    }
    return store;
  }

  /** A table name qualified with the schema (search_path is not kept by poolers in transaction mode). */
  /** An operation's condition to be claimed (and counted as due): see the SQLite store's NOT_WAITING_ON_CONTACT. */
  private notWaitingOnContact(): string {
    const ops = this.table('ops');
    return `(kind <> 'contact' OR NOT EXISTS (SELECT 1 FROM ${ops} f WHERE f.state = 'inflight' AND f.kind = 'contact' AND f.key = ${ops}.key))`;
  }

  /** Sets a kv row ($1 key, $2 value, $3 time): setState, and the claim turn's time inside a claim. */
  private kvUpsert(): string {
    return `INSERT INTO ${this.table('kv')} (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`;
  }

  private table(name: string): string {
    return `${this.quotedSchema}.${name}`;
  }

  private assertOpen(): void {
    // Otherwise pg's "Cannot use a pool after calling end" would read as an outage.
    if (this.closed) throw new TajoError('store_closed', `PostgreSQL store (${this.label}) used after close()`);
  }

  private async run(sql: string, params: unknown[]): Promise<pg.QueryResult<Row>> {
    this.assertOpen();
    try {
      return await this.pool.query<Row>(sql, params);
    } catch (err) {
      throw translate(`query failed on ${this.label}`, err, this.label);
    }
  }

  private async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.run(sql, params)).rows;
  }

  private async exec(sql: string, params: unknown[] = []): Promise<number> {
    return (await this.run(sql, params)).rowCount ?? 0;
  }

  /**
   * Runs `fn` in one transaction on one pooled connection, always released. `fn` must
   * keep its state inside the call: after a lost race it runs again from the start.
   */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      this.assertOpen();
      let c: pg.PoolClient;
      try {
        c = await this.pool.connect();
      } catch (err) {
        throw unavailable(
          `cannot connect to ${this.label}`,
          err,
          availabilityHint(err, this.label) ?? `check that PostgreSQL accepts connections at ${this.label}`,
        );
      }
      // A checked-out client has no listener of its own: a connection lost between two
      // statements would otherwise be an uncaught 'error' event. The next query fails anyway.
      let broken = false;
      const onError = () => {
        broken = true;
      };
      c.on('error', onError);
      let committing = false;
      try {
        await c.query('BEGIN');
        const out = await fn(c);
        committing = true;
        await c.query('COMMIT');
        return out;
      } catch (err) {
        if (availabilityHint(err, this.label) !== undefined) broken = true;
        if (!broken) {
          await c.query('ROLLBACK').catch(() => {
            broken = true;
          });
        }
        const conflict = isConflict(err);
        if (conflict && attempt < MAX_TX_ATTEMPTS) {
          // Jitter so that the same two transactions do not collide again in step.
          await sleep(Math.floor(Math.random() * 10 * attempt));
          continue;
        }
        if (conflict) {
          throw new TajoError('store_conflict', `PostgreSQL store: a transaction lost ${MAX_TX_ATTEMPTS} races in a row with other processes; retry later`, {
            cause: err,
            retryable: true,
          });
        }
        if (committing) {
          throw unavailable(
            `COMMIT failed on ${this.label}, so the transaction may or may not have been applied`,
            err,
            availabilityHint(err, this.label) ?? 'check the PostgreSQL server log; the caller may retry',
          );
        }
        throw translate(`transaction failed on ${this.label}`, err, this.label);
      } finally {
        c.removeListener('error', onError);
        // A broken connection must not go back to the pool: `true` destroys it.
        c.release(broken);
      }
    }
  }

  async migrate(): Promise<void> {
    try {
      await this.tx(async (c) => {
        // Processes that start together all migrate: the lock makes them take turns, and
        // each one after the first sees the versions already applied.
        await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [migrationLockKey(this.schema)]);
        // Checked before creating: CREATE ... IF NOT EXISTS still needs the CREATE
        // privilege, which a user of an existing, prepared schema may not have.
        if ((await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schema])).rowCount === 0) await c.query(`CREATE SCHEMA ${this.quotedSchema}`);
        const reg = await c.query('SELECT to_regclass($1) AS t', [this.table('schema_migrations')]);
        if (reg.rows[0]?.t === null) {
          await c.query(`CREATE TABLE ${this.table('schema_migrations')} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
        }
        const applied = new Set((await c.query(`SELECT version FROM ${this.table('schema_migrations')}`)).rows.map((r: Row) => Number(r.version)));
        for (const m of PG_MIGRATIONS) {
          if (applied.has(m.version)) continue;
          try {
            await c.query(m.sql(this.quotedSchema));
          } catch (err) {
            throw Object.assign(err as Error, { migration: `${m.version} (${m.name})` });
          }
          await c.query(`INSERT INTO ${this.table('schema_migrations')} (version, name, applied_at) VALUES ($1, $2, $3)`, [m.version, m.name, Date.now()]);
        }
      });
    } catch (err) {
      if (err instanceof TajoError) throw err;
      const which = (err as { migration?: string }).migration;
      const privilege = (err as { code?: unknown }).code === '42501';
      throw new TajoError(
        'store_migration_failed',
        `PostgreSQL store: migrating schema ${this.schema} on ${this.label}${which ? ` (migration ${which})` : ''} failed: ${(err as Error).message}; ` +
          (privilege
            ? `grant the user CREATE on the database (or create schema ${this.schema} for it) and USAGE, CREATE on the schema`
            : 'check the server log; nothing was applied'),
        { cause: err },
      );
    }
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  async insertInbox(rows: InboxInsert[]): Promise<Array<'inserted' | 'duplicate'>> {
    if (rows.length === 0) return [];
    // Duplicates inside the batch are settled here so that each INSERT sees distinct ids.
    const first = new Map<string, InboxInsert>();
    for (const r of rows) if (!first.has(r.messageId)) first.set(r.messageId, r);
    const inserted = await this.tx(async (c) => {
      const got = new Set<string>();
      for (const part of chunks([...first.values()])) {
        const res = await c.query(
          `INSERT INTO ${this.table('inbox')} (message_id, source, topic_arn, received_at, body)
           SELECT v.message_id, v.source, v.topic_arn, v.received_at, v.body
           FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]) WITH ORDINALITY AS v(message_id, source, topic_arn, received_at, body, n)
           ORDER BY v.n
           ON CONFLICT (message_id) DO NOTHING
           RETURNING message_id`,
          [
            part.map((r) => r.messageId),
            part.map((r) => r.source),
            part.map((r) => r.topicArn ?? null),
            part.map((r) => r.receivedAt),
            part.map((r) => r.body),
          ],
        );
        for (const r of res.rows as Row[]) got.add(String(r.message_id));
      }
      return got;
    });
    return rows.map((r) => {
      if (first.get(r.messageId) === r && inserted.has(r.messageId)) return 'inserted';
      return 'duplicate';
    });
  }

  async claimInbox(limit: number, owner: string, leaseMs: number, now: number): Promise<InboxRow[]> {
    const rows = await this.query(
      `WITH c AS (
         SELECT id FROM ${this.table('inbox')} WHERE state = 'pending' AND lease_until <= $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
       )
       UPDATE ${this.table('inbox')} i SET lease_owner = $3, lease_until = $4 FROM c WHERE i.id = c.id
       RETURNING i.id, i.message_id, i.source, i.topic_arn, i.received_at, i.body`,
      [now, limit, owner, now + leaseMs],
    );
    return rows.map(toInboxRow).sort((a, b) => a.id - b.id);
  }

  async commitInbox(outcomes: InboxOutcome[], ops: PlannedOp[], now: number): Promise<EnqueueResult> {
    const closing = firstById(outcomes);
    return this.tx(async (c) => {
      if (closing.length > 0) {
        await c.query(
          `UPDATE ${this.table('inbox')} i SET state = v.state, note = v.note, lease_owner = NULL, lease_until = 0
           FROM unnest($1::bigint[], $2::text[], $3::text[]) AS v(id, state, note)
           WHERE i.id = v.id AND i.state = 'pending'`,
          [closing.map((o) => o.id), closing.map((o) => o.state), closing.map((o) => o.note ?? null)],
        );
      }
      return this.enqueueIn(c, ops, now);
    });
  }

  async pruneInbox(q: InboxPruneQuery): Promise<InboxPruneResult> {
    const limit = Math.max(1, Math.floor(q.limit));
    const inbox = this.table('inbox');
    // A row still 'pending' is not planned yet: its body is its only copy. commitInbox closes
    // a row in the transaction that queues its work. Rows locked elsewhere are left for the next step.
    return this.tx(async (c) => {
      const bodies = await c.query(
        `WITH c AS (
           SELECT id FROM ${inbox} WHERE body_pruned = false AND received_at < $1 AND state <> 'pending' ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED
         )
         UPDATE ${inbox} i SET body = '', body_pruned = true FROM c WHERE i.id = c.id`,
        [q.bodiesBefore, limit],
      );
      const rows = await c.query(
        `WITH c AS (SELECT id FROM ${inbox} WHERE body_pruned = true AND received_at < $1 ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         DELETE FROM ${inbox} i USING c WHERE i.id = c.id`,
        [Math.min(q.rowsBefore, q.bodiesBefore), limit],
      );
      return { bodies: bodies.rowCount ?? 0, rows: rows.rowCount ?? 0 };
    });
  }

  async inboxRetention(): Promise<InboxRetentionStats> {
    const [r] = await this.query(
      `SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE NOT body_pruned) AS held, MIN(received_at) FILTER (WHERE NOT body_pruned) AS oldest FROM ${this.table('inbox')}`,
    );
    return { rows: Number(r?.n ?? 0), bodies: Number(r?.held ?? 0), oldestBody: r?.oldest === null || r?.oldest === undefined ? null : Number(r.oldest) };
  }

  async enqueue(ops: PlannedOp[], now: number): Promise<EnqueueResult> {
    if (ops.length === 0) return noneEnqueued();
    return this.tx((c) => this.enqueueIn(c, ops, now));
  }

  private async enqueueIn(c: pg.PoolClient, ops: PlannedOp[], now: number): Promise<EnqueueResult> {
    const res = noneEnqueued();
    const contacts = new Map<string, ContactOp[]>();
    const events = new Map<string, EventOp>();
    for (const op of ops) {
      if (op.kind === 'event') {
        if (events.has(op.key)) res.duplicates++;
        else events.set(op.key, op);
      } else {
        const group = contacts.get(op.key);
        if (group) group.push(op);
        else contacts.set(op.key, [op]);
      }
    }
    await this.upsertContacts(c, contacts, now, res);
    await this.insertEvents(c, [...events.values()], now, res);
    return res;
  }

  private async insertEvents(c: pg.PoolClient, events: EventOp[], now: number, res: EnqueueResult): Promise<void> {
    for (const part of chunks(events)) {
      const r = await c.query(
        `INSERT INTO ${this.table('ops')} (kind, key, email, lane, priority, payload, sources, state, next_at, created_at, updated_at)
         SELECT 'event', v.key, v.email, v.lane, v.priority, v.payload, v.sources, 'pending', $7, $7, $7
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[]) WITH ORDINALITY AS v(key, email, lane, priority, payload, sources, n)
         ORDER BY v.n
         ON CONFLICT (key) WHERE kind = 'event' DO NOTHING`,
        [
          part.map((o) => o.key),
          part.map((o) => o.email),
          part.map((o) => o.lane),
          part.map((o) => o.priority),
          part.map((o) => JSON.stringify(o.payload)),
          part.map((o) => JSON.stringify(o.sources)),
          now,
        ],
      );
      const n = r.rowCount ?? 0;
      res.inserted += n;
      res.duplicates += part.length - n;
    }
  }

  /**
   * Queues contact writes, folding each into the pending row of its contact.
   *
   * The merge itself stays in JavaScript (mergeContactOps), so PostgreSQL and SQLite
   * coalesce identically by construction rather than through a second implementation in
   * SQL. What keeps it race-free across processes:
   * - existing pending rows are read FOR UPDATE: no one else merges into them or claims
   *   them (claims skip locked rows) until we commit; a row claimed just before our lock
   *   is no longer pending when we get it, so we treat the contact as having none;
   * - new pending rows are inserted ON CONFLICT DO NOTHING against the partial unique
   *   index: if another process created one meanwhile (waiting for its commit if needed),
   *   nothing is written and the contact goes round again, now finding that row to lock.
   * Locks are taken in key order so that two batches of the same contacts queue up
   * behind each other instead of deadlocking.
   */
  private async upsertContacts(c: pg.PoolClient, groups: Map<string, ContactOp[]>, now: number, res: EnqueueResult): Promise<void> {
    let todo = [...groups.keys()];
    for (let round = 0; todo.length > 0; round++) {
      if (round === MAX_COALESCE_ROUNDS) {
        throw new TajoError(
          'store_conflict',
          `PostgreSQL store: the pending write of ${todo.length} contact(s) kept changing hands while queuing; retry later`,
          { retryable: true },
        );
      }
      const lost: string[] = [];
      for (const keys of chunks(todo)) {
        const locked = await c.query(
          `SELECT * FROM ${this.table('ops')} WHERE kind = 'contact' AND state = 'pending' AND key = ANY($1::text[]) ORDER BY key FOR UPDATE`,
          [keys],
        );
        const pending = new Map((locked.rows as Row[]).map((r) => [String(r.key), toOp(r)]));
        const merges: Array<{ id: number; op: ContactOp }> = [];
        const fresh: ContactOp[] = [];
        for (const key of keys) {
          const group = groups.get(key)!;
          const cur = pending.get(key);
          if (cur) merges.push({ id: cur.id, op: group.reduce((acc, op) => mergeContactOps(acc, op), rowToContactOp(cur)) });
          else fresh.push(group.reduce((acc, op) => mergeContactOps(acc, op)));
        }
        if (merges.length > 0) {
          // A new change makes the contact due now, even if it was waiting out a backoff.
          await c.query(
            `UPDATE ${this.table('ops')} o SET payload = v.payload, sources = v.sources, priority = v.priority, lane = v.lane, next_at = LEAST(o.next_at, $6), updated_at = $6
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[]) AS v(id, payload, sources, priority, lane)
             WHERE o.id = v.id`,
            [
              merges.map((m) => m.id),
              merges.map((m) => JSON.stringify(m.op.payload)),
              merges.map((m) => JSON.stringify(m.op.sources)),
              merges.map((m) => m.op.priority),
              merges.map((m) => m.op.lane),
              now,
            ],
          );
          for (const m of merges) res.merged += groups.get(m.op.key)!.length;
        }
        if (fresh.length > 0) {
          const ins = await c.query(
            `INSERT INTO ${this.table('ops')} (kind, key, email, lane, priority, payload, sources, state, attempts, next_at, created_at, updated_at)
             SELECT 'contact', v.key, v.email, v.lane, v.priority, v.payload, v.sources, 'pending', 0, $7, $7, $7
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[]) WITH ORDINALITY AS v(key, email, lane, priority, payload, sources, n)
             ORDER BY v.n
             ON CONFLICT (key) WHERE kind = 'contact' AND state = 'pending' DO NOTHING
             RETURNING key`,
            [
              fresh.map((o) => o.key),
              fresh.map((o) => o.email),
              fresh.map((o) => o.lane),
              fresh.map((o) => o.priority),
              fresh.map((o) => JSON.stringify(o.payload)),
              fresh.map((o) => JSON.stringify(o.sources)),
              now,
            ],
          );
          const made = new Set((ins.rows as Row[]).map((r) => String(r.key)));
          for (const op of fresh) {
            if (made.has(op.key)) {
              res.inserted++;
              res.merged += groups.get(op.key)!.length - 1;
            } else lost.push(op.key);
          }
        }
      }
      todo = lost;
    }
  }

  /**
   * Puts claimed or dead rows back to pending, in order, as SQLite does one by one: a
   * contact row folds into the pending row of its contact (an existing one, locked, or
   * one an earlier item of this batch became) and is marked superseded.
   * The caller has locked `items`' rows. Making a row pending can still collide with a
   * pending row another process inserts meanwhile; that unique violation reruns the
   * transaction (see isConflict), which then finds the row and merges into it.
   */
  private async requeue(c: pg.PoolClient, items: Requeue[], now: number): Promise<void> {
    if (items.length === 0) return;
    const keys = [...new Set(items.filter((i) => i.row.kind === 'contact').map((i) => i.row.key))];
    const targets = new Map<string, MergeTarget>();
    const selfIds = items.map((i) => i.row.id);
    for (const part of chunks(keys)) {
      const locked = await c.query(
        `SELECT * FROM ${this.table('ops')} WHERE kind = 'contact' AND state = 'pending' AND key = ANY($1::text[]) AND id <> ALL($2::bigint[]) ORDER BY key FOR UPDATE`,
        [part, selfIds],
      );
      for (const r of (locked.rows as Row[]).map(toOp))
        targets.set(r.key, { id: r.id, op: rowToContactOp(r), nextAt: r.nextAt, attempts: r.attempts, dirty: false });
    }
    const back: Requeue[] = [];
    const superseded: number[] = [];
    for (const it of items) {
      const r = it.row;
      if (r.kind === 'contact') {
        const t = targets.get(r.key);
        if (t) {
          t.op = mergeContactOps(t.op, rowToContactOp(r));
          t.nextAt = Math.min(t.nextAt, it.nextAt);
          t.attempts = Math.max(t.attempts, r.attempts);
          t.dirty = true;
          t.doubt = foldedDoubt(r, it.err) ?? t.doubt;
          superseded.push(r.id);
          continue;
        }
        targets.set(r.key, { id: r.id, op: rowToContactOp(r), nextAt: it.nextAt, attempts: r.attempts, dirty: false });
      }
      back.push(it);
    }
    if (superseded.length > 0) {
      await c.query(`UPDATE ${this.table('ops')} SET state = 'superseded', lease_owner = NULL, updated_at = $2 WHERE id = ANY($1::bigint[])`, [
        superseded,
        now,
      ]);
    }
    if (back.length > 0) {
      await c.query(
        `UPDATE ${this.table('ops')} o SET state = 'pending', next_at = v.next_at, lease_owner = NULL, lease_until = 0, ref = NULL,
           last_code = COALESCE(v.code, o.last_code), last_message = COALESCE(v.message, o.last_message), last_status = COALESCE(v.status, o.last_status), updated_at = $6,
           history = CASE WHEN v.code IS NULL THEN o.history ELSE (o.history::jsonb || jsonb_build_array(jsonb_build_object('at', $6::bigint, 'code', v.code, 'message', v.message, 'status', v.status)))::text END
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::int[]) AS v(id, next_at, code, message, status)
         WHERE o.id = v.id`,
        [
          back.map((i) => i.row.id),
          back.map((i) => i.nextAt),
          back.map((i) => i.err?.code ?? null),
          back.map((i) => i.err?.message ?? null),
          back.map((i) => i.err?.status ?? null),
          now,
        ],
      );
    }
    const dirty = [...targets.values()].filter((t) => t.dirty);
    if (dirty.length > 0) {
      await c.query(
        `UPDATE ${this.table('ops')} o SET payload = v.payload, sources = v.sources, priority = v.priority, lane = v.lane, next_at = v.next_at, attempts = v.attempts, updated_at = $8,
           last_code = COALESCE(v.code, o.last_code), last_message = COALESCE(v.message, o.last_message),
           last_status = CASE WHEN v.code IS NULL THEN o.last_status ELSE v.status END,
           history = CASE WHEN v.code IS NULL THEN o.history ELSE (o.history::jsonb || jsonb_build_array(jsonb_build_object('at', $8::bigint, 'code', v.code, 'message', v.message, 'status', v.status)))::text END
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[], $6::bigint[], $7::int[], $9::text[], $10::text[], $11::int[])
           AS v(id, payload, sources, priority, lane, next_at, attempts, code, message, status)
         WHERE o.id = v.id`,
        [
          dirty.map((t) => t.id),
          dirty.map((t) => JSON.stringify(t.op.payload)),
          dirty.map((t) => JSON.stringify(t.op.sources)),
          dirty.map((t) => t.op.priority),
          dirty.map((t) => t.op.lane),
          dirty.map((t) => t.nextAt),
          dirty.map((t) => t.attempts),
          now,
          dirty.map((t) => t.doubt?.code ?? null),
          dirty.map((t) => t.doubt?.message ?? null),
          dirty.map((t) => t.doubt?.status ?? null),
        ],
      );
    }
  }

  async pendingDue(q: DueQuery): Promise<DueSummary> {
    return this.dueOn((sql, params) => this.query(sql, params), q);
  }

  private async dueOn(run: (sql: string, params: unknown[]) => Promise<Row[]>, q: DueQuery): Promise<DueSummary> {
    const lanes = q.lanes ?? ['realtime', 'backfill'];
    const [row] = await run(
      `SELECT count(*) AS n, min(next_at) AS oldest, min(priority) AS top, (SELECT value FROM ${this.table('kv')} WHERE key = $5) AS last FROM (
         SELECT next_at, priority FROM ${this.table('ops')} WHERE kind = $1 AND state = 'pending' AND next_at <= $2 AND lane = ANY($3::text[])
           AND ${this.notWaitingOnContact()}
         ORDER BY priority, id LIMIT $4) d`,
      [q.kind, q.now, lanes, q.limit, claimTurnKey(q.kind, lanes)],
    );
    return dueSummary(row!);
  }

  async claimOps(claim: ClaimQuery): Promise<OpRow[]> {
    const q = withClaimDefaults(claim);
    const when = claim.when;
    const pooled = (sql: string, params: unknown[]) => this.query(sql, params);
    if (!when) return this.claimOn(pooled, q);
    // Judged first without the turn: an idle poll (nothing due, or a round not worth a call
    // yet) is one indexed read, not a transaction. What it lets through is judged again under it.
    if (!when(await this.dueOn(pooled, q))) return [];
    // Judged and claimed under a transaction lock that every conditional claim of this kind
    // and these lanes takes, in every process: the next one judges what this one left.
    return this.tx(async (c) => {
      const run = async (sql: string, params: unknown[]) => (await c.query<Row>(sql, params)).rows;
      await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [claimLockKey(this.schema, q.kind, q.lanes)]);
      if (!when(await this.dueOn(run, q))) return [];
      const claimed = await this.claimOn(run, q);
      if (claimed.length > 0) {
        await run(this.kvUpsert(), [claimTurnKey(q.kind, q.lanes), String(q.now), q.now]);
      }
      return claimed;
    });
  }

  private async claimOn(run: (sql: string, params: unknown[]) => Promise<Row[]>, q: Required<Omit<ClaimQuery, 'when'>>): Promise<OpRow[]> {
    // A contact whose previous write is in flight waits for it (see the SQLite store).
    const rows = await run(
      `WITH c AS (
         SELECT id FROM ${this.table('ops')}
         WHERE kind = $1 AND state = 'pending' AND next_at <= $2 AND priority <= $3 AND lane = ANY($4::text[])
           AND ${this.notWaitingOnContact()}
         ORDER BY priority, id LIMIT $5
         FOR UPDATE SKIP LOCKED
       )
       UPDATE ${this.table('ops')} o SET state = 'inflight', lease_owner = $6, lease_until = $7, attempts = o.attempts + 1, updated_at = $2
       FROM c WHERE o.id = c.id
       RETURNING o.*`,
      [q.kind, q.now, q.maxPriority, q.lanes, q.limit, q.owner, q.now + q.leaseMs],
    );
    return rows.map(toOp).sort(byOrder);
  }

  /**
   * Merged in SQL (newest time per attribute, blocklist only goes up) because two
   * processes may record the same contact at once; a read-modify-write in JavaScript
   * would let the later commit erase the earlier one's attributes.
   */
  private async writeLedger(c: pg.PoolClient, entries: LedgerEntry[], now: number): Promise<void> {
    if (entries.length === 0) return;
    // One row per email per statement: ON CONFLICT DO UPDATE may touch a row only once.
    const byEmail = new Map<string, LedgerEntry>();
    for (const e of entries) byEmail.set(e.email, mergeLedgerEntry(byEmail.get(e.email), e));
    for (const part of chunks([...byEmail.values()])) {
      await c.query(
        `INSERT INTO ${this.table('contact_ledger')} AS l (email, attrs, blocklisted, updated_at)
         SELECT v.email, v.attrs::jsonb, v.blocklisted, $4 FROM unnest($1::text[], $2::text[], $3::boolean[]) AS v(email, attrs, blocklisted)
         ON CONFLICT (email) DO UPDATE SET
           attrs = COALESCE((
             SELECT jsonb_object_agg(a.key, a.at) FROM (
               SELECT key, max(value::numeric) AS at FROM (SELECT * FROM jsonb_each(l.attrs) UNION ALL SELECT * FROM jsonb_each(excluded.attrs)) x GROUP BY key
             ) a
           ), '{}'::jsonb),
           blocklisted = l.blocklisted OR excluded.blocklisted,
           updated_at = excluded.updated_at`,
        [part.map((e) => e.email), part.map((e) => JSON.stringify(e.attrs)), part.map((e) => e.blocklisted), now],
      );
    }
  }

  async completeOps(ids: number[], now: number, ledger: LedgerEntry[] = []): Promise<void> {
    if (ids.length === 0 && ledger.length === 0) return;
    await this.tx(async (c) => {
      if (ids.length > 0) {
        await c.query(`UPDATE ${this.table('ops')} SET state = 'done', lease_owner = NULL, lease_until = 0, updated_at = $2 WHERE id = ANY($1::bigint[])`, [
          ids,
          now,
        ]);
      }
      await this.writeLedger(c, ledger, now);
    });
  }

  async awaitOps(ids: number[], ref: string, now: number, ledger: LedgerEntry[] = []): Promise<void> {
    if (ids.length === 0 && ledger.length === 0) return;
    await this.tx(async (c) => {
      if (ids.length > 0) {
        await c.query(
          `UPDATE ${this.table('ops')} SET state = 'awaiting', ref = $2, lease_owner = NULL, lease_until = 0, updated_at = $3 WHERE id = ANY($1::bigint[])`,
          [ids, ref, now],
        );
      }
      await this.writeLedger(c, ledger, now);
    });
  }

  async listAwaiting(limit: number): Promise<Array<{ ref: string; count: number; since: number }>> {
    const rows = await this.query(
      `SELECT ref, COUNT(*) AS n, MIN(updated_at) AS since FROM ${this.table('ops')} WHERE state = 'awaiting' GROUP BY ref ORDER BY since, ref LIMIT $1`,
      [limit],
    );
    return rows.map((r) => ({ ref: String(r.ref), count: Number(r.n), since: Number(r.since) }));
  }

  async opsByRef(ref: string): Promise<OpRow[]> {
    return (await this.query(`SELECT * FROM ${this.table('ops')} WHERE ref = $1 ORDER BY id`, [ref])).map(toOp);
  }

  async contactsWithOpenImports(emails: string[]): Promise<Set<string>> {
    const unique = [...new Set(emails)];
    if (unique.length === 0) return new Set();
    // The partial index ops_awaiting_email holds exactly the rows this asks about.
    const rows = await this.query(`SELECT DISTINCT email FROM ${this.table('ops')} WHERE kind = 'contact' AND state = 'awaiting' AND email = ANY($1::text[])`, [
      unique,
    ]);
    return new Set(rows.map((r) => String(r.email)));
  }

  async retryOps(items: Array<OpError & { nextAt: number }>, now: number): Promise<void> {
    const wanted = firstById(items);
    if (wanted.length === 0) return;
    await this.tx(async (c) => {
      const locked = await c.query(`SELECT * FROM ${this.table('ops')} WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`, [wanted.map((i) => i.id)]);
      const rows = new Map((locked.rows as Row[]).map((r) => [Number(r.id), toOp(r)]));
      const todo: Requeue[] = [];
      for (const it of wanted) {
        const row = rows.get(it.id);
        if (row && (row.state === 'inflight' || row.state === 'awaiting')) todo.push({ row, nextAt: it.nextAt, err: it });
      }
      await this.requeue(c, todo, now);
    });
  }

  async deadOps(items: OpError[], now: number): Promise<void> {
    const dead = firstById(items);
    if (dead.length === 0) return;
    await this.tx(async (c) => {
      await c.query(
        `UPDATE ${this.table('ops')} o SET state = 'dead', last_code = v.code, last_message = v.message, last_status = v.status, lease_owner = NULL, lease_until = 0, updated_at = $5,
           history = (o.history::jsonb || jsonb_build_array(jsonb_build_object('at', $5::bigint, 'code', v.code, 'message', v.message, 'status', v.status)))::text
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[]) AS v(id, code, message, status)
         WHERE o.id = v.id AND o.state IN ('inflight', 'awaiting')`,
        [dead.map((i) => i.id), dead.map((i) => i.code), dead.map((i) => i.message), dead.map((i) => i.status ?? null), now],
      );
    });
  }

  async recoverExpired(now: number): Promise<number> {
    return this.tx(async (c) => {
      // SKIP LOCKED: a row locked right now is being settled by its worker or by another
      // process's sweep; either way it is not ours to recover.
      const locked = await c.query(`SELECT * FROM ${this.table('ops')} WHERE state = 'inflight' AND lease_until <= $1 ORDER BY id FOR UPDATE SKIP LOCKED`, [
        now,
      ]);
      const rows = (locked.rows as Row[]).map(toOp);
      await this.requeue(
        c,
        rows.map((row) => ({ row, nextAt: now, err: interruptedError(row.id) })),
        now,
      );
      await c.query(`UPDATE ${this.table('inbox')} SET lease_owner = NULL, lease_until = 0 WHERE state = 'pending' AND lease_until > 0 AND lease_until <= $1`, [
        now,
      ]);
      return rows.length;
    });
  }

  async releaseOwner(owner: string): Promise<number> {
    return this.tx(async (c) => {
      const n = await c.query(`UPDATE ${this.table('ops')} SET lease_until = 0 WHERE state = 'inflight' AND lease_owner = $1`, [owner]);
      await c.query(`UPDATE ${this.table('inbox')} SET lease_until = 0, lease_owner = NULL WHERE state = 'pending' AND lease_owner = $1`, [owner]);
      return n.rowCount ?? 0;
    });
  }

  async leaseOwners(): Promise<string[]> {
    const rows = await this.query(
      `SELECT DISTINCT lease_owner AS o FROM ${this.table('ops')} WHERE state = 'inflight' AND lease_owner IS NOT NULL
       UNION SELECT DISTINCT lease_owner FROM ${this.table('inbox')} WHERE state = 'pending' AND lease_owner IS NOT NULL`,
    );
    return rows.map((r) => String(r.o));
  }

  async readLedger(q: { after?: string; limit: number }): Promise<LedgerEntry[]> {
    // COLLATE "C": byte order, as the SQLite adapter sorts.
    const rows = await this.query(
      `SELECT email, attrs, blocklisted FROM ${this.table('contact_ledger')} WHERE email COLLATE "C" > $1 ORDER BY email COLLATE "C" LIMIT $2`,
      [q.after ?? '', q.limit],
    );
    return rows.map((r) => ({
      email: String(r.email),
      attrs: Object.fromEntries(Object.entries(r.attrs as Record<string, unknown>).map(([k, v]) => [k, Number(v)])),
      blocklisted: r.blocklisted === true,
    }));
  }

  async getLedger(emails: string[]): Promise<Map<string, LedgerEntry>> {
    const out = new Map<string, LedgerEntry>();
    const unique = [...new Set(emails)];
    if (unique.length === 0) return out;
    const rows = await this.query(`SELECT email, attrs, blocklisted FROM ${this.table('contact_ledger')} WHERE email = ANY($1::text[])`, [unique]);
    const found = new Map(rows.map((r) => [String(r.email), r]));
    // In the order asked, as the SQLite adapter returns them.
    for (const e of unique) {
      const r = found.get(e);
      if (r)
        out.set(e, {
          email: e,
          attrs: Object.fromEntries(Object.entries(r.attrs as Record<string, unknown>).map(([k, v]) => [k, Number(v)])),
          blocklisted: r.blocklisted === true,
        });
    }
    return out;
  }

  async recordSoftBounces(items: SoftBounce[], windowMs: number, now: number): Promise<number[]> {
    if (items.length === 0) return [];
    const t = this.table('soft_bounces');
    return this.tx(async (c) => {
      await c.query(`DELETE FROM ${t} WHERE at < $1`, [now - 2 * windowMs]);
      await c.query(`INSERT INTO ${t} (key, email, at) SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]) ON CONFLICT (key) DO NOTHING`, [
        items.map((b) => b.key),
        items.map((b) => b.email),
        items.map((b) => b.at),
      ]);
      const out: number[] = [];
      for (const b of items) {
        const r = await c.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${t} WHERE email = $1 AND at > $2 AND at <= $3`, [b.email, b.at - windowMs, b.at]);
        out.push(Number(r.rows[0]?.n ?? 0));
      }
      return out;
    });
  }

  async markListMembers(list: string, emails: string[], pass: string, now: number): Promise<void> {
    if (emails.length === 0) return;
    await this.exec(
      `INSERT INTO ${this.table('list_members')} (list, email, pass, updated_at) SELECT $1, e, $3, $4 FROM UNNEST($2::text[]) AS e
       ON CONFLICT (list, email) DO UPDATE SET pass = excluded.pass, updated_at = excluded.updated_at`,
      [list, [...new Set(emails)], pass, now],
    );
  }

  async takeStaleListMembers(list: string, pass: string, now?: number): Promise<string[]> {
    // A removed member keeps its row with the pass '' (a real pass is never empty), for reconcile.
    const rows = await this.query(
      `UPDATE ${this.table('list_members')} SET pass = '', updated_at = COALESCE($3::bigint, updated_at) WHERE list = $1 AND pass <> $2 AND pass <> '' RETURNING email`,
      [list, pass, now ?? null],
    );
    return rows.map((r) => String(r.email)).sort();
  }

  async readRemovedListMembers(q: { list: string; after?: string; limit: number }): Promise<Array<{ email: string; at: number }>> {
    const rows = await this.query(
      `SELECT email, updated_at FROM ${this.table('list_members')} WHERE list = $1 AND pass = '' AND email COLLATE "C" > $2 ORDER BY email COLLATE "C" LIMIT $3`,
      [q.list, q.after ?? '', q.limit],
    );
    return rows.map((r) => ({ email: String(r.email), at: Number(r.updated_at) }));
  }

  async readListMembers(q: { list: string; after?: string; limit: number }): Promise<string[]> {
    const rows = await this.query(
      `SELECT email FROM ${this.table('list_members')} WHERE list = $1 AND pass <> '' AND email COLLATE "C" > $2 ORDER BY email COLLATE "C" LIMIT $3`,
      [q.list, q.after ?? '', q.limit],
    );
    return rows.map((r) => String(r.email));
  }

  async listFailures(opts: { limit: number; offset?: number }): Promise<OpRow[]> {
    return (await this.query(`SELECT * FROM ${this.table('ops')} WHERE state = 'dead' ORDER BY id LIMIT $1 OFFSET $2`, [opts.limit, opts.offset ?? 0])).map(
      toOp,
    );
  }

  async getOp(id: number): Promise<OpRow | undefined> {
    const [r] = await this.query(`SELECT * FROM ${this.table('ops')} WHERE id = $1`, [id]);
    return r ? toOp(r) : undefined;
  }

  async retryFailures(ids: number[] | 'all', now: number): Promise<number> {
    if (ids !== 'all' && ids.length === 0) return 0;
    return this.tx(async (c) => {
      const locked =
        ids === 'all'
          ? await c.query(`SELECT * FROM ${this.table('ops')} WHERE state = 'dead' ORDER BY id FOR UPDATE`)
          : await c.query(`SELECT * FROM ${this.table('ops')} WHERE state = 'dead' AND id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`, [ids]);
      const rows = (locked.rows as Row[]).map(toOp);
      if (rows.length === 0) return 0;
      // A manual retry starts a fresh budget of attempts.
      await c.query(`UPDATE ${this.table('ops')} SET attempts = 0 WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id)]);
      await this.requeue(
        c,
        rows.map((r) => ({ row: { ...r, attempts: 0 }, nextAt: now })),
        now,
      );
      return rows.length;
    });
  }

  async discardFailures(ids: number[], now: number): Promise<number> {
    if (ids.length === 0) return 0;
    return this.exec(`UPDATE ${this.table('ops')} SET state = 'discarded', updated_at = $2 WHERE state = 'dead' AND id = ANY($1::bigint[])`, [ids, now]);
  }

  async getCursor(stream: string): Promise<CursorRow | undefined> {
    const [r] = await this.query(`SELECT * FROM ${this.table('cursors')} WHERE stream = $1`, [stream]);
    return r ? toCursorRow(r) : undefined;
  }

  async setCursor(stream: string, value: string | null, now: number, status?: string, note?: string): Promise<void> {
    await this.exec(
      `INSERT INTO ${this.table('cursors')} (stream, value, status, note, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (stream) DO UPDATE SET value = excluded.value, status = excluded.status, note = excluded.note, updated_at = excluded.updated_at`,
      [stream, value, status ?? null, note ?? null, now],
    );
  }

  async listCursors(): Promise<CursorRow[]> {
    return (await this.query(`SELECT * FROM ${this.table('cursors')} ORDER BY stream`)).map(toCursorRow);
  }

  async recordRefusedMessage(m: RefusedMessageInsert): Promise<'inserted' | 'duplicate'> {
    const n = await this.exec(
      `INSERT INTO ${this.table('refused_messages')} (key, source, reason, message, external_id, body, at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING`,
      [m.key, m.source, m.reason, m.message, m.externalId, m.body.slice(0, REFUSED_BODY_MAX), m.at],
    );
    return n === 1 ? 'inserted' : 'duplicate';
  }

  async listRefusedMessages(opts: { limit: number; offset?: number }): Promise<RefusedMessageRow[]> {
    return (await this.query(`SELECT * FROM ${this.table('refused_messages')} ORDER BY id LIMIT $1 OFFSET $2`, [opts.limit, opts.offset ?? 0])).map(
      toRefusedMessage,
    );
  }

  async getState(key: string): Promise<string | undefined> {
    const [r] = await this.query(`SELECT value FROM ${this.table('kv')} WHERE key = $1`, [key]);
    return r ? String(r.value) : undefined;
  }

  async setState(key: string, value: string, now: number): Promise<void> {
    await this.exec(this.kvUpsert(), [key, value, now]);
  }

  async stats(): Promise<StoreStats> {
    const inbox = Object.fromEntries(
      (await this.query(`SELECT state, COUNT(*) AS n FROM ${this.table('inbox')} GROUP BY state`)).map((r) => [String(r.state), Number(r.n)]),
    );
    const ops = (
      await this.query(
        `SELECT kind, lane, state, priority, COUNT(*) AS n, MIN(CASE WHEN state IN ('pending', 'inflight', 'awaiting') THEN created_at END) AS oldest
         FROM ${this.table('ops')} GROUP BY kind, lane, state, priority`,
      )
    ).map(toOpStats);
    return { inbox, ops };
  }

  async waitingErrors(): Promise<WaitingErrors> {
    const where = `FROM ${this.table('ops')} WHERE state = 'pending' AND last_code IS NOT NULL`;
    const [c] = await this.query(`SELECT COUNT(*) AS n ${where}`);
    const [r] = await this.query(`SELECT last_code, last_message, last_status, updated_at ${where} ORDER BY updated_at DESC LIMIT 1`);
    return { count: Number(c?.n ?? 0), newest: r ? toWaitingError(r) : null };
  }
}
