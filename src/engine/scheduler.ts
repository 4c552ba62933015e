// Hybrid mode in `serve`: incremental syncs on `schedule:`, one at a time, in their own lane.
// Their bulk writes go through the backfill lane, so webhook events never wait behind them.
import type { Logger } from 'pino';
import type { Connector } from './connector.js';
import type { StreamName } from './backfill.js';
import { errorMessage } from '../core/errors.js';

export interface ScheduleEntry {
  streams: StreamName[];
  everyMs: number;
}

export function scheduleFor(c: Connector): ScheduleEntry[] {
  const ses = c.config.connectors['amazon-ses'];
  const out: ScheduleEntry[] = [];
  if (ses.sync.account) out.push({ streams: ['account'], everyMs: ses.schedule.account });
  if (ses.sync.suppressions) out.push({ streams: ['suppressions'], everyMs: ses.schedule.suppressions });
  if (ses.sync.contacts) out.push({ streams: ['contact_lists', 'contacts'], everyMs: ses.schedule.contacts });
  return out;
}

export class Scheduler {
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<unknown> = Promise.resolve();
  private readonly abort = new AbortController();
  private stopped = false;

  constructor(
    private readonly connector: Connector,
    private readonly log: Logger,
    private readonly entries: ScheduleEntry[] = scheduleFor(connector),
  ) {}

  /** Runs each entry now (when its last run is older than its period) and then on its period. */
  async start(): Promise<void> {
    for (const e of this.entries) {
      const last = await this.connector.store.getCursor(e.streams[e.streams.length - 1]!);
      const due = !last || last.status !== 'complete' || Date.now() - last.updatedAt >= e.everyMs;
      if (due) this.enqueue(e);
      const t = setInterval(() => this.enqueue(e), e.everyMs);
      t.unref();
      this.timers.push(t);
    }
  }

  private enqueue(e: ScheduleEntry): void {
    // One sync at a time: they share SES's 1 req/s budget anyway.
    this.running = this.running.then(async () => {
      if (this.stopped) return;
      const t0 = Date.now();
      try {
        const s = await this.connector.backfill({ streams: e.streams }, { signal: this.abort.signal });
        this.log.info(
          { streams: e.streams, seconds: (Date.now() - t0) / 1000, read: Object.fromEntries(Object.entries(s.streams).map(([k, v]) => [k, v?.read ?? 0])) },
          'scheduled sync done',
        );
      } catch (err) {
        if (!this.stopped) this.log.error({ streams: e.streams, err: errorMessage(err) }, 'scheduled sync failed; its cursor is kept and the next run resumes');
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.abort.abort();
    await this.running;
  }
}
