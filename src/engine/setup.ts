// Brevo-side prerequisites: the SES_* attributes must exist with the right types before any
// value is sent, because Brevo silently drops values of unknown attributes.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { BrevoClient } from '../brevo/client.js';
import { BrevoError } from '../brevo/client.js';
import { SES_ATTRIBUTES } from '../core/brevo-model.js';
import { errorMessage } from '../core/errors.js';

export interface AttributeReport {
  created: string[];
  present: string[];
  /** Present with another type: values would be dropped; the operator must fix it in Brevo. */
  mismatched: Array<{ name: string; expected: string; found: string }>;
  /** field_mapping targets that do not exist in Brevo. */
  missingMapped: string[];
}

export async function ensureAttributes(
  client: BrevoClient,
  opts: { create: boolean; mapped?: string[]; log?: Logger; onCreated?: (name: string) => void },
): Promise<AttributeReport> {
  const { data } = await client.listAttributes();
  const existing = new Map((data?.attributes ?? []).map((a) => [a.name.toUpperCase(), a]));
  const report: AttributeReport = { created: [], present: [], mismatched: [], missingMapped: [] };
  for (const [name, type] of Object.entries(SES_ATTRIBUTES)) {
    const cur = existing.get(name);
    if (cur) {
      const found = (cur.type ?? '').toLowerCase();
      if (found && found !== type) report.mismatched.push({ name, expected: type, found });
      else report.present.push(name);
      continue;
    }
    if (!opts.create) continue;
    try {
      await client.createAttribute('normal', name, type);
      report.created.push(name);
      opts.onCreated?.(name);
    } catch (err) {
      // Another process may have created it a moment ago.
      if (err instanceof BrevoError && err.code === 'duplicate_parameter') report.present.push(name);
      else throw err;
    }
  }
  for (const m of opts.mapped ?? []) if (!existing.has(m.toUpperCase())) report.missingMapped.push(m);
  if (report.created.length > 0) opts.log?.info({ created: report.created }, 'created missing Brevo contact attributes');
  for (const m of report.mismatched)
    opts.log?.error(
      m,
      `Brevo attribute ${m.name} has type ${m.found}, expected ${m.expected}: Brevo will drop its values; delete and recreate it (then run tajo-ses check)`,
    );
  return report;
}

/**
 * Where the Brevo set-up of a running connector stands: `pending` (first try not done),
 * `ready` (attributes exist: delivery runs), `unavailable` (Brevo failed; retried with
 * backoff), `unauthorized` (Brevo refuses the key), `skipped` (not asked for).
 */
export type BrevoSetupState = 'pending' | 'ready' | 'unavailable' | 'unauthorized' | 'skipped';

export interface BrevoSetup {
  state: BrevoSetupState;
  /** Brevo's answer to the last failed try. */
  error?: string;
}

/** Backoff between set-up tries while Brevo fails: doubles from the first to the cap. */
export const SETUP_RETRY_FIRST_MS = 1_000;
export const SETUP_RETRY_MAX_MS = 30_000;

export interface BackgroundSetupOptions {
  client: BrevoClient;
  mapped: string[];
  log: Logger;
  /** Ends the retries (stop). */
  signal: AbortSignal;
  onState: (setup: BrevoSetup) => void;
}

/**
 * ensureAttributes until it succeeds, so that a Brevo outage or a refused key at start never
 * takes the intake down: webhooks keep being acknowledged and stored meanwhile. Logs once per
 * failure streak (again only when the kind of failure changes). Resolves with the report, or
 * undefined when stopped first.
 */
export async function ensureAttributesInBackground(o: BackgroundSetupOptions): Promise<AttributeReport | undefined> {
  let delay = SETUP_RETRY_FIRST_MS;
  let failing: BrevoSetupState | undefined;
  while (!o.signal.aborted) {
    let progressed = false;
    try {
      const report = await ensureAttributes(o.client, { create: true, mapped: o.mapped, log: o.log, onCreated: () => (progressed = true) });
      if (failing) o.log.info('Brevo attributes are ready: delivery starts');
      o.onState({ state: 'ready' });
      return report;
    } catch (err) {
      if (o.signal.aborted) return undefined;
      const state: BrevoSetupState = err instanceof BrevoError && (err.status === 401 || err.status === 403) ? 'unauthorized' : 'unavailable';
      const error = errorMessage(err);
      if (state !== failing) {
        if (state === 'unauthorized')
          o.log.error(
            { err: error },
            'Brevo refuses the API key (brevo.api_key): webhooks are still acknowledged and stored, nothing is delivered until Brevo accepts the key',
          );
        else o.log.warn({ err: error }, 'Brevo attribute set-up failed: retrying in the background; webhooks are stored, delivery waits');
      }
      failing = state;
      o.onState({ state, error });
      // A try that created attributes before failing (a flaky Brevo) is followed soon: what it made is kept.
      if (progressed) delay = SETUP_RETRY_FIRST_MS;
      await sleep(delay, undefined, { signal: o.signal }).catch(() => undefined);
      delay = Math.min(delay * 2, SETUP_RETRY_MAX_MS);
    }
  }
  return undefined;
}
