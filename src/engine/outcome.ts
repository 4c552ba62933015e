// What became of one operation's Brevo call, and the one place a call's result is counted
// and classified (done, retry later, or dead for good).
import { BrevoError } from '../brevo/client.js';
import type { LedgerEntry } from '../store/port.js';
import type { BrevoHealth } from './brevo-health.js';
import type { Metrics } from './metrics.js';

export type Outcome =
  | { kind: 'done'; ledger?: LedgerEntry }
  | { kind: 'accepted'; ref: string; ledger?: LedgerEntry }
  /** `streakStart`: this failure began a Brevo failure streak; settling it announces the streak once (BrevoHealth.announce). */
  | { kind: 'retry'; err: BrevoError | Error; streakStart?: true }
  | { kind: 'dead'; err: BrevoError | Error; streakStart?: true };

export interface CallContext {
  metrics: Metrics;
  health: BrevoHealth;
}

/** Runs one Brevo call; a refusal Brevo says retrying cannot fix is `dead`, any other failure `retry`. */
export async function attemptCall(ctx: CallContext, endpoint: string, fn: () => Promise<unknown>): Promise<Outcome> {
  try {
    await fn();
    ctx.metrics.brevoCalls.inc({ endpoint, status: 'ok' });
    ctx.health.success();
    return { kind: 'done' };
  } catch (err) {
    const status = err instanceof BrevoError ? String(err.status) : 'error';
    ctx.metrics.brevoCalls.inc({ endpoint, status });
    if (err instanceof BrevoError && !err.retryable) {
      // Brevo answered and refused this one call: it is up.
      ctx.health.success();
      return { kind: 'dead', err };
    }
    // A 429 is our budget running out, not Brevo failing: the governor handles it.
    if (err instanceof BrevoError && err.status === 429) return { kind: 'retry', err };
    return ctx.health.failure(endpoint, err) ? { kind: 'retry', err: err as Error, streakStart: true } : { kind: 'retry', err: err as Error };
  }
}
