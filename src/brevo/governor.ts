// The rate governor: one budget per Brevo rate-limit bucket, so the connector spends its
// allowance instead of discovering it through 429s. Each budget is a set of sliding
// windows (per second, per hour): a sliding window of N per W guarantees that any fixed
// window of length W on Brevo's side, however it is aligned, sees at most N requests.
// Brevo's `x-sib-ratelimit-*` headers correct it: remaining 0 or a 429 pause only that
// bucket until the announced reset.

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
  constructor(limits: WindowLimit[], margin: number) {
    this.windows = limits.map((l) => new SlidingWindow({ limit: l.limit, windowMs: l.windowMs + margin }));
  }
}

export class Governor {
  private readonly buckets = new Map<BrevoBucket, BucketState>();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(opts: GovernorOptions = {}) {
    const plan = PLAN_LIMITS[opts.plan ?? 'general'];
    const margin = opts.marginMs ?? 50;
    for (const b of ['contacts', 'events', 'other'] as const) {
      this.buckets.set(b, new BucketState(opts.limits?.[b] ?? plan[b], margin));
    }
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  private state(b: BrevoBucket): BucketState {
    return this.buckets.get(b)!;
  }

  /** ms until `bucket` can take one more request. */
  waitMs(bucket: BrevoBucket): number {
    const s = this.state(bucket);
    const now = this.now();
    let w = Math.max(0, s.pausedUntil - now);
    for (const win of s.windows) w = Math.max(w, win.waitMs(now));
    return w;
  }

  /** Non-blocking: takes a slot if one is free now. Returns the sequence number, or -1. */
  tryAcquire(bucket: BrevoBucket): number {
    if (this.waitMs(bucket) > 0) return -1;
    const s = this.state(bucket);
    const now = this.now();
    for (const win of s.windows) win.record(now);
    s.requests++;
    return ++s.seq;
  }

  /** Waits for a slot (bounded by `signal`), then takes it. */
  async acquire(bucket: BrevoBucket, signal?: AbortSignal): Promise<number> {
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const seq = this.tryAcquire(bucket);
      if (seq >= 0) return seq;
      await this.sleep(Math.max(1, Math.min(this.waitMs(bucket), 1000)));
    }
  }

  /** Feeds back a response's `x-sib-ratelimit-*` headers (and its status). */
  observe(bucket: BrevoBucket, seq: number, status: number, headers: { limit?: number; remaining?: number; resetSec?: number }): void {
    const s = this.state(bucket);
    const now = this.now();
    const resetMs = headers.resetSec !== undefined && Number.isFinite(headers.resetSec) ? Math.max(0, headers.resetSec * 1000) : undefined;
    if (headers.remaining !== undefined) s.lastRemaining = headers.remaining;
    if (resetMs !== undefined) s.lastResetMs = resetMs;
    if (status === 429) {
      s.throttled++;
      s.pausedUntil = Math.max(s.pausedUntil, now + Math.max(resetMs ?? 1000, 250));
      return;
    }
    // Requests granted after this one was sent are not counted in Brevo's `remaining` yet.
    const later = s.seq - seq;
    if (headers.remaining !== undefined && resetMs !== undefined && headers.remaining - later <= 0) {
      s.pausedUntil = Math.max(s.pausedUntil, now + resetMs);
    }
    if (headers.limit !== undefined && resetMs !== undefined && headers.limit > 0) {
      // The announced limit belongs to the window whose length matches the reset horizon.
      const win = s.windows.find((w) => resetMs <= w.windowMs) ?? s.windows[s.windows.length - 1];
      if (win && headers.limit < win.limit) win.resize(headers.limit);
    }
  }

  /** Brevo said to wait (429 without usable headers, or an explicit pause). */
  pause(bucket: BrevoBucket, ms: number): void {
    const s = this.state(bucket);
    s.pausedUntil = Math.max(s.pausedUntil, this.now() + ms);
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
