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

  /** Consumes one request from the bucket if both windows allow it. */
  take(bucket: RateLimitBucket): RateDecision {
    return this.decide(bucket, true);
  }

  /** Reports the bucket's budget without consuming it (for answers that are not counted, e.g. 401). */
  peek(bucket: RateLimitBucket): RateDecision {
    return this.decide(bucket, false);
  }

  reset(): void {
    this.counters.clear();
  }

  private decide(bucket: RateLimitBucket, consume: boolean): RateDecision {
    if (this.plan === 'unlimited') return UNLIMITED;
    const limits = RATE_LIMITS[this.plan][bucket];
    const t = this.now();
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
