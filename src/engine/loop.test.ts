import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PollLoop, type PollLoopOptions } from './loop.js';

// Not 0: like the loops they replace, a loop reads 0 as "not holding back yet".
const T0 = 1_000_000;

/** A loop whose rounds return the given counts in turn (then 0), counting how many ran. */
function loopOf(counts: number[], opts: Partial<PollLoopOptions> = {}) {
  const calls: number[] = [];
  const errors: unknown[] = [];
  const loop = new PollLoop({
    round: async () => {
      calls.push(Date.now() - T0);
      return counts.shift() ?? 0;
    },
    onError: (err) => errors.push(err),
    idleMs: 10_000,
    ...opts,
  });
  return { loop, calls, errors };
}

describe('PollLoop', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('idles idleMs after an empty round, and wake() cuts the idle short', async () => {
    const { loop, calls } = loopOf([]);
    loop.start();
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toHaveLength(1);
    loop.wake();
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0, 5001]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toEqual([0, 5001, 15_001]);
    await loop.stop();
  });

  it('stop() ends an idle at once and no round runs after it', async () => {
    const { loop, calls } = loopOf([]);
    loop.start();
    await vi.advanceTimersByTimeAsync(1);
    let stopped = false;
    void loop.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(1);
    expect(stopped).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toHaveLength(1);
    loop.wake();
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(1);
  });

  it('stop() waits for the round in progress', async () => {
    let finish!: () => void;
    const loop = new PollLoop({ round: () => new Promise<number>((r) => (finish = () => r(0))), onError: () => undefined, idleMs: 100 });
    loop.start();
    await vi.advanceTimersByTimeAsync(1);
    let stopped = false;
    void loop.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(1000);
    expect(stopped).toBe(false);
    finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(true);
  });

  it('runs the next round at once after work, or after pauseMs, which wake() does not cut short (stop() does)', async () => {
    const { loop, calls } = loopOf([5, 5, 1], { pauseMs: (n) => (n < 5 ? 300 : 0) });
    loop.start();
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0, 0, 0]);
    loop.wake();
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toEqual([0, 0, 0, 300]);
    const again = loopOf([1], { pauseMs: () => 300 });
    again.loop.start();
    await vi.advanceTimersByTimeAsync(1);
    let stopped = false;
    void again.loop.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(1);
    expect(stopped).toBe(true);
    await loop.stop();
  });

  it('a round that holds waits holdMs (not idleMs): wake() leaves the hold, wake({ urgent }) ends it, and a pause too', async () => {
    const results: Array<number | { holdMs: number }> = [{ holdMs: 400 }, { holdMs: 400 }, 1];
    const calls: number[] = [];
    const loop = new PollLoop({
      round: async () => {
        calls.push(Date.now() - T0);
        return results.shift() ?? 0;
      },
      onError: () => undefined,
      idleMs: 10_000,
      pauseMs: () => 5_000,
    });
    loop.start();
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0]);
    loop.wake();
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toEqual([0]); // a plain wake does not end a hold
    await vi.advanceTimersByTimeAsync(300);
    expect(calls).toEqual([0, 400]); // the hold's end, not the idle's
    loop.wake({ urgent: true });
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0, 400, 401]); // urgent work ends the hold at once (not at 800)
    loop.wake({ urgent: true }); // ... and the pause after a round that did work
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0, 400, 401, 402]); // not at 5,401
    await loop.stop();
  });

  it('after a failed round reports the error, waits retryMs and then idles, both cut short by wake()', async () => {
    const errors: unknown[] = [];
    const calls: number[] = [];
    const loop = new PollLoop({
      round: async () => {
        calls.push(Date.now() - T0);
        throw new Error('store down');
      },
      onError: (err) => errors.push(err),
      idleMs: 250,
      retryMs: 1000,
    });
    loop.start();
    await vi.advanceTimersByTimeAsync(1249);
    expect(calls).toEqual([0]);
    expect(errors.map((e) => (e as Error).message)).toEqual(['store down']);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0, 1250]);
    loop.wake();
    await vi.advanceTimersByTimeAsync(1);
    loop.wake();
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0, 1250, 1251]);
    await loop.stop();
  });

  it('with idleFirst, the first round comes after idleMs', async () => {
    const { loop, calls } = loopOf([], { idleMs: 15_000, idleFirst: true });
    loop.start();
    await vi.advanceTimersByTimeAsync(14_999);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([15_000]);
    await loop.stop();
  });

  it('under pressure holds rounds back for maxDeferMs, then runs one round per maxDeferMs', async () => {
    let pressure = true;
    const { loop, calls } = loopOf([1, 1, 1, 1], { defer: { underPressure: () => pressure, maxDeferMs: 400, checkMs: 50 } });
    loop.start();
    await vi.advanceTimersByTimeAsync(399);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([400]);
    await vi.advanceTimersByTimeAsync(400);
    expect(calls).toEqual([400, 800]);
    pressure = false;
    await vi.advanceTimersByTimeAsync(50);
    expect(calls).toEqual([400, 800, 850, 850, 850]);
    await loop.stop();
  });

  it('with catchUp, once held back maxDeferMs it runs rounds until one finds nothing before holding back again', async () => {
    const { loop, calls } = loopOf([3, 2, 0, 7], { idleMs: 200, defer: { underPressure: () => true, maxDeferMs: 400, checkMs: 50, catchUp: true } });
    loop.start();
    await vi.advanceTimersByTimeAsync(400);
    expect(calls).toEqual([400, 400, 400]);
    // The empty round idles 200 ms, then the loop holds back again for 400 ms.
    await vi.advanceTimersByTimeAsync(599);
    expect(calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([400, 400, 400, 1000, 1000]);
    await loop.stop();
  });
});
