import type { BrevoPlan, RateLimitBucket } from './types.js';

interface Limits {
  perSecond?: number;
  perHour?: number;
}

// From developers.brevo.com/docs/api-limits (as tabulated in api-evangelist/brevo
// rate-limits/brevo-rate-limits.yml). `/v3/events` has its own row; every `/v3/contacts/*`
// endpoint shares one; endpoints without a row (such as /v3/processes, /v3/account) fall in
// "all other endpoints", which is per hour only. The extended tier publishes per-second
// numbers only for contacts and events, so no hourly cap is simulated there.
export const RATE_LIMITS: Record<Exclude<BrevoPlan, 'unlimited'>, Record<RateLimitBucket, Limits>> = {
  general: {
    contacts: { perSecond: 10, perHour: 36_000 },
    events: { perSecond: 10, perHour: 36_000 },
    other: { perHour: 100 },
  },
  advanced: {
    contacts: { perSecond: 20, perHour: 72_000 },
    events: { perSecond: 20, perHour: 72_000 },
    other: { perHour: 200 },
  },
  extended: {
    contacts: { perSecond: 60 },
    events: { perSecond: 60 },
    other: { perHour: 600 },
  },
};

/**
 * Brevo's table names POST /v3/events but not the batch endpoint: `batchBucket` says which
 * budget /v3/events/batch counts in ('events' by default, or the hourly 'other').
 */
export function bucketFor(path: string, batchBucket: 'events' | 'other' = 'events'): RateLimitBucket {
  if (path === '/v3/events/batch') return batchBucket;
  if (path === '/v3/contacts' || path.startsWith('/v3/contacts/')) return 'contacts';
  if (path === '/v3/events' || path.startsWith('/v3/events/')) return 'events';
  return 'other';
}

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the reported window resets. */
  resetSeconds: number;
}

interface Counter {
  second: number;
  secondCount: number;
  hour: number;
  hourCount: number;
}

// What an unlimited plan reports, so a client that always reads the headers keeps working.
const UNLIMITED: RateDecision = { allowed: true, limit: 1_000_000, remaining: 1_000_000, resetSeconds: 0 };

/** Fixed windows aligned on the clock, one per second and one per hour, per bucket. */
export class RateLimiter {
  private readonly counters = new Map<RateLimitBucket, Counter>();

  constructor(
    private readonly plan: BrevoPlan,
    private readonly now: () => number,
  ) {}

  /** Consumes one request from the bucket if both windows allow it; `at`: when it arrived (default now). */
  take(bucket: RateLimitBucket, at?: number): RateDecision {
    return this.decide(bucket, true, at);
  }

  /** Reports the bucket's budget without consuming it (for answers that are not counted, e.g. 401). */
  peek(bucket: RateLimitBucket): RateDecision {
    return this.decide(bucket, false);
  }

  reset(): void {
    this.counters.clear();
  }

  private decide(bucket: RateLimitBucket, consume: boolean, at?: number): RateDecision {
    if (this.plan === 'unlimited') return UNLIMITED;
    const limits = RATE_LIMITS[this.plan][bucket];
    // Counted when it arrived, not when its body was read (a busy simulator must not move a
    // request into the next second); never before a request already counted (windows only move on).
    const seen = this.counters.get(bucket);
    const t = at === undefined ? this.now() : Math.max(at, seen ? seen.second * 1000 : 0);
    const second = Math.floor(t / 1000);
    const hour = Math.floor(t / 3_600_000);
    let c = this.counters.get(bucket);
    if (!c) {
      c = { second, secondCount: 0, hour, hourCount: 0 };
      this.counters.set(bucket, c);
    }
    if (c.second !== second) {
      c.second = second;
      c.secondCount = 0;
    }
    if (c.hour !== hour) {
      c.hour = hour;
      c.hourCount = 0;
    }
    const secReset = Math.max(1, Math.ceil(((second + 1) * 1000 - t) / 1000));
    const hourReset = Math.max(1, Math.ceil(((hour + 1) * 3_600_000 - t) / 1000));

    if (consume) {
      if (limits.perSecond !== undefined && c.secondCount >= limits.perSecond) {
        return { allowed: false, limit: limits.perSecond, remaining: 0, resetSeconds: secReset };
      }
      if (limits.perHour !== undefined && c.hourCount >= limits.perHour) {
        return { allowed: false, limit: limits.perHour, remaining: 0, resetSeconds: hourReset };
      }
      c.secondCount++;
      c.hourCount++;
    }

    // Report whichever window is closer to exhaustion: that is the one a client must pace on.
    let best: RateDecision | undefined;
    if (limits.perSecond !== undefined) {
      best = { allowed: true, limit: limits.perSecond, remaining: Math.max(0, limits.perSecond - c.secondCount), resetSeconds: secReset };
    }
    if (limits.perHour !== undefined) {
      const h: RateDecision = { allowed: true, limit: limits.perHour, remaining: Math.max(0, limits.perHour - c.hourCount), resetSeconds: hourReset };
      if (!best || h.remaining < best.remaining) best = h;
    }
    return best ?? UNLIMITED;
  }
}

/**
 * The most requests seen within any 1 s (sliding: every interval of 1000 ms, however it is
 * aligned), per bucket. Brevo's own windows may be aligned anywhere, so a client that stays
 * within the plan's per-second limit on every sliding second is within it on Brevo's too.
 */
export class PeakPerSecond {
  private readonly recent = new Map<RateLimitBucket, number[]>();
  readonly peaks: Partial<Record<RateLimitBucket, number>> = {};

  /** Counts a request that arrived at `t` (arrival times may come slightly out of order). */
  record(bucket: RateLimitBucket, t: number): void {
    let times = this.recent.get(bucket);
    if (!times) {
      times = [];
      this.recent.set(bucket, times);
    }
    let i = times.length;
    while (i > 0 && times[i - 1]! > t) i--;
    times.splice(i, 0, t);
    // Windows (u - 1000, u] ending at a request at or after t hold t.
    for (let j = i; j < times.length && times[j]! < t + 1000; j++) {
      const u = times[j]!;
      let k = j;
      while (k > 0 && times[k - 1]! > u - 1000) k--;
      if (j - k + 1 > (this.peaks[bucket] ?? 0)) this.peaks[bucket] = j - k + 1;
    }
    // Older requests can no longer share a window with one yet to come (out of order by < 1 s).
    const newest = times[times.length - 1]!;
    let drop = 0;
    while (drop < times.length && times[drop]! <= newest - 2000) drop++;
    if (drop > 0) times.splice(0, drop);
  }

  reset(): void {
    this.recent.clear();
    for (const k of Object.keys(this.peaks)) delete this.peaks[k as RateLimitBucket];
  }
}
