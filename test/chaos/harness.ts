// A seeded chaos run: `tajo-ses serve` and `tajo-ses backfill` (child processes over
// bin/tajo-ses.js) are SIGKILLed at seeded moments while signed SNS notifications flow in and
// a backfill reads the SES simulator, and Brevo faults are switched on and off. At the end
// the Brevo simulator must hold what the inputs call for (src/sim/oracle.ts): every event
// once, the blocklist, the newest event per contact, the backfilled lists.
//
// Used by test/chaos.itest.ts (a bounded run inside `npm test`) and test/chaos/soak.soak.ts
// (`npm run soak`). Every random choice comes from one seed, printed at the start so that a
// failure replays (CHAOS_SEED).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startBrevoSim, type BrevoFaults, type BrevoSim } from '../../src/sim/brevo/index.js';
import { startSnsSim, type SnsSim } from '../../src/sim/sns/index.js';
import { startSesSim, type SesSim } from '../../src/sim/ses/index.js';
import { realisticMix } from '../../src/sim/ses-events/index.js';
import { prng } from '../../src/sim/prng.js';
import { parseSesNotification } from '../../src/ses/parse.js';
import { compareBackfill, compareWithBrevo, expectedBrevoState } from '../../src/sim/oracle.js';
import type { SnsEnvelope } from '../../src/ses/sns.js';
import { ALL_EVENTS_BOTH, freePort, LOOPBACK_CERT_HOST, TOPIC } from '../helpers.js';
import { childEnv, ensureBuilt, runCli, spawnCli, writeConfig, type Spawned } from '../backfill-helpers.js';
import { freshPgSchema, PG_SERVER } from '../pg.js';

/** The Brevo faults a run switches on and off (src/sim/brevo/types.ts). */
export type FaultKind = 'error' | 'throttle' | 'throttle_bare' | 'hang' | 'reset_after_apply' | 'malformed' | 'dropped' | 'outage';

export const ALL_FAULT_KINDS: readonly FaultKind[] = ['error', 'throttle', 'throttle_bare', 'hang', 'reset_after_apply', 'malformed', 'dropped', 'outage'];

export interface ChaosOptions {
  seed: number;
  store: 'sqlite' | 'postgres';
  /** SES notifications published through SNS over the chaos phase. */
  notifications: number;
  recipients: number;
  /** Backfill size (SES simulator contacts and suppressions). */
  contacts: number;
  suppressions: number;
  /** Length of the chaos phase: kills and faults happen within it. */
  chaosMs: number;
  /** Kills at least this many processes (more if the chaos phase leaves room). */
  minKills: number;
  /** Mean time a killed process gets to run before the next kill. */
  meanRunMs: number;
  faultKinds: readonly FaultKind[];
  /** An outage this long (ms) at a seeded moment of the chaos phase, on top of the short ones; 0: none. */
  longOutageMs?: number;
  /** How long the end state may take to settle after the chaos phase. */
  drainMs: number;
  /** delivery.backoff_max of the run (default 1s): longer than a long outage's share of 100 attempts. */
  backoffMax?: string;
  /** PostgreSQL server for store 'postgres' (a schema of its own is created and dropped). */
  pgUrl?: string;
  log?: (line: string) => void;
  /** Logs each fault window (CHAOS_VERBOSE=1). */
  verbose?: boolean;
}

export interface ChaosReport {
  label: string;
  seed: number;
  store: string;
  faults: Record<string, number>;
  kills: { serve: number; backfill: number };
  /** SES records the published notifications carry that must become Brevo events. */
  sent: number;
  delivered: number;
  /** Dead letters (`tajo-ses failures list`). */
  failures: number;
  lost: number;
  duplicated: number;
  /** Every difference between Brevo and the expected state (empty when it matches). */
  problems: string[];
  backfill: { contacts: number; memberships: number; blocklisted: number; runs: number };
  ms: number;
}

/** CHAOS_SEED when set (so a failure replays), else a fresh one. */
export function chaosSeed(): number {
  const s = process.env.CHAOS_SEED;
  if (s !== undefined && s !== '') {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`CHAOS_SEED must be a non-negative integer, got ${s}`);
    return n;
  }
  return randomBytes(4).readUInt32BE(0) % 2 ** 31;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The Brevo client's timeout in the run's configuration; hung calls are held longer. */
const BREVO_TIMEOUT_MS = 1500;

function faultSettings(kind: FaultKind, rand: () => number): Partial<BrevoFaults> {
  const rate = 0.2 + rand() * 0.5;
  switch (kind) {
    case 'error':
      return { errorRate: rate };
    case 'throttle':
      return { throttleRate: rate };
    case 'throttle_bare':
      return { throttleBareRate: rate };
    case 'hang':
      return { hangRate: rate / 2, hangMs: BREVO_TIMEOUT_MS * 3 };
    case 'reset_after_apply':
      return { dropAfterApplyRate: rate / 2 };
    case 'malformed':
      return { malformedRate: rate };
    case 'dropped':
      return { dropRate: rate / 2 };
    case 'outage':
      return { outageSeconds: 1 + Math.round(rand() * 4) };
  }
}

const FAULTS_OFF: Partial<BrevoFaults> = {
  errorRate: 0,
  throttleRate: 0,
  throttleBareRate: 0,
  hangRate: 0,
  dropAfterApplyRate: 0,
  malformedRate: 0,
  dropRate: 0,
  outageSeconds: 0,
};

/** Rewrites the recipients of the published mix so they never meet the backfilled contacts (user{i}@example.com). */
function ownRecipients(p: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(p).replace(/user(\d+)@example\.com/g, 'rcpt$1@events.example.org')) as Record<string, unknown>;
}

/** Resolves when `serve` answers /readyz on `port`, or after `timeoutMs` (then the run goes on anyway). */
async function untilReady(port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    await sleep(100);
  }
}

interface Proc {
  name: 'serve' | 'backfill';
  run: Spawned;
  startedAt: number;
}

export async function runChaos(label: string, o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? ((l: string) => console.log(l));
  const began = Date.now();
  let t0 = began;
  log(`[chaos ${label}] seed ${o.seed} (replay with CHAOS_SEED=${o.seed}), store ${o.store}`);
  ensureBuilt();
  // One generator per concern, so that the schedule of kills does not shift with that of faults.
  const killRand = prng(o.seed);
  const faultRand = prng(o.seed + 1_000_003);
  const dir = mkdtempSync(join(tmpdir(), 'tajo-chaos-'));
  const cleanup: Array<() => Promise<unknown> | unknown> = [() => rmSync(dir, { recursive: true, force: true })];
  const running = new Set<Proc>();
  try {
    const brevo: BrevoSim = await startBrevoSim({ plan: 'extended', importDelayMs: 100, faults: { seed: o.seed } });
    cleanup.push(() => brevo.close());
    const sns: SnsSim = await startSnsSim({});
    cleanup.push(() => sns.close());
    const ses: SesSim = await startSesSim({ rps: 50 });
    cleanup.push(() => ses.close());
    ses.generate({ lists: 2, topicsPerList: 2, contacts: o.contacts, suppressions: o.suppressions, seed: o.seed });

    let storeUrl = `sqlite:${join(dir, 'chaos.db')}`;
    if (o.store === 'postgres') {
      const pgs = freshPgSchema(`chaos_${o.seed}`, o.pgUrl ?? PG_SERVER);
      storeUrl = pgs.url;
      cleanup.push(() => pgs.drop());
    }

    const port = await freePort();
    const common = {
      brevo: { api_key: brevo.apiKey, base_url: brevo.url, plan: 'extended', timeout: `${BREVO_TIMEOUT_MS}ms` },
      store: { url: storeUrl },
      // Enough attempts that no fault of the run makes a dead letter: Brevo answers again within seconds.
      delivery: { backoff_base: '100ms', backoff_max: o.backoffMax ?? '1s', max_attempts: 100, batch_size: 25 },
      log: { level: 'warn' },
    };
    const serveConfig = writeConfig(join(dir, 'serve.yaml'), {
      connectors: {
        'amazon-ses': {
          region: 'us-east-1',
          endpoint: ses.endpoint,
          sns: { topic_arns: [TOPIC], signing_cert_hosts: [LOOPBACK_CERT_HOST], allow_http_cert_urls: true },
          events: ALL_EVENTS_BOTH,
          // The backfill is the `backfill` command's here, so that it can be killed on its own.
          sync: { contacts: false, suppressions: false, account: false },
        },
      },
      server: { port, host: '127.0.0.1' },
      ...common,
    });
    const backfillConfig = writeConfig(join(dir, 'backfill.yaml'), {
      connectors: {
        'amazon-ses': { region: 'us-east-1', endpoint: ses.endpoint, sns: { topic_arns: [TOPIC] }, ses_rate_limit: 2, events: ALL_EVENTS_BOTH },
      },
      ...common,
    });
    const env = childEnv(dir);

    const start = (name: 'serve' | 'backfill'): Proc => {
      const run = spawnCli(name === 'serve' ? ['serve', '--config', serveConfig] : ['backfill', '--json', '--config', backfillConfig], { cwd: dir, env });
      const p: Proc = { name, run, startedAt: Date.now() };
      running.add(p);
      void run.exited.then(() => running.delete(p));
      return p;
    };
    const kill = async (p: Proc): Promise<void> => {
      p.run.child.kill('SIGKILL');
      await p.run.exited;
    };

    // ---- inputs
    const payloads = realisticMix(o.notifications, { recipients: o.recipients, seed: o.seed }).map(ownRecipients);
    const envelopes: SnsEnvelope[] = payloads.map((p) => sns.notification(TOPIC, p));
    const records = payloads.flatMap((p) => parseSesNotification(p).records);
    const exp = expectedBrevoState(records, ALL_EVENTS_BOTH);

    // ---- processes (the schedule counts from here, after the set-up and any rebuild of dist/)
    t0 = Date.now();
    let serve = start('serve');
    let backfill: Proc | undefined = start('backfill');
    let backfillRuns = 1;
    let backfillDone = false;
    const kills = { serve: 0, backfill: 0 };
    const url = `http://127.0.0.1:${port}/webhooks/amazon-ses`;

    // Publisher: paced over the chaos phase; an envelope is published again until a 200 (SNS retries).
    let published = 0;
    let publishing = true;
    const publisher = (async () => {
      let next = 0;
      const worker = async () => {
        while (next < envelopes.length) {
          const due = Math.ceil((envelopes.length * (Date.now() - t0)) / (o.chaosMs * 0.8));
          if (next >= due) {
            await sleep(50);
            continue;
          }
          const env = envelopes[next++]!;
          for (;;) {
            const res = await sns.publish(url, env, { timeoutMs: 5000 }).catch(() => ({ status: 0, body: '' }));
            if (res.status === 200) break;
            if (!publishing && Date.now() - t0 > o.chaosMs + o.drainMs) throw new Error(`envelope ${env.MessageId} never acknowledged: ${res.status}`);
            await sleep(100);
          }
          published++;
        }
      };
      await Promise.all(Array.from({ length: 4 }, worker));
    })();

    // Faults: seeded windows of one kind each, with pauses between.
    let faultsOn = true;
    const faultLoop = (async () => {
      const rand = faultRand;
      const longAt = o.longOutageMs ? t0 + o.chaosMs * (0.2 + rand() * 0.4) : Infinity;
      // Every kind in turn (in a seeded order), so that a short run still meets each of them.
      const order = [...o.faultKinds].sort(() => rand() - 0.5);
      let turn = 0;
      let longDone = !o.longOutageMs;
      while (faultsOn && Date.now() - t0 < o.chaosMs) {
        if (!longDone && Date.now() >= longAt) {
          longDone = true;
          brevo.setFaults({ ...FAULTS_OFF, outageSeconds: o.longOutageMs! / 1000 });
          log(`[chaos ${label}] Brevo outage of ${Math.round(o.longOutageMs! / 1000)} s`);
          await sleep(o.longOutageMs!);
          brevo.setFaults(FAULTS_OFF);
          continue;
        }
        if (o.faultKinds.length > 0) {
          const kind = order[turn++ % order.length]!;
          const settings = faultSettings(kind, rand);
          const before = brevo.stats().requests;
          brevo.setFaults({ ...FAULTS_OFF, ...settings });
          await sleep(1500 + rand() * 2000);
          brevo.setFaults(FAULTS_OFF);
          if (o.verbose) log(`[chaos ${label}] ${Date.now() - t0} ms: ${kind} ${JSON.stringify(settings)} over ${brevo.stats().requests - before} Brevo calls`);
        }
        await sleep(300 + rand() * 1200);
      }
      brevo.setFaults(FAULTS_OFF);
    })();

    // Kills: each victim gets a seeded time to run, then SIGKILL and a restart.
    const rand = killRand;
    const totalKills = () => kills.serve + kills.backfill;
    while (Date.now() - t0 < o.chaosMs || totalKills() < o.minKills) {
      if (Date.now() - t0 > o.chaosMs * 3) throw new Error(`only ${totalKills()} kills in ${o.chaosMs * 3} ms`);
      await sleep(Math.round(o.meanRunMs * (0.3 + rand() * 1.4)));
      if (backfill && backfill.run.child.exitCode !== null) {
        const ex = await backfill.run.exited;
        if (ex.code === 0) backfillDone = true;
        else log(`[chaos ${label}] backfill exited ${ex.code}: ${backfill.run.output().slice(-500)}`);
        backfill = backfillDone ? undefined : (backfillRuns++, start('backfill'));
      }
      const victim = backfill && (kills.backfill === 0 || rand() < 0.4) ? backfill : serve;
      await kill(victim);
      if (process.env.CHAOS_LOGS === '1')
        log(`[chaos ${label}] killed ${victim.name} after ${Date.now() - victim.startedAt} ms; its last output:\n${victim.run.output().slice(-1500)}`);
      if (victim.name === 'serve') {
        kills.serve++;
        serve = start('serve');
        // Mostly, the next run time counts from when the webhook answers again (a start-up
        // takes seconds here); sometimes not, so that some kills land during the start-up.
        if (rand() < 0.8) await untilReady(port, 8_000);
      } else {
        kills.backfill++;
        backfillRuns++;
        backfill = start('backfill');
      }
    }
    log(`[chaos ${label}] chaos phase over after ${Date.now() - t0} ms: ${kills.serve} serve and ${kills.backfill} backfill kills; draining`);

    // ---- drain: faults off, every envelope acknowledged, the backfill to its end, delivery to idle.
    faultsOn = false;
    await faultLoop;
    brevo.setFaults(FAULTS_OFF);
    publishing = false;
    await publisher;
    const deadline = t0 + o.chaosMs + o.drainMs;
    while (!backfillDone) {
      if (!backfill) {
        backfillRuns++;
        backfill = start('backfill');
      }
      const ex = await Promise.race([backfill.run.exited, sleep(Math.max(1000, deadline - Date.now())).then(() => undefined)]);
      if (!ex) throw new Error(`backfill did not finish: ${backfill.run.output().slice(-2000)}`);
      if (ex.code === 0) backfillDone = true;
      else log(`[chaos ${label}] backfill exited ${ex.code}: ${backfill.run.output().slice(-500)}`);
      backfill = undefined;
    }

    const sesData = ses.data();
    const backfillBlocked = new Set([
      ...sesData.contacts.filter((c) => c.unsubscribeAll).map((c) => c.email.toLowerCase()),
      ...sesData.suppressions.map((s) => s.email.toLowerCase()),
    ]);
    const check = () => {
      const state = brevo.state();
      const events = compareWithBrevo(exp, state, { allowDuplicates: true, alsoBlocklisted: backfillBlocked });
      const bf = compareBackfill(sesData, state, 'Amazon SES', exp.blocklisted);
      return { state, events, bf };
    };
    let last = check();
    while (Date.now() < deadline) {
      await brevo.settle();
      last = check();
      if (last.events.ok && last.bf.ok && published === envelopes.length) break;
      if (serve.run.child.exitCode !== null) {
        log(`[chaos ${label}] serve exited during the drain: ${serve.run.output().slice(-1000)}`);
        serve = start('serve');
      }
      await sleep(500);
    }
    // Give delivery a moment more: a duplicate could still be in flight.
    await sleep(1000);
    await brevo.settle();
    last = check();

    const failures = await runCli(['failures', 'list', '--json', '--limit', '100000', '--config', serveConfig], { cwd: dir, env });
    const dead = failures.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { kind?: string; key?: string });
    const deadKeys = new Set(dead.filter((d) => d.kind === 'event').map((d) => String(d.key)));
    const seen = new Set(last.state.events.map((e) => String(e.event_properties?.event_key)));
    let lost = 0;
    for (const k of exp.events.keys()) if (!seen.has(k) && !deadKeys.has(k)) lost++;

    const report: ChaosReport = {
      label,
      seed: o.seed,
      store: o.store,
      faults: brevo.stats().faults,
      kills,
      sent: exp.events.size,
      delivered: [...exp.events.keys()].filter((k) => seen.has(k)).length,
      failures: dead.length,
      lost,
      duplicated: last.events.events.duplicates,
      problems: [...last.events.problems, ...last.bf.problems, ...(failures.code === 0 ? [] : [`failures list exited ${failures.code}: ${failures.stderr}`])],
      backfill: { ...last.bf.checked, runs: backfillRuns },
      ms: Date.now() - began,
    };
    return report;
  } finally {
    for (const p of running) {
      p.run.child.kill('SIGKILL');
      await p.run.exited;
    }
    for (const undo of cleanup.reverse()) await Promise.resolve(undo()).catch(() => undefined);
  }
}

/** The table both entry points print. */
export function formatReports(reports: ChaosReport[]): string {
  const kinds = [...new Set(reports.flatMap((r) => Object.keys(r.faults)))].sort();
  const rows: string[][] = [
    ['run', 'seed', 'store', 'faults injected', 'kills (serve+backfill)', 'events sent', 'delivered', 'in failures', 'lost', 'duplicated', 'time'],
  ];
  for (const r of reports) {
    const faults = kinds.map((k) => `${k} ${r.faults[k] ?? 0}`).join(', ') || 'none';
    rows.push([
      r.label,
      String(r.seed),
      r.store,
      faults,
      `${r.kills.serve + r.kills.backfill} (${r.kills.serve}+${r.kills.backfill})`,
      String(r.sent),
      String(r.delivered),
      String(r.failures),
      String(r.lost),
      String(r.duplicated),
      `${Math.round(r.ms / 1000)} s`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(rows[0]!), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.slice(1).map(line)].join('\n');
}
