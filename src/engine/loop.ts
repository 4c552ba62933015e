// The polling loop every engine worker runs (planning, delivery, bulk imports, lease
// recovery): a round, then a wait. After a round that found nothing the loop idles, and new
// work cuts that short (`wake`). After a round that did work it may pause, and new work does
// not cut that short: the next round then finds a fuller batch. `stop` cuts any wait. While
// webhooks saturate the process, rounds are held back for a bounded time (pressure.ts).

/** Longest a round is held back under pressure, unless told otherwise. */
export const DEFAULT_MAX_DEFER_MS = 2000;

/** How often pressure is looked at again while a round is held back. */
export const DEFER_CHECK_MS = 50;

/** After a failed round: a failing store or network is not hammered (then the loop idles as after an empty round). */
export const ROUND_RETRY_MS = 1000;

export interface DeferOptions {
  /** True while the process should give the CPU to something else (acknowledging webhooks). */
  underPressure: () => boolean;
  /** Longest a round is held back (default DEFAULT_MAX_DEFER_MS). */
  maxDeferMs?: number;
  /** How often pressure is looked at again while holding back; `wake` cuts this wait short (default DEFER_CHECK_MS). */
  checkMs?: number;
  /**
   * After holding back for maxDeferMs, run rounds until one finds nothing before holding back
   * again. Without it, a sustained burst gets one round per maxDeferMs.
   */
  catchUp?: boolean;
}

/**
 * A round that found work not worth doing yet (a partial batch still filling): the loop waits
 * `holdMs` before the next round, and only urgent work (`wake({ urgent: true })`) cuts that short.
 */
export interface Hold {
  holdMs: number;
}

export interface PollLoopOptions {
  /** One round of work; resolves to how many items it handled (0: nothing to do), or to a hold. */
  round: () => Promise<number | Hold>;
  /** A round threw: report it (the loop goes on). */
  onError: (err: unknown) => void;
  /** Wait after a round that found nothing; `wake` cuts it short. */
  idleMs: number;
  /** Extra wait after a failed round, before the idle wait; `wake` cuts it short. 0: none. Default ROUND_RETRY_MS. */
  retryMs?: number;
  /** Wait after a round that handled `n` items; `wake` does not cut it short. 0 (the default): next round at once. */
  pauseMs?: (n: number) => number;
  /** Start with the idle wait instead of a round. */
  idleFirst?: boolean;
  defer?: DeferOptions;
  now?: () => number;
}

export class PollLoop {
  private running = false;
  private done: Promise<void> = Promise.resolve();
  /** The wait in progress, if any: ended early by `stop`, and by `wake` when wakeable. */
  private waiting: { wakeable: boolean; end: () => void } | undefined;

  constructor(private readonly o: PollLoopOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.done = this.run();
  }

  /**
   * New work arrived: end an idle wait (not a pause or a hold, unless the work is `urgent`).
   * A loop in the middle of a round is not affected.
   */
  wake(o: { urgent?: boolean } = {}): void {
    if (this.waiting?.wakeable || (this.waiting && o.urgent === true)) this.waiting.end();
  }

  /** Ends any wait and resolves once the round in progress, if any, has finished. */
  async stop(): Promise<void> {
    this.running = false;
    this.waiting?.end();
    await this.done;
  }

  private wait(ms: number, wakeable: boolean): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const end = () => {
        clearTimeout(timer);
        if (this.waiting === w) this.waiting = undefined;
        resolve();
      };
      const w = { wakeable, end };
      const timer = setTimeout(end, ms);
      this.waiting = w;
    });
  }

  private async run(): Promise<void> {
    const { round, onError, idleMs, retryMs = ROUND_RETRY_MS, pauseMs, defer, now = Date.now } = this.o;
    let deferSince = 0;
    let catchingUp = false;
    if (this.o.idleFirst) await this.wait(idleMs, true);
    while (this.running) {
      if (defer && !catchingUp && defer.underPressure()) {
        deferSince ||= now();
        if (now() - deferSince < (defer.maxDeferMs ?? DEFAULT_MAX_DEFER_MS)) {
          await this.wait(defer.checkMs ?? DEFER_CHECK_MS, true);
          continue;
        }
        // Held back long enough: catch up on everything waiting before yielding again.
        catchingUp = defer.catchUp === true;
      }
      deferSince = 0;
      let n = 0;
      let hold = 0;
      try {
        const r = await round();
        if (typeof r === 'number') n = r;
        else hold = Math.max(1, r.holdMs);
        if (n === 0) catchingUp = false;
      } catch (err) {
        onError(err);
        if (retryMs > 0) await this.wait(retryMs, true);
      }
      if (hold > 0) await this.wait(hold, false);
      else if (n === 0) await this.wait(idleMs, true);
      else {
        const ms = pauseMs?.(n) ?? 0;
        if (ms > 0) await this.wait(ms, false);
      }
    }
  }
}
