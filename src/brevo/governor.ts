// The rate governor: one budget per Brevo rate-limit bucket, so the connector spends its
// allowance instead of discovering it through 429s. Each budget is a set of sliding
// windows (per second, per hour): a sliding window of N per W guarantees that any fixed
// window of length W on Brevo's side, however it is aligned, sees at most N requests.
// Brevo's `x-sib-ratelimit-*` headers correct it: remaining 0 or a 429 pause only that
// bucket until the announced reset.
// With a store (useStore), the budget is the account's: every request is also granted by
// the store (shared-budget.ts), pauses reach every process, and the bucket each route
// spends is learned from Brevo's headers and persisted (setRouteBucket).
import { SharedBudget, type BudgetStore } from './shared-budget.js';

export type BrevoBucket = 'contacts' | 'events' | 'other';
export type BrevoPlan = 'general' | 'advanced' | 'extended';

export interface WindowLimit {
  limit: number;
  windowMs: number;
}

/** Limits Brevo publishes per plan (developers.brevo.com, "API limits"). */
export const PLAN_LIMITS: Record<BrevoPlan, Record<BrevoBucket, WindowLimit[]>> = {
  general: {
    contacts: [
      { limit: 10, windowMs: 1000 },
      { limit: 36_000, windowMs: 3_600_000 },
    ],
    events: [
      { limit: 10, windowMs: 1000 },
      { limit: 36_000, windowMs: 3_600_000 },
    ],
    other: [{ limit: 100, windowMs: 3_600_000 }],
  },
  advanced: {
    contacts: [
      { limit: 20, windowMs: 1000 },
      { limit: 72_000, windowMs: 3_600_000 },
    ],
    events: [
      { limit: 20, windowMs: 1000 },
      { limit: 72_000, windowMs: 3_600_000 },
    ],
    other: [{ limit: 200, windowMs: 3_600_000 }],
  },
  extended: {
    contacts: [{ limit: 60, windowMs: 1000 }],
    events: [{ limit: 60, windowMs: 1000 }],
    other: [{ limit: 600, windowMs: 3_600_000 }],
  },
};

export function bucketOf(path: string): BrevoBucket {
  const p = path.replace(/^\/v3/, '');
  if (p.startsWith('/contacts')) return 'contacts';
  if (p.startsWith('/events')) return 'events';
  return 'other';
}

/**
 * A route as the governor names it: method and path under /v3, without the query, numeric
 * ids and attribute names as placeholders (`GET /v3/processes/{id}`).
 */
export function routeKey(method: string, path: string): string {
  let p = path.split('?')[0]!.replace(/\/+$/, '');
  if (!p.startsWith('/v3')) p = '/v3' + p;
  p = p.replace(/^\/v3\/contacts\/attributes\/[^/]+\/[^/]+$/, '/v3/contacts/attributes/{category}/{name}');
  p = p
    .split('/')
    .map((seg) => (/^\d+$/.test(seg) ? '{id}' : seg))
    .join('/');
  return `${method.toUpperCase()} ${p}`;
}

const BUCKETS: readonly BrevoBucket[] = ['contacts', 'events', 'other'];

/** Last N send times in a ring: the next send may go when the oldest is a window old. */
class SlidingWindow {
  limit: number;
  readonly windowMs: number;
  private times: number[] = [];
  private head = 0;

  constructor(w: WindowLimit) {
    this.limit = w.limit;
    this.windowMs = w.windowMs;
  }

  /** ms until one more request fits (0 = now). */
  waitMs(now: number): number {
    if (this.times.length < this.limit) return 0;
    const oldest = this.times[this.head]!;
    return Math.max(0, oldest + this.windowMs - now);
  }

  record(now: number): void {
    if (this.times.length < this.limit) this.times.push(now);
    else {
      this.times[this.head] = now;
      this.head = (this.head + 1) % this.limit;
    }
  }

  /** The send times held, oldest first. */
  sent(): number[] {
    return [...this.times.slice(this.head), ...this.times.slice(0, this.head)];
  }

  used(now: number): number {
    let n = 0;
    for (const t of this.times) if (t > now - this.windowMs) n++;
    return n;
  }

  resize(limit: number): void {
    if (limit === this.limit || limit <= 0) return;
    const ordered = [...this.times.slice(this.head), ...this.times.slice(0, this.head)].slice(-limit);
    this.times = ordered;
    this.head = 0;
    this.limit = limit;
  }
}

export interface BucketStatus {
  bucket: BrevoBucket;
  windows: Array<{ limit: number; windowMs: number; used: number }>;
  pausedUntil: number;
  throttled: number;
  requests: number;
  lastRemaining: number | null;
  lastResetMs: number | null;
}

export interface GovernorOptions {
  plan?: BrevoPlan;
  limits?: Partial<Record<BrevoBucket, WindowLimit[]>>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Safety margin added to each window: send times on our side and arrival on Brevo's differ. */
  marginMs?: number;
  /**
   * The margin once the budget is shared through a store (useStore); default SHARED_MARGIN_MS,
   * or `marginMs` when that is given.
   */
  sharedMarginMs?: number;
  /** Told when the shared budget's store fails (the governor tries again). */
  onStoreError?: (err: unknown, what: string) => void;
}

class BucketState {
  windows: SlidingWindow[];
  pausedUntil = 0;
  throttled = 0;
  requests = 0;
  lastRemaining: number | null = null;
  lastResetMs: number | null = null;
  /** Requests granted so far; lets a response know how many were sent after it. */
  seq = 0;
  /** The plan's windows (before any resize), to recognise the bucket a header describes. */
  readonly table: WindowLimit[];
  constructor(
    limits: WindowLimit[],
    private margin: number,
  ) {
    this.table = limits;
    this.windows = limits.map((l) => new SlidingWindow({ limit: l.limit, windowMs: l.windowMs + margin }));
  }

  /** A wider margin from now on (the windows keep their limits; what they hold is kept). */
  widen(margin: number): void {
    if (margin <= this.margin) return;
    this.windows = this.windows.map((w, i) => {
      const wider = new SlidingWindow({ limit: w.limit, windowMs: this.table[i]!.windowMs + margin });
      for (const t of w.sent()) wider.record(t);
      return wider;
    });
    this.margin = margin;
  }
}

/**
 * The margin of a budget shared through the store. The store stamps a grant when its
 * transaction takes the bucket's lock; the request leaves after the commit, once the answer
 * is back in the process and its event loop gets to it. With three processes on a loaded
 * 2-core machine that took long enough for 11 requests of one bucket to reach Brevo within
 * one second (and a 429) with the 50 ms margin (test/cluster-three.itest.ts).
 */
export const SHARED_MARGIN_MS = 250;

export class Governor {
  private readonly buckets = new Map<BrevoBucket, BucketState>();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly onStoreError: ((err: unknown, what: string) => void) | undefined;
  private readonly sharedMargin: number;
  /** The account's budget in the store, when several processes share it. */
  private shared: SharedBudget | undefined;
  /** Routes whose bucket Brevo's headers told (or the store remembered), and whether this process wrote it. */
  private readonly learned = new Map<string, { bucket: BrevoBucket; saved: boolean }>();

  constructor(opts: GovernorOptions = {}) {
    this.onStoreError = opts.onStoreError;
    const plan = PLAN_LIMITS[opts.plan ?? 'general'];
    const margin = opts.marginMs ?? 50;
    this.sharedMargin = opts.sharedMarginMs ?? opts.marginMs ?? SHARED_MARGIN_MS;
    for (const b of ['contacts', 'events', 'other'] as const) {
      this.buckets.set(b, new BucketState(opts.limits?.[b] ?? plan[b], margin));
    }
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  private state(b: BrevoBucket): BucketState {
    return this.buckets.get(b)!;
  }

  /**
   * Shares the budget through `store` from now on, and adopts the route buckets other
   * processes (or an earlier run) learned.
   */
  async useStore(store: BudgetStore): Promise<void> {
    this.shared = new SharedBudget({ store, now: this.now, ...(this.onStoreError ? { onError: this.onStoreError } : {}) });
    for (const s of this.buckets.values()) s.widen(this.sharedMargin);
    for (const r of await store.listRouteBuckets()) {
      if ((BUCKETS as readonly string[]).includes(r.bucket)) this.learned.set(r.route, { bucket: r.bucket as BrevoBucket, saved: true });
    }
  }

  /** The shared budget's round-trips and the requests they granted (undefined: this process's budget only). */
  sharedStats(): { takes: number; granted: number } | undefined {
    return this.shared ? { takes: this.shared.takes, granted: this.shared.granted } : undefined;
  }

  /** The bucket a route spends: as Brevo's headers told, else the built-in table. */
  bucketFor(method: string, path: string): BrevoBucket {
    return this.learned.get(routeKey(method, path))?.bucket ?? bucketOf(path);
  }

  /** The largest share (0..1) of any of the bucket's windows this process has used. */
  spent(bucket: BrevoBucket): number {
    const now = this.now();
    return Math.max(0, ...this.state(bucket).windows.map((w) => w.used(now) / w.limit));
  }

  /** ms until `bucket` can take one more request, as far as this process knows. */
  waitMs(bucket: BrevoBucket): number {
    const s = this.state(bucket);
    const now = this.now();
    let w = Math.max(0, s.pausedUntil - now);
    for (const win of s.windows) w = Math.max(w, win.waitMs(now));
    if (this.shared) w = Math.max(w, this.shared.blockedMs(bucket));
    return w;
  }

  private record(bucket: BrevoBucket): number {
    const s = this.state(bucket);
    const now = this.now();
    for (const win of s.windows) win.record(now);
    s.requests++;
    return ++s.seq;
  }

  /** Non-blocking, this process's budget only: takes a slot if one is free now. Returns the sequence number, or -1. */
  tryAcquire(bucket: BrevoBucket): number {
    if (this.waitMs(bucket) > 0) return -1;
    return this.record(bucket);
  }

  /** Waits for a slot (bounded by `signal`), then takes it: from the store too when the budget is shared. */
  async acquire(bucket: BrevoBucket, signal?: AbortSignal): Promise<number> {
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const wait = this.waitMs(bucket);
      if (wait > 0) {
        await this.sleep(Math.max(1, Math.min(wait, 1000)));
        continue;
      }
      if (!this.shared) return this.record(bucket);
      const s = this.state(bucket);
      // The store counts on the same windows (with the margin) as this process.
      await this.shared.take(
        bucket,
        s.windows.map((w) => ({ limit: w.limit, windowMs: w.windowMs })),
        signal,
      );
      return this.record(bucket);
    }
  }

  /**
   * Learns the bucket of `route` from an answer's limit and reset: the plan's bucket that has
   * a window of that limit at least as long as the reset. Returns the bucket the route now spends.
   */
  private learn(route: string, current: BrevoBucket, limit: number | undefined, resetMs: number | undefined): BrevoBucket {
    if (limit === undefined || resetMs === undefined || limit <= 0) return current;
    const fits = (b: BrevoBucket) => this.state(b).table.find((w) => w.limit === limit && resetMs <= w.windowMs);
    let bucket = current;
    let win = fits(current);
    if (!win) {
      const other = BUCKETS.find((b) => fits(b));
      if (!other) return current;
      bucket = other;
      win = fits(other)!;
    }
    const known = this.learned.get(route);
    if (known?.bucket === bucket && known.saved) return bucket;
    const saved = this.shared !== undefined;
    this.learned.set(route, { bucket, saved });
    if (this.shared) {
      this.shared.store.setRouteBucket({ route, bucket, limit, windowMs: win.windowMs }).catch((err: unknown) => {
        this.learned.set(route, { bucket, saved: false });
        this.onStoreError?.(err, 'route');
      });
    }
    return bucket;
  }

  private pauseUntil(s: BucketState, bucket: BrevoBucket, until: number): void {
    if (until <= s.pausedUntil) return;
    s.pausedUntil = until;
    this.shared?.pause(bucket, until - this.now());
  }

  /**
   * Feeds back a response's `x-sib-ratelimit-*` headers (and its status). With `route`, the
   * headers also teach which bucket that route spends (401s carry no budget: not learned).
   * Returns the bucket the feedback was applied to.
   */
  observe(bucket: BrevoBucket, seq: number, status: number, headers: { limit?: number; remaining?: number; resetSec?: number }, route?: string): BrevoBucket {
    const resetMs = headers.resetSec !== undefined && Number.isFinite(headers.resetSec) ? Math.max(0, headers.resetSec * 1000) : undefined;
    const sentOn = bucket;
    if (route !== undefined && status !== 401) bucket = this.learn(route, bucket, headers.limit, resetMs);
    const s = this.state(bucket);
    const now = this.now();
    if (headers.remaining !== undefined) s.lastRemaining = headers.remaining;
    if (resetMs !== undefined) s.lastResetMs = resetMs;
    if (status === 429) {
      s.throttled++;
      this.pauseUntil(s, bucket, now + Math.max(resetMs ?? 1000, 250));
      return bucket;
    }
    // Requests granted after this one was sent are not counted in Brevo's `remaining` yet.
    const later = bucket === sentOn ? s.seq - seq : 0;
    if (headers.remaining !== undefined && resetMs !== undefined && headers.remaining - later <= 0) {
      this.pauseUntil(s, bucket, now + resetMs);
    }
    if (headers.limit !== undefined && resetMs !== undefined && headers.limit > 0) {
      // The announced limit belongs to the window whose length matches the reset horizon.
      const win = s.windows.find((w) => resetMs <= w.windowMs) ?? s.windows[s.windows.length - 1];
      if (win && headers.limit < win.limit) win.resize(headers.limit);
    }
    return bucket;
  }

  /** Brevo said to wait (429 without usable headers, or an explicit pause). */
  pause(bucket: BrevoBucket, ms: number): void {
    this.pauseUntil(this.state(bucket), bucket, this.now() + ms);
  }

  status(): BucketStatus[] {
    const now = this.now();
    return [...this.buckets.entries()].map(([bucket, s]) => ({
      bucket,
      windows: s.windows.map((w) => ({ limit: w.limit, windowMs: w.windowMs, used: w.used(now) })),
      pausedUntil: s.pausedUntil,
      throttled: s.throttled,
      requests: s.requests,
      lastRemaining: s.lastRemaining,
      lastResetMs: s.lastResetMs,
    }));
  }
}
