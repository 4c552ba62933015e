// One Brevo budget for every process on a store (Brevo's limits belong to the account, not
// to a process). A request is sent only once the store granted it (ClusterStore.takeBudget,
// atomic across processes); pauses (a 429, `remaining: 0`) are written to the store so
// that every process holds back. Takes are batched: the requests of this process waiting
// on a bucket at the same moment are granted by one store round-trip. Nothing is reserved
// ahead of a request, so a process that dies strands no budget: its grants simply leave
// their window.
import type { ClusterStore } from '../store/port.js';
import type { WindowLimit } from './governor.js';

export type BudgetStore = Pick<ClusterStore, 'takeBudget' | 'pauseBucket' | 'setRouteBucket' | 'listRouteBuckets'>;

export interface SharedBudgetOptions {
  store: BudgetStore;
  /** Wall clock of this process (only for `blockedMs`). */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told when the store cannot be reached (the take is tried again after a second). */
  onError?: (err: unknown, what: string) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

interface Line {
  waiters: Waiter[];
  pumping: boolean;
  windows: WindowLimit[];
  /** The store said no until then (this process's clock): lets callers choose another route. */
  blockedUntil: number;
}

/** The longest the pump sleeps before asking the store again. */
const MAX_WAIT_MS = 1000;
/** After the store failed. */
const STORE_RETRY_MS = 1000;

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class SharedBudget {
  private readonly lines = new Map<string, Line>();
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Store round-trips made and requests granted by them (status, tests). */
  takes = 0;
  granted = 0;

  constructor(private readonly o: SharedBudgetOptions) {
    this.now = o.now ?? Date.now;
    this.sleep = o.sleep ?? abortableSleep;
  }

  get store(): BudgetStore {
    return this.o.store;
  }

  /** Most requests granted by one round-trip: a fraction of the tightest window, so that one process cannot take a whole second's worth. */
  static batchLimit(windows: WindowLimit[]): number {
    const tightest = Math.min(...windows.map((w) => w.limit));
    return Number.isFinite(tightest) ? Math.max(1, Math.floor(tightest / 2)) : 1;
  }

  /** Resolves once the store granted one request of `bucket` within `windows`. */
  take(bucket: string, windows: WindowLimit[], signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    let line = this.lines.get(bucket);
    if (!line) {
      line = { waiters: [], pumping: false, windows, blockedUntil: 0 };
      this.lines.set(bucket, line);
    }
    line.windows = windows;
    const l = line;
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        w.onAbort = () => {
          const i = l.waiters.indexOf(w);
          if (i >= 0) l.waiters.splice(i, 1);
          reject(signal.reason ?? new Error('aborted'));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      l.waiters.push(w);
      if (!l.pumping) void this.pump(bucket, l);
    });
  }

  /** ms this process last heard the store refuse `bucket` for (0: free as far as it knows). */
  blockedMs(bucket: string): number {
    const l = this.lines.get(bucket);
    return l ? Math.max(0, l.blockedUntil - this.now()) : 0;
  }

  /** Holds `bucket` back for every process for `ms` (measured on the store's clock). */
  pause(bucket: string, ms: number): void {
    const l = this.lines.get(bucket);
    if (l) l.blockedUntil = Math.max(l.blockedUntil, this.now() + ms);
    this.o.store.pauseBucket({ bucket, forMs: Math.max(0, Math.ceil(ms)) }).catch((err: unknown) => this.o.onError?.(err, 'pause'));
  }

  private async pump(bucket: string, l: Line): Promise<void> {
    l.pumping = true;
    try {
      while (l.waiters.length > 0) {
        const want = Math.min(l.waiters.length, SharedBudget.batchLimit(l.windows));
        let grant: { granted: boolean; waitMs: number };
        try {
          this.takes++;
          grant = await this.o.store.takeBudget({ bucket, windows: l.windows, count: want });
          // Room for fewer than asked: take one at a time rather than wait for all of them.
          if (!grant.granted && want > 1) {
            this.takes++;
            const one = await this.o.store.takeBudget({ bucket, windows: l.windows, count: 1 });
            if (one.granted) {
              this.handOut(l, 1);
              continue;
            }
          }
        } catch (err) {
          this.o.onError?.(err, 'take');
          await this.sleep(STORE_RETRY_MS);
          continue;
        }
        if (grant.granted) {
          this.handOut(l, want);
          continue;
        }
        const wait = Math.max(1, Math.min(grant.waitMs, MAX_WAIT_MS));
        l.blockedUntil = this.now() + grant.waitMs;
        await this.sleep(wait);
      }
    } finally {
      l.pumping = false;
    }
  }

  private handOut(l: Line, n: number): void {
    l.blockedUntil = 0;
    this.granted += n;
    // Waiters that left meanwhile (aborted) are no longer in the line: their grant is spent unused.
    for (const w of l.waiters.splice(0, n)) {
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.resolve();
    }
  }
}
