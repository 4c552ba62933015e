// Inbox retention, run by `serve` (store.retention): raw bodies of planned envelopes are
// dropped after `bodies`, their rows (the message ids that make a replay a duplicate) after
// `dedupe_keys`. A pass is a series of small steps (Store.pruneInbox), each one short
// transaction with a pause after it, so a large backlog never holds the store for long and
// acknowledgements keep their turn. The outcome of each pass is saved for `status`.
import type { Logger } from 'pino';
import type { Store } from '../store/port.js';
import type { TajoConfig } from '../config/schema.js';
import { errorMessage } from '../core/errors.js';
import { PollLoop } from './loop.js';

/** Bodies dropped and rows deleted per step, at most. */
export const RETENTION_BATCH = 200;

/** Pause between two steps of one pass: the webhook's commits go first. */
const STEP_PAUSE_MS = 50;

/** Where the last pass is saved (Store.setState), for `status` in another process. */
export const RETENTION_STATE_KEY = 'inbox_retention';

export interface RetentionPolicy {
  /** How long a planned envelope keeps its raw body (ms). */
  bodiesMs: number;
  /** How long its row, and so its message id, is kept (ms); at least bodiesMs. */
  dedupeKeysMs: number;
  /** Time between passes (ms). */
  everyMs: number;
}

export function retentionPolicy(cfg: TajoConfig): RetentionPolicy {
  const r = cfg.store.retention;
  return { bodiesMs: r.bodies, dedupeKeysMs: r.dedupe_keys, everyMs: r.every };
}

/** What a pass dropped. */
export interface RetentionCount {
  /** When the pass finished (epoch ms). */
  at: number;
  bodies: number;
  rows: number;
}

/** The last finished pass, as saved for `status`, with the last one that dropped anything. */
export interface RetentionPass extends RetentionCount {
  policy: { bodiesMs: number; dedupeKeysMs: number };
  lastPrune: RetentionCount | null;
}

export interface InboxRetentionOptions {
  store: Store;
  log: Logger;
  policy: RetentionPolicy;
  batch?: number;
  now?: () => number;
}

export class InboxRetention {
  private readonly loop: PollLoop;
  private readonly now: () => number;
  /** Totals of the pass in progress; its cut-offs are fixed at its first step. */
  private pass: { bodies: number; rows: number; bodiesBefore: number; rowsBefore: number } | undefined;

  constructor(private readonly o: InboxRetentionOptions) {
    this.now = o.now ?? Date.now;
    this.loop = new PollLoop({
      round: () => this.step(),
      onError: (err) => {
        this.pass = undefined;
        o.log.warn({ err: errorMessage(err) }, 'inbox retention step failed; the next pass retries');
      },
      idleMs: o.policy.everyMs,
      pauseMs: () => STEP_PAUSE_MS,
      now: this.now,
    });
  }

  start(): void {
    this.loop.start();
  }

  /** Resolves once the step in progress, if any, has finished. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** One step of the current pass (starting one if none is running); 0 when the pass is over. */
  async step(): Promise<number> {
    const { store, policy } = this.o;
    if (!this.pass) {
      const t = this.now();
      this.pass = { bodies: 0, rows: 0, bodiesBefore: t - policy.bodiesMs, rowsBefore: t - Math.max(policy.dedupeKeysMs, policy.bodiesMs) };
    }
    const p = this.pass;
    const r = await store.pruneInbox({ bodiesBefore: p.bodiesBefore, rowsBefore: p.rowsBefore, limit: this.o.batch ?? RETENTION_BATCH });
    p.bodies += r.bodies;
    p.rows += r.rows;
    if (r.bodies + r.rows > 0) return r.bodies + r.rows;
    this.pass = undefined;
    const count: RetentionCount = { at: this.now(), bodies: p.bodies, rows: p.rows };
    const pruned = count.bodies + count.rows > 0;
    const lastPrune = pruned ? count : ((await loadRetentionPass(store))?.lastPrune ?? null);
    const done: RetentionPass = { ...count, policy: { bodiesMs: policy.bodiesMs, dedupeKeysMs: policy.dedupeKeysMs }, lastPrune };
    await store.setState(RETENTION_STATE_KEY, JSON.stringify(done), done.at);
    if (pruned) this.o.log.info({ bodies: count.bodies, rows: count.rows }, 'inbox retention: dropped old message bodies and message ids');
    return 0;
  }
}

/** The last pass saved by a `serve` on this store, if any. */
export async function loadRetentionPass(store: Store): Promise<RetentionPass | undefined> {
  const raw = await store.getState(RETENTION_STATE_KEY);
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as RetentionPass;
  } catch {
    return undefined;
  }
}
