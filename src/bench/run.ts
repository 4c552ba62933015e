// `npm run bench`: ingest and drain, side by side with a verify-only handler and with a
// per-event baseline, on this machine. Prints a JSON summary and a Markdown table.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { pino } from 'pino';
import { startBrevoSim, type BrevoSimState } from '../sim/brevo/index.js';
import { startSnsSim } from '../sim/sns/index.js';
import { startSesSim } from '../sim/ses/index.js';
import { realisticMix } from '../sim/ses-events/index.js';
import { verifySnsMessage, CertCache, SnsVerificationError } from '../ses/sns.js';
import { parseConfig } from '../config/load.js';
import { createConnector } from '../engine/connector.js';
import { buildServer } from '../server/app.js';
import { parseSesNotification } from '../ses/parse.js';
import { contactChangesForEvent } from '../core/plan.js';
import { EVENT_NAMES, SES_ATTRIBUTES } from '../core/brevo-model.js';
import { BrevoClient } from '../brevo/client.js';
import { ensureAttributes } from '../engine/setup.js';
import { expectedBrevoState, compareWithBrevo } from '../sim/oracle.js';
import type { SnsEnvelope } from '../ses/sns.js';

const here = dirname(fileURLToPath(import.meta.url));
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';
const quiet = pino({ level: 'silent' });

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const INGEST_N = Number(args.get('ingest') ?? 12_000);
const DRAIN_N = Number(args.get('drain') ?? 100_000);
const SLICE_N = Number(args.get('slice') ?? 5_000);
const RECIPIENTS = Number(args.get('recipients') ?? 20_000);
const BACKFILL_N = Number(args.get('backfill') ?? 100_000);
const ONLY = args.get('only');

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

function rssPeak(): { sample: () => void; stop: () => number } {
  let peak = process.memoryUsage().rss;
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  return {
    sample: () => (peak = Math.max(peak, process.memoryUsage().rss)),
    stop: () => {
      clearInterval(t);
      return Math.max(peak, process.memoryUsage().rss);
    },
  };
}

interface LoadResult {
  sent: number;
  ok: number;
  other: Record<string, number>;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function loadgen(url: string, bodies: string[], concurrency: number, rate?: number): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tajo-bodies-'));
  const file = join(dir, 'bodies.json');
  writeFileSync(file, JSON.stringify(bodies));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, 'loadgen.js'), url, file, String(concurrency), ...(rate ? [String(rate)] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      rmSync(dir, { recursive: true, force: true });
      if (code === 0) resolve(JSON.parse(out) as LoadResult);
      else reject(new Error(`loadgen exited ${code}`));
    });
  });
}

function startBrevoChild(plan: string): Promise<{ url: string; stop: () => void }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, '..', 'sim', 'brevo', 'main.js'), '--plan', plan], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.once('data', (d: Buffer) => resolve({ url: d.toString().trim().split('\n')[0]!, stop: () => child.kill('SIGTERM') }));
    child.once('error', reject);
  });
}

async function ingest() {
  const sns = await startSnsSim();
  const payloads = realisticMix(INGEST_N * 2, { recipients: RECIPIENTS, seed: 21 });
  log(`signing ${payloads.length} SNS notifications...`);
  const bodies = payloads.map((p) => JSON.stringify(sns.notification(TOPIC, p)));
  const main = bodies.slice(0, INGEST_N);
  const rest = bodies.slice(INGEST_N);
  const certCache = new CertCache();
  const verifyOpts = { topicArns: [TOPIC], maxMessageAgeMs: 3_600_000, signingCertHosts: ['^127\\.0\\.0\\.1$'], allowHttpCertUrls: true, certCache };

  // Upper bound: same framework, same body handling, same signature check, stores nothing.
  const bare = Fastify({ logger: false, bodyLimit: 256 * 1024 });
  bare.removeAllContentTypeParsers();
  bare.addContentTypeParser('*', { parseAs: 'string' }, (_r, b, done) => done(null, b));
  bare.post('/webhooks/amazon-ses', async (req, reply) => {
    try {
      await verifySnsMessage(req.body as string, verifyOpts);
      return reply.code(200).send({ ok: true, outcome: 'verified' });
    } catch (err) {
      return reply.code(err instanceof SnsVerificationError ? err.status : 500).send({ ok: false });
    }
  });
  await bare.listen({ port: 0, host: '127.0.0.1' });
  const bareUrl = `http://127.0.0.1:${(bare.server.address() as AddressInfo).port}/webhooks/amazon-ses`;
  await loadgen(bareUrl, rest.slice(0, 1000), 64);
  log('verify-only handler...');
  const bareRes = await loadgen(bareUrl, main, 64);
  await bare.close();

  const brevo = await startBrevoChild('unlimited');
  const dir = mkdtempSync(join(tmpdir(), 'tajo-bench-'));
  const cfg = parseConfig({
    connectors: { 'amazon-ses': { region: 'us-east-1', sns: { topic_arns: [TOPIC], signing_cert_hosts: ['^127\\.0\\.0\\.1$'], allow_http_cert_urls: true } } },
    brevo: { api_key: 'sim-key', base_url: brevo.url, plan: 'extended' },
    store: { url: `sqlite:${join(dir, 'ingest.db')}` },
  });
  const connector = await createConnector(cfg, { logger: quiet });
  await connector.start();
  const app = buildServer(connector);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/webhooks/amazon-ses`;
  await loadgen(url, rest.slice(0, 1000), 64);
  log('connector (durable commit on SQLite, synchronous=FULL, workers running)...');
  const rss = rssPeak();
  const ours = await loadgen(url, main, 64);
  const halfRate = Math.max(1, Math.round(ours.perSecond / 2));
  const halfBodies = rest.slice(1000, 1000 + Math.min(rest.length - 1000, halfRate * 8));
  log(`connector at half its rate (${halfRate}/s)...`);
  const half = await loadgen(url, halfBodies, 64, halfRate);
  const peak = rss.stop();
  const stored = (await connector.store.stats()).inbox;
  await app.close();
  await connector.stop();
  brevo.stop();
  await sns.close();
  rmSync(dir, { recursive: true, force: true });
  return { verifyOnly: bareRes, connector: ours, connectorHalfRate: { rate: halfRate, ...half }, ratio: ours.perSecond / bareRes.perSecond, peakRssMb: peak / 1048576, stored };
}

function sesRecords(payloads: Array<Record<string, unknown>>) {
  return payloads.flatMap((p) => parseSesNotification(p).records);
}

/** Our drain: envelopes already stored (as the webhook leaves them), then time to Brevo's final state. */
async function drain(payloads: Array<Record<string, unknown>>, plan: 'general' | 'unlimited') {
  const brevo = await startBrevoSim({ plan, importDelayMs: 50 });
  const sns = await startSnsSim();
  const dir = mkdtempSync(join(tmpdir(), 'tajo-drain-'));
  const cfg = parseConfig({
    connectors: { 'amazon-ses': { region: 'us-east-1', sns: { topic_arns: [TOPIC] } } },
    brevo: { api_key: brevo.apiKey, base_url: brevo.url, plan: 'general' },
    store: { url: `sqlite:${join(dir, 'drain.db')}` },
  });
  const connector = await createConnector(cfg, { logger: quiet });
  await connector.store.migrate();
  const envs: SnsEnvelope[] = payloads.map((p, i) => ({ Type: 'Notification', MessageId: `m-${i}`, TopicArn: TOPIC, Message: JSON.stringify(p), Timestamp: new Date().toISOString(), SignatureVersion: '2', Signature: '', SigningCertURL: '' }));
  for (let i = 0; i < envs.length; i += 5000) {
    await connector.store.insertInbox(envs.slice(i, i + 5000).map((e) => ({ messageId: e.MessageId, source: 'sns', topicArn: TOPIC, receivedAt: Date.now(), body: JSON.stringify(e) })));
  }
  const records = sesRecords(payloads);
  const exp = expectedBrevoState(records, cfg.connectors['amazon-ses'].events);
  const rss = rssPeak();
  const t0 = Date.now();
  await connector.start();
  let finalMs: number;
  for (;;) {
    await connector.waitIdle(3_600_000);
    await brevo.settle();
    const cmp = compareWithBrevo(exp, brevo.state());
    if (cmp.ok) {
      finalMs = Date.now() - t0;
      break;
    }
    if (Date.now() - t0 > 3_600_000) throw new Error(`drain never reached the final state: ${cmp.problems.slice(0, 3).join('; ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const peak = rss.stop();
  const stats = brevo.stats();
  const state = brevo.state();
  await connector.stop();
  await brevo.close();
  await sns.close();
  rmSync(dir, { recursive: true, force: true });
  return { events: payloads.length, brevoEvents: exp.events.size, contacts: Object.keys(state.contacts).length, calls: stats.requests, byRoute: stats.byRoute, throttled429: stats.throttled, seconds: finalMs / 1000, peakRssMb: peak / 1048576, state };
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
      if (pol === 'attributes' || pol === 'both' || c.blocklist) await client.upsertContact({ email: r.email, attributes, ...(c.blocklist ? { emailBlacklisted: true as const } : {}) });
      if (pol === 'event' || pol === 'both') {
        await client.sendEvent({ event_name: EVENT_NAMES[r.type], event_date: new Date(r.timestamp).toISOString(), identifiers: { email_id: r.email }, event_properties: { event_key: r.key, message_id: r.messageId } });
      }
    }
  }
  const calls = brevo.stats().requests - before;
  const state = brevo.state();
  await brevo.close();
  return { calls, projectedSecondsAt10PerSec: calls / 10, state };
}

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
    for (const k of Object.keys(SES_ATTRIBUTES)) if (x.attributes[k] !== y.attributes[k]) problems.push(`${e}: ${k} ${JSON.stringify(x.attributes[k])} vs ${JSON.stringify(y.attributes[k])}`);
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
  const cfg = parseConfig({
    connectors: { 'amazon-ses': { region: 'us-east-1', endpoint: ses.endpoint } },
    brevo: { api_key: brevo.apiKey, base_url: brevo.url },
    store: { url: `sqlite:${join(dir, 'bf.db')}` },
  });
  const connector = await createConnector(cfg, { logger: quiet, ses: { credentials: { accessKeyId: 'B', secretAccessKey: 'b' } } });
  await connector.start();
  const rss = rssPeak();
  const t0 = Date.now();
  const summary = await connector.backfill();
  await connector.waitIdle(3_600_000);
  await brevo.settle();
  const seconds = (Date.now() - t0) / 1000;
  const peak = rss.stop();
  const calls = ses.calls();
  const totalCalls = Object.values(calls).reduce((a, b) => a + b, 0);
  const stats = brevo.stats();
  await connector.stop();
  await brevo.close();
  await ses.close();
  rmSync(dir, { recursive: true, force: true });
  return { contacts: summary.streams.contacts?.read ?? 0, suppressions: summary.streams.suppressions?.read ?? 0, seconds, sesCalls: totalCalls, lowerBoundSeconds: totalCalls - 1, sesThrottled: ses.throttled(), brevoCalls: stats.requests, peakRssMb: peak / 1048576 };
}

async function main(): Promise<void> {
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memGb: Math.round(totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() };
  const out: Record<string, unknown> = { machine };
  if (!ONLY || ONLY === 'ingest') {
    out.ingest = await ingest();
    log(JSON.stringify(out.ingest));
  }
  if (!ONLY || ONLY === 'drain') {
    const full = realisticMix(DRAIN_N, { recipients: RECIPIENTS, seed: 33 });
    const slice = full.slice(0, SLICE_N);
    log(`drain: our connector on the ${SLICE_N}-event slice...`);
    const oursSlice = await drain(slice, 'general');
    log(`drain: baseline on the slice...`);
    const base = await baseline(slice);
    const diff = sameState(oursSlice.state, base.state);
    log(`drain: our connector on the full ${DRAIN_N} events...`);
    const oursFull = await drain(full, 'general');
    const strip = <T extends { state: unknown }>(x: T) => ({ ...x, state: undefined });
    out.drain = {
      slice: { ours: strip(oursSlice), baseline: strip(base), sameFinalState: diff.length === 0, differences: diff.slice(0, 10) },
      full: { ours: strip(oursFull), baselineProjected: { calls: Math.round((base.calls * DRAIN_N) / SLICE_N), seconds: (base.calls * DRAIN_N) / SLICE_N / 10 } },
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
