// The embedded store: one SQLite file in WAL mode. better-sqlite3 is synchronous, which
// suits a single process well: each method is one short transaction on one connection.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { SQLITE_MIGRATIONS } from './migrations.js';
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
import { mergeContactOps, type ContactOp, type PlannedOp } from '../../core/plan.js';
import { TajoError } from '../../core/errors.js';
import type { WriteGate } from './gate.js';
import { WalSync } from './wal-sync.js';
import { SqliteCluster } from './cluster.js';
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

export interface SqliteStoreOptions {
  /**
   * Durability of the commits that acknowledge a webhook (inbox inserts). `FULL`: each is
   * on disk before `insertInbox` resolves (the WAL is flushed off the event loop, see
   * wal-sync.ts), so an acknowledged message survives power loss; so are the records of
   * what Brevo applied (completeOps, awaitOps), so a power cut does not send them again.
   * Other bookkeeping commits (planning, retries, cursors) are not flushed one by one: in WAL
   * mode they survive a process crash, and the next flush persists them too, in order. A
   * power cut can only roll back the newest of them, which is replayed.
   * `NORMAL` flushes nothing (tests, throwaway stores).
   */
  synchronous?: 'FULL' | 'NORMAL';
  /**
   * Set when another thread writes the same file (see gate.ts). The `ingest` side never
   * blocks its event loop on the lock and leaves WAL checkpoints to the `engine` side.
   */
  gate?: WriteGate;
}

const isBusy = (err: unknown) => (err as { code?: unknown }).code === 'SQLITE_BUSY';

const BUSY_TIMEOUT_MS = 5000;
/** A cell nobody notifies: Atomics.wait on it is a short synchronous pause. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** `IN ${IN_LIST}` takes one JSON array parameter: one prepared statement for any number of values. */
const IN_LIST = '(SELECT value FROM json_each(?))';

function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(',');
}

/** The pass of a list member the backfill removed (a real pass is never empty). */
const REMOVED_PASS = '';

/** The ledger keeps attrs as JSON text and blocklisted as 0/1 in SQLite. */
function toLedgerEntry(r: Row): LedgerEntry {
  return { email: String(r.email), attrs: JSON.parse(String(r.attrs)) as Record<string, number>, blocklisted: Number(r.blocklisted) === 1 };
}

/**
 * An operation's condition to be claimed (and counted as due): a contact whose previous write
 * is in flight, in this process or another, waits for it (see claimOps).
 */
const NOT_WAITING_ON_CONTACT = "(kind <> 'contact' OR NOT EXISTS (SELECT 1 FROM ops f WHERE f.state = 'inflight' AND f.kind = 'contact' AND f.key = ops.key))";

export class SqliteStore extends ForwardsCluster implements Store {
  readonly kind = 'sqlite' as const;
  readonly path: string;
  private db: Database.Database;
  private readonly walSync: WalSync | undefined;
  private readonly gate: WriteGate | undefined;

  constructor(path: string, opts: SqliteStoreOptions = {}) {
    super();
    this.path = path;
    this.walSync = (opts.synchronous ?? 'FULL') === 'FULL' && path !== ':memory:' ? new WalSync(`${path}-wal`) : undefined;
    this.gate = opts.gate;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    try {
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      // The acknowledging thread never sleeps inside SQLite on a busy lock: it retries itself (ingestTx, tx).
      this.db.pragma(`busy_timeout = ${this.gate?.role === 'ingest' ? 0 : BUSY_TIMEOUT_MS}`);
      this.db.pragma('foreign_keys = ON');
      // Copying the WAL into the database (and its fsync) is the engine's chore, not the acknowledging thread's.
      if (this.gate?.role === 'ingest') this.db.pragma('wal_autocheckpoint = 0');
    } catch (err) {
      throw new TajoError(
        'store_unavailable',
        `cannot open SQLite store at ${path}: ${(err as Error).message}; check the path in store.url and its permissions`,
        { cause: err, retryable: true },
      );
    }
  }

  private readonly stmts = new Map<string, Database.Statement>();
  protected readonly cluster = new SqliteCluster({ stmt: (sql) => this.stmt(sql), tx: (fn) => this.tx(fn) });

  /** Prepared statements are cached: preparing one costs more than running it. */
  private stmt(sql: string): Database.Statement {
    let st = this.stmts.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      // Statements with a variable IN (...) list are many; keep the cache bounded.
      if (this.stmts.size > 500) this.stmts.clear();
      this.stmts.set(sql, st);
    }
    return st;
  }

  private tx<T>(fn: () => T): T {
    if (this.gate?.role === 'engine') this.gate.yieldToIngest();
    if (this.gate?.role !== 'ingest') return this.db.transaction(fn).immediate();
    // Rare writes of the acknowledging thread other than inbox inserts (admin actions).
    const deadline = Date.now() + BUSY_TIMEOUT_MS;
    for (;;) {
      try {
        return this.db.transaction(fn).immediate();
      } catch (err) {
        if (!isBusy(err) || Date.now() > deadline) throw err;
        Atomics.wait(PAUSE, 0, 0, 1);
      }
    }
  }

  /**
   * The acknowledging thread's write: while the lock is held elsewhere it waits without
   * blocking its event loop (requests keep arriving and join the next group commit).
   */
  private async ingestTx<T>(fn: () => T): Promise<T> {
    if (this.gate?.role !== 'ingest') return this.tx(fn);
    this.gate.enter();
    try {
      const deadline = Date.now() + BUSY_TIMEOUT_MS;
      for (;;) {
        try {
          return this.db.transaction(fn).immediate();
        } catch (err) {
          if (!isBusy(err) || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 1));
        }
      }
    } finally {
      this.gate.leave();
    }
  }

  async migrate(): Promise<void> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const applied = new Set((this.stmt('SELECT version FROM schema_migrations').all() as Row[]).map((r) => Number(r.version)));
    for (const m of SQLITE_MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.tx(() => {
        this.db.exec(m.sql);
        this.stmt('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      });
    }
  }

  async ping(): Promise<void> {
    this.stmt('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
    this.walSync?.close();
  }

  async insertInbox(rows: InboxInsert[]): Promise<Array<'inserted' | 'duplicate'>> {
    const stmt = this.stmt(
      "INSERT INTO inbox (message_id, source, topic_arn, received_at, body, state) VALUES (?, ?, ?, ?, ?, 'stored') ON CONFLICT(message_id) DO NOTHING",
    );
    const queue = this.stmt('INSERT INTO inbox_pending (id) VALUES (?)');
    const res = await this.ingestTx(() =>
      rows.map((r) => {
        const res = stmt.run(r.messageId, r.source, r.topicArn ?? null, r.receivedAt, r.body);
        if (res.changes !== 1) return 'duplicate';
        queue.run(res.lastInsertRowid);
        return 'inserted';
      }),
    );
    // Also for duplicates: their first copy may still be on its way to disk.
    await this.walSync?.afterCommit();
    return res;
  }

  async claimInbox(limit: number, owner: string, leaseMs: number, now: number): Promise<InboxRow[]> {
    // Reading the (large) envelopes needs no write lock; only the lease does, and it is taken
    // on the rows that are still free at that moment. An empty poll writes nothing.
    const rows = this.stmt(
      'SELECT i.id, i.message_id, i.source, i.topic_arn, i.received_at, i.body FROM inbox_pending p JOIN inbox i ON i.id = p.id WHERE p.lease_until <= ? ORDER BY p.id LIMIT ?',
    ).all(now, limit) as Row[];
    if (rows.length === 0) return [];
    const taken = this.tx(
      () =>
        new Set(
          (
            this.stmt(`UPDATE inbox_pending SET lease_owner = ?, lease_until = ? WHERE lease_until <= ? AND id IN ${IN_LIST} RETURNING id`).all(
              owner,
              now + leaseMs,
              now,
              JSON.stringify(rows.map((r) => r.id)),
            ) as Row[]
          ).map((r) => Number(r.id)),
        ),
    );
    return rows.filter((r) => taken.has(Number(r.id))).map(toInboxRow);
  }

  async commitInbox(outcomes: InboxOutcome[], ops: PlannedOp[], now: number): Promise<EnqueueResult> {
    const dequeue = this.stmt('DELETE FROM inbox_pending WHERE id = ?');
    // The large row is only touched when there is something to say about it.
    const mark = this.stmt('UPDATE inbox SET outcome = ?, note = ? WHERE id = ?');
    return this.tx(() => {
      for (const o of outcomes) {
        if (dequeue.run(o.id).changes === 0) continue;
        if (o.state !== 'done' || o.note) mark.run(o.state === 'done' ? null : o.state, o.note ?? null, o.id);
      }
      return this.enqueueSync(ops, now);
    });
  }

  async pruneInbox(q: InboxPruneQuery): Promise<InboxPruneResult> {
    const limit = Math.max(1, Math.floor(q.limit));
    // A row in inbox_pending is not planned yet: its body is its only copy. Every other row
    // was closed in the transaction that queued its work (commitInbox).
    const dropBodies = this.stmt(
      `UPDATE inbox SET body = '', body_pruned = 1 WHERE id IN (
         SELECT id FROM inbox WHERE body_pruned = 0 AND received_at < ? AND id NOT IN (SELECT id FROM inbox_pending) ORDER BY received_at LIMIT ?)`,
    );
    const dropRows = this.stmt('DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE body_pruned = 1 AND received_at < ? ORDER BY received_at LIMIT ?)');
    return this.tx(() => ({
      bodies: dropBodies.run(q.bodiesBefore, limit).changes,
      rows: dropRows.run(Math.min(q.rowsBefore, q.bodiesBefore), limit).changes,
    }));
  }

  async inboxRetention(): Promise<InboxRetentionStats> {
    const rows = Number((this.stmt('SELECT COUNT(*) AS n FROM inbox').get() as Row).n);
    const held = this.stmt('SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM inbox WHERE body_pruned = 0').get() as Row;
    return { rows, bodies: Number(held.n), oldestBody: held.oldest === null ? null : Number(held.oldest) };
  }

  async enqueue(ops: PlannedOp[], now: number): Promise<EnqueueResult> {
    return this.tx(() => this.enqueueSync(ops, now));
  }

  private enqueueSync(ops: PlannedOp[], now: number): EnqueueResult {
    const res = noneEnqueued();
    const insEvent = this.stmt(
      `INSERT INTO ops (kind, key, email, lane, priority, payload, sources, state, next_at, created_at, updated_at)
       VALUES ('event', ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT(key) WHERE kind = 'event' DO NOTHING`,
    );
    for (const op of ops) {
      if (op.kind === 'event') {
        const r = insEvent.run(op.key, op.email, op.lane, op.priority, JSON.stringify(op.payload), JSON.stringify(op.sources), now, now, now);
        if (r.changes === 1) res.inserted++;
        else res.duplicates++;
      } else if (this.upsertContact(op, now, now)) res.merged++;
      else res.inserted++;
    }
    return res;
  }

  /** Queues a contact write, folding it into the pending one for the same contact. Returns true when merged. */
  private upsertContact(op: ContactOp, nextAt: number, now: number, attempts = 0): boolean {
    const cur = this.stmt("SELECT * FROM ops WHERE kind = 'contact' AND key = ? AND state = 'pending'").get(op.key) as Row | undefined;
    if (cur) {
      const row = toOp(cur);
      const merged = mergeContactOps(rowToContactOp(row), op);
      this.stmt(
        'UPDATE ops SET payload = ?, sources = ?, priority = ?, lane = ?, next_at = MIN(next_at, ?), attempts = MAX(attempts, ?), updated_at = ? WHERE id = ?',
      ).run(JSON.stringify(merged.payload), JSON.stringify(merged.sources), merged.priority, merged.lane, nextAt, attempts, now, row.id);
      return true;
    }
    this.stmt(
      `INSERT INTO ops (kind, key, email, lane, priority, payload, sources, state, attempts, next_at, created_at, updated_at)
         VALUES ('contact', ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)`,
    ).run(op.key, op.email, op.lane, op.priority, JSON.stringify(op.payload), JSON.stringify(op.sources), attempts, nextAt, now, now);
    return false;
  }

  /** Puts one claimed/dead row back to pending; a contact row merges into a newer pending one. */
  private requeue(row: OpRow, nextAt: number, now: number, err?: OpError): void {
    if (row.kind === 'contact') {
      const other = this.stmt("SELECT id FROM ops WHERE kind = 'contact' AND key = ? AND state = 'pending' AND id <> ?").get(row.key, row.id) as
        Row | undefined;
      if (other) {
        this.upsertContact(rowToContactOp(row), nextAt, now, row.attempts);
        this.stmt("UPDATE ops SET state = 'superseded', lease_owner = NULL, updated_at = ? WHERE id = ?").run(now, row.id);
        // Its call may have reached Brevo (an import applied later): the write it folds into
        // carries that, so that it goes behind such an import (engine/imports.ts).
        const doubt = foldedDoubt(row, err);
        if (doubt) {
          this.stmt('UPDATE ops SET last_code = ?, last_message = ?, last_status = ? WHERE id = ?').run(
            doubt.code,
            doubt.message,
            doubt.status ?? null,
            other.id,
          );
          this.appendHistory(Number(other.id), { id: Number(other.id), ...doubt }, now);
        }
        return;
      }
    }
    this.stmt(
      `UPDATE ops SET state = 'pending', next_at = ?, lease_owner = NULL, lease_until = 0, ref = NULL,
           last_code = COALESCE(?, last_code), last_message = COALESCE(?, last_message), last_status = COALESCE(?, last_status), updated_at = ?
         WHERE id = ?`,
    ).run(nextAt, err?.code ?? null, err?.message ?? null, err?.status ?? null, now, row.id);
    if (err) this.appendHistory(row.id, err, now);
  }

  /** Records a failed attempt in the operation's history (kept across manual retries). */
  private appendHistory(id: number, err: OpError, now: number): void {
    const entry = { at: now, code: err.code, message: err.message, status: err.status ?? null };
    this.stmt("UPDATE ops SET history = json_insert(history, '$[#]', json(?)) WHERE id = ?").run(JSON.stringify(entry), id);
  }

  async pendingDue(q: DueQuery): Promise<DueSummary> {
    return this.dueNow(q);
  }

  /** Synchronous: a conditional claim judges and claims with nothing in between (one process per file). */
  private dueNow(q: DueQuery): DueSummary {
    const lanes = q.lanes ?? ['realtime', 'backfill'];
    const row = this.stmt(
      `SELECT count(*) AS n, min(next_at) AS oldest, min(priority) AS top, (SELECT value FROM kv WHERE key = ?) AS last FROM (
         SELECT next_at, priority FROM ops WHERE kind = ? AND state = 'pending' AND next_at <= ? AND lane IN (${placeholders(lanes.length)})
           AND ${NOT_WAITING_ON_CONTACT}
         ORDER BY priority, id LIMIT ?)`,
    ).get(claimTurnKey(q.kind, lanes), q.kind, q.now, ...lanes, q.limit) as Row;
    return dueSummary(row);
  }

  async claimOps(claim: ClaimQuery): Promise<OpRow[]> {
    const q = withClaimDefaults(claim);
    if (claim.when && !claim.when(this.dueNow(q))) return [];
    // As claimInbox: choose without the write lock, then lease what is still pending. The
    // rows come back from the UPDATE itself, so a payload merged in between is the one sent.
    // A contact whose previous write is still in flight (in this process or another) waits
    // for it: two writes of one contact at once could land in either order at Brevo, and an
    // older attribute value landing last would stay there (the ledger records the newer).
    const ids = (
      this.stmt(
        `SELECT id FROM ops WHERE kind = ? AND state = 'pending' AND next_at <= ? AND priority <= ? AND lane IN (${placeholders(q.lanes.length)})
           AND ${NOT_WAITING_ON_CONTACT}
         ORDER BY priority, id LIMIT ?`,
      ).all(q.kind, q.now, q.maxPriority, ...q.lanes, q.limit) as Row[]
    ).map((r) => Number(r.id));
    if (ids.length === 0) return [];
    const rows = this.tx(() => {
      const claimed = this.stmt(
        `UPDATE ops SET state = 'inflight', lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? WHERE state = 'pending' AND id IN ${IN_LIST}
           AND ${NOT_WAITING_ON_CONTACT} RETURNING *`,
      ).all(q.owner, q.now + q.leaseMs, q.now, JSON.stringify(ids)) as Row[];
      if (claim.when && claimed.length > 0) this.putState(claimTurnKey(q.kind, q.lanes), String(q.now), q.now);
      return claimed;
    });
    // The claim (its attempt counted) is on disk before anything is sent: a kernel that drops
    // the unwritten pages of a failed disk must not bring a sent operation back as never tried
    // (it would be sent again without the lookup a tried one gets). Nothing is sent otherwise.
    if (rows.length > 0) await this.walSync?.afterCommit();
    const order = new Map(ids.map((id, i) => [id, i]));
    return rows.map(toOp).sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  }

  private writeLedger(entries: LedgerEntry[], now: number): void {
    if (entries.length === 0) return;
    const get = this.stmt('SELECT email, attrs, blocklisted FROM contact_ledger WHERE email = ?');
    const put = this.stmt(
      'INSERT INTO contact_ledger (email, attrs, blocklisted, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(email) DO UPDATE SET attrs = excluded.attrs, blocklisted = excluded.blocklisted, updated_at = excluded.updated_at',
    );
    for (const e of entries) {
      const cur = get.get(e.email) as Row | undefined;
      const merged = mergeLedgerEntry(cur && toLedgerEntry(cur), e);
      put.run(e.email, JSON.stringify(merged.attrs), merged.blocklisted ? 1 : 0, now);
    }
  }

  async completeOps(ids: number[], now: number, ledger: LedgerEntry[] = []): Promise<void> {
    if (ids.length === 0 && ledger.length === 0) return;
    this.tx(() => {
      if (ids.length > 0) {
        this.stmt(`UPDATE ops SET state = 'done', lease_owner = NULL, lease_until = 0, updated_at = ? WHERE id IN ${IN_LIST}`).run(now, JSON.stringify(ids));
      }
      this.writeLedger(ledger, now);
    });
    // What Brevo applied is on disk before the caller moves on: a power cut (or a kernel that
    // drops unwritten pages of a failed disk) cannot bring it back as work to send again.
    await this.walSync?.afterCommit();
  }

  async awaitOps(ids: number[], ref: string, now: number, ledger: LedgerEntry[] = []): Promise<void> {
    this.tx(() => {
      if (ids.length > 0) {
        this.stmt(`UPDATE ops SET state = 'awaiting', ref = ?, lease_owner = NULL, lease_until = 0, updated_at = ? WHERE id IN ${IN_LIST}`).run(
          ref,
          now,
          JSON.stringify(ids),
        );
      }
      this.writeLedger(ledger, now);
    });
    await this.walSync?.afterCommit();
  }

  async listAwaiting(limit: number): Promise<Array<{ ref: string; count: number; since: number }>> {
    const rows = this.stmt("SELECT ref, COUNT(*) AS n, MIN(updated_at) AS since FROM ops WHERE state = 'awaiting' GROUP BY ref ORDER BY since LIMIT ?").all(
      limit,
    ) as Row[];
    return rows.map((r) => ({ ref: String(r.ref), count: Number(r.n), since: Number(r.since) }));
  }

  async opsByRef(ref: string): Promise<OpRow[]> {
    return (this.stmt('SELECT * FROM ops WHERE ref = ?').all(ref) as Row[]).map(toOp);
  }

  async contactsWithOpenImports(emails: string[]): Promise<Set<string>> {
    if (emails.length === 0) return new Set();
    // The partial index ops_awaiting_email holds exactly the rows this asks about; left to
    // itself the planner prefers ops_due (kind, state) and reads every awaiting row.
    const rows = this.stmt(
      `SELECT DISTINCT email FROM ops INDEXED BY ops_awaiting_email WHERE kind = 'contact' AND state = 'awaiting' AND email IN ${IN_LIST}`,
    ).all(JSON.stringify([...new Set(emails)])) as Row[];
    return new Set(rows.map((r) => String(r.email)));
  }

  private byIds(ids: number[]): Map<number, OpRow> {
    if (ids.length === 0) return new Map();
    const rows = this.stmt(`SELECT * FROM ops WHERE id IN ${IN_LIST}`).all(JSON.stringify(ids)) as Row[];
    return new Map(rows.map((r) => [Number(r.id), toOp(r)]));
  }

  async retryOps(items: Array<OpError & { nextAt: number }>, now: number): Promise<void> {
    this.tx(() => {
      const rows = this.byIds(items.map((i) => i.id));
      for (const it of items) {
        const row = rows.get(it.id);
        if (row && (row.state === 'inflight' || row.state === 'awaiting')) this.requeue(row, it.nextAt, now, it);
      }
    });
  }

  async deadOps(items: OpError[], now: number): Promise<void> {
    const stmt = this.stmt(
      "UPDATE ops SET state = 'dead', last_code = ?, last_message = ?, last_status = ?, lease_owner = NULL, lease_until = 0, updated_at = ? WHERE id = ? AND state IN ('inflight', 'awaiting')",
    );
    this.tx(() => {
      for (const it of items) if (stmt.run(it.code, it.message, it.status ?? null, now, it.id).changes > 0) this.appendHistory(it.id, it, now);
    });
  }

  async recoverExpired(now: number): Promise<number> {
    return this.tx(() => {
      const rows = (this.stmt("SELECT * FROM ops WHERE state = 'inflight' AND lease_until <= ?").all(now) as Row[]).map(toOp);
      for (const r of rows) this.requeue(r, now, now, interruptedError(r.id));
      this.stmt('UPDATE inbox_pending SET lease_owner = NULL, lease_until = 0 WHERE lease_until > 0 AND lease_until <= ?').run(now);
      return rows.length;
    });
  }

  async releaseOwner(owner: string): Promise<number> {
    return this.tx(() => {
      const n = this.stmt("UPDATE ops SET lease_until = 0 WHERE state = 'inflight' AND lease_owner = ?").run(owner).changes;
      this.stmt('UPDATE inbox_pending SET lease_until = 0, lease_owner = NULL WHERE lease_owner = ?').run(owner);
      return n;
    });
  }

  async leaseOwners(): Promise<string[]> {
    const rows = this.stmt(
      "SELECT DISTINCT lease_owner AS o FROM ops WHERE state = 'inflight' AND lease_owner IS NOT NULL UNION SELECT DISTINCT lease_owner FROM inbox_pending WHERE lease_owner IS NOT NULL",
    ).all() as Row[];
    return rows.map((r) => String(r.o));
  }

  async getLedger(emails: string[]): Promise<Map<string, LedgerEntry>> {
    const out = new Map<string, LedgerEntry>();
    const rows = this.stmt(`SELECT email, attrs, blocklisted FROM contact_ledger WHERE email IN ${IN_LIST}`).all(JSON.stringify([...new Set(emails)])) as Row[];
    for (const r of rows) out.set(String(r.email), toLedgerEntry(r));
    return out;
  }

  async readLedger(q: { after?: string; limit: number }): Promise<LedgerEntry[]> {
    const rows = this.stmt('SELECT email, attrs, blocklisted FROM contact_ledger WHERE email > ? ORDER BY email LIMIT ?').all(q.after ?? '', q.limit) as Row[];
    return rows.map(toLedgerEntry);
  }

  async recordSoftBounces(items: SoftBounce[], windowMs: number, now: number): Promise<number[]> {
    if (items.length === 0) return [];
    const ins = this.stmt('INSERT INTO soft_bounces (key, email, at) VALUES (?, ?, ?) ON CONFLICT(key) DO NOTHING');
    const count = this.stmt('SELECT COUNT(*) AS n FROM soft_bounces WHERE email = ? AND at > ? AND at <= ?');
    return this.tx(() => {
      this.stmt('DELETE FROM soft_bounces WHERE at < ?').run(now - 2 * windowMs);
      for (const b of items) ins.run(b.key, b.email, b.at);
      return items.map((b) => Number((count.get(b.email, b.at - windowMs, b.at) as Row).n));
    });
  }

  async markListMembers(list: string, emails: string[], pass: string, now: number): Promise<void> {
    if (emails.length === 0) return;
    const up = this.stmt(
      'INSERT INTO list_members (list, email, pass, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(list, email) DO UPDATE SET pass = excluded.pass, updated_at = excluded.updated_at',
    );
    this.tx(() => {
      for (const e of emails) up.run(list, e, pass, now);
    });
  }

  async takeStaleListMembers(list: string, pass: string, now?: number): Promise<string[]> {
    // A removed member keeps its row with the pass REMOVED_PASS, for reconcile to tell apart.
    return this.tx(() =>
      (
        this.stmt('UPDATE list_members SET pass = ?, updated_at = COALESCE(?, updated_at) WHERE list = ? AND pass <> ? AND pass <> ? RETURNING email').all(
          REMOVED_PASS,
          now ?? null,
          list,
          pass,
          REMOVED_PASS,
        ) as Row[]
      )
        .map((r) => String(r.email))
        .sort(),
    );
  }

  async readRemovedListMembers(q: { list: string; after?: string; limit: number }): Promise<Array<{ email: string; at: number }>> {
    const rows = this.stmt('SELECT email, updated_at FROM list_members WHERE list = ? AND pass = ? AND email > ? ORDER BY email LIMIT ?').all(
      q.list,
      REMOVED_PASS,
      q.after ?? '',
      q.limit,
    ) as Row[];
    return rows.map((r) => ({ email: String(r.email), at: Number(r.updated_at) }));
  }

  async readListMembers(q: { list: string; after?: string; limit: number }): Promise<string[]> {
    const rows = this.stmt('SELECT email FROM list_members WHERE list = ? AND pass <> ? AND email > ? ORDER BY email LIMIT ?').all(
      q.list,
      REMOVED_PASS,
      q.after ?? '',
      q.limit,
    ) as Row[];
    return rows.map((r) => String(r.email));
  }

  async listFailures(opts: { limit: number; offset?: number }): Promise<OpRow[]> {
    return (this.stmt("SELECT * FROM ops WHERE state = 'dead' ORDER BY id LIMIT ? OFFSET ?").all(opts.limit, opts.offset ?? 0) as Row[]).map(toOp);
  }

  async getOp(id: number): Promise<OpRow | undefined> {
    const r = this.stmt('SELECT * FROM ops WHERE id = ?').get(id) as Row | undefined;
    return r ? toOp(r) : undefined;
  }

  async retryFailures(ids: number[] | 'all', now: number): Promise<number> {
    return this.tx(() => {
      const rows =
        ids === 'all'
          ? (this.stmt("SELECT * FROM ops WHERE state = 'dead'").all() as Row[]).map(toOp)
          : [...this.byIds(ids).values()].filter((r) => r.state === 'dead');
      for (const r of rows) {
        // A manual retry starts a fresh budget of attempts.
        this.stmt('UPDATE ops SET attempts = 0 WHERE id = ?').run(r.id);
        this.requeue({ ...r, attempts: 0 }, now, now);
      }
      return rows.length;
    });
  }

  async discardFailures(ids: number[], now: number): Promise<number> {
    if (ids.length === 0) return 0;
    return this.stmt(`UPDATE ops SET state = 'discarded', updated_at = ? WHERE state = 'dead' AND id IN ${IN_LIST}`).run(now, JSON.stringify(ids)).changes;
  }

  async recordRefusedMessage(m: RefusedMessageInsert): Promise<'inserted' | 'duplicate'> {
    const res = this.stmt(
      'INSERT INTO refused_messages (key, source, reason, message, external_id, body, at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING',
    ).run(m.key, m.source, m.reason, m.message, m.externalId, m.body.slice(0, REFUSED_BODY_MAX), m.at);
    return res.changes === 1 ? 'inserted' : 'duplicate';
  }

  async listRefusedMessages(opts: { limit: number; offset?: number }): Promise<RefusedMessageRow[]> {
    return (this.stmt('SELECT * FROM refused_messages ORDER BY id LIMIT ? OFFSET ?').all(opts.limit, opts.offset ?? 0) as Row[]).map(toRefusedMessage);
  }

  async getCursor(stream: string): Promise<CursorRow | undefined> {
    const r = this.stmt('SELECT * FROM cursors WHERE stream = ?').get(stream) as Row | undefined;
    return r ? toCursorRow(r) : undefined;
  }

  async setCursor(stream: string, value: string | null, now: number, status?: string, note?: string): Promise<void> {
    this.stmt(
      'INSERT INTO cursors (stream, value, status, note, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(stream) DO UPDATE SET value = excluded.value, status = excluded.status, note = excluded.note, updated_at = excluded.updated_at',
    ).run(stream, value, status ?? null, note ?? null, now);
  }

  async listCursors(): Promise<CursorRow[]> {
    return (this.stmt('SELECT * FROM cursors ORDER BY stream').all() as Row[]).map(toCursorRow);
  }

  async getState(key: string): Promise<string | undefined> {
    const r = this.stmt('SELECT value FROM kv WHERE key = ?').get(key) as Row | undefined;
    return r ? String(r.value) : undefined;
  }

  async setState(key: string, value: string, now: number): Promise<void> {
    this.putState(key, value, now);
  }

  private putState(key: string, value: string, now: number): void {
    this.stmt(
      'INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    ).run(key, value, now);
  }

  async stats(): Promise<StoreStats> {
    const total = Number((this.stmt('SELECT COUNT(*) AS n FROM inbox').get() as Row).n);
    const pending = Number((this.stmt('SELECT COUNT(*) AS n FROM inbox_pending').get() as Row).n);
    const unparseable = Number((this.stmt("SELECT COUNT(*) AS n FROM inbox WHERE outcome = 'unparseable'").get() as Row).n);
    const inbox: Record<string, number> = {};
    if (pending) inbox.pending = pending;
    if (total - pending - unparseable) inbox.done = total - pending - unparseable;
    if (unparseable) inbox.unparseable = unparseable;
    const ops = (
      this.stmt(
        "SELECT kind, lane, state, priority, COUNT(*) AS n, MIN(CASE WHEN state IN ('pending','inflight','awaiting') THEN created_at END) AS oldest FROM ops GROUP BY kind, lane, state, priority",
      ).all() as Row[]
    ).map(toOpStats);
    return { inbox, ops };
  }

  async waitingErrors(): Promise<WaitingErrors> {
    const where = "FROM ops WHERE state = 'pending' AND last_code IS NOT NULL";
    const count = Number((this.stmt(`SELECT COUNT(*) AS n ${where}`).get() as Row).n);
    const r = this.stmt(`SELECT last_code, last_message, last_status, updated_at ${where} ORDER BY updated_at DESC LIMIT 1`).get() as Row | undefined;
    return { count, newest: r ? toWaitingError(r) : null };
  }
}
