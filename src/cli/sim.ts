// `tajo-ses sim brevo|ses|sns`: the simulators as long-running commands, so an operator can
// rehearse outages (Brevo failing or slow, SES throttling, SNS bursts) against a real `serve`
// without writing code. Each prints where it listens as its first line and stops on
// SIGINT/SIGTERM with exit 0.
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { startBrevoSim, type BrevoPlan, type BrevoSimStats, type BrevoSimSummary } from '../sim/brevo/index.js';
import { startSesSim } from '../sim/ses/index.js';
import { startSqsSim } from '../sim/sqs/index.js';
import { startSnsSim, type SnsSim } from '../sim/sns/index.js';
import { realisticMix, type SesPayload } from '../sim/ses-events/index.js';
import { DEFAULT_SIM_HOST } from '../sim/listen.js';
import { regionOfTopicArn, type SnsEnvelope } from '../ses/sns.js';
import { errorMessage } from '../core/errors.js';
import { choiceFlag, intFlag, numberFlag, parse, UsageError, type Flags } from './args.js';
import { untilSignal } from './signals.js';
import { DEMO_TOPIC } from './demo.js';
import type { Out } from './output.js';

export const SIM_KINDS = ['brevo', 'ses', 'sns', 'sqs'] as const;
export type SimKind = (typeof SIM_KINDS)[number];

const PLANS: readonly BrevoPlan[] = ['general', 'advanced', 'extended', 'unlimited'];
/** A progress line at most this often, and only when something changed. */
const REPORT_EVERY_MS = 5_000;
/** SNS keeps a bounded number of deliveries open per endpoint; so does the simulator. */
const MAX_IN_FLIGHT = 64;
const TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$/;

const LISTEN_OPTIONS = { port: { type: 'string' }, host: { type: 'string' } } as const;

function listenFlags(flags: Flags): { port: number; host: string } {
  const host = (flags.host as string | undefined) ?? DEFAULT_SIM_HOST;
  if (host.trim() === '') throw new UsageError('--host: found ""; expected an address such as 127.0.0.1');
  return { port: intFlag(flags.port, 'port', 0, 0, 65535), host };
}

export async function simCommand(argv: string[], out: Out): Promise<number> {
  const [kind, ...rest] = argv;
  switch (kind) {
    case 'brevo':
      return simBrevo(rest, out);
    case 'ses':
      return simSes(rest, out);
    case 'sns':
      return simSns(rest, out);
    case 'sqs':
      return simSqs(rest, out);
    default:
      throw new UsageError(
        `sim: ${kind === undefined ? 'name a simulator' : `unknown simulator ${JSON.stringify(kind)}`}; use 'tajo-ses sim brevo|ses|sns|sqs' (see 'tajo-ses sim --help')`,
      );
  }
}

interface Report {
  /** What changed since the last line; an unchanged key prints nothing. */
  key: string;
  obj: object;
  human: string;
}

/** Prints a report line every few seconds while something changes; returns the function that stops it. */
function reportWhileChanging(out: Out, report: () => Report): () => void {
  let last = report().key;
  const timer = setInterval(() => {
    const r = report();
    if (r.key === last) return;
    last = r.key;
    out.emit(r.obj, () => r.human);
  }, REPORT_EVERY_MS);
  return () => clearInterval(timer);
}

/** Reports until SIGINT/SIGTERM, then prints a last report. */
async function reportUntilSignal(out: Out, report: () => Report): Promise<void> {
  const stopReporting = reportWhileChanging(out, report);
  const sig = await untilSignal();
  stopReporting();
  const r = report();
  out.emit({ stopped: sig, ...r.obj }, () => `${r.human}\nstopped (${sig})`);
}

function counts(rec: Record<string, number>): string {
  return Object.entries(rec)
    .map(([k, n]) => `${k} x${n}`)
    .join(', ');
}

// ---------------------------------------------------------------------------------- Brevo

async function simBrevo(argv: string[], out: Out): Promise<number> {
  const { flags } = parse(argv, {
    ...LISTEN_OPTIONS,
    plan: { type: 'string' },
    'fail-rate': { type: 'string' },
    'throttle-rate': { type: 'string' },
    'drop-rate': { type: 'string' },
    'reset-after-apply-rate': { type: 'string' },
    'bare-throttle-rate': { type: 'string' },
    'hang-rate': { type: 'string' },
    'hang-ms': { type: 'string' },
    'malformed-rate': { type: 'string' },
    outage: { type: 'string' },
    latency: { type: 'string' },
    'import-delay': { type: 'string' },
    'events-batch-bucket': { type: 'string' },
    'api-key': { type: 'string' },
    seed: { type: 'string' },
  });
  const listen = listenFlags(flags);
  const plan = choiceFlag(flags.plan, 'plan', 'general', PLANS);
  const apiKey = (flags['api-key'] as string | undefined) ?? 'sim-key';
  if (apiKey === '') throw new UsageError('--api-key: found ""; give the key the connector sends (brevo.api_key)');
  const seed = flags.seed === undefined ? undefined : intFlag(flags.seed, 'seed', 0, 0, 2 ** 31 - 1);
  const faults = {
    errorRate: numberFlag(flags['fail-rate'], 'fail-rate', 0, 0, 1),
    throttleRate: numberFlag(flags['throttle-rate'], 'throttle-rate', 0, 0, 1),
    dropRate: numberFlag(flags['drop-rate'], 'drop-rate', 0, 0, 1),
    dropAfterApplyRate: numberFlag(flags['reset-after-apply-rate'], 'reset-after-apply-rate', 0, 0, 1),
    throttleBareRate: numberFlag(flags['bare-throttle-rate'], 'bare-throttle-rate', 0, 0, 1),
    hangRate: numberFlag(flags['hang-rate'], 'hang-rate', 0, 0, 1),
    hangMs: intFlag(flags['hang-ms'], 'hang-ms', 60_000, 0, 3_600_000),
    malformedRate: numberFlag(flags['malformed-rate'], 'malformed-rate', 0, 0, 1),
    outageSeconds: intFlag(flags.outage, 'outage', 0, 0, 86_400),
    latencyMs: intFlag(flags.latency, 'latency', 0, 0, 600_000),
    ...(seed === undefined ? {} : { seed }),
  };
  const importDelayMs = intFlag(flags['import-delay'], 'import-delay', 50, 0, 3_600_000);
  const eventsBatchBucket = choiceFlag(flags['events-batch-bucket'], 'events-batch-bucket', 'events', ['events', 'other'] as const);
  const sim = await startBrevoSim({ ...listen, plan, apiKey, importDelayMs, faults, eventsBatchBucket });
  const origin = sim.url.replace(/\/v3$/, '');
  const shown = [
    `plan ${plan}`,
    faults.errorRate ? `fail-rate ${faults.errorRate}` : '',
    faults.throttleRate ? `throttle-rate ${faults.throttleRate}` : '',
    faults.dropRate ? `drop-rate ${faults.dropRate}` : '',
    faults.dropAfterApplyRate ? `reset-after-apply-rate ${faults.dropAfterApplyRate}` : '',
    faults.throttleBareRate ? `bare-throttle-rate ${faults.throttleBareRate}` : '',
    faults.hangRate ? `hang-rate ${faults.hangRate} (${faults.hangMs} ms)` : '',
    faults.malformedRate ? `malformed-rate ${faults.malformedRate}` : '',
    faults.outageSeconds ? `outage for the first ${faults.outageSeconds} s` : '',
    faults.latencyMs ? `latency ${faults.latencyMs} ms` : '',
    `import-delay ${importDelayMs} ms`,
    eventsBatchBucket === 'other' ? '/v3/events/batch counted in the hourly "other" bucket' : '',
  ].filter(Boolean);
  out.emit(
    { sim: 'brevo', url: sim.url, port: sim.port, apiKey, plan, importDelayMs, faults, statsUrl: `${origin}/sim/stats`, faultsUrl: `${origin}/sim/faults` },
    () =>
      [
        `Brevo simulator on ${sim.url} (api-key ${apiKey}; ${shown.join('; ')})`,
        `  connector: brevo.base_url: ${sim.url} and brevo.api_key: ${apiKey}`,
        `  GET ${origin}/sim/stats shows what it holds; POST ${origin}/sim/faults '{"errorRate":1}' starts an outage, '{"errorRate":0}' ends it`,
        `  Ctrl-C stops it`,
      ].join('\n'),
  );
  try {
    await reportUntilSignal(out, () => brevoReport(sim.stats(), sim.summary()));
  } finally {
    await sim.close();
  }
  return 0;
}

function brevoReport(stats: BrevoSimStats, holds: BrevoSimSummary): Report {
  return {
    key: JSON.stringify([stats.requests, holds]),
    obj: { requests: stats.requests, answers: stats.status, holds },
    human:
      `requests ${stats.requests}${stats.requests ? ` (${counts(stats.status)})` : ''}; holds ${holds.contacts} contacts (${holds.blocklisted} blocklisted), ` +
      `${holds.events} events, ${holds.lists} lists, ${holds.importsOpen} of ${holds.imports} imports open`,
  };
}

// ------------------------------------------------------------------------------------ SES

async function simSes(argv: string[], out: Out): Promise<number> {
  const { flags } = parse(argv, {
    ...LISTEN_OPTIONS,
    contacts: { type: 'string' },
    suppressed: { type: 'string' },
    lists: { type: 'string' },
    topics: { type: 'string' },
    rps: { type: 'string' },
    seed: { type: 'string' },
  });
  const listen = listenFlags(flags);
  const contacts = intFlag(flags.contacts, 'contacts', 1000, 0, 5_000_000);
  const suppressed = intFlag(flags.suppressed, 'suppressed', 100, 0, 5_000_000);
  const lists = intFlag(flags.lists, 'lists', 1, 1, 1000);
  const topics = intFlag(flags.topics, 'topics', 3, 0, 20);
  // 0 turns the throttle off; SES itself allows 1 request/s per account and region by default.
  const rps = numberFlag(flags.rps, 'rps', 1, 0, 100_000);
  const seed = intFlag(flags.seed, 'seed', 1, 0, 2 ** 31 - 1);
  const sim = await startSesSim({ ...listen, rps: rps === 0 ? Infinity : rps });
  try {
    sim.generate({ lists, topicsPerList: topics, contacts, suppressions: suppressed, seed });
    out.emit({ sim: 'ses', endpoint: sim.endpoint, port: sim.port, contacts, suppressed, lists, topics, rps }, () =>
      [
        `SES v2 API simulator on ${sim.endpoint} (${contacts} contacts in ${lists} contact list(s) of ${topics} topics, ${suppressed} suppressed addresses, ${rps === 0 ? 'no throttle' : `${rps} req/s`})`,
        `  connector: connectors.amazon-ses.endpoint: ${sim.endpoint}; it accepts any AWS credentials (e.g. AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local)`,
        `  Ctrl-C stops it`,
      ].join('\n'),
    );
    await reportUntilSignal(out, () => {
      const calls = sim.calls();
      const total = Object.values(calls).reduce((a, n) => a + n, 0);
      const throttled = sim.throttled();
      return {
        key: JSON.stringify([total, throttled]),
        obj: { calls, throttled },
        human: `calls ${total}${total ? ` (${counts(calls)})` : ''}; throttled ${throttled}`,
      };
    });
  } finally {
    await sim.close();
  }
  return 0;
}

// ------------------------------------------------------------------------------------ SQS

async function simSqs(argv: string[], out: Out): Promise<number> {
  const { flags } = parse(argv, { ...LISTEN_OPTIONS, queue: { type: 'string' }, visibility: { type: 'string' }, 'max-receive': { type: 'string' } });
  const listen = listenFlags(flags);
  const queue = (flags.queue as string | undefined) ?? 'ses-events';
  if (!/^[A-Za-z0-9_-]{1,75}$/.test(queue)) throw new UsageError(`--queue: found ${JSON.stringify(queue)}; expected 1 to 75 letters, digits, - or _`);
  const visibility = intFlag(flags.visibility, 'visibility', 30, 0, 43_200);
  const maxReceive = intFlag(flags['max-receive'], 'max-receive', 5, 1, 1000);
  const sim = await startSqsSim(listen);
  try {
    const dlq = `${queue}-dlq`;
    sim.createQueue(dlq);
    const url = sim.createQueue(queue, { visibilityTimeoutSeconds: visibility, redrive: { deadLetterQueue: dlq, maxReceiveCount: maxReceive } });
    out.emit({ sim: 'sqs', endpoint: sim.endpoint, queueUrl: url, deadLetterQueueUrl: sim.queueUrl(dlq), visibility, maxReceive }, () =>
      [
        `SQS simulator on ${sim.endpoint}: queue ${url} (visibility ${visibility} s, to ${dlq} after ${maxReceive} receives)`,
        `  connector: connectors.amazon-ses.sqs: { queue_url: ${url}, endpoint: ${sim.endpoint} }; any AWS credentials work`,
        `  Ctrl-C stops it`,
      ].join('\n'),
    );
    await reportUntilSignal(out, () => {
      const calls = sim.calls();
      const depth = sim.messages(queue).length;
      const dead = sim.messages(dlq).length;
      return {
        key: JSON.stringify([calls, depth, dead]),
        obj: { calls, depth, dead },
        human: `queue ${depth}, dead-letter queue ${dead}; calls ${counts(calls)}`,
      };
    });
  } finally {
    await sim.close();
  }
  return 0;
}

// ------------------------------------------------------------------------------------ SNS

interface Tally {
  published: number;
  acknowledged: number;
  failed: number;
  retries: number;
  /** Answers by HTTP status ('no answer' for a refused or timed-out connection). */
  answers: Record<string, number>;
}

/** `403 bad_signature: ...` from the connector's JSON answer, or the start of any other body. */
function answerReason(status: number, body: string): string {
  try {
    const j = JSON.parse(body) as { reason?: unknown; message?: unknown };
    if (typeof j.reason === 'string') return `${status} ${j.reason}${typeof j.message === 'string' ? `: ${j.message}` : ''}`;
  } catch {
    // not JSON: show the text
  }
  return `${status} ${body.slice(0, 120)}`.trim();
}

interface Delivery {
  sns: SnsSim;
  url: string;
  retries: number;
  stop: AbortSignal;
  tally: Tally;
  /** Called once per distinct reason a delivery was not acknowledged, so a down endpoint prints one line, not thousands. */
  onProblem: (reason: string) => void;
}

/** Posts like SNS: a 2xx acknowledges; no answer, 429 and 5xx are retried with backoff; any other answer is final. */
async function deliver(d: Delivery, env: SnsEnvelope): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    let status: number | undefined;
    let reason: string;
    try {
      const r = await d.sns.publish(d.url, env);
      status = r.status;
      reason = answerReason(r.status, r.body);
    } catch (err) {
      reason = `no answer: ${errorMessage(err)}`;
    }
    const key = status === undefined ? 'no answer' : String(status);
    d.tally.answers[key] = (d.tally.answers[key] ?? 0) + 1;
    if (status !== undefined && status >= 200 && status < 300) return true;
    d.onProblem(reason);
    const retryable = status === undefined || status === 429 || status >= 500;
    if (!retryable || attempt >= d.retries || d.stop.aborted) return false;
    d.tally.retries++;
    await sleep(Math.min(1000 * 2 ** attempt, 20_000), undefined, { signal: d.stop }).catch(() => undefined);
    if (d.stop.aborted) return false;
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Endless SES events: deterministic chunks of a realistic mix, timed from now. */
function* sesPayloads(recipients: number, seed: number): Generator<SesPayload> {
  for (let chunk = 0; ; chunk++) yield* realisticMix(1000, { recipients, seed: seed + chunk, start: new Date() });
}

async function simSns(argv: string[], out: Out): Promise<number> {
  const { flags } = parse(argv, {
    ...LISTEN_OPTIONS,
    url: { type: 'string' },
    rate: { type: 'string' },
    count: { type: 'string' },
    topic: { type: 'string' },
    recipients: { type: 'string' },
    retries: { type: 'string' },
    seed: { type: 'string' },
  });
  const listen = listenFlags(flags);
  const url = flags.url as string | undefined;
  if (url === undefined) throw new UsageError("--url: required: the connector's webhook, e.g. --url http://127.0.0.1:8080/webhooks/amazon-ses");
  if (!/^https?:\/\/[^/]/.test(url) || !URL.canParse(url)) throw new UsageError(`--url: found ${JSON.stringify(url)}; expected an http(s) URL`);
  const topic = (flags.topic as string | undefined) ?? DEMO_TOPIC;
  const region = regionOfTopicArn(topic);
  if (!TOPIC_ARN.test(topic) || region === undefined)
    throw new UsageError(`--topic: found ${JSON.stringify(topic)}; expected an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)`);
  const rate = numberFlag(flags.rate, 'rate', 5, 0.01, 10_000);
  const count = intFlag(flags.count, 'count', 0, 0, 100_000_000);
  const recipients = intFlag(flags.recipients, 'recipients', 50, 1, 10_000_000);
  const retries = intFlag(flags.retries, 'retries', 5, 0, 100);
  const seed = intFlag(flags.seed, 'seed', 1, 0, 2 ** 31 - 1);

  const sns = await startSnsSim({ ...listen, region });
  const stop = new AbortController();
  // Every delivery waiting to retry listens to it.
  setMaxListeners(MAX_IN_FLIGHT + 8, stop.signal);
  let signalled: NodeJS.Signals | undefined;
  void untilSignal(stop.signal).then((sig) => {
    if (sig === undefined) return;
    signalled = sig;
    stop.abort();
  });
  const tally: Tally = { published: 0, acknowledged: 0, failed: 0, retries: 0, answers: {} };
  const seen = new Set<string>();
  const d: Delivery = {
    sns,
    url,
    retries,
    stop: stop.signal,
    tally,
    onProblem: (reason) => {
      if (seen.has(reason)) return;
      seen.add(reason);
      out.err(`not acknowledged: ${reason}`);
    },
  };
  const certHosts = [`^${escapeRegex(new URL(sns.certUrl).hostname)}$`];
  const report = (): Report => {
    const open = tally.published - tally.acknowledged - tally.failed;
    return {
      key: JSON.stringify(tally),
      obj: { ...tally, inFlight: open },
      human: `published ${tally.published}: acknowledged ${tally.acknowledged}, failed ${tally.failed}, in flight ${open}, retries ${tally.retries}${tally.published ? ` (answers: ${counts(tally.answers)})` : ''}`,
    };
  };
  let stopReporting = (): void => undefined;
  try {
    out.emit(
      {
        sim: 'sns',
        url: sns.url,
        port: Number(new URL(sns.url).port),
        certUrl: sns.certUrl,
        target: url,
        topic,
        rate,
        count,
        connectorConfig: { signing_cert_hosts: certHosts, allow_http_cert_urls: true, topic_arns: [topic] },
      },
      () =>
        [
          `SNS simulator on ${sns.url}: publishing signed SES events to ${url} at ${rate}/s (topic ${topic}; ${count ? `${count} notifications` : 'until stopped'})`,
          `  its signing certificate is served at ${sns.certUrl}; the connector accepts it only with, under connectors.amazon-ses.sns:`,
          `    signing_cert_hosts: ['${certHosts[0]}']`,
          `    allow_http_cert_urls: true`,
          `    topic_arns: ['${topic}']`,
        ].join('\n'),
    );
    // SNS confirms a new subscription first; the connector answers by visiting SubscribeURL on this simulator.
    const subscribed = await deliver(d, sns.subscriptionConfirmation(topic));
    const confirmed = sns.confirmations().length > 0;
    out.emit({ subscription: { acknowledged: subscribed, confirmed } }, () =>
      subscribed
        ? `subscription: ${confirmed ? 'confirmed by the connector' : 'acknowledged but not confirmed (auto_confirm_subscriptions: false?)'}`
        : 'subscription: not acknowledged; publishing anyway',
    );

    stopReporting = reportWhileChanging(out, report);
    const payloads = sesPayloads(recipients, seed);
    const inFlight = new Set<Promise<void>>();
    const started = Date.now();
    for (let i = 0; (count === 0 || i < count) && !stop.signal.aborted; i++) {
      const wait = started + (i * 1000) / rate - Date.now();
      if (wait > 0) await sleep(wait, undefined, { signal: stop.signal }).catch(() => undefined);
      while (inFlight.size >= MAX_IN_FLIGHT && !stop.signal.aborted) await Promise.race(inFlight);
      if (stop.signal.aborted) break;
      const env = sns.notification(topic, payloads.next().value as SesPayload);
      tally.published++;
      const p: Promise<void> = deliver(d, env).then((ok) => {
        if (ok) tally.acknowledged++;
        else tally.failed++;
        inFlight.delete(p);
      });
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  } finally {
    stopReporting();
    stop.abort();
    await sns.close();
  }
  const r = report();
  out.emit({ done: true, stopped: signalled ?? null, ...r.obj }, () => `${r.human}\n${signalled ? `stopped (${signalled})` : 'done'}`);
  // A signal is a clean stop; a finished --count run fails when something was never acknowledged.
  return signalled || tally.failed === 0 ? 0 : 1;
}
