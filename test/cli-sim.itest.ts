// `tajo-ses sim brevo|ses|sns` as operators run them: child processes over real sockets, each
// printing where it listens, answering like the service it stands for, and stopping with exit 0
// on SIGINT/SIGTERM. The last test is the README's rehearsal: init --local, the three
// simulators and a real `serve` on SQLite, an outage of Brevo, and everything delivered.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListContactListsCommand, ListContactsCommand, ListSuppressedDestinationsCommand, SESv2Client, TooManyRequestsException } from '@aws-sdk/client-sesv2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { ensureBuilt, runCli } from './cli-run.js';
import { startCli, type CliProcess } from './cli-process.js';
import { realisticMix } from '../src/sim/ses-events/index.js';
import { parseSesNotification } from '../src/ses/parse.js';
import { ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';

let tmp = '';
let running: CliProcess[] = [];

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'tajo-sim-itest-'));
}, 180_000);

afterEach(async () => {
  // A failed test must not leave a simulator behind.
  await Promise.all(running.map((p) => p.stop('SIGKILL').catch(() => null)));
  running = [];
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function start(args: string[], env: Record<string, string> = {}): CliProcess {
  const p = startCli(args, { cwd: tmp, env });
  running.push(p);
  return p;
}

interface BrevoStart {
  sim: 'brevo';
  url: string;
  port: number;
  apiKey: string;
  statsUrl: string;
  faultsUrl: string;
}

async function startBrevo(args: string[]): Promise<{ p: CliProcess; info: BrevoStart }> {
  const p = start(['sim', 'brevo', '--json', ...args]);
  const { json } = await p.waitForLine<BrevoStart>((_l, j) => j?.sim === 'brevo');
  return { p, info: json! };
}

const account = (info: BrevoStart, key = info.apiKey) => fetch(`${info.url}/account`, { headers: { 'api-key': key } });

describe('tajo-ses sim brevo', () => {
  it('--fail-rate 1: a real request is answered 5xx; SIGINT stops it with exit 0', async () => {
    const { p, info } = await startBrevo(['--fail-rate', '1']);
    expect(info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v3$/);
    const r = await account(info);
    expect([500, 502, 503]).toContain(r.status);
    expect(await r.json()).toMatchObject({ code: 'internal_error' });
    expect(await p.stop('SIGINT')).toBe(0);
    expect(p.stdout().trim().split('\n').pop()).toMatch(/"stopped":"SIGINT"/);
  });

  it('--fail-rate 0 answers normally, only to --api-key; POST /sim/faults starts and ends an outage; a taken port exits 1', async () => {
    const { p, info } = await startBrevo(['--fail-rate', '0', '--api-key', 'rehearsal-key']);
    expect(info.apiKey).toBe('rehearsal-key');
    expect((await account(info)).status).toBe(200);
    expect((await account(info, 'sim-key')).status).toBe(401);

    const set = (body: string) => fetch(info.faultsUrl, { method: 'POST', body });
    expect((await set('{"errorRate":1}')).status).toBe(200);
    expect((await account(info)).status).toBeGreaterThanOrEqual(500);
    expect((await set('{"errorRate":0}')).status).toBe(200);
    expect((await account(info)).status).toBe(200);
    // A misspelt fault changes nothing and says so.
    const bad = await set('{"failRate":1}');
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/unknown failRate/);
    expect((await account(info)).status).toBe(200);
    const stats = (await (await fetch(info.statsUrl)).json()) as { stats: { status: Record<string, number> } };
    expect(Object.keys(stats.stats.status).filter((s) => s.startsWith('5'))).toHaveLength(1);

    const taken = await runCli(['sim', 'brevo', '--port', String(info.port)], { cwd: tmp });
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/EADDRINUSE/);
    expect(await p.stop('SIGTERM')).toBe(0);
  });

  it('--outage S answers 503 until POST /sim/faults {"outageSeconds":0}; --reset-after-apply-rate and --malformed-rate apply the call', async () => {
    const { p, info } = await startBrevo(['--outage', '3600', '--reset-after-apply-rate', '1', '--plan', 'unlimited']);
    expect((await account(info)).status).toBe(503);
    expect((await fetch(info.faultsUrl, { method: 'POST', body: '{"outageSeconds":0}' })).status).toBe(200);
    const post = (email: string) =>
      fetch(`${info.url}/contacts`, {
        method: 'POST',
        headers: { 'api-key': info.apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ email }),
      });
    await expect(post('reset@example.com')).rejects.toThrow();
    expect((await fetch(info.faultsUrl, { method: 'POST', body: '{"dropAfterApplyRate":0,"malformedRate":1}' })).status).toBe(200);
    const garbled = await post('garbled@example.com');
    expect(garbled.status).toBe(200);
    const text = await garbled.text();
    expect(() => JSON.parse(text) as unknown).toThrow(SyntaxError);
    const stats = (await (await fetch(info.statsUrl)).json()) as { stats: { faults: Record<string, number> }; holds: { contacts: number } };
    expect(stats.stats.faults).toEqual({ outage: 1, dropped_after_apply: 1, malformed: 1 });
    expect(stats.holds.contacts).toBe(2);
    expect(await p.stop('SIGTERM')).toBe(0);
  });

  it('options out of range are usage errors (exit 2) that name the option', async () => {
    const r = await runCli(['sim', 'brevo', '--fail-rate', '1.5'], { cwd: tmp });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^--fail-rate: found "1.5"; expected a number from 0 to 1/);
    const plan = await runCli(['sim', 'brevo', '--plan', 'gold'], { cwd: tmp });
    expect(plan.code).toBe(2);
    expect(plan.stderr).toMatch(/--plan: found "gold"; allowed: general, advanced, extended, unlimited/);
    const hang = await runCli(['sim', 'brevo', '--hang-rate', '2'], { cwd: tmp });
    expect(hang.code).toBe(2);
    expect(hang.stderr).toMatch(/^--hang-rate: found "2"; expected a number from 0 to 1/);
    const which = await runCli(['sim', 'kinesis'], { cwd: tmp });
    expect(which.code).toBe(2);
    expect(which.stderr).toMatch(/unknown simulator "kinesis"/);
  });
});

describe('tajo-ses sim sqs', () => {
  it('serves a queue and its dead-letter queue to the AWS SDK; --max-receive moves a message to the DLQ', async () => {
    const p = start(['sim', 'sqs', '--json', '--queue', 'q', '--visibility', '0', '--max-receive', '1']);
    const { json } = await p.waitForLine<{ sim: 'sqs'; endpoint: string; queueUrl: string; deadLetterQueueUrl: string }>((_l, j) => j?.sim === 'sqs');
    const sqs = new SQSClient({
      endpoint: json!.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
    try {
      expect(json!.queueUrl).toBe(`${json!.endpoint}/123456789012/q`);
      await sqs.send(new SendMessageCommand({ QueueUrl: json!.queueUrl, MessageBody: 'hello' }));
      const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl: json!.queueUrl, WaitTimeSeconds: 1 }));
      expect(first.Messages?.map((m) => m.Body)).toEqual(['hello']);
      // Visibility 0: it is visible again at once, and its next receive moves it.
      expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: json!.queueUrl }))).Messages ?? []).toEqual([]);
      const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: json!.deadLetterQueueUrl }));
      expect(dead.Messages?.map((m) => m.Body)).toEqual(['hello']);
    } finally {
      sqs.destroy();
    }
    expect(await p.stop('SIGTERM')).toBe(0);
  });
});

interface SesStart {
  sim: 'ses';
  endpoint: string;
}

describe('tajo-ses sim ses', () => {
  it('serves its seeded contacts and suppressions to the AWS SDK; --rps throttles like SES', async () => {
    const p = start(['sim', 'ses', '--json', '--contacts', '7', '--suppressed', '3', '--lists', '1', '--rps', '2']);
    const { json } = await p.waitForLine<SesStart>((_l, j) => j?.sim === 'ses');
    const ses = new SESv2Client({
      endpoint: json!.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
    try {
      const lists = await ses.send(new ListContactListsCommand({}));
      expect(lists.ContactLists?.map((l) => l.ContactListName)).toEqual(['list-1']);
      await new Promise((r) => setTimeout(r, 1100));
      const contacts = await ses.send(new ListContactsCommand({ ContactListName: 'list-1', PageSize: 100 }));
      expect(contacts.Contacts).toHaveLength(7);
      await new Promise((r) => setTimeout(r, 1100));
      const suppressed = await ses.send(new ListSuppressedDestinationsCommand({}));
      expect(suppressed.SuppressedDestinationSummaries).toHaveLength(3);
      // A burst above 2 requests per second: SES's own throttling exception.
      const burst = await Promise.allSettled(Array.from({ length: 4 }, () => ses.send(new ListContactListsCommand({}))));
      expect(burst.some((b) => b.status === 'rejected' && b.reason instanceof TooManyRequestsException)).toBe(true);
    } finally {
      ses.destroy();
    }
    expect(await p.stop('SIGTERM')).toBe(0);
  });
});

describe('tajo-ses sim sns', () => {
  it('--url is required and checked, as is --topic (exit 2)', async () => {
    const none = await runCli(['sim', 'sns'], { cwd: tmp });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^--url: required/);
    const topic = await runCli(['sim', 'sns', '--url', 'http://127.0.0.1:1/x', '--topic', 'ses-events'], { cwd: tmp });
    expect(topic.code).toBe(2);
    expect(topic.stderr).toMatch(/^--topic: found "ses-events"; expected an SNS topic ARN/);
  });

  it('with --count, a refused delivery is reported and the run exits 1', async () => {
    // Nothing listens on the target: no answer, retried, then given up.
    const r = await runCli(['sim', 'sns', '--url', 'http://127.0.0.1:9/webhooks/amazon-ses', '--count', '2', '--rate', '50', '--retries', '0'], {
      cwd: tmp,
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not acknowledged: no answer: .*ECONNREFUSED/);
    expect(r.stdout).toMatch(/published 2: acknowledged 0, failed 2/);
  });
});

interface SnsLine {
  subscription?: { acknowledged: boolean; confirmed: boolean };
  done?: boolean;
  published?: number;
  acknowledged?: number;
  failed?: number;
}

interface Status {
  inbox: Record<string, number>;
  queues: Array<{ kind: string; lane: string; state: string; count: number }>;
  deadLetters: number;
}

describe('rehearsal: sim brevo + sim ses + serve on SQLite + sim sns', () => {
  it('a Brevo outage during the run: every SNS envelope is acknowledged and every operation delivered, nothing dead', async () => {
    const brevo = await startBrevo([]);
    const sesProc = start(['sim', 'ses', '--json', '--contacts', '20', '--suppressed', '4', '--rps', '0']);
    const ses = (await sesProc.waitForLine<SesStart>((_l, j) => j?.sim === 'ses')).json!;

    // The config `init --local` writes, with the ports these simulators got and quick retries.
    const init = await runCli(['init', '--local', '--config', 'rehearsal.yaml'], { cwd: tmp });
    expect(init.code).toBe(0);
    const cfg = parseYaml(readFileSync(join(tmp, 'rehearsal.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
    (cfg.connectors!['amazon-ses'] as Record<string, unknown>).endpoint = ses.endpoint;
    cfg.brevo!.base_url = brevo.info.url;
    cfg.server!.port = 0;
    cfg.store!.url = `sqlite:${join(tmp, 'rehearsal.db')}`;
    cfg.delivery = { ...cfg.delivery, backoff_base: '200ms', backoff_max: '2s' };
    writeFileSync(join(tmp, 'rehearsal.yaml'), stringify(cfg));

    const serve = start(['serve', '--config', 'rehearsal.yaml'], { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' });
    const serving = await serve.waitForLine<{ msg?: string; port?: number }>((_l, j) => j?.msg?.startsWith('tajo-ses serving') === true, 60_000);
    const webhook = `http://127.0.0.1:${serving.json!.port}/webhooks/amazon-ses`;

    // Brevo starts failing: with this seed its next answer is a 5xx, and 3 in 10 after it.
    const outage = await fetch(brevo.info.faultsUrl, { method: 'POST', body: JSON.stringify({ errorRate: 0.3, seed: 7 }) });
    expect(outage.status).toBe(200);

    const sns = await runCli(['sim', 'sns', '--url', webhook, '--count', '5', '--rate', '20', '--json'], { cwd: tmp, timeoutMs: 90_000 });
    expect(sns.stderr).toBe('');
    expect(sns.code).toBe(0);
    const lines = sns.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SnsLine);
    expect(lines.find((l) => l.subscription)?.subscription).toEqual({ acknowledged: true, confirmed: true });
    expect(lines[lines.length - 1]).toMatchObject({ done: true, published: 5, acknowledged: 5, failed: 0 });

    // serve delivers everything through the failures (retries), and nothing becomes a dead letter.
    let status: Status | undefined;
    const open = (s: Status) => s.queues.filter((q) => ['pending', 'inflight', 'awaiting'].includes(q.state)).reduce((a, q) => a + q.count, 0);
    for (let i = 0; i < 120; i++) {
      const r = await runCli(['status', '--config', 'rehearsal.yaml', '--json'], { cwd: tmp });
      expect(r.code).toBe(0);
      status = JSON.parse(r.stdout) as Status;
      if (status.inbox.done === 5 && !status.inbox.pending && open(status) === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(status!.inbox).toEqual({ done: 5 });
    expect(open(status!)).toBe(0);
    expect(status!.deadLetters).toBe(0);
    expect(status!.queues.some((q) => q.lane === 'realtime' && q.state === 'done')).toBe(true);

    const held = (await (await fetch(brevo.info.statsUrl)).json()) as { stats: { status: Record<string, number> } };
    expect(Object.entries(held.stats.status).filter(([s]) => s.startsWith('5')).length).toBeGreaterThan(0);
    // Every recipient of the published events reached Brevo from an event (SES_LAST_EVENT is set only from events).
    await fetch(brevo.info.faultsUrl, { method: 'POST', body: '{"errorRate":0}' });
    // What `sim sns --count 5` published: the first 5 of its first chunk (default --recipients 50, --seed 1).
    const published = realisticMix(1000, { recipients: 50, seed: 1 }).slice(0, 5);
    const recipients = new Set(published.flatMap((m) => parseSesNotification(m).records.map((r) => r.email)));
    expect(recipients.size).toBeGreaterThan(1);
    for (const email of recipients) {
      const c = await fetch(brevo.info.statsUrl.replace('/sim/stats', `/sim/contacts/${encodeURIComponent(email)}`));
      expect(c.status, email).toBe(200);
      expect(((await c.json()) as { attributes: Record<string, unknown> }).attributes.SES_LAST_EVENT, email).toBeTruthy();
    }

    expect(await serve.stop('SIGTERM')).toBe(0);
    expect(await brevo.p.stop('SIGINT')).toBe(0);
    expect(await sesProc.stop('SIGTERM')).toBe(0);
  });
});

describe('tajo-ses demo --keep', () => {
  it('keeps the temporary directory with a tajo.yaml that status reads; without --keep nothing is left', async () => {
    // The demo makes its directory under TMPDIR: a private one shows what it leaves.
    const demoTmp = join(tmp, 'demo-tmp');
    mkdirSync(demoTmp);
    const plain = await runCli(['demo', '--events', '20', '--contacts', '5', '--json'], { cwd: tmp, env: { TMPDIR: demoTmp }, timeoutMs: 120_000 });
    expect(plain.code, plain.stderr).toBe(0);
    expect(readdirSync(demoTmp)).toEqual([]);

    const kept = await runCli(['demo', '--events', '20', '--contacts', '5', '--keep', '--json'], { cwd: tmp, env: { TMPDIR: demoTmp }, timeoutMs: 120_000 });
    expect(kept.code, kept.stderr).toBe(0);
    const doc = JSON.parse(kept.stdout.trim().split('\n').pop()!) as { ok: boolean; kept?: { dir: string; config: string } };
    expect(doc.ok).toBe(true);
    expect(readdirSync(demoTmp).map((d) => join(demoTmp, d))).toEqual([doc.kept!.dir]);
    const status = await runCli(['status', '--config', doc.kept!.config, '--json'], { cwd: tmp });
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as Status).inbox.done).toBeGreaterThanOrEqual(20);
  });
});
