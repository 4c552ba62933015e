// What the SQL adapters share: row -> port shapes (their column names are the same) and the
// rules both apply in JavaScript, so that SQLite and PostgreSQL agree by construction.
// The SQL itself stays in each adapter, in its dialect.
import type { ContactOp } from '../core/plan.js';
import type { ClaimQuery, CursorRow, EnqueueResult, InboxRow, LedgerEntry, OpRow, StoreStats } from './port.js';

export type Row = Record<string, unknown>;

export function toOp(r: Row): OpRow {
  return {
    id: Number(r.id),
    kind: r.kind as OpRow['kind'],
    key: String(r.key),
    email: String(r.email),
    lane: r.lane as OpRow['lane'],
    priority: Number(r.priority),
    payload: JSON.parse(String(r.payload)),
    sources: JSON.parse(String(r.sources)) as string[],
    state: r.state as OpRow['state'],
    attempts: Number(r.attempts),
    nextAt: Number(r.next_at),
    ref: (r.ref as string | null) ?? null,
    lastCode: (r.last_code as string | null) ?? null,
    lastMessage: (r.last_message as string | null) ?? null,
    lastStatus: r.last_status === null || r.last_status === undefined ? null : Number(r.last_status),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** A queued contact row as the write it stands for, ready to merge with another (mergeContactOps). */
export function rowToContactOp(r: OpRow): ContactOp {
  return {
    kind: 'contact',
    key: r.key,
    email: r.email,
    lane: r.lane,
    priority: r.priority as ContactOp['priority'],
    sources: r.sources,
    payload: r.payload as ContactOp['payload'],
  };
}

export function toInboxRow(r: Row): InboxRow {
  return {
    id: Number(r.id),
    messageId: String(r.message_id),
    source: String(r.source),
    topicArn: (r.topic_arn as string | null) ?? null,
    receivedAt: Number(r.received_at),
    body: String(r.body),
  };
}

export function toCursorRow(r: Row): CursorRow {
  return {
    stream: String(r.stream),
    value: (r.value as string | null) ?? null,
    status: (r.status as string | null) ?? null,
    note: (r.note as string | null) ?? null,
    updatedAt: Number(r.updated_at),
  };
}

/** One row of the ops statistics query: kind, lane, state, priority, n (count), oldest (created_at of the oldest open op). */
export function toOpStats(r: Row): StoreStats['ops'][number] {
  return {
    kind: r.kind as OpRow['kind'],
    lane: r.lane as OpRow['lane'],
    state: r.state as OpRow['state'],
    priority: Number(r.priority),
    count: Number(r.n),
    oldestCreatedAt: r.oldest === null || r.oldest === undefined ? null : Number(r.oldest),
  };
}

/**
 * What the ledger holds after recording `next` over `cur`: the newest time per attribute,
 * and a blocklisting that never goes back. Neither argument is modified.
 */
export function mergeLedgerEntry(cur: LedgerEntry | undefined, next: LedgerEntry): LedgerEntry {
  if (!cur) return { email: next.email, attrs: { ...next.attrs }, blocklisted: next.blocklisted };
  const attrs = { ...cur.attrs };
  // Own keys only: an attribute named like an Object method (`constructor`) is still an attribute.
  for (const [k, at] of Object.entries(next.attrs)) if (!Object.hasOwn(attrs, k) || at > attrs[k]!) attrs[k] = at;
  return { email: next.email, attrs, blocklisted: cur.blocklisted || next.blocklisted };
}

/** Every lane, and a priority bound no operation exceeds: what a claim means when it names neither. */
export function withClaimDefaults(q: ClaimQuery): Required<ClaimQuery> {
  return { ...q, lanes: q.lanes ?? ['realtime', 'backfill'], maxPriority: q.maxPriority ?? 99 };
}

export function noneEnqueued(): EnqueueResult {
  return { inserted: 0, merged: 0, duplicates: 0 };
}
