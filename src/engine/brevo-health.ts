// Brevo's health as the delivery calls see it: the last success, the last error and the
// current failure streak. An outage is logged once when it starts and once when it ends (not
// per call: retries would flood the log), exported as gauges, and saved to the store, where
// `tajo-ses status` (another process) reads it.
import type { Logger } from 'pino';
import { BrevoError } from '../brevo/client.js';
import { errorMessage } from '../core/errors.js';
import type { Store } from '../store/port.js';
import type { Metrics } from './metrics.js';

/** The store key of the saved snapshot (next to the `governor` one). */
export const BREVO_HEALTH_STATE_KEY = 'brevo-health';

/** Between streak changes, the snapshot is saved at most this often (last success moves with every call). */
const SAVE_EVERY_MS = 5000;

export interface BrevoCallError {
  code: string;
  status?: number;
  message: string;
  endpoint: string;
  /** Epoch ms. */
  at: number;
}

export interface BrevoHealthSnapshot {
  /** Epoch ms of the last call Brevo answered (a refusal retrying cannot fix counts: Brevo is up). */
  lastSuccessAt: number | null;
  lastError: BrevoCallError | null;
  /** Failed calls in a row, and since when; null when the last call succeeded. */
  streak: { since: number; calls: number } | null;
  /** Epoch ms at which the snapshot was taken. */
  savedAt: number;
}

export interface BrevoHealthOptions {
  log: Logger;
  metrics: Metrics;
  /** Where the snapshot is saved for `tajo-ses status`; none in unit tests. */
  store?: Store;
  now?: () => number;
}

export class BrevoHealth {
  private lastSuccessAt: number | null = null;
  private lastError: BrevoCallError | null = null;
  private streak: { since: number; calls: number; announced: boolean } | null = null;
  private lastSave = 0;
  private saving: Promise<void> = Promise.resolve();
  private readonly now: () => number;

  constructor(private readonly o: BrevoHealthOptions) {
    this.now = o.now ?? Date.now;
    o.metrics.brevoHealthClock.streakSince = () => this.streak?.since;
    o.metrics.brevoHealthClock.now = this.now;
  }

  /** Brevo answered: ends a failure streak (one info line). */
  success(): void {
    const now = this.now();
    this.lastSuccessAt = now;
    this.o.metrics.brevoLastSuccess.set(now / 1000);
    const s = this.streak;
    if (s) {
      this.streak = null;
      this.o.metrics.brevoStreak.set(0);
      this.o.log.info({ seconds: (now - s.since) / 1000, failedCalls: s.calls }, 'Brevo answers again: the failure streak is over');
      this.save(true);
    } else this.save(false);
  }

  /**
   * A call failed in a way retrying may fix (5xx, 429, network). Returns true for the first
   * failure of a streak: the caller, which knows the retry plan, then calls `announce` once.
   */
  failure(endpoint: string, err: unknown): boolean {
    const now = this.now();
    const be = err instanceof BrevoError ? err : undefined;
    this.lastError = { code: be?.code ?? 'error', ...(be ? { status: be.status } : {}), message: errorMessage(err), endpoint, at: now };
    const first = this.streak === null;
    if (this.streak) this.streak.calls++;
    else this.streak = { since: now, calls: 1, announced: false };
    this.o.metrics.brevoStreak.set(this.streak.calls);
    this.o.log.debug({ endpoint, code: this.lastError.code, status: this.lastError.status, calls: this.streak.calls }, 'Brevo call failed');
    this.save(first);
    return first;
  }

  /** The one warn line of a streak: what failed, how many attempts so far and when the next try is (none: it became a dead letter). */
  announce(retry: { attempts: number; nextAt: number | undefined }): void {
    const s = this.streak;
    const e = this.lastError;
    if (!s || s.announced || !e) return;
    s.announced = true;
    const next = retry.nextAt === undefined ? 'no further try (dead letter)' : `next try at ${new Date(retry.nextAt).toISOString()}`;
    this.o.log.warn(
      {
        code: e.code,
        status: e.status,
        endpoint: e.endpoint,
        attempts: retry.attempts,
        ...(retry.nextAt !== undefined ? { nextAt: new Date(retry.nextAt).toISOString() } : {}),
      },
      `Brevo call failing (${e.status ?? e.code}): ${e.message}; ${next}. Further failures are not logged until Brevo answers again`,
    );
  }

  snapshot(): BrevoHealthSnapshot {
    return {
      lastSuccessAt: this.lastSuccessAt,
      lastError: this.lastError,
      streak: this.streak ? { since: this.streak.since, calls: this.streak.calls } : null,
      savedAt: this.now(),
    };
  }

  /** Saves the snapshot now and waits for it (at stop). */
  async flush(): Promise<void> {
    this.save(true);
    await this.saving;
  }

  /** Streak changes are saved at once; other changes at most every SAVE_EVERY_MS. Writes are chained, never concurrent. */
  private save(changed: boolean): void {
    const store = this.o.store;
    if (!store) return;
    const now = this.now();
    if (!changed && now - this.lastSave < SAVE_EVERY_MS) return;
    this.lastSave = now;
    const snap = this.snapshot();
    this.saving = this.saving.then(() =>
      store
        .setState(BREVO_HEALTH_STATE_KEY, JSON.stringify(snap), now)
        .catch((err) => this.o.log.debug({ err: errorMessage(err) }, 'could not save Brevo health')),
    );
  }
}

/** The saved snapshot, or undefined when no process has saved one (or it is not readable). */
export async function loadBrevoHealth(store: Store): Promise<BrevoHealthSnapshot | undefined> {
  const raw = await store.getState(BREVO_HEALTH_STATE_KEY);
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as BrevoHealthSnapshot;
  } catch {
    return undefined;
  }
}
