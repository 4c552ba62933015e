// The Store port: everything the engine keeps durably. Adapters (sqlite/, postgres/) must
// pass the same contract suite (contract.ts). All times are epoch milliseconds.
import type { Lane, PlannedOp } from '../core/plan.js';

export type OpKind = PlannedOp['kind'];

/**
 * Allowed state transitions of an operation, as data. `awaiting` is a write Brevo has
 * accepted asynchronously (a contact import) whose outcome is not known yet.
 */
export const OP_TRANSITIONS = {
  pending: ['inflight', 'superseded'],
  inflight: ['done', 'pending', 'dead', 'awaiting', 'superseded'],
  awaiting: ['done', 'pending', 'dead'],
  dead: ['pending', 'discarded'],
  done: [],
  discarded: [],
  superseded: [],
} as const;
export type OpState = keyof typeof OP_TRANSITIONS;

export interface InboxInsert {
  messageId: string;
  source: 'sns' | 'sqs' | 'eventbridge' | 'api';
  topicArn?: string;
  receivedAt: number;
  /** The verified envelope, raw as received: the source of truth if planning changes. */
  body: string;
}

export interface InboxRow {
  id: number;
  messageId: string;
  source: string;
  topicArn: string | null;
  receivedAt: number;
  body: string;
}

/**
 * One bounded step of inbox retention. Only closed rows are touched (their planned work was
 * committed in the transaction that closed them); a row still waiting to be planned keeps
 * its body and its message id whatever its age.
 */
export interface InboxPruneQuery {
  /** Raw bodies of closed rows received before this (epoch ms) are dropped; the row and its message id stay. */
  bodiesBefore: number;
  /** Closed rows received before this whose body was dropped are deleted: their message id no longer dedupes. At most bodiesBefore. */
  rowsBefore: number;
  /** At most this many bodies dropped and this many rows deleted by the call. */
  limit: number;
}

export interface InboxPruneResult {
  bodies: number;
  rows: number;
}

/** What the inbox holds, for `status`. */
export interface InboxRetentionStats {
  /** Rows (message ids that dedupe a replay). */
  rows: number;
  /** Rows that still hold their raw body. */
  bodies: number;
  /** receivedAt of the oldest row that still holds its body. */
  oldestBody: number | null;
}

export interface InboxOutcome {
  id: number;
  state: 'done' | 'unparseable';
  note?: string;
}

export interface OpRow {
  id: number;
  kind: OpKind;
  key: string;
  email: string;
  lane: Lane;
  priority: number;
  payload: unknown;
  sources: string[];
  state: OpState;
  attempts: number;
  nextAt: number;
  ref: string | null;
  lastCode: string | null;
  lastMessage: string | null;
  lastStatus: number | null;
  /** Every failed attempt, oldest first, kept across manual retries (a contact merged into another row starts afresh). */
  history: AttemptRecord[];
  createdAt: number;
  updatedAt: number;
}

/** One failed attempt: when, and what Brevo (or the network) answered. */
export interface AttemptRecord {
  at: number;
  code: string;
  message: string | null;
  status: number | null;
}

export interface ClaimQuery {
  kind: OpKind;
  lanes?: Lane[];
  limit: number;
  owner: string;
  leaseMs: number;
  now: number;
  /** Only operations at this priority or more urgent (lower number). */
  maxPriority?: number;
  /**
   * Claim only if this says the round is worth a call, judged on what is due (pendingDue with
   * this claim's kind, lanes and limit). Claims with a condition on one kind and set of lanes
   * are serialized across every process of the store, so that a partial round that became
   * due is claimed by one process and the others judge what is left, instead of each taking a
   * slice of it at the same moment.
   */
  when?: (due: DueSummary) => boolean;
}

/** What of one kind is due now (Store.pendingDue): enough to decide whether a round is worth a claim. */
export interface DueQuery {
  kind: OpKind;
  lanes?: Lane[];
  now: number;
  /** Rows looked at, at most (in claim order): `count` stops there. */
  limit: number;
}

export interface DueSummary {
  /** Due pending operations a claim would take (a contact whose write is in flight waits for it), at most the query's limit. */
  count: number;
  /** The earliest `next_at` among them (when the longest-waiting one became due); null when none. */
  oldestDueAt: number | null;
  /** The most urgent priority among them (lowest number); null when none. */
  topPriority: number | null;
  /**
   * When a conditional claim (ClaimQuery.when) of this kind and lanes last took operations,
   * in any process (that process's clock); null: never. Operations a slow transaction made
   * visible late look long due; this keeps their round from following the last one at once.
   */
  lastClaimAt: number | null;
}

/** last_code of an operation whose worker died while it was in flight (recoverExpired). */
export const INTERRUPTED = 'interrupted';

/** Last codes after which an attempt's outcome is unknown: no answer, or one that cannot be read (its call may have reached Brevo). */
export const UNANSWERED_CODES: ReadonlySet<string> = new Set(['network_error', 'timeout', 'bad_response', INTERRUPTED]);

/**
 * Did an attempt of this operation go unanswered (UNANSWERED_CODES), now or before a later
 * answered refusal? Its call may have been an import that Brevo accepted and applies later:
 * the operation's next write goes behind it, by import (engine/imports.ts).
 */
export function hadUnansweredAttempt(op: Pick<OpRow, 'lastCode' | 'history'>): boolean {
  return (op.lastCode !== null && UNANSWERED_CODES.has(op.lastCode)) || op.history.some((h) => UNANSWERED_CODES.has(h.code));
}

export interface OpError {
  id: number;
  code: string;
  message: string;
  status?: number;
}

export interface EnqueueResult {
  inserted: number;
  merged: number;
  duplicates: number;
}

export interface LedgerEntry {
  email: string;
  /** attribute name -> event time (ms) of the value Brevo holds. */
  attrs: Record<string, number>;
  blocklisted: boolean;
}

export interface SoftBounce {
  /** The record's idempotency key. */
  key: string;
  email: string;
  /** The bounce's own (SES) time, ms. */
  at: number;
}

export interface CursorRow {
  stream: string;
  value: string | null;
  status: string | null;
  note: string | null;
  updatedAt: number;
}

export interface StoreStats {
  inbox: Record<string, number>;
  ops: Array<{ kind: OpKind; lane: Lane; state: OpState; priority: number; count: number; oldestCreatedAt: number | null }>;
}

// --- Several processes on one store ------------------------------------------------------
// Times: each `now` below is optional. Omitted (as in production), it is the store's own
// clock (PostgreSQL: the database server's), so processes on different hosts agree on when a
// lease runs out or a grant leaves its window; tests pass it. Do not mix both on one table.

/** One process's sign of life (`serve`, a CLI command): upserted by owner. */
export interface ProcessBeat {
  /** The owner id the process also writes into op and inbox leases. */
  owner: string;
  host: string;
  pid: number;
  /** What it runs, e.g. `serve`; kept from the previous beat when omitted. */
  role?: string;
  now?: number;
}

export interface ProcessRow {
  owner: string;
  host: string;
  pid: number;
  role: string | null;
  /** The first beat of this owner. */
  startedAt: number;
  lastSeen: number;
  /** now - lastSeen < staleAfterMs. */
  alive: boolean;
}

export interface LeaseRequest {
  name: string;
  owner: string;
  ttlMs: number;
  now?: number;
}

export interface LeaseResult {
  /** True when `owner` holds the lease until `expiresAt` (taken or renewed by this call). */
  acquired: boolean;
  /** Who holds it now: `owner` when acquired, else the other live holder. */
  holder: string;
  expiresAt: number;
}

export interface LeaseRow {
  name: string;
  owner: string;
  /** When this owner took it (renewals keep it). */
  acquiredAt: number;
  expiresAt: number;
  updatedAt: number;
}

/** A sliding-window rate limit: at most `limit` grants in any `windowMs` milliseconds. */
export interface BudgetWindow {
  limit: number;
  windowMs: number;
}

export interface BudgetRequest {
  /** The budget spent, e.g. `contacts`, `events`, `other` (Brevo's limits belong to the account). */
  bucket: string;
  /** Every one must leave room for `count`; empty: only a pause holds the bucket back. */
  windows: BudgetWindow[];
  /** Requests taken at once. Default 1; more than a window's limit is invalid_budget_request. */
  count?: number;
  now?: number;
}

export interface BudgetGrant {
  granted: boolean;
  /** 0 when granted; else how long until the same take would fit (pause and windows), were no one else to take meanwhile. */
  waitMs: number;
}

export type BucketPause = { bucket: string; until: number } | { bucket: string; forMs: number };

export interface BudgetStatus {
  /** The time `used` was counted at. */
  now: number;
  buckets: Array<{ bucket: string; pausedUntil: number; windows: Array<BudgetWindow & { used: number }> }>;
}

/** What the governor learned from x-sib-ratelimit-* headers: the window a route spends. */
export interface RouteBucket {
  /** A route pattern as the governor names it, e.g. `POST /v3/events/batch`. */
  route: string;
  bucket: string;
  limit: number;
  windowMs: number;
  updatedAt: number;
}

/** Coordination of several processes sharing one store: who runs, who schedules, one rate budget. */
export interface ClusterStore {
  /** The store's clock (epoch ms): the database server's on PostgreSQL. */
  clock(): Promise<number>;

  /** Records that `owner` is alive now (insert or update). */
  heartbeat(beat: ProcessBeat): Promise<void>;
  /** Every process that ever beat and was not forgotten, by owner, each with `alive`. */
  listProcesses(q: { now?: number; staleAfterMs: number }): Promise<ProcessRow[]>;
  /** Removes a process from the registry (it stopped, or it is known dead). True when it was there. */
  forgetProcess(owner: string): Promise<boolean>;

  /**
   * Takes lease `name` for `owner` until now + ttlMs when it is free or expired, or renews it
   * when `owner` already holds it. Atomic: of processes racing for a free lease, one wins.
   */
  tryLease(req: LeaseRequest): Promise<LeaseResult>;
  /** Gives the lease up, only if `owner` holds it. True when released. */
  releaseLease(req: { name: string; owner: string }): Promise<boolean>;
  /** The lease row, expired or not (compare expiresAt with clock()). */
  getLease(name: string): Promise<LeaseRow | undefined>;
  listLeases(): Promise<LeaseRow[]>;

  /**
   * Takes `count` requests from `bucket` if the bucket is not paused and, for every window,
   * the grants of the last windowMs plus `count` stay within limit; records them. Atomic
   * across processes: concurrent takes never over-grant. Prunes grants older than the
   * bucket's longest window.
   */
  takeBudget(req: BudgetRequest): Promise<BudgetGrant>;
  /** Holds the bucket back until `until` (or now + forMs). A pause never shortens an earlier, longer one. Returns the pause now in force. */
  pauseBucket(pause: BucketPause): Promise<number>;
  /**
   * Usage of every bucket taken from or paused. Counted over `windows[bucket]` when given,
   * else over the windows of the bucket's latest take.
   */
  budgetStatus(q?: { now?: number; windows?: Record<string, BudgetWindow[]> }): Promise<BudgetStatus>;
  /** Deletes grants older than their bucket's longest window (takes prune their own bucket). Returns how many. */
  pruneBudget(q?: { now?: number }): Promise<number>;
  /** Records (replaces) the `windowMs` window of `route`. */
  setRouteBucket(fact: { route: string; bucket: string; limit: number; windowMs: number; now?: number }): Promise<void>;
  listRouteBuckets(): Promise<RouteBucket[]>;
}

export interface Store extends ClusterStore {
  readonly kind: 'sqlite' | 'postgres';
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;

  /** Durable once resolved. One result per row, in order. */
  insertInbox(rows: InboxInsert[]): Promise<Array<'inserted' | 'duplicate'>>;
  claimInbox(limit: number, owner: string, leaseMs: number, now: number): Promise<InboxRow[]>;
  /** One transaction: the planned operations are queued and the inbox rows closed. */
  commitInbox(outcomes: InboxOutcome[], ops: PlannedOp[], now: number): Promise<EnqueueResult>;
  /** One bounded retention step (see InboxPruneQuery): bodies first, then rows. */
  pruneInbox(q: InboxPruneQuery): Promise<InboxPruneResult>;
  inboxRetention(): Promise<InboxRetentionStats>;

  enqueue(ops: PlannedOp[], now: number): Promise<EnqueueResult>;
  claimOps(q: ClaimQuery): Promise<OpRow[]>;
  /**
   * How many operations a claim would find now (at most `limit`), since when the oldest has
   * been due and the most urgent priority: an indexed read every process of a cluster may
   * make before each round, so that a partial round waits until it is worth a Brevo call.
   */
  pendingDue(q: DueQuery): Promise<DueSummary>;
  /** Done. `ledger` records what Brevo now holds, in the same transaction. */
  completeOps(ids: number[], now: number, ledger?: LedgerEntry[]): Promise<void>;
  /** Accepted by Brevo asynchronously (import): waiting for `ref` (the process id). */
  awaitOps(ids: number[], ref: string, now: number, ledger?: LedgerEntry[]): Promise<void>;
  listAwaiting(limit: number): Promise<Array<{ ref: string; count: number; since: number }>>;
  /**
   * Of `emails`, those with a contact write in an import Brevo accepted but is not known to
   * have applied (an `awaiting` operation). A newer write for them must go by import too:
   * Brevo applies imports in the order it accepted them, after any direct write sent now.
   * Answered from the operations' own state, not a table of its own: an operation is
   * `awaiting` from the transaction that records Brevo's acceptance (awaitOps) to the one
   * that settles it (completeOps, deadOps, retryOps), exactly the span in which the import
   * may still land; a second table would need each of those transitions to keep it in step.
   * Not covered: an import call still in flight (its operations are `inflight` until awaitOps).
   */
  contactsWithOpenImports(emails: string[]): Promise<Set<string>>;
  opsByRef(ref: string): Promise<OpRow[]>;
  retryOps(items: Array<OpError & { nextAt: number }>, now: number): Promise<void>;
  deadOps(items: OpError[], now: number): Promise<void>;
  /**
   * Operations whose lease ran out (their worker died) become due again, with last_code
   * `interrupted` (INTERRUPTED): whether their call reached Brevo is unknown.
   */
  recoverExpired(now: number): Promise<number>;
  /** Ends the leases of an owner known to be gone (same host, dead pid). */
  releaseOwner(owner: string): Promise<number>;
  leaseOwners(): Promise<string[]>;

  getLedger(emails: string[]): Promise<Map<string, LedgerEntry>>;
  /** The ledger in pages, by email (byte order): at most `limit` entries whose email sorts after `after` (`reconcile`). */
  readLedger(q: { after?: string; limit: number }): Promise<LedgerEntry[]>;

  /**
   * Soft bounces (`bounce_policy`): records each item once by its key (the SES idempotency
   * key, so a replayed bounce is not counted twice) and answers, per item in order, how many
   * soft bounces of its email the store holds in (at - windowMs, at], itself included.
   * Items that repeat a recorded key answer as their first recording did, when nothing
   * newer came between. Rows older than now - 2 x windowMs are pruned.
   */
  recordSoftBounces(items: SoftBounce[], windowMs: number, now: number): Promise<number[]>;

  /**
   * Brevo list membership a contacts backfill wrote: records `emails` as members of the Brevo
   * list named `list`, seen in the full listing pass `pass` (idempotent; a later pass takes over).
   */
  markListMembers(list: string, emails: string[], pass: string, now: number): Promise<void>;
  /**
   * Members of `list` recorded by a pass other than `pass` (so absent from it): returned, for
   * the backfill to remove from the Brevo list, and kept as removed at `now` (no longer
   * members; a later markListMembers records them again). Sorted by email.
   */
  takeStaleListMembers(list: string, pass: string, now?: number): Promise<string[]>;
  /** Recorded members of `list` in pages, by email (byte order): at most `limit` after `after` (`reconcile`). Removed ones are not members. */
  readListMembers(q: { list: string; after?: string; limit: number }): Promise<string[]>;
  /** Members taken from `list` by takeStaleListMembers (and not recorded since), with the time they were removed; pages by email. */
  readRemovedListMembers(q: { list: string; after?: string; limit: number }): Promise<Array<{ email: string; at: number }>>;

  listFailures(opts: { limit: number; offset?: number }): Promise<OpRow[]>;
  getOp(id: number): Promise<OpRow | undefined>;
  /** Dead letters back to pending (all of them when ids is 'all'). Returns how many. */
  retryFailures(ids: number[] | 'all', now: number): Promise<number>;
  discardFailures(ids: number[], now: number): Promise<number>;
  /** Records a message an intake refused for good; 'duplicate' (nothing changed) when its key is already recorded. */
  recordRefusedMessage(m: RefusedMessageInsert): Promise<'inserted' | 'duplicate'>;
  /** Refused messages, oldest first. */
  listRefusedMessages(opts: { limit: number; offset?: number }): Promise<RefusedMessageRow[]>;

  getCursor(stream: string): Promise<CursorRow | undefined>;
  setCursor(stream: string, value: string | null, now: number, status?: string, note?: string): Promise<void>;
  listCursors(): Promise<CursorRow[]>;
  getState(key: string): Promise<string | undefined>;
  setState(key: string, value: string, now: number): Promise<void>;

  stats(): Promise<StoreStats>;
  /** Pending operations whose last attempt failed (they wait for a retry): how many, and the newest error. */
  waitingErrors(): Promise<WaitingErrors>;
}

/**
 * A message an intake received and can never store (a poison SQS message: malformed body,
 * unknown topic, forged signature, raw record refused). Kept for `failures`; nothing is
 * planned from it. Recorded once per `key` however often the queue redelivers it.
 */
export interface RefusedMessageInsert {
  /** Dedupe key, e.g. `sqs:<SQS MessageId>`. */
  key: string;
  source: 'sqs';
  /** The reason code (as counted in metrics), e.g. `malformed_json`, `topic_not_allowed`. */
  reason: string;
  message: string;
  /** The SQS MessageId. */
  externalId: string | null;
  /** The body as received (at most 256 KiB kept). */
  body: string;
  at: number;
}

export interface RefusedMessageRow extends RefusedMessageInsert {
  id: number;
}

export interface WaitingErrors {
  count: number;
  newest: { code: string; message: string | null; status: number | null; at: number } | null;
}
