import { describe, expect, it } from 'vitest';
import { RateLimiter } from './client.js';

/** A clock that sleeps by moving on, each sleep `late` ms later than asked (a busy event loop). */
function fakeClock(lateness: number[]) {
  let t = 1_000_000;
  let sleeps = 0;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms + (lateness[sleeps++] ?? 0);
    },
  };
}

describe('RateLimiter (SES, 1 request/s)', () => {
  it('spaces each request from when the previous one was let go, so a late timer never brings the next one closer', async () => {
    // The first wait ends 300 ms late, the others on time.
    const clock = fakeClock([300]);
    const limiter = new RateLimiter(1, clock.now, clock.sleep);
    const released: number[] = [];
    for (let i = 0; i < 4; i++) {
      await limiter.take();
      released.push(clock.now());
    }
    const gaps = released.slice(1).map((t, i) => t - released[i]!);
    expect(gaps.every((g) => g >= 1050)).toBe(true);
    expect(gaps[1]).toBe(1050);
    expect(limiter.calls).toBe(4);
  });

  it('lets concurrent callers go one at a time, in the order they asked, a full interval apart', async () => {
    const clock = fakeClock([120, 0, 40]);
    const limiter = new RateLimiter(2, clock.now, clock.sleep);
    const order: Array<{ i: number; at: number }> = [];
    await Promise.all([0, 1, 2, 3].map((i) => limiter.take().then(() => order.push({ i, at: clock.now() }))));
    expect(order.map((o) => o.i)).toEqual([0, 1, 2, 3]);
    const gaps = order.slice(1).map((o, k) => o.at - order[k]!.at);
    expect(gaps.every((g) => g >= 525)).toBe(true);
  });

  it('does not wait when requests are already further apart than the interval', async () => {
    const clock = fakeClock([]);
    let slept = 0;
    const limiter = new RateLimiter(1, clock.now, async (ms) => {
      slept += ms;
      await clock.sleep(ms);
    });
    await limiter.take();
    await clock.sleep(5_000);
    await limiter.take();
    expect(slept).toBe(0);
  });
});
