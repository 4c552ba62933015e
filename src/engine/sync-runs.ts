// The history of sync runs (backfills and scheduled syncs), for the dashboard and /metrics.
// Kept as one JSON value in the store's state table: a few dozen small rows, written once per
// run by whichever process ran it, so every process that reads the store sees the same list.
import type { Store } from '../store/port.js';

export interface SyncRun {
  streams: string[];
  startedAt: number;
  endedAt: number;
  /** Records read from SES. */
  read: number;
  /** Brevo writes queued from them. */
  written: number;
  /** Null when the run completed. */
  error: string | null;
}

const KEY = 'sync_runs';
/** Runs kept, newest first. */
export const SYNC_RUNS_KEPT = 50;

export async function loadSyncRuns(store: Store): Promise<SyncRun[]> {
  const raw = await store.getState(KEY);
  if (!raw) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? (v as SyncRun[]) : [];
  } catch {
    return [];
  }
}

/** Adds a run at the head of the list. Two processes ending runs at the same instant may lose one row: it is a history, not a ledger. */
export async function recordSyncRun(store: Store, run: SyncRun, now: number): Promise<void> {
  const runs = [run, ...(await loadSyncRuns(store))].slice(0, SYNC_RUNS_KEPT);
  await store.setState(KEY, JSON.stringify(runs), now);
}

/** Per stream: the newest completed run (its end and duration), and the newest run of any outcome. */
export function lastRunsByStream(runs: SyncRun[]): Map<string, { lastSuccess?: SyncRun; last: SyncRun }> {
  const out = new Map<string, { lastSuccess?: SyncRun; last: SyncRun }>();
  for (const r of runs) {
    for (const s of r.streams) {
      const cur = out.get(s) ?? { last: r };
      if (!cur.lastSuccess && r.error === null) cur.lastSuccess = r;
      out.set(s, cur);
    }
  }
  return out;
}
