// What became of one operation's Brevo call, and the one place a call's result is counted
// and classified (done, retry later, or dead for good).
import { BrevoError } from '../brevo/client.js';
import type { LedgerEntry } from '../store/port.js';
import type { Metrics } from './metrics.js';

export type Outcome =
  | { kind: 'done'; ledger?: LedgerEntry }
  | { kind: 'accepted'; ref: string; ledger?: LedgerEntry }
  | { kind: 'retry'; err: BrevoError | Error }
  | { kind: 'dead'; err: BrevoError | Error };

/** Runs one Brevo call; a refusal Brevo says retrying cannot fix is `dead`, any other failure `retry`. */
export async function attemptCall(metrics: Metrics, endpoint: string, fn: () => Promise<unknown>): Promise<Outcome> {
  try {
    await fn();
    metrics.brevoCalls.inc({ endpoint, status: 'ok' });
    return { kind: 'done' };
  } catch (err) {
    const status = err instanceof BrevoError ? String(err.status) : 'error';
    metrics.brevoCalls.inc({ endpoint, status });
    if (err instanceof BrevoError && !err.retryable) return { kind: 'dead', err };
    return { kind: 'retry', err: err as Error };
  }
}
