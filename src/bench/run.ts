// `npm run bench`: ingest and drain, side by side with a verify-only handler and with a
// per-event baseline, the SQS intake, 1 to 3 `serve` processes on PostgreSQL next to SQLite
// (`--only cluster`; TAJO_TEST_PG_URL, else postgres@127.0.0.1:5432/test), and the backfill,
// on this machine. Prints a JSON summary.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type { LoadResult } from './loadgen.js';
import { startBrevoSim, type BrevoSim, type BrevoSimState } from '../sim/brevo/index.js';
import { startSnsSim } from '../sim/sns/index.js';
import { startSesSim } from '../sim/ses/index.js';
import { startSqsSim } from '../sim/sqs/index.js';
import { realisticMix } from '../sim/ses-events/index.js';
import { parseConfig } from '../config/load.js';
import { parseSesNotification } from '../ses/parse.js';
import { contactChangesForEvent } from '../core/plan.js';
import { EVENT_NAMES, SES_ATTRIBUTES } from '../core/brevo-model.js';
import { BrevoClient } from '../brevo/client.js';
import { ensureAttributes } from '../engine/setup.js';
import { expectedBrevoState, compareWithBrevo, compareBackfill, type Expected } from '../sim/oracle.js';
import { openStore } from '../store/index.js';
import type { SnsEnvelope } from '../ses/sns.js';
import { counterSum } from '../server/timeline.js';
import { freshPgSchema, pgServerVersion, PG_SERVER } from './pg-schema.js';

const here = dirname(fileURLToPath(import.meta.url));
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const INGEST_N = Number(args.get('ingest') ?? 8_000);
const ROUNDS = Math.max(1, Number(args.get('rounds') ?? 3));
const DRAIN_N = Number(args.get('drain') ?? 100_000);
const SLICE_N = Number(args.get('slice') ?? 5_000);
const RECIPIENTS = Number(args.get('recipients') ?? 20_000);
const BACKFILL_N = Number(args.get('backfill') ?? 100_000);
const ONLY = args.get('only');
const SQS_POLLERS = (args.get('sqs-pollers') ?? '2,8').split(',').map(Number);
const CLUSTER_N = Number(args.get('cluster') ?? 24_000);
const CLUSTER_PROCESSES = (args.get('cluster-processes') ?? '1,2,3').split(',').map(Number);
const IMPORT_DELAY_MS = Number(args.get('import-delay') ?? 1_000);

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

function loadgen(url: string, bodies: string[], concurrency: number, rate?: number): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tajo-bodies-'));
  const file = join(dir, 'bodies.json');
  writeFileSync(file, JSON.stringify(bodies));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, 'loadgen.js'), url, file, String(concurrency), ...(rate ? [String(rate)] : [])], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      rmSync(dir, { recursive: true, force: true });
      if (code === 0) resolve(JSON.parse(out) as LoadResult);
      else reject(new Error(`loadgen exited ${code}`));
    });
  });
}

const CLI = join(here, '..', '..', 'bin', 'tajo-ses.js');

/** Peak resident set of a process, from the kernel (VmHWM), in MB. */
function peakRssOf(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Runs the real CLI as its own process, so its memory is measured alone. */
function cli(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (
      await fetch(url)
        .then((r) => r.ok)
        .catch(() => false)
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never answered`);
}

async function freePort(): Promise<number> {
  const srv = Fastify();
  await srv.listen({ port: 0, host: '127.0.0.1' });
  const port = (srv.server.address() as AddressInfo).port;
  await srv.close();
  return port;
}

function writeConfig(dir: string, doc: Record<string, unknown>, name = 'tajo'): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

/**
 * The `serve` config the scenarios share: SNS intake (`signed` accepts the SNS simulator's
 * signing certificate over loopback), no SES sync, warnings only.
 */
function serveDoc(o: {
  port: number;
  store: string;
  brevo: { url: string; apiKey: string; plan: string };
  signed?: boolean;
  sqs?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    connectors: {
      'amazon-ses': {
        region: 'us-east-1',
        sync: { contacts: false, suppressions: false, account: false },
        sns: { topic_arns: [TOPIC], ...(o.signed ? { signing_cert_hosts: ['^127\\.0\\.0\\.1$'], allow_http_cert_urls: true } : {}) },
        ...(o.sqs ? { sqs: o.sqs } : {}),
      },
    },
    brevo: { api_key: o.brevo.apiKey, base_url: o.brevo.url, plan: o.brevo.plan },
    store: { url: o.store },
    server: { port: o.port, host: '127.0.0.1' },
    log: { level: 'warn' },
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

interface Serve {
  child: ChildProcess;
  port: number;
  base: string;
  webhook: string;
  peakRssMb(): number;
  stop(): Promise<void>;
}

/** `tajo-ses serve` as its own process on a free port (config file `NAME.yaml` in dir), once it answers /readyz. */
async function startServe(dir: string, name: string, doc: (port: number) => Record<string, unknown>, env: Record<string, string> = {}): Promise<Serve> {
  const port = await freePort();
  const child = cli(['serve', '--config', writeConfig(dir, doc(port), name)], env);
  const base = `http://127.0.0.1:${port}`;
  await waitHttp(`${base}/readyz`);
  return { child, port, base, webhook: `${base}/webhooks/amazon-ses`, peakRssMb: () => peakRssOf(child.pid!), stop: () => stopChild(child) };
}

/** Seconds from t0 until the Brevo simulator holds the oracle's final state (imports applied), or null past timeoutMs. */
async function untilBrevoHolds(brevo: BrevoSim, exp: Expected, t0: number, timeoutMs: number): Promise<number | null> {
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    await brevo.settle();
    const st = brevo.state();
    if (st.events.length >= exp.events.size && compareWithBrevo(exp, st).ok) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > timeoutMs) return null;
  }
}

function startBrevoChild(plan: string): Promise<{ url: string; stop: () => void }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, '..', 'sim', 'brevo', 'main.js'), '--plan', plan], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.once('data', (d: Buffer) => resolve({ url: d.toString().trim().split('\n')[0]!, stop: () => child.kill('SIGTERM') }));
    child.once('error', reject);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Ingest: the verify-only handler and the connector take turns, ROUNDS bursts each (a shared
 * two-core machine drifts from minute to minute, so one burst of each is not a fair
 * comparison); the ratio is of the medians. Then ROUNDS windows of steady load at half the
 * connector's median rate.
 */
async function ingest() {
  const sns = await startSnsSim();
  const halfWindowS = 5;
  // The connector's half rate is not known before it runs: sign for a generous one.
  const halfBodiesPerWindow = 4000 * halfWindowS;
  const payloads = realisticMix(2000 + INGEST_N * ROUNDS + halfBodiesPerWindow * ROUNDS, { recipients: RECIPIENTS, seed: 21 });
  log(`signing ${payloads.length} SNS notifications...`);
  const bodies = payloads.map((p) => JSON.stringify(sns.notification(TOPIC, p)));
  let next = 0;
  const take = (n: number) => bodies.slice(next, (next += n));
  const warm = take(1000);
  // Upper bound: same framework, same body handling, same signature check, stores nothing;
  // its own process, like the connector (this one holds every signed body in memory).
  const bareChild = spawn(process.execPath, [join(here, 'verify-only.js'), TOPIC, '^127\\.0\\.0\\.1$'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const bareUrl = await new Promise<string>((resolve, reject) => {
    bareChild.stdout.once('data', (d: Buffer) => resolve(d.toString().trim().split('\n')[0]!));
    bareChild.once('exit', (code) => reject(new Error(`verify-only handler exited ${code}`)));
  });
  const barePeak = () => peakRssOf(bareChild.pid!);
  await loadgen(bareUrl, warm, 64);

  const brevo = await startBrevoChild('unlimited');
  const dir = mkdtempSync(join(tmpdir(), 'tajo-bench-'));
  const serve = await startServe(dir, 'tajo', (port) =>
    serveDoc({ port, store: `sqlite:${join(dir, 'ingest.db')}`, brevo: { url: brevo.url, apiKey: 'sim-key', plan: 'extended' }, signed: true }),
  );
  const { port, webhook: url } = serve;
  await loadgen(url, take(1000), 64);
  // Steady load is measured on a steady state: the previous burst's backlog drained first.
  const drained = async () => {
    for (let i = 0; i < 600; i++) {
      const st = (await fetch(`http://127.0.0.1:${port}/admin/status`).then((r) => r.json())) as { inbox: Record<string, number>; lag: unknown[] };
      if ((st.inbox.pending ?? 0) === 0 && st.lag.length === 0) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const verifyOnly: LoadResult[] = [];
  const connector: LoadResult[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    log(`round ${round}/${ROUNDS}: verify-only handler...`);
    verifyOnly.push(await loadgen(bareUrl, bodies.slice(0, INGEST_N), 64));
    await drained();
    log(`round ${round}/${ROUNDS}: connector (tajo-ses serve: acknowledgement after a durable commit on SQLite)...`);
    connector.push(await loadgen(url, take(INGEST_N), 64));
  }
  const verifyOnlyPeakRssMb = barePeak();
  bareChild.kill('SIGTERM');
  const verifyRate = median(verifyOnly.map((r) => r.perSecond));
  const connectorRate = median(connector.map((r) => r.perSecond));
  const halfRate = Math.max(1, Math.round(connectorRate / 2));
  const half: LoadResult[] = [];
  for (let w = 1; w <= ROUNDS; w++) {
    await drained();
    log(`connector at half its median rate (${halfRate}/s), window ${w}/${ROUNDS}...`);
    half.push(await loadgen(url, take(Math.min(halfBodiesPerWindow, halfRate * halfWindowS)), 64, halfRate));
  }
  const peak = serve.peakRssMb();
  const status = (await fetch(`http://127.0.0.1:${port}/admin/status`).then((r) => r.json())) as { inbox: Record<string, number> };
  await serve.stop();
  brevo.stop();
  await sns.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    rounds: ROUNDS,
    verifyOnly,
    connector,
    ratio: connectorRate / verifyRate,
    medians: { verifyOnlyPerSecond: verifyRate, connectorPerSecond: connectorRate },
    connectorHalfRate: { rate: halfRate, windows: half, medianP99Ms: median(half.map((h) => h.p99Ms)), worstP99Ms: Math.max(...half.map((h) => h.p99Ms)) },
    connectorPeakRssMb: peak,
    verifyOnlyPeakRssMb,
    storedAtEnd: status.inbox,
  };
}

/**
 * SQS intake next to the webhook, on the same `serve` (both intakes on, SQLite): in turns,
 * a burst of INGEST_N signed notifications POSTed to the webhook (concurrency 64), then the
 * same number of other signed notifications put on the SQS simulator's queue at once, timed
 * until the last is deleted (the intake deletes a message only after its durable commit).
 * Medians of ROUNDS turns, for each poller count in --sqs-pollers.
 */
async function sqsIngest() {
  const sns = await startSnsSim();
  // In this process, like the other simulators: it shares the two cores (AWS's SQS would not).
  const sqs = await startSqsSim({
    queues: { 'bench-dlq': {}, bench: { visibilityTimeoutSeconds: 30, redrive: { deadLetterQueue: 'bench-dlq', maxReceiveCount: 5 } } },
  });
  const perRun = 1000 + 2 * INGEST_N * ROUNDS;
  const payloads = realisticMix(perRun * SQS_POLLERS.length, { recipients: RECIPIENTS, seed: 55 });
  log(`signing ${payloads.length} SNS notifications...`);
  const bodies = payloads.map((p) => JSON.stringify(sns.notification(TOPIC, p)));
  let next = 0;
  const take = (n: number) => bodies.slice(next, (next += n));
  const brevo = await startBrevoChild('unlimited');
  const runs = [];
  for (const pollers of SQS_POLLERS) {
    const dir = mkdtempSync(join(tmpdir(), 'tajo-bench-sqs-'));
    const serve = await startServe(
      dir,
      'tajo',
      (port) =>
        serveDoc({
          port,
          store: `sqlite:${join(dir, 'sqs.db')}`,
          brevo: { url: brevo.url, apiKey: 'sim-key', plan: 'extended' },
          signed: true,
          sqs: { queue_url: sqs.queueUrl('bench'), endpoint: sqs.endpoint, raw_message_delivery: false, pollers },
        }),
      { AWS_ACCESS_KEY_ID: 'BENCH', AWS_SECRET_ACCESS_KEY: 'bench', AWS_EC2_METADATA_DISABLED: 'true' },
    );
    const { port, webhook: url } = serve;
    // Nothing left for this process to do: no envelope to plan, no operation due or in flight
    // (contact imports Brevo accepted may still be awaited: that costs no CPU here).
    const drained = async () => {
      for (let i = 0; i < 600; i++) {
        const st = (await fetch(`http://127.0.0.1:${port}/admin/status`).then((r) => r.json())) as {
          inbox: Record<string, number>;
          queues: Array<{ state: string; count: number }>;
        };
        if ((st.inbox.pending ?? 0) === 0 && !st.queues.some((q) => (q.state === 'pending' || q.state === 'inflight') && q.count > 0)) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const queueEmptied = async (n: number): Promise<number> => {
      const t0 = process.hrtime.bigint();
      for (const b of take(n)) sqs.send('bench', b);
      while (sqs.messages('bench').length > 0) await new Promise((r) => setTimeout(r, 20));
      return Number(process.hrtime.bigint() - t0) / 1e9;
    };
    // Warm-up of both paths.
    await loadgen(url, take(500), 64);
    await queueEmptied(500);
    await drained();
    const webhook: LoadResult[] = [];
    const queue: Array<{ messages: number; seconds: number; perSecond: number }> = [];
    for (let round = 1; round <= ROUNDS; round++) {
      log(`sqs (${pollers} pollers) round ${round}/${ROUNDS}: webhook burst...`);
      webhook.push(await loadgen(url, take(INGEST_N), 64));
      await drained();
      log(`sqs (${pollers} pollers) round ${round}/${ROUNDS}: ${INGEST_N} messages on the queue...`);
      const seconds = await queueEmptied(INGEST_N);
      queue.push({ messages: INGEST_N, seconds, perSecond: INGEST_N / seconds });
      await drained();
    }
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
    const accepted = Number(/tajo_ses_sqs_messages_total\{outcome="accepted"\} (\d+)/.exec(metrics)?.[1] ?? NaN);
    const peak = serve.peakRssMb();
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
    const webhookRate = median(webhook.map((r) => r.perSecond));
    const sqsRate = median(queue.map((r) => r.perSecond));
    runs.push({
      pollers,
      webhook: webhook.map((r) => ({ perSecond: r.perSecond, p99Ms: r.p99Ms, ok: r.ok })),
      sqs: queue,
      medians: { webhookPerSecond: webhookRate, sqsCommittedPerSecond: sqsRate },
      ratio: sqsRate / webhookRate,
      sqsAccepted: accepted,
      sqsExpected: 500 + INGEST_N * ROUNDS,
      deadLettered: sqs.messages('bench-dlq').length,
      receiveCalls: sqs.calls()['ReceiveMessage'] ?? 0,
      connectorPeakRssMb: peak,
    });
  }
  brevo.stop();
  await sns.close();
  await sqs.close();
  return { rounds: ROUNDS, messagesPerTurn: INGEST_N, runs };
}

function sesRecords(payloads: Array<Record<string, unknown>>) {
  return payloads.flatMap((p) => parseSesNotification(p).records);
}

/**
 * Our drain: envelopes already stored (as the webhook leaves them), then `serve` (`processes`
 * of them at once: PostgreSQL only) until Brevo holds the final state.
 */
async function drain(payloads: Array<Record<string, unknown>>, opts: { store?: 'sqlite' | 'postgres'; processes?: number; importDelayMs?: number } = {}) {
  const processes = opts.processes ?? 1;
  const brevo = await startBrevoSim({ plan: 'general', importDelayMs: opts.importDelayMs ?? 50 });
  const dir = mkdtempSync(join(tmpdir(), 'tajo-drain-'));
  const pgs = opts.store === 'postgres' ? freshPgSchema('bench') : undefined;
  const storeUrl = pgs?.url ?? `sqlite:${join(dir, 'drain.db')}`;
  const ports: number[] = [];
  for (let i = 0; i < processes; i++) ports.push(await freePort());
  const docs = ports.map((port) => serveDoc({ port, store: storeUrl, brevo: { url: brevo.url, apiKey: brevo.apiKey, plan: 'general' } }));
  const cfg = parseConfig(docs[0]);
  const store = await openStore(storeUrl);
  await store.migrate();
  const envs: SnsEnvelope[] = payloads.map((p, i) => ({
    Type: 'Notification',
    MessageId: `m-${i}`,
    TopicArn: TOPIC,
    Message: JSON.stringify(p),
    Timestamp: new Date().toISOString(),
    SignatureVersion: '2',
    Signature: '',
    SigningCertURL: '',
  }));
  for (let i = 0; i < envs.length; i += 5000) {
    await store.insertInbox(
      envs.slice(i, i + 5000).map((e) => ({ messageId: e.MessageId, source: 'sns', topicArn: TOPIC, receivedAt: Date.now(), body: JSON.stringify(e) })),
    );
  }
  await store.close();
  const records = sesRecords(payloads);
  const exp = expectedBrevoState(records, cfg.connectors['amazon-ses'].events);
  const t0 = Date.now();
  const serves = docs.map((doc, i) => cli(['serve', '--config', writeConfig(dir, doc, `serve-${i}`)]));
  try {
    const seconds = await untilBrevoHolds(brevo, exp, t0, 3_600_000);
    if (seconds === null) throw new Error('drain never reached the final state');
    const peaks = serves.map((s) => peakRssOf(s.pid!));
    // Each process's own count of its Brevo calls (delivery; the set-up calls are not in it).
    const perProcessCalls = await Promise.all(
      ports.map((port) =>
        fetch(`http://127.0.0.1:${port}/metrics`)
          .then((r) => r.text())
          .then((t) => counterSum(t, 'tajo_ses_brevo_calls_total')),
      ),
    );
    const stats = brevo.stats();
    const state = brevo.state();
    return {
      events: payloads.length,
      processes,
      store: opts.store ?? 'sqlite',
      brevoEvents: exp.events.size,
      contacts: Object.keys(state.contacts).length,
      folders: state.folders.map((f) => f.name),
      lists: state.lists.map((l) => l.name),
      calls: stats.requests,
      byRoute: stats.byRoute,
      throttled429: stats.throttled,
      throttledByRoute: stats.throttledByRoute,
      seconds,
      connectorPeakRssMb: Math.max(...peaks),
      perProcessCalls,
      state,
    };
  } finally {
    for (const s of serves) await stopChild(s);
    await brevo.close();
    await pgs?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A cluster on PostgreSQL: for each count in --cluster-processes (1, 2, 3), a fresh schema,
 * that many `serve` processes on it, and CLUSTER_N signed notifications posted round-robin
 * across their webhooks (concurrency 64 in all; the first 1,000 warm the processes up and
 * are not in the ingest figures). Ingest is the rate and p99 of the webhook's answers (each
 * `200` after the durable commit); the drain is the time from the first post until the Brevo
 * simulator (general plan, imports applied IMPORT_DELAY_MS after Brevo accepts them) holds
 * the oracle's final state, and Brevo's calls by route. The same load on SQLite (one
 * process, the only way SQLite runs) comes first, for comparison.
 */
/** host:port/db of the PostgreSQL server, without credentials. */
function pgLabel(): string {
  const u = new URL(PG_SERVER);
  return `${u.hostname}:${u.port || 5432}${u.pathname}`;
}

/** The full run leaves the cluster part out, saying so, when no PostgreSQL server answers. */
async function pgReachable(): Promise<boolean> {
  try {
    await pgServerVersion();
    return true;
  } catch (err) {
    log(`cluster: skipped, no PostgreSQL at ${pgLabel()} (${err instanceof Error ? err.message : String(err)}); set TAJO_TEST_PG_URL`);
    return false;
  }
}

async function clusterBench() {
  const sns = await startSnsSim();
  const payloads = realisticMix(CLUSTER_N, { recipients: RECIPIENTS, seed: 77 });
  log(`cluster: signing ${payloads.length} SNS notifications...`);
  const bodies = payloads.map((p) => JSON.stringify(sns.notification(TOPIC, p)));
  const warm = Math.min(1000, Math.floor(CLUSTER_N / 10));
  const policies = parseConfig({ connectors: { 'amazon-ses': { region: 'us-east-1' } }, brevo: { api_key: 'x' } }).connectors['amazon-ses'].events;
  const exp = expectedBrevoState(sesRecords(payloads), policies);
  const postgresVersion = await pgServerVersion();

  const runOne = async (store: 'sqlite' | 'postgres', processes: number) => {
    log(`cluster: ${processes} × serve on ${store}...`);
    const brevo = await startBrevoSim({ plan: 'general', importDelayMs: IMPORT_DELAY_MS });
    const dir = mkdtempSync(join(tmpdir(), 'tajo-bench-cluster-'));
    const pgs = store === 'postgres' ? freshPgSchema('bench') : undefined;
    const storeUrl = pgs?.url ?? `sqlite:${join(dir, 'cluster.db')}`;
    const serves: Serve[] = [];
    try {
      // One after the other: the first migrates the schema (the others would wait on its lock).
      for (let i = 0; i < processes; i++)
        serves.push(
          await startServe(dir, `serve-${i}`, (port) =>
            serveDoc({ port, store: storeUrl, brevo: { url: brevo.url, apiKey: brevo.apiKey, plan: 'general' }, signed: true }),
          ),
        );
      const urls = serves.map((s) => s.webhook).join(',');
      const t0 = Date.now();
      const warmUp = await loadgen(urls, bodies.slice(0, warm), 64);
      const ingest = await loadgen(urls, bodies.slice(warm), 64);
      // What was not answered 200 is posted again, as SNS would (the first webhook gets it).
      const unanswered = [...warmUp.failed.map((i) => bodies[i]!), ...ingest.failed.map((i) => bodies[warm + i]!)];
      const retried = unanswered.length > 0 ? await loadgen(serves[0]!.webhook, unanswered, 8) : undefined;
      const lastPost = (Date.now() - t0) / 1000;
      const seconds = await untilBrevoHolds(brevo, exp, t0, 300_000);
      const stats = brevo.stats();
      const state = brevo.state();
      const keys = new Set(state.events.map((e) => String(e.event_properties?.event_key)));
      // What each process sent Brevo (its own counter), and what is left in the store.
      const perProcess = await Promise.all(
        serves.map(async (s) => {
          const metrics = await fetch(`${s.base}/metrics`).then((r) => r.text());
          return { brevoCalls: counterSum(metrics, 'tajo_ses_brevo_calls_total'), peakRssMb: s.peakRssMb() };
        }),
      );
      const status = (await fetch(`${serves[0]!.base}/admin/status`).then((r) => r.json())) as {
        inbox: Record<string, number>;
        deadLetters: number;
        cluster: { processes: Array<{ alive: boolean; role: string | null }> };
      };
      return {
        store,
        processes,
        registered: status.cluster.processes.filter((p) => p.alive).map((p) => p.role),
        ingest: {
          sent: ingest.sent,
          ok: ingest.ok + warmUp.ok,
          other: Object.fromEntries(
            [...new Set([...Object.keys(warmUp.other), ...Object.keys(ingest.other)])].map((k) => [k, (warmUp.other[k] ?? 0) + (ingest.other[k] ?? 0)]),
          ),
          retried: unanswered.length,
          retriedOk: retried?.ok ?? 0,
          perSecond: ingest.perSecond,
          p50Ms: ingest.p50Ms,
          p99Ms: ingest.p99Ms,
          maxMs: ingest.maxMs,
        },
        drain: {
          seconds,
          afterLastPostSeconds: seconds === null ? null : seconds - lastPost,
          reachedFinalState: seconds !== null,
          problems: seconds === null ? compareWithBrevo(exp, state).problems.slice(0, 10) : [],
          brevoEvents: exp.events.size,
          duplicateEvents: state.events.length - keys.size,
          folders: state.folders.map((f) => f.name),
          lists: state.lists.map((l) => l.name),
          calls: stats.requests,
          byRoute: stats.byRoute,
          throttled429: stats.throttled,
          throttledByRoute: stats.throttledByRoute,
          status: stats.status,
        },
        perProcess,
        inbox: status.inbox,
        deadLetters: status.deadLetters,
      };
    } finally {
      for (const s of serves) await s.stop();
      await brevo.close();
      await pgs?.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  };

  const runs = [await runOne('sqlite', 1)];
  for (const n of CLUSTER_PROCESSES) runs.push(await runOne('postgres', n));
  await sns.close();
  // The drain alone: the same notifications already stored, then the processes started at once
  // (the calls above also depend on how fast the posts came: a slower ingest is delivered in
  // more, smaller calls while it lasts).
  const backlog = [];
  for (const [store, n] of [['sqlite', 1] as const, ...CLUSTER_PROCESSES.map((k) => ['postgres', k] as const)]) {
    log(`cluster: backlog drain, ${n} × serve on ${store}...`);
    backlog.push({ ...(await drain(payloads, { store, processes: n, importDelayMs: IMPORT_DELAY_MS })), state: undefined });
  }
  return { notifications: CLUSTER_N, warmUp: warm, importDelayMs: IMPORT_DELAY_MS, postgres: { server: pgLabel(), version: postgresVersion }, runs, backlog };
}

/** The usual hand-written handler: for each SES record, one contact write and, when the type has one, one event call. */
async function baseline(payloads: Array<Record<string, unknown>>) {
  const brevo = await startBrevoSim({ plan: 'unlimited' });
  const client = new BrevoClient({ baseUrl: brevo.url, apiKey: brevo.apiKey });
  await ensureAttributes(client, { create: true });
  const cfg = parseConfig({ connectors: { 'amazon-ses': { region: 'us-east-1' } }, brevo: { api_key: 'x' } });
  const policy = cfg.connectors['amazon-ses'].events;
  const before = brevo.stats().requests;
  for (const p of payloads) {
    for (const r of parseSesNotification(p).records) {
      const c = contactChangesForEvent(r);
      const attributes = Object.fromEntries(Object.entries(c.attrs).map(([k, v]) => [k, v.v]));
      const pol = policy[r.type];
      if (pol === 'attributes' || pol === 'both' || c.blocklist)
        await client.upsertContact({ email: r.email, attributes, ...(c.blocklist ? { emailBlacklisted: true as const } : {}) });
      if (pol === 'event' || pol === 'both') {
        await client.sendEvent({
          event_name: EVENT_NAMES[r.type],
          event_date: new Date(r.timestamp).toISOString(),
          identifiers: { email_id: r.email },
          event_properties: { event_key: r.key, message_id: r.messageId },
        });
      }
    }
  }
  const calls = brevo.stats().requests - before;
  const state = brevo.state();
  await brevo.close();
  return { calls, projectedSecondsAt10PerSec: calls / 10, state };
}

/**
 * Attributes a per-record handler cannot write: SES_SOFT_BOUNCE_COUNT counts a recipient's
 * soft bounces across records (bounce_policy), which needs the state ours keeps in its store.
 */
const STATEFUL_ATTRIBUTES = new Set(['SES_SOFT_BOUNCE_COUNT']);

function sameState(a: BrevoSimState, b: BrevoSimState): string[] {
  const problems: string[] = [];
  const emails = new Set([...Object.keys(a.contacts), ...Object.keys(b.contacts)]);
  for (const e of emails) {
    const x = a.contacts[e];
    const y = b.contacts[e];
    if (!x || !y) {
      problems.push(`${e} only in ${x ? 'ours' : 'baseline'}`);
      continue;
    }
    if (x.emailBlacklisted !== y.emailBlacklisted) problems.push(`${e}: blocklist ${x.emailBlacklisted} vs ${y.emailBlacklisted}`);
    for (const k of Object.keys(SES_ATTRIBUTES))
      if (!STATEFUL_ATTRIBUTES.has(k) && x.attributes[k] !== y.attributes[k])
        problems.push(`${e}: ${k} ${JSON.stringify(x.attributes[k])} vs ${JSON.stringify(y.attributes[k])}`);
  }
  const ka = new Set(a.events.map((e) => String(e.event_properties?.event_key)));
  const kb = new Set(b.events.map((e) => String(e.event_properties?.event_key)));
  for (const k of ka) if (!kb.has(k)) problems.push(`event ${k} only in ours`);
  for (const k of kb) if (!ka.has(k)) problems.push(`event ${k} only in baseline`);
  if (a.events.length !== ka.size) problems.push(`ours has ${a.events.length - ka.size} duplicate events`);
  return problems;
}

async function backfill() {
  const brevo = await startBrevoSim({ plan: 'general', importDelayMs: 200 });
  const ses = await startSesSim({ rps: 1 });
  ses.generate({ lists: 2, topicsPerList: 2, contacts: BACKFILL_N, suppressions: Math.round(BACKFILL_N / 10), seed: 9 });
  const dir = mkdtempSync(join(tmpdir(), 'tajo-bfb-'));
  const config = writeConfig(dir, {
    connectors: { 'amazon-ses': { region: 'us-east-1', endpoint: ses.endpoint } },
    brevo: { api_key: brevo.apiKey, base_url: brevo.url },
    store: { url: `sqlite:${join(dir, 'bf.db')}` },
    log: { level: 'warn' },
  });
  const t0 = Date.now();
  const child = cli(['backfill', '--json', '--config', config], {
    AWS_ACCESS_KEY_ID: 'BENCH',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  // VmHWM is gone once the process exits: sample it while it runs.
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, peakRssOf(child.pid!) || 0)), 200);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  clearInterval(timer);
  const seconds = (Date.now() - t0) / 1000;
  await brevo.settle();
  const cmp = compareBackfill(ses.data(), brevo.state());
  const calls = ses.calls();
  const totalCalls = Object.values(calls).reduce((a, b) => a + b, 0);
  const stats = brevo.stats();
  await brevo.close();
  await ses.close();
  rmSync(dir, { recursive: true, force: true });
  // The SES quota alone needs one second per call after the first.
  return {
    exitCode: code,
    contacts: BACKFILL_N,
    suppressions: Math.round(BACKFILL_N / 10),
    seconds,
    sesCalls: totalCalls,
    sesCallsByOperation: calls,
    lowerBoundSeconds: totalCalls - 1,
    sesThrottled: ses.throttled(),
    brevoCalls: stats.requests,
    brevoByRoute: stats.byRoute,
    matchesSes: cmp.ok,
    problems: cmp.problems.slice(0, 5),
    connectorPeakRssMb: peak,
  };
}

async function main(): Promise<void> {
  const machine = {
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    date: new Date().toISOString(),
  };
  const out: Record<string, unknown> = { machine };
  if (!ONLY || ONLY === 'ingest') {
    out.ingest = await ingest();
    log(JSON.stringify(out.ingest));
  }
  if (!ONLY || ONLY === 'sqs') {
    out.sqs = await sqsIngest();
    log(JSON.stringify(out.sqs));
  }
  if (ONLY === 'cluster' || (!ONLY && (await pgReachable()))) {
    out.cluster = await clusterBench();
    log(JSON.stringify(out.cluster));
  }
  if (!ONLY || ONLY === 'drain') {
    const full = realisticMix(DRAIN_N, { recipients: RECIPIENTS, seed: 33 });
    const slice = full.slice(0, SLICE_N);
    log(`drain: our connector on the ${SLICE_N}-event slice...`);
    const oursSlice = await drain(slice);
    log(`drain: baseline on the slice...`);
    const base = await baseline(slice);
    const diff = sameState(oursSlice.state, base.state);
    log(`drain: our connector on the full ${DRAIN_N} events...`);
    const oursFull = await drain(full);
    const strip = <T extends { state: unknown }>(x: T) => ({ ...x, state: undefined });
    out.drain = {
      slice: {
        ours: strip(oursSlice),
        baseline: strip(base),
        sameFinalState: diff.length === 0,
        differenceCount: diff.length,
        differences: diff.slice(0, 10),
        // Written by ours only (STATEFUL_ATTRIBUTES), not compared: how many contacts carry each.
        oursOnly: Object.fromEntries(
          [...STATEFUL_ATTRIBUTES].map((k) => [k, Object.values(oursSlice.state.contacts).filter((c) => c.attributes[k] !== undefined).length]),
        ),
      },
      full: {
        ours: strip(oursFull),
        baselineProjected: { calls: Math.round((base.calls * DRAIN_N) / SLICE_N), seconds: (base.calls * DRAIN_N) / SLICE_N / 10 },
      },
    };
    log(JSON.stringify(out.drain));
  }
  if (!ONLY || ONLY === 'backfill') {
    log(`backfill of ${BACKFILL_N} contacts at 1 SES req/s...`);
    out.backfill = await backfill();
    log(JSON.stringify(out.backfill));
  }
  console.log(JSON.stringify(out, null, 2));
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
