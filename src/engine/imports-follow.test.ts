import { describe, expect, it } from 'vitest';
import { openStore } from '../store/index.js';
import { FOLLOW_BUCKET, FollowPacer } from './imports.js';

const HOUR = 3_600_000;

describe('FollowPacer: following imports within a share of the hourly budget', () => {
  it('the gap is nothing in a quiet hour, grows with the share spent, and ends at the even spacing', () => {
    expect(FollowPacer.gapMs(25, 0)).toBe(0);
    // The first follow-ups of a quiet hour come quickly (a backfill's imports settle in seconds).
    expect([0, 1, 2, 3, 4].reduce((a, used) => a + FollowPacer.gapMs(25, used), 0)).toBeLessThan(10_000);
    const gaps = Array.from({ length: 25 }, (_, used) => FollowPacer.gapMs(25, used));
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThan(gaps[i - 1]!);
    expect(gaps[24]!).toBeLessThanOrEqual(HOUR / 25);
    expect(gaps[24]!).toBeGreaterThan((HOUR / 25) * 0.9);
    // Spending the whole share takes at least a fifth of the hour.
    expect(gaps.reduce((a, g) => a + g, 0)).toBeGreaterThan(HOUR / 5);
    expect(FollowPacer.gapMs(25, 25)).toBe(Infinity);
  });

  it('two processes on one store share one pace: after a follow-up, the next waits for its gap, in either process', async () => {
    const store = await openStore('sqlite::memory:');
    try {
      await store.migrate();
      const a = new FollowPacer({ store, perHour: 4 });
      const b = new FollowPacer({ store, perHour: 4 });
      expect(await a.take({ first: true })).toBe(true);
      // 1 of 4 spent: the next first page waits (1 h / 4) × (1/4)² ≈ 56 s, whichever process asks.
      expect(await b.take({ first: true })).toBe(false);
      expect(await a.take({ first: true })).toBe(false);
      // Further pages of the pass under way spend the share without the gap, until it is gone.
      expect(await a.take({ first: false })).toBe(true);
      expect(await b.take({ first: false })).toBe(true);
      expect(await b.take({ first: false })).toBe(true);
      expect(await a.take({ first: false })).toBe(false);
      const st = await store.budgetStatus({ windows: { [FOLLOW_BUCKET]: [{ limit: 4, windowMs: HOUR }] } });
      expect(st.buckets.find((x) => x.bucket === FOLLOW_BUCKET)?.windows[0]?.used).toBe(4);
    } finally {
      await store.close();
    }
  });
});
