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
  source: 'sns' | 'sqs' | 'api';
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
  createdAt: number;
  updatedAt: number;
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

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;

  /** Durable once resolved. One result per row, in order. */
  insertInbox(rows: InboxInsert[]): Promise<Array<'inserted' | 'duplicate'>>;
  claimInbox(limit: number, owner: string, leaseMs: number, now: number): Promise<InboxRow[]>;
  /** One transaction: the planned operations are queued and the inbox rows closed. */
  commitInbox(outcomes: InboxOutcome[], ops: PlannedOp[], now: number): Promise<EnqueueResult>;

  enqueue(ops: PlannedOp[], now: number): Promise<EnqueueResult>;
  claimOps(q: ClaimQuery): Promise<OpRow[]>;
  /** Done. `ledger` records what Brevo now holds, in the same transaction. */
  completeOps(ids: number[], now: number, ledger?: LedgerEntry[]): Promise<void>;
  /** Accepted by Brevo asynchronously (import): waiting for `ref` (the process id). */
  awaitOps(ids: number[], ref: string, now: number, ledger?: LedgerEntry[]): Promise<void>;
  listAwaiting(limit: number): Promise<Array<{ ref: string; count: number; since: number }>>;
  opsByRef(ref: string): Promise<OpRow[]>;
  retryOps(items: Array<OpError & { nextAt: number }>, now: number): Promise<void>;
  deadOps(items: OpError[], now: number): Promise<void>;
  /** Operations whose lease ran out (their worker died) become due again. */
  recoverExpired(now: number): Promise<number>;
  /** Ends the leases of an owner known to be gone (same host, dead pid). */
  releaseOwner(owner: string): Promise<number>;
  leaseOwners(): Promise<string[]>;

  getLedger(emails: string[]): Promise<Map<string, LedgerEntry>>;

  listFailures(opts: { limit: number; offset?: number }): Promise<OpRow[]>;
  getOp(id: number): Promise<OpRow | undefined>;
  /** Dead letters back to pending (all of them when ids is 'all'). Returns how many. */
  retryFailures(ids: number[] | 'all', now: number): Promise<number>;
  discardFailures(ids: number[], now: number): Promise<number>;

  getCursor(stream: string): Promise<CursorRow | undefined>;
  setCursor(stream: string, value: string | null, now: number, status?: string, note?: string): Promise<void>;
  listCursors(): Promise<CursorRow[]>;
  getState(key: string): Promise<string | undefined>;
  setState(key: string, value: string, now: number): Promise<void>;

  stats(): Promise<StoreStats>;
}
