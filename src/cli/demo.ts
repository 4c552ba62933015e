// `tajo-ses demo`: the whole path on loopback. Simulated SNS signs real envelopes, the real
// server verifies and stores them, the real workers deliver to the Brevo simulator, and
// what Brevo holds is compared with what was published.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startBrevoSim } from '../sim/brevo/index.js';
import { startSnsSim } from '../sim/sns/index.js';
import { startSqsSim } from '../sim/sqs/index.js';
import { eventBridgeEvent, sesEvent, sesNotification, realisticMix, type SesPayload } from '../sim/ses-events/index.js';
import { expectedBrevoState, compareWithBrevo, compareBackfill, type Comparison } from '../sim/oracle.js';
import { startSesSim } from '../sim/ses/index.js';
import type { BackfillSummary } from '../engine/backfill.js';
import { parseSesNotification } from '../ses/parse.js';
import { createConnector, defaultLogger } from '../engine/connector.js';
import { buildServer } from '../server/app.js';
import { parseConfig } from '../config/load.js';
import type { SesEventRecord } from '../core/types.js';
import type { SnsEnvelope } from '../ses/sns.js';
import type { Out } from './output.js';

export const DEMO_TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';

export interface DemoOptions {
  events: number;
  contacts: number;
  out: Out;
  keep?: boolean;
  /** How the SES events reach the connector: the SNS webhook (default), SNS -> SQS, or an EventBridge API destination. */
  intake?: DemoIntake;
}

export const DEMO_INTAKES = ['sns', 'sqs', 'eventbridge'] as const;
export type DemoIntake = (typeof DEMO_INTAKES)[number];
const DEMO_QUEUE = 'ses-events';
const DEMO_SECRET = 'demo-eventbridge-secret';

export interface DemoResult {
  ok: boolean;
  published: { envelopes: number; snsDuplicates: number; sesRecords: number };
  comparison: Comparison;
  backfill: { summary: BackfillSummary; problems: string[]; contacts: number; memberships: number; blocklisted: number };
  brevoCalls: number;
  brevo429: number;
  seconds: number;
  /** With `keep`: the directory left behind, and a config that reads its store (`status`, `failures`). */
  kept?: { dir: string; config: string };
}

/** Every event type at least once, both formats, several recipients. */
export function coverageEvents(): SesPayload[] {
  const r = ['Ana@Example.com', 'bob@example.com', ' carl@example.com '];
  const t = (m: number) => new Date(Date.UTC(2026, 10, 1, 12, m)).toISOString();
  return [
    sesEvent('Send', { messageId: 'demo-1', recipients: r, timestamp: t(0) }),
    sesEvent('Delivery', { messageId: 'demo-1', recipients: r, timestamp: t(1) }),
    sesEvent('Open', { messageId: 'demo-1', recipients: ['ana@example.com'], timestamp: t(2) }),
    sesEvent('Click', { messageId: 'demo-1', recipients: ['ana@example.com'], timestamp: t(3), link: 'https://example.com/offer' }),
    sesEvent('Bounce', {
      messageId: 'demo-2',
      recipients: ['gone@example.com', 'full@example.com'],
      bounceType: 'Permanent',
      bounceSubType: 'General',
      timestamp: t(4),
    }),
    sesEvent('Bounce', { messageId: 'demo-3', recipients: ['busy@example.com'], bounceType: 'Transient', bounceSubType: 'MailboxFull', timestamp: t(5) }),
    sesEvent('Complaint', { messageId: 'demo-4', recipients: ['angry@example.com'], timestamp: t(6) }),
    sesEvent('Reject', { messageId: 'demo-5', recipients: ['virus@example.com'], timestamp: t(7) }),
    sesEvent('DeliveryDelay', { messageId: 'demo-6', recipients: ['slow@example.com'], timestamp: t(8) }),
    sesEvent('RenderingFailure', { messageId: 'demo-7', recipients: ['tpl@example.com'], timestamp: t(9) }),
    sesEvent('Subscription', { messageId: 'demo-8', recipients: ['leaver@example.com'], unsubscribeAll: true, timestamp: t(10) }),
    sesNotification('Bounce', { messageId: 'demo-9', recipients: ['old-format@example.com'], bounceType: 'Permanent', timestamp: t(11) }),
    sesNotification('Complaint', { messageId: 'demo-10', recipients: ['old-angry@example.com'], timestamp: t(12) }),
    sesNotification('Delivery', { messageId: 'demo-11', recipients: ['old-ok@example.com'], timestamp: t(13) }),
  ];
}

async function publishAll<T>(post: (item: T) => Promise<{ status: number }>, envs: T[], concurrency: number): Promise<number[]> {
  const statuses: number[] = new Array(envs.length);
  let next = 0;
  const worker = async () => {
    while (next < envs.length) {
      const i = next++;
      // SNS and EventBridge retry until they get a 2xx; so does the demo.
      for (let attempt = 0; ; attempt++) {
        const res = await post(envs[i]!);
        statuses[i] = res.status;
        if ((res.status < 500 && res.status !== 429) || attempt >= 5) break;
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const { out } = opts;
  const dir = mkdtempSync(join(tmpdir(), 'tajo-demo-'));
  const brevo = await startBrevoSim({ plan: 'general' });
  const sns = await startSnsSim({ region: 'us-east-1' });
  // The SES API simulator answers like SES (paging, throttling); the demo allows it 20 req/s.
  const sesSim = await startSesSim({ rps: 20 });
  const intake = opts.intake ?? 'sns';
  const sqsSim =
    intake === 'sqs'
      ? await startSqsSim({ queues: { [`${DEMO_QUEUE}-dlq`]: {}, [DEMO_QUEUE]: { redrive: { deadLetterQueue: `${DEMO_QUEUE}-dlq`, maxReceiveCount: 5 } } } })
      : undefined;
  sesSim.generate({ lists: 2, topicsPerList: 2, contacts: opts.contacts, suppressions: Math.max(1, Math.round(opts.contacts / 10)), seed: 7 });
  const config = parseConfig(
    {
      connectors: {
        'amazon-ses': {
          region: 'us-east-1',
          endpoint: sesSim.endpoint,
          ses_rate_limit: 20,
          sns: { topic_arns: [DEMO_TOPIC], signing_cert_hosts: ['^127\\.0\\.0\\.1$'], allow_http_cert_urls: true },
          ...(sqsSim ? { sqs: { queue_url: sqsSim.queueUrl(DEMO_QUEUE), endpoint: sqsSim.endpoint } } : {}),
          ...(intake === 'eventbridge' ? { eventbridge: { secret: DEMO_SECRET } } : {}),
        },
      },
      brevo: { api_key: brevo.apiKey, base_url: brevo.url },
      store: { url: `sqlite:${join(dir, 'amazon-ses.db')}` },
      server: { port: 0, host: '127.0.0.1' },
      delivery: { backoff_base: '200ms', backoff_max: '5s' },
      log: { level: 'warn' },
    },
    { requireBrevoKey: true },
  );
  const connector = await createConnector(config, { logger: defaultLogger('warn', 2), ses: { credentials: { accessKeyId: 'DEMO', secretAccessKey: 'demo' } } });
  const sqs = connector.createSqsIntake();
  const app = buildServer(connector);
  let finished = false;
  try {
    await connector.start();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/webhooks/amazon-ses`;
    out.progress('subscribe', 0, 1);
    const confirm = await sns.publish(url, sns.subscriptionConfirmation(DEMO_TOPIC));
    if (confirm.status !== 200 || sns.confirmations().length !== 1) throw new Error(`subscription confirmation failed: ${confirm.status} ${confirm.body}`);

    out.progress('backfill', 0, undefined);
    const summary = await connector.backfill({}, { onProgress: (p) => out.progress('backfill', p.read, undefined, p.stream) });
    out.endProgress();

    const mixed = [...coverageEvents(), ...realisticMix(Math.max(0, opts.events - 14), { recipients: Math.max(1, opts.contacts), seed: 42 })];
    // EventBridge carries only event-publishing records (eventType), not identity feedback notifications.
    const payloads = intake === 'eventbridge' ? mixed.filter((p) => typeof p['eventType'] === 'string') : mixed;
    const wrap = (p: SesPayload): object => (intake === 'eventbridge' ? eventBridgeEvent(p) : sns.notification(DEMO_TOPIC, p));
    const envs = payloads.map(wrap);
    // Delivered at least once: replay some envelopes, and resend some SES events in new envelopes.
    const dupEnvelopes = envs.filter((_, i) => i % 10 === 0);
    const dupEvents = payloads.filter((_, i) => i % 15 === 1).map(wrap);
    const all = [...envs, ...dupEnvelopes, ...dupEvents];
    out.progress('publish', 0, all.length);
    const ebUrl = url.replace(/\/webhooks\/amazon-ses$/, '/webhooks/amazon-ses/eventbridge');
    const post = async (env: object): Promise<{ status: number }> => {
      if (sqsSim) {
        sqsSim.send(DEMO_QUEUE, JSON.stringify(env));
        return { status: 200 };
      }
      if (intake === 'eventbridge') {
        const res = await fetch(ebUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': DEMO_SECRET },
          body: JSON.stringify(env),
        });
        await res.arrayBuffer();
        return res;
      }
      return sns.publish(url, env as SnsEnvelope);
    };
    await sqs?.start();
    const statuses = await publishAll(post, all, 16);
    const bad = statuses.filter((s) => s !== 200).length;
    if (bad > 0) throw new Error(`${bad} SNS deliveries were not acknowledged`);
    out.progress('publish', all.length, all.length);
    out.endProgress();

    if (sqsSim) {
      const deadline = Date.now() + 300_000;
      while (sqsSim.messages(DEMO_QUEUE).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    }
    await connector.waitIdle(300_000);
    const records: SesEventRecord[] = payloads.flatMap((p) => parseSesNotification(p).records);
    const exp = expectedBrevoState(records, config.connectors['amazon-ses'].events);
    await brevo.settle();
    const state = brevo.state();
    const sesData = sesSim.data();
    const sesBlocked = new Set([...sesData.suppressions.map((s) => s.email), ...sesData.contacts.filter((c) => c.unsubscribeAll).map((c) => c.email)]);
    const comparison = compareWithBrevo(exp, state, { alsoBlocklisted: sesBlocked });
    const bf = compareBackfill(sesData, state, config.connectors['amazon-ses'].lists.folder, exp.blocklisted);
    const stats = brevo.stats();
    const kept = opts.keep ? keepConfig(dir, config.store.url) : undefined;
    finished = true;
    return {
      ...(kept ? { kept } : {}),
      ok: comparison.ok && bf.ok && bad === 0,
      backfill: { summary, problems: bf.problems, ...bf.checked },
      published: { envelopes: all.length, snsDuplicates: dupEnvelopes.length, sesRecords: records.length },
      comparison,
      brevoCalls: stats.requests,
      brevo429: stats.throttled,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await sqs?.stop();
    await app.close();
    await connector.stop();
    await sqsSim?.close();
    await brevo.close();
    await sns.close();
    await sesSim.close();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    // A failed run returns no result to carry the path: say it here.
    else if (!finished) out.err(`Kept ${dir} (the SQLite store of the failed run)`);
  }
}

/** A tajo.yaml next to the kept store, so `tajo-ses status --config` and `failures` can read what the demo left. */
function keepConfig(dir: string, storeUrl: string): { dir: string; config: string } {
  const config = join(dir, 'tajo.yaml');
  writeFileSync(
    config,
    [
      '# Written by `tajo-ses demo --keep`: reads the store the demo left (status, failures). The simulators are gone.',
      'connectors:',
      '  amazon-ses:',
      '    region: us-east-1',
      `    sns: { topic_arns: ['${DEMO_TOPIC}'] }`,
      'store:',
      `  url: '${storeUrl.replace(/'/g, "''")}'`,
      '',
    ].join('\n'),
  );
  return { dir, config };
}

export function formatDemo(r: DemoResult): string {
  const c = r.comparison;
  const b = r.backfill;
  const lines = [
    `Backfill from the SES API: ${b.summary.streams.contacts?.read ?? 0} contacts, ${b.summary.streams.suppressions?.read ?? 0} suppressions, ${b.summary.streams.contact_lists?.read ?? 0} contact lists (${b.summary.sesCalls} SES calls)`,
    `  Brevo lists hold ${b.memberships} memberships for ${b.contacts} contacts; ${b.blocklisted} addresses blocklisted from SES state${b.problems.length ? `\n  MISMATCH:\n${b.problems.map((p) => `    - ${p}`).join('\n')}` : ' (matches SES)'}`,
    `Published ${r.published.envelopes} signed SNS envelopes (${r.published.snsDuplicates} replayed) carrying ${r.published.sesRecords} SES records.`,
    `Brevo received:`,
    `  contacts      ${c.contacts}`,
    `  blocklisted   ${c.blocklist.received} (expected ${c.blocklist.expected} from the events${c.blocklist.alsoAllowed ? `, plus ${c.blocklist.alsoAllowed} from the SES state backfilled above` : ''})`,
    `  events        ${c.events.received} (expected ${c.events.expected}, duplicates ${c.events.duplicates}, missing ${c.events.missing})`,
    ...Object.entries(c.byName)
      .sort()
      .map(([n, k]) => `    ${n.padEnd(28)} ${k}`),
    `  dropped values ${c.droppedValues}`,
    `Brevo API calls: ${r.brevoCalls} (429s: ${r.brevo429}) in ${r.seconds.toFixed(1)} s`,
    c.ok ? 'Result: Brevo matches what SES published.' : `Result: MISMATCH\n${c.problems.map((p) => `  - ${p}`).join('\n')}`,
  ];
  if (r.kept) lines.push(`Kept ${r.kept.dir} (the SQLite store): tajo-ses status --config ${r.kept.config}`);
  return lines.join('\n');
}
