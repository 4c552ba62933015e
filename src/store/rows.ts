// What the SQL adapters share: row -> port shapes (their column names are the same) and the
// rules both apply in JavaScript, so that SQLite and PostgreSQL agree by construction.
// The SQL itself stays in each adapter, in its dialect.
import type { ContactOp } from '../core/plan.js';
import { TajoError } from '../core/errors.js';
import type {
  BudgetRequest,
  BudgetWindow,
  ClaimQuery,
  CursorRow,
  DueSummary,
  EnqueueResult,
  InboxRow,
  RefusedMessageRow,
  LeaseRequest,
  LeaseRow,
  LedgerEntry,
  OpError,
  OpRow,
  ProcessRow,
  RouteBucket,
  StoreStats,
  WaitingErrors,
} from './port.js';
import { INTERRUPTED, UNANSWERED_CODES } from './port.js';

export type Row = Record<string, unknown>;

/** What recoverExpired records on an operation whose worker died in flight. */
export function interruptedError(id: number): OpError {
  return { id, code: INTERRUPTED, message: "the process delivering it stopped before it recorded Brevo's answer" };
}

/**
 * When a contact write is folded into a newer pending one for the same contact, the doubt
 * that its call may have reached Brevo (an import applied later) goes with it: the attempt
 * that went unanswered (this one, or an earlier one of the folded row), recorded on the row
 * it folds into, so that row's write goes behind such an import (hadUnansweredAttempt).
 */
export function foldedDoubt(row: Pick<OpRow, 'history'>, err: OpError | undefined): Omit<OpError, 'id'> | undefined {
  if (err && UNANSWERED_CODES.has(err.code)) return { code: err.code, message: err.message, ...(err.status !== undefined ? { status: err.status } : {}) };
  const h = [...row.history].reverse().find((e) => UNANSWERED_CODES.has(e.code));
  return h ? { code: h.code, message: h.message ?? '', ...(h.status !== null && h.status !== undefined ? { status: h.status } : {}) } : undefined;
}

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
    history: r.history === null || r.history === undefined ? [] : (JSON.parse(String(r.history)) as OpRow['history']),
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
export function withClaimDefaults(q: ClaimQuery): Required<Omit<ClaimQuery, 'when'>> & Pick<ClaimQuery, 'when'> {
  return { ...q, lanes: q.lanes ?? ['realtime', 'backfill'], maxPriority: q.maxPriority ?? 99 };
}

/** A pendingDue row (`n`, `oldest`, `top`, `last`; PostgreSQL's bigints arrive as text). */
export function dueSummary(row: Row): DueSummary {
  const count = Number(row.n ?? 0);
  const num = (v: unknown) => (count === 0 || v === null || v === undefined ? null : Number(v));
  const last = row.last === null || row.last === undefined ? null : Number(row.last);
  return { count, oldestDueAt: num(row.oldest), topPriority: num(row.top), lastClaimAt: Number.isFinite(last) ? last : null };
}

/** The kv key under which conditional claims of one kind and set of lanes record their time (DueSummary.lastClaimAt). */
export function claimTurnKey(kind: string, lanes: string[]): string {
  return `claim_turn:${kind}:${[...lanes].sort().join(',')}`;
}

export function noneEnqueued(): EnqueueResult {
  return { inserted: 0, merged: 0, duplicates: 0 };
}

// --- Several processes on one store -----------------------------------------------------

/** A processes row; `now` is the time the query ran at (the store's clock unless the caller gave one). */
export function toProcessRow(r: Row, now: number, staleAfterMs: number): ProcessRow {
  const lastSeen = Number(r.last_seen);
  return {
    owner: String(r.owner),
    host: String(r.host),
    pid: Number(r.pid),
    role: (r.role as string | null) ?? null,
    startedAt: Number(r.started_at),
    lastSeen,
    alive: now - lastSeen < staleAfterMs,
  };
}

export function toLeaseRow(r: Row): LeaseRow {
  return { name: String(r.name), owner: String(r.owner), acquiredAt: Number(r.acquired_at), expiresAt: Number(r.expires_at), updatedAt: Number(r.updated_at) };
}

export function toRouteBucket(r: Row): RouteBucket {
  return { route: String(r.route), bucket: String(r.bucket), limit: Number(r.limit_count), windowMs: Number(r.window_ms), updatedAt: Number(r.updated_at) };
}

function isPositiveInt(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) > 0;
}

export function checkLeaseRequest(req: LeaseRequest): void {
  if (!req.name || !req.owner || !isPositiveInt(req.ttlMs)) {
    throw new TajoError('invalid_lease_request', `lease: name and owner must be set and ttlMs a positive integer (got ${JSON.stringify(req)})`);
  }
}

export function checkRouteBucket(fact: { route: string; bucket: string; limit: number; windowMs: number }): void {
  if (!fact.route || !fact.bucket || !isPositiveInt(fact.limit) || !isPositiveInt(fact.windowMs)) {
    throw new TajoError(
      'invalid_budget_request',
      `route bucket: route and bucket must be set, limit and windowMs positive integers (got ${JSON.stringify(fact)})`,
    );
  }
}

/** A take, validated: a wrong count or window would silently over- or under-spend the account's budget. */
export interface CheckedBudgetRequest {
  bucket: string;
  count: number;
  windows: BudgetWindow[];
  /** How long its grants matter: the longest window (0 with none). */
  horizonMs: number;
}

export function checkBudgetRequest(req: BudgetRequest): CheckedBudgetRequest {
  const count = req.count ?? 1;
  const fail = (why: string) => new TajoError('invalid_budget_request', `budget of bucket ${JSON.stringify(req.bucket)}: ${why}`);
  if (!req.bucket) throw fail('the bucket must be named');
  if (!isPositiveInt(count)) throw fail(`count must be a positive integer, got ${count}`);
  for (const w of req.windows) {
    if (!isPositiveInt(w.limit) || !isPositiveInt(w.windowMs)) throw fail(`limit and windowMs must be positive integers, got ${JSON.stringify(w)}`);
    // It would never fit: waiting cannot help, so say so instead of waiting forever.
    if (count > w.limit) throw fail(`count ${count} exceeds the limit of ${w.limit} per ${w.windowMs} ms`);
  }
  const windows = req.windows.map((w) => ({ limit: w.limit, windowMs: w.windowMs }));
  return { bucket: req.bucket, count, windows, horizonMs: Math.max(0, ...windows.map((w) => w.windowMs)) };
}

/**
 * The windows `count` more grants would overflow, each with how many granted requests must
 * first leave it (the `excess` oldest ones). Empty when the take fits every window.
 */
export function budgetExcess<W extends BudgetWindow & { used: number }>(windows: W[], count: number): Array<W & { excess: number }> {
  return windows.filter((w) => w.used + count > w.limit).map((w) => ({ ...w, excess: w.used + count - w.limit }));
}

/**
 * Grants are kept with the running total of their bucket (`cum`, after the grant), and
 * their times never go back within a bucket (a grant is recorded at the latest grant's
 * time if `now` is earlier: a clock stepping back, or callers' clocks that disagree). So
 * times and totals rise together, and a window's use is one index lookup: the total now
 * minus the total at the last grant before the window (`base`), instead of a sum over the
 * window (36,000 rows for Brevo's hourly contacts window).
 */
export function grantOf(g: { now: number; lastAt: number; granted: number; count: number }): { at: number; cum: number } {
  return { at: Math.max(g.now, g.lastAt), cum: g.granted + g.count };
}

/**
 * How long a refused take waits: until the pause ends and every overflowing window has
 * freed enough room (`freeAt`: when the last grant that must leave a window is windowMs old).
 */
export function budgetWaitMs(now: number, pausedUntil: number, freeAt: number[]): number {
  return Math.max(1, pausedUntil - now, ...freeAt.map((t) => t - now));
}

/** The windows a bucket row remembers from its latest take (JSON text). */
export function parseWindows(json: unknown): BudgetWindow[] {
  try {
    const ws = JSON.parse(String(json)) as unknown;
    return Array.isArray(ws)
      ? ws.filter((w): w is BudgetWindow => isPositiveInt((w as BudgetWindow)?.limit) && isPositiveInt((w as BudgetWindow)?.windowMs))
      : [];
  } catch {
    return [];
  }
}

export function toWaitingError(r: Row): NonNullable<WaitingErrors['newest']> {
  return {
    code: String(r.last_code),
    message: (r.last_message as string | null) ?? null,
    status: r.last_status === null || r.last_status === undefined ? null : Number(r.last_status),
    at: Number(r.updated_at),
  };
}

/** Bodies of refused messages are kept up to this many characters (SQS's message limit). */
export const REFUSED_BODY_MAX = 256 * 1024;

export function toRefusedMessage(r: Row): RefusedMessageRow {
  return {
    id: Number(r.id),
    key: String(r.key),
    source: String(r.source) as RefusedMessageRow['source'],
    reason: String(r.reason),
    message: String(r.message),
    externalId: (r.external_id as string | null) ?? null,
    body: String(r.body),
    at: Number(r.at),
  };
}
