// Shared harness for the backfill suites (test/backfill-*.itest.ts, test/check.itest.ts):
// the `tajo-ses` command as a child process over bin/tajo-ses.js (dist/), configuration
// files in temp dirs, in-process connectors over the SES and Brevo simulators, and checks
// on what the Brevo simulator holds that go beyond compareBackfill.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import type { BrevoSimState, BrevoSimStats } from '../src/sim/brevo/index.js';
import type { SesSimData } from '../src/sim/ses/index.js';
import { parseConfig } from '../src/config/load.js';
import { createConnector, type Connector, type ConnectorOptions } from '../src/engine/connector.js';
import { TOPIC } from './helpers.js';
import { cleanEnv } from './cli-run.js';

export { TOPIC, until } from './helpers.js';
export { BIN, ensureBuilt, ROOT, runCli, spawnCli, type CliRun, type Spawned } from './cli-run.js';

/** Static credentials the SES simulator accepts (it checks that a request is signed, not the key). */
export const CREDS = { accessKeyId: 'AKIDBACKFILLSIM', secretAccessKey: 'backfill-sim-secret' };
export const FOLDER = 'Amazon SES';
export const SUPPRESSION_LIST = 'SES suppression list';
export const RECIPIENTS_LIST = 'SES recipients';

/** A clean environment for the child: AWS keys for the SDK's default chain, nothing inherited. */
export function childEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return cleanEnv(home, {
    AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
    // Never reach for an instance metadata service or a real profile from a test.
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(home, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
    ...extra,
  });
}

export function simConfig(o: {
  sesEndpoint: string;
  brevo: { url: string; apiKey: string };
  db: string;
  ses?: Record<string, unknown>;
  brevoExtra?: Record<string, unknown>;
  logLevel?: string;
}): Record<string, unknown> {
  return {
    connectors: { 'amazon-ses': { region: 'us-east-1', endpoint: o.sesEndpoint, sns: { topic_arns: [TOPIC] }, ...o.ses } },
    brevo: { api_key: o.brevo.apiKey, base_url: o.brevo.url, ...o.brevoExtra },
    store: { url: `sqlite:${o.db}` },
    delivery: { backoff_base: '100ms', backoff_max: '2s' },
    log: { level: o.logLevel ?? 'warn' },
  };
}

export function writeConfig(path: string, cfg: Record<string, unknown>): string {
  writeFileSync(path, JSON.stringify(cfg, null, 2) + '\n');
  return path;
}

/** An in-process connector over the simulators with static SES credentials. */
export async function inProcessConnector(cfg: Record<string, unknown>, opts: Omit<ConnectorOptions, 'logger' | 'ses'> = {}): Promise<Connector> {
  const parsed = parseConfig(cfg, { requireBrevoKey: false, env: {} });
  return createConnector(parsed, { ...opts, logger: pino({ level: 'silent' }), ses: { credentials: CREDS } });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Requests that can change Brevo (anything but GET), by route. */
export function writeRequests(stats: BrevoSimStats): Record<string, number> {
  return Object.fromEntries(Object.entries(stats.byRoute).filter(([k]) => !k.startsWith('GET ')));
}

export function totalWrites(stats: BrevoSimStats): number {
  return Object.values(writeRequests(stats)).reduce((a, n) => a + n, 0);
}

/**
 * Checks compareBackfill leaves out: list names unique across the whole account, the
 * suppression list holds exactly the SES suppression list, no contact fell back to the
 * catch-all recipients list, and no list outside the folder was created.
 */
export function extraListProblems(ses: SesSimData, state: BrevoSimState, folder = FOLDER): string[] {
  const problems: string[] = [];
  const names = new Map<string, number>();
  for (const l of state.lists) names.set(l.name, (names.get(l.name) ?? 0) + 1);
  for (const [n, k] of names) if (k > 1) problems.push(`list "${n}" exists ${k} times`);
  const folders = state.folders.filter((f) => f.name === folder);
  if (state.folders.length !== 1 || folders.length !== 1) problems.push(`expected exactly one folder (${folder}), found ${JSON.stringify(state.folders)}`);
  const folderId = folders[0]?.id;
  for (const l of state.lists) if (l.folderId !== folderId) problems.push(`list "${l.name}" is outside the ${folder} folder`);
  const supp = state.lists.find((l) => l.name === SUPPRESSION_LIST);
  const suppressed = new Set(ses.suppressions.map((s) => s.email.toLowerCase()));
  if (ses.suppressions.length > 0) {
    if (!supp) problems.push(`no list "${SUPPRESSION_LIST}"`);
    else {
      const members = new Set(
        Object.values(state.contacts)
          .filter((c) => c.listIds.includes(supp.id))
          .map((c) => c.email),
      );
      let wrong = 0;
      for (const e of members) if (!suppressed.has(e) && wrong++ < 5) problems.push(`${e} is in "${SUPPRESSION_LIST}" but SES does not suppress it`);
      let missing = 0;
      for (const e of suppressed) if (!members.has(e) && missing++ < 5) problems.push(`${e} is suppressed in SES but not in "${SUPPRESSION_LIST}"`);
    }
  }
  const recipients = state.lists.find((l) => l.name === RECIPIENTS_LIST);
  if (recipients) {
    const n = Object.values(state.contacts).filter((c) => c.listIds.includes(recipients.id)).length;
    if (n > 0) problems.push(`${n} backfilled contact(s) fell into "${RECIPIENTS_LIST}"`);
  }
  // Every Brevo contact comes from SES.
  const known = new Set([...ses.contacts.map((c) => c.email.toLowerCase()), ...suppressed]);
  const strangers = Object.keys(state.contacts).filter((e) => !known.has(e));
  if (strangers.length) problems.push(`${strangers.length} Brevo contact(s) SES does not know, e.g. ${strangers.slice(0, 3).join(', ')}`);
  return problems;
}
