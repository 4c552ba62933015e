import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { Governor, PLAN_LIMITS, bucketOf, type BrevoBucket, type GovernorOptions } from './governor.js';

const T0 = 1_700_000_000_000;

/** A clock that only moves when told to; `sleep` moves it by the time asked. */
function fakeClock(start = T0) {
  let t = start;
  const sleeps: number[] = [];
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
    set(ms: number) {
      t = ms;
    },
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
  };
}

function governor(opts: GovernorOptions = {}) {
  const clock = fakeClock();
  const g = new Governor({ now: clock.now, sleep: clock.sleep, ...opts });
  return { g, clock };
}

function takeN(g: Governor, bucket: BrevoBucket, n: number): number[] {
  const seqs: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = g.tryAcquire(bucket);
    expect(s, `request ${i + 1} of ${n} on ${bucket}`).toBeGreaterThan(0);
    seqs.push(s);
  }
  return seqs;
}

function bucketStatus(g: Governor, bucket: BrevoBucket) {
  const s = g.status().find((b) => b.bucket === bucket);
  if (!s) throw new Error(`no status for ${bucket}`);
  return s;
}

describe('bucketOf', () => {
  it('maps paths with or without /v3 to their Brevo rate-limit bucket', () => {
    expect(bucketOf('/contacts')).toBe('contacts');
    expect(bucketOf('/v3/contacts/import')).toBe('contacts');
    expect(bucketOf('/contacts/attributes/normal/SES_LAST_EVENT')).toBe('contacts');
    expect(bucketOf('/events')).toBe('events');
    expect(bucketOf('/v3/events/batch')).toBe('events');
    expect(bucketOf('/processes/12')).toBe('other');
    expect(bucketOf('/account')).toBe('other');
  });
});

describe('per-second sliding window', () => {
  it('grants 10 contacts requests within a second and makes the 11th wait until the first is a window old', async () => {
    const { g, clock } = governor({ marginMs: 0 });
    takeN(g, 'contacts', 10);
    expect(g.tryAcquire('contacts')).toBe(-1);
    expect(g.waitMs('contacts')).toBe(1000);
    clock.advance(400);
    expect(g.waitMs('contacts')).toBe(600);
    const seq = await g.acquire('contacts');
    expect(seq).toBe(11);
    expect(clock.now()).toBe(T0 + 1000);
  });

  it('adds the safety margin to the window (default 50 ms)', async () => {
    const { g, clock } = governor();
    takeN(g, 'contacts', 10);
    expect(g.waitMs('contacts')).toBe(1050);
    await g.acquire('contacts');
    expect(clock.now()).toBe(T0 + 1050);
  });

  it('spreads requests: once the first ten went at t0, the next ones go as each older one leaves the window', async () => {
    const { g, clock } = governor({ marginMs: 0 });
    for (let i = 0; i < 10; i++) {
      g.tryAcquire('contacts');
      clock.advance(100);
    }
    // Grants at t0, t0+100, ..., t0+900; now t0+1000: the one at t0 has left.
    expect(g.tryAcquire('contacts')).toBe(11);
    expect(g.tryAcquire('contacts')).toBe(-1);
    expect(g.waitMs('contacts')).toBe(100);
  });

  it('keeps buckets apart: a full contacts window does not slow events or other', () => {
    const { g } = governor();
    takeN(g, 'contacts', 10);
    expect(g.waitMs('contacts')).toBeGreaterThan(0);
    expect(g.waitMs('events')).toBe(0);
    expect(g.waitMs('other')).toBe(0);
    takeN(g, 'events', 10);
    expect(g.tryAcquire('other')).toBe(1);
  });

  it('never holds more than 10 grants in any 1 s window, and grants as early as the window allows (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 4000 }), { minLength: 1, maxLength: 80 }), fc.constantFrom(0, 50), async (offsets, margin) => {
        const { g, clock } = governor({ marginMs: margin });
        const arrivals = [...offsets].sort((a, b) => a - b).map((o) => T0 + o);
        const grants: number[] = [];
        for (const at of arrivals) {
          if (clock.now() < at) clock.set(at);
          await g.acquire('contacts');
          grants.push(clock.now());
        }
        // Safety: any closed window of 1000 ms (margin 50) or half-open one (margin 0) holds at most 10.
        for (const start of grants) {
          const inWindow = grants.filter((t) => t >= start && (margin > 0 ? t <= start + 1000 : t < start + 1000)).length;
          expect(inWindow).toBeLessThanOrEqual(10);
        }
        // Liveness: each request goes at the earliest time the window allows, no later.
        grants.forEach((t, i) => {
          const earliest = Math.max(arrivals[i]!, grants[i - 1] ?? 0, i >= 10 ? grants[i - 10]! + 1000 + margin : 0);
          expect(t).toBe(earliest);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('stops waiting when the signal is aborted', async () => {
    const { g } = governor();
    takeN(g, 'contacts', 10);
    const ctrl = new AbortController();
    ctrl.abort(new Error('shutdown'));
    await expect(g.acquire('contacts', ctrl.signal)).rejects.toThrow('shutdown');
  });
});

describe('hourly window', () => {
  it('grants 100 requests per hour on the other bucket, then waits until the first is an hour old', async () => {
    const { g, clock } = governor({ marginMs: 0 });
    for (let i = 0; i < 100; i++) {
      expect(g.tryAcquire('other')).toBe(i + 1);
      clock.advance(1000);
    }
    expect(g.tryAcquire('other')).toBe(-1);
    // First grant at T0; now T0 + 100 s.
    expect(g.waitMs('other')).toBe(3_600_000 - 100_000);
    clock.advance(30 * 60_000);
    expect(g.tryAcquire('other')).toBe(-1);
    expect(g.waitMs('other')).toBe(3_600_000 - 100_000 - 30 * 60_000);
    expect(g.waitMs('contacts')).toBe(0);
    await g.acquire('other');
    expect(clock.now()).toBe(T0 + 3_600_000);
    // The waits are sliced (at most 1 s each) so an abort is noticed.
    expect(Math.max(...clock.sleeps)).toBeLessThanOrEqual(1000);
  });

  it('in a two-window bucket the hourly window binds when the per-second one would allow more', () => {
    const { g, clock } = governor({
      marginMs: 0,
      limits: {
        contacts: [
          { limit: 10, windowMs: 1000 },
          { limit: 25, windowMs: 3_600_000 },
        ],
      },
    });
    while (bucketStatus(g, 'contacts').requests < 25) {
      if (g.tryAcquire('contacts') < 0) clock.advance(g.waitMs('contacts'));
    }
    // 25 requests took 2 s (10 + 10 + 5); the per-second window is free again, the hourly one is not.
    expect(clock.now()).toBe(T0 + 2000);
    clock.advance(5000);
    expect(g.tryAcquire('contacts')).toBe(-1);
    expect(g.waitMs('contacts')).toBe(3_600_000 - 7000);
    expect(PLAN_LIMITS.general.contacts).toContainEqual({ limit: 36_000, windowMs: 3_600_000 });
  });
});

describe('feedback from x-sib-ratelimit-* headers', () => {
  it('remaining 0 with reset 3 s pauses only that bucket, for 3 s', () => {
    const { g, clock } = governor();
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 200, { limit: 10, remaining: 0, resetSec: 3 });
    expect(g.waitMs('contacts')).toBe(3000);
    expect(g.tryAcquire('contacts')).toBe(-1);
    expect(g.waitMs('events')).toBe(0);
    expect(g.waitMs('other')).toBe(0);
    clock.advance(2999);
    expect(g.tryAcquire('contacts')).toBe(-1);
    clock.advance(1);
    expect(g.tryAcquire('contacts')).toBe(2);
  });

  it('counts the requests granted after the observed one (seq): remaining minus those in flight', () => {
    // Observed request is #1; #2..#4 were granted since, so Brevo's "remaining 3" is already spent.
    const a = governor();
    const [first] = takeN(a.g, 'events', 4);
    a.g.observe('events', first!, 200, { limit: 10, remaining: 3, resetSec: 1 });
    expect(a.g.waitMs('events')).toBe(1000);

    // With remaining 4, one slot is still free: no pause.
    const b = governor();
    const [first2] = takeN(b.g, 'events', 4);
    b.g.observe('events', first2!, 200, { limit: 10, remaining: 4, resetSec: 1 });
    expect(b.g.waitMs('events')).toBe(0);

    // The newest request's answer counts nothing after it.
    const c = governor();
    const seqs = takeN(c.g, 'events', 4);
    c.g.observe('events', seqs[3]!, 200, { limit: 10, remaining: 1, resetSec: 1 });
    expect(c.g.waitMs('events')).toBe(0);
  });

  it('ignores remaining without a reset and a non-numeric reset', () => {
    const { g } = governor();
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 200, { remaining: 0 });
    g.observe('contacts', seq, 200, { remaining: 0, resetSec: Number.NaN });
    expect(g.waitMs('contacts')).toBe(0);
  });

  it('a 429 pauses only its own bucket until the reset; the others keep going', async () => {
    const { g, clock } = governor();
    const seq = g.tryAcquire('events');
    g.observe('events', seq, 429, { limit: 10, remaining: 0, resetSec: 2 });
    expect(g.waitMs('events')).toBe(2000);
    expect(g.tryAcquire('contacts')).toBeGreaterThan(0);
    expect(g.tryAcquire('other')).toBeGreaterThan(0);
    expect(bucketStatus(g, 'events').throttled).toBe(1);
    expect(bucketStatus(g, 'contacts').throttled).toBe(0);
    await g.acquire('events');
    expect(clock.now()).toBe(T0 + 2000);
  });

  it('a 429 without a reset header pauses 1 s; a reset of 0 still pauses 250 ms', () => {
    const a = governor();
    a.g.observe('contacts', a.g.tryAcquire('contacts'), 429, {});
    expect(a.g.waitMs('contacts')).toBe(1000);
    const b = governor();
    b.g.observe('contacts', b.g.tryAcquire('contacts'), 429, { resetSec: 0 });
    expect(b.g.waitMs('contacts')).toBe(250);
  });

  it('a pause never shortens a longer one', () => {
    const { g } = governor();
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 429, { resetSec: 5 });
    g.observe('contacts', seq, 429, { resetSec: 1 });
    g.pause('contacts', 100);
    expect(g.waitMs('contacts')).toBe(5000);
    g.pause('other', 700);
    expect(g.waitMs('other')).toBe(700);
  });

  it('a limit header smaller than the plan shrinks the matching window', () => {
    const { g, clock } = governor({ marginMs: 0 });
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 200, { limit: 5, remaining: 4, resetSec: 1 });
    const win = bucketStatus(g, 'contacts').windows;
    expect(win[0]).toMatchObject({ limit: 5, windowMs: 1000 });
    expect(win[1]).toMatchObject({ limit: 36_000 });
    takeN(g, 'contacts', 4);
    expect(g.tryAcquire('contacts')).toBe(-1);
    expect(g.waitMs('contacts')).toBe(1000);
    clock.advance(1000);
    expect(g.tryAcquire('contacts')).toBeGreaterThan(0);
  });

  it('a limit header with an hour-long reset shrinks the hourly window, not the per-second one', () => {
    const { g } = governor({ marginMs: 0 });
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 200, { limit: 500, remaining: 499, resetSec: 1800 });
    const win = bucketStatus(g, 'contacts').windows;
    expect(win[0]!.limit).toBe(10);
    expect(win[1]!.limit).toBe(500);
  });

  it('a limit header larger than the plan does not grow the window', () => {
    const { g } = governor({ marginMs: 0 });
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 200, { limit: 50, remaining: 49, resetSec: 1 });
    expect(bucketStatus(g, 'contacts').windows[0]!.limit).toBe(10);
  });

  it('shrinking keeps the most recent grants in the window', () => {
    const { g, clock } = governor({ marginMs: 0 });
    for (let i = 0; i < 8; i++) {
      g.tryAcquire('contacts');
      clock.advance(100);
    }
    // Grants at t0..t0+700, now t0+800. Shrink to 3: the three newest (t0+500..700) stay.
    g.observe('contacts', 8, 200, { limit: 3, remaining: 2, resetSec: 1 });
    expect(g.tryAcquire('contacts')).toBe(-1);
    expect(g.waitMs('contacts')).toBe(500 + 1000 - 800);
  });
});

describe('plan table and status()', () => {
  it('selects the rate-limit table of the plan', () => {
    const limits = (plan: GovernorOptions['plan']) =>
      Object.fromEntries(
        governor({ plan, marginMs: 0 })
          .g.status()
          .map((b) => [b.bucket, b.windows.map((w) => [w.limit, w.windowMs])]),
      );
    expect(limits(undefined)).toEqual({
      contacts: [
        [10, 1000],
        [36_000, 3_600_000],
      ],
      events: [
        [10, 1000],
        [36_000, 3_600_000],
      ],
      other: [[100, 3_600_000]],
    });
    expect(limits('advanced')).toEqual({
      contacts: [
        [20, 1000],
        [72_000, 3_600_000],
      ],
      events: [
        [20, 1000],
        [72_000, 3_600_000],
      ],
      other: [[200, 3_600_000]],
    });
    expect(limits('extended')).toEqual({ contacts: [[60, 1000]], events: [[60, 1000]], other: [[600, 3_600_000]] });
  });

  it('the advanced plan grants 20 per second', () => {
    const { g } = governor({ plan: 'advanced' });
    takeN(g, 'events', 20);
    expect(g.tryAcquire('events')).toBe(-1);
  });

  it('explicit limits override the plan for one bucket only', () => {
    const { g } = governor({ limits: { other: [{ limit: 2, windowMs: 60_000 }] }, marginMs: 0 });
    takeN(g, 'other', 2);
    expect(g.tryAcquire('other')).toBe(-1);
    expect(bucketStatus(g, 'contacts').windows[0]!.limit).toBe(10);
  });

  it('reports windows, use, pauses, throttles, requests and the last headers per bucket', () => {
    const { g, clock } = governor();
    const seqs = takeN(g, 'contacts', 3);
    g.observe('contacts', seqs[2]!, 200, { limit: 10, remaining: 7, resetSec: 1 });
    const s1 = g.tryAcquire('events');
    g.observe('events', s1, 429, { remaining: 0, resetSec: 4 });
    const st = g.status();
    expect(st.map((b) => b.bucket).sort()).toEqual(['contacts', 'events', 'other']);
    expect(bucketStatus(g, 'contacts')).toEqual({
      bucket: 'contacts',
      windows: [
        { limit: 10, windowMs: 1050, used: 3 },
        { limit: 36_000, windowMs: 3_600_050, used: 3 },
      ],
      pausedUntil: 0,
      throttled: 0,
      requests: 3,
      lastRemaining: 7,
      lastResetMs: 1000,
    });
    expect(bucketStatus(g, 'events')).toMatchObject({ pausedUntil: T0 + 4000, throttled: 1, requests: 1, lastRemaining: 0, lastResetMs: 4000 });
    expect(bucketStatus(g, 'other')).toMatchObject({
      windows: [{ limit: 100, windowMs: 3_600_050, used: 0 }],
      requests: 0,
      lastRemaining: null,
      lastResetMs: null,
    });
    // Use decays with the window: after 2 s the per-second window is empty, the hourly one is not.
    clock.advance(2000);
    expect(bucketStatus(g, 'contacts').windows.map((w) => w.used)).toEqual([0, 3]);
    // status() is a snapshot, JSON-safe (it is stored and shown by `tajo-ses status`).
    expect(JSON.parse(JSON.stringify(st))).toEqual(st);
  });
});

describe('edges', () => {
  it('a grant leaves the window exactly windowMs later (status use)', () => {
    const { g, clock } = governor({ marginMs: 0 });
    g.tryAcquire('contacts');
    clock.advance(999);
    expect(bucketStatus(g, 'contacts').windows[0]!.used).toBe(1);
    clock.advance(1);
    expect(bucketStatus(g, 'contacts').windows[0]!.used).toBe(0);
    expect(bucketStatus(g, 'contacts').windows[1]!.used).toBe(1);
  });

  it('uses the real clock and real timers when none are given', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      const g = new Governor({ limits: { contacts: [{ limit: 1, windowMs: 40 }] }, marginMs: 0 });
      const started = Date.now();
      await g.acquire('contacts');
      expect(g.waitMs('contacts')).toBeGreaterThan(0);
      expect(g.waitMs('contacts')).toBeLessThanOrEqual(40);
      await g.acquire('contacts');
      expect(Date.now() - started).toBeGreaterThanOrEqual(35);
      expect(spy.mock.calls.some(([, ms]) => typeof ms === 'number' && ms >= 1 && ms <= 40)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('a negative reset counts as zero', () => {
    const { g } = governor();
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 200, { remaining: 5, resetSec: -3 });
    expect(bucketStatus(g, 'contacts').lastResetMs).toBe(0);
  });

  it('a 429 pauses but does not resize windows from its headers', () => {
    const { g } = governor({ marginMs: 0 });
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 429, { limit: 5, remaining: 0, resetSec: 1 });
    expect(bucketStatus(g, 'contacts').windows[0]!.limit).toBe(10);
  });

  it('an exhausted remaining never shortens a longer pause', () => {
    const { g } = governor();
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 429, { resetSec: 5 });
    g.observe('contacts', seq, 200, { remaining: 0, resetSec: 1 });
    expect(g.waitMs('contacts')).toBe(5000);
  });

  it('a limit header without a reset is ignored', () => {
    const { g } = governor({ marginMs: 0 });
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 200, { limit: 5 });
    expect(bucketStatus(g, 'contacts').windows.map((w) => w.limit)).toEqual([10, 36_000]);
  });

  it('a reset beyond every window applies the limit to the longest one', () => {
    const { g } = governor({ marginMs: 0 });
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 200, { limit: 500, remaining: 499, resetSec: 7200 });
    expect(bucketStatus(g, 'contacts').windows.map((w) => w.limit)).toEqual([10, 500]);
  });

  it('bucketOf strips only a leading /v3', () => {
    expect(bucketOf('/v3')).toBe('other');
    expect(bucketOf('/v3/v3/contacts')).toBe('other');
    expect(bucketOf('v3/contacts')).toBe('other');
  });
});

describe('edges (headers and signals)', () => {
  it('a response without rate-limit headers keeps the last ones seen', () => {
    const { g } = governor();
    const seq = g.tryAcquire('contacts');
    g.observe('contacts', seq, 200, { remaining: 7, resetSec: 1 });
    g.observe('contacts', seq, 200, {});
    expect(bucketStatus(g, 'contacts')).toMatchObject({ lastRemaining: 7, lastResetMs: 1000 });
  });

  it('an aborted signal without a reason still stops the wait', async () => {
    const { g } = governor();
    takeN(g, 'contacts', 10);
    const signal = { aborted: true, reason: undefined } as unknown as AbortSignal;
    await expect(g.acquire('contacts', signal)).rejects.toThrow('aborted');
  });
});
