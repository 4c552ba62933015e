// The dashboard's charts: received / delivered / failed per minute and the lag, over the last
// hours. Kept in memory by the process that serves /ui, sampled from its own /metrics text
// (which includes the engine thread's counters) and its status: no store writes on a timer,
// no schema, nothing to prune. A restart starts the charts afresh; Prometheus (/metrics)
// keeps the long history.

export interface TimelinePoint {
  /** Start of the minute (epoch ms). */
  t: number;
  received: number;
  delivered: number;
  /** Failed Brevo attempts: retries scheduled plus operations moved to dead letters. */
  failed: number;
  /** Largest lag seen in the minute (seconds of the oldest open operation). */
  lag: number;
}

export interface TimelineSource {
  metricsText(): Promise<string>;
  /** The age of the oldest open operation, seconds. */
  lagSeconds(): Promise<number>;
}

/** Minutes kept: six hours. */
export const TIMELINE_MINUTES = 360;
/** How often the counters are read. */
export const TIMELINE_TICK_MS = 5_000;

/** Sum of every sample of counter `name` in Prometheus text (all label sets), or only those whose labels include `label`. */
export function counterSum(text: string, name: string, label?: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (label && !rest.includes(label)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

function totals(text: string) {
  return {
    received: counterSum(text, 'tajo_ses_webhook_requests_total', 'outcome="accepted"'),
    delivered: counterSum(text, 'tajo_ses_delivered_total'),
    failed: counterSum(text, 'tajo_ses_retries_total') + counterSum(text, 'tajo_ses_dead_letters_total'),
  };
}

export class Timeline {
  private readonly points: TimelinePoint[] = [];
  private last: ReturnType<typeof totals> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();

  constructor(
    private readonly source: TimelineSource,
    private readonly opts: { tickMs?: number; minutes?: number; now?: () => number } = {},
  ) {}

  start(): void {
    if (this.timer) return;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.opts.tickMs ?? TIMELINE_TICK_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
  }

  /** Reads the counters once and adds what moved since the last read to the current minute. */
  tick(): Promise<void> {
    this.ticking = this.ticking.then(() => this.sample()).catch(() => undefined);
    return this.ticking;
  }

  private async sample(): Promise<void> {
    const now = (this.opts.now ?? Date.now)();
    const [text, lag] = await Promise.all([this.source.metricsText(), this.source.lagSeconds().catch(() => 0)]);
    const cur = totals(text);
    const prev = this.last ?? cur;
    this.last = cur;
    const minute = now - (now % 60_000);
    let p = this.points[this.points.length - 1];
    if (!p || p.t !== minute) {
      p = { t: minute, received: 0, delivered: 0, failed: 0, lag: 0 };
      this.points.push(p);
      const keep = this.opts.minutes ?? TIMELINE_MINUTES;
      while (this.points.length > 0 && this.points[0]!.t <= minute - keep * 60_000) this.points.shift();
    }
    // A counter that went down (an engine thread restarted) counts from zero again.
    const moved = (k: keyof typeof cur) => (cur[k] >= prev[k] ? cur[k] - prev[k] : cur[k]);
    p.received += moved('received');
    p.delivered += moved('delivered');
    p.failed += moved('failed');
    p.lag = Math.max(p.lag, lag);
  }

  /** The minutes sampled, oldest first (copies). */
  series(): TimelinePoint[] {
    return this.points.map((p) => ({ ...p }));
  }
}
