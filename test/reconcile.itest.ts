// `reconcile` (issue 10): after the connector wrote Brevo (a backfill's list memberships, a
// blocklisting complaint, a delivery), Brevo is changed behind its back through the
// simulator's API; reconcile reports each drift, `fix` repairs it through the outbox, and
// the next reconcile finds none.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { sesEvent, type SesPayload } from '../src/sim/ses-events/index.js';
import type { Connector } from '../src/engine/connector.js';
import type { ReconcileReport } from '../src/engine/reconcile.js';
import { childEnv, ensureBuilt, inProcessConnector, runCli, simConfig, writeConfig } from './backfill-helpers.js';
import { LOOPBACK_CERT_HOST, TOPIC, until, useSims } from './helpers.js';
import { pino } from 'pino';
import { RECONCILE_STATE_KEY, Scheduler, scheduleFor } from '../src/engine/scheduler.js';

const sims = useSims({ brevo: { plan: 'unlimited', importDelayMs: 20 }, ses: {}, sns: { region: 'us-east-1' }, tmpDir: 'tajo-reconcile-' });
let c: Connector;
let cfg: Record<string, unknown>;
const DELIVERED = '2026-03-04T05:06:07.000Z';

async function publish(payload: SesPayload): Promise<void> {
  const env = sims.sns.notification(TOPIC, payload, { subject: 'Amazon SES Email Event Notification' });
  const res = await c.webhook.handle(JSON.stringify(env), {
    'content-type': 'text/plain; charset=UTF-8',
    'x-amz-sns-message-type': env.Type,
    'x-amz-sns-message-id': env.MessageId,
    'x-amz-sns-topic-arn': env.TopicArn,
  });
  expect(res.status).toBe(200);
}

async function brevo(method: string, path: string, body: unknown): Promise<number> {
  const res = await fetch(sims.brevo.url + path, {
    method,
    headers: { 'api-key': sims.brevo.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return res.status;
}

async function settle(): Promise<void> {
  await c.waitIdle(60_000, { includeAwaiting: true });
  await sims.brevo.settle();
}

const counts = (r: ReconcileReport) =>
  Object.fromEntries(
    Object.entries(r.drift)
      .filter(([, v]) => v.count > 0)
      .map(([k, v]) => [k, v.count]),
  );
const newsId = () => sims.brevo.state().lists.find((l) => l.name === 'Shop / news')!.id;

beforeAll(async () => {
  sims.ses.seed({
    contactLists: [{ name: 'Shop', topics: [{ name: 'news', defaultSubscriptionStatus: 'OPT_OUT' }] }],
    contacts: [
      { list: 'Shop', email: 'a@example.com', topicPreferences: { news: 'OPT_IN' } },
      { list: 'Shop', email: 'b@example.com', topicPreferences: { news: 'OPT_IN' } },
    ],
  });
  cfg = simConfig({
    sesEndpoint: sims.ses.endpoint,
    brevo: { url: sims.brevo.url, apiKey: sims.brevo.apiKey },
    db: join(sims.dir, 'r.db'),
    ses: { sns: { topic_arns: [TOPIC], signing_cert_hosts: [LOOPBACK_CERT_HOST], allow_http_cert_urls: true }, schedule: { reconcile: '1h' } },
  });
  c = await inProcessConnector(cfg);
  await c.start();
  await c.backfill({ streams: ['contact_lists', 'contacts'] });
  await publish(
    sesEvent('Complaint', { recipients: ['x@example.com'], timestamp: '2026-03-01T00:00:00.000Z', complaintFeedbackType: 'abuse', feedbackId: 'fb-1' }),
  );
  await publish(sesEvent('Delivery', { recipients: ['y@example.com'], timestamp: DELIVERED }));
  await settle();
}, 90_000);

afterAll(async () => {
  await c?.stop(5_000);
});

describe('reconcile against a Brevo changed behind the connector', () => {
  it('finds no drift while Brevo holds what the connector wrote', async () => {
    const r = await c.reconcile();
    expect(counts(r)).toEqual({});
    expect(r.checked).toMatchObject({ ledger: 4, lists: 2 });
    expect(sims.brevo.contact('x@example.com')?.emailBlacklisted).toBe(true);
  });

  it('reports a lifted blocklist, an overwritten attribute and a dropped list member, each with a sample', async () => {
    expect(await brevo('PUT', `/contacts/${encodeURIComponent('x@example.com')}`, { emailBlacklisted: false })).toBe(204);
    expect(await brevo('PUT', `/contacts/${encodeURIComponent('y@example.com')}`, { attributes: { SES_LAST_DELIVERED_AT: '2020-01-01' } })).toBe(204);
    expect(await brevo('PUT', `/contacts/${encodeURIComponent('b@example.com')}`, { attributes: { SES_UNSUBSCRIBED_ALL: false } })).toBe(204);
    expect(await brevo('POST', `/contacts/lists/${newsId()}/contacts/remove`, { emails: ['a@example.com'] })).toBe(201);
    const r = await c.reconcile();
    expect(counts(r)).toEqual({ blocklist_missing: 1, attribute_older: 1, list_missing: 1 });
    expect(r.total).toBe(3);
    expect(r.drift.blocklist_missing.samples).toEqual([{ kind: 'blocklist_missing', email: 'x@example.com', ours: true, brevo: false }]);
    expect(r.drift.attribute_older.samples).toEqual([
      { kind: 'attribute_older', email: 'y@example.com', attribute: 'SES_LAST_DELIVERED_AT', ours: '2026-03-04', brevo: '2020-01-01' },
    ]);
    expect(r.drift.list_missing.samples).toEqual([{ kind: 'list_missing', email: 'a@example.com', list: 'Shop / news' }]);
    expect(r.queued).toBeUndefined();
  });

  it('an attribute newer than ours is reported as different', async () => {
    expect(await brevo('PUT', `/contacts/${encodeURIComponent('y@example.com')}`, { attributes: { SES_LAST_DELIVERED_AT: '2030-01-01' } })).toBe(204);
    const r = await c.reconcile();
    expect(counts(r)).toEqual({ blocklist_missing: 1, attribute_different: 1, list_missing: 1 });
  });

  it('--fix queues one correction per contact through the outbox; the workers repair Brevo and a second reconcile finds none', async () => {
    const r = await c.reconcile({ fix: true });
    expect(r.total).toBe(3);
    expect(r.queued).toBe(3);
    await settle();
    expect(sims.brevo.contact('x@example.com')?.emailBlacklisted).toBe(true);
    expect(sims.brevo.contact('y@example.com')?.attributes.SES_LAST_DELIVERED_AT).toBe('2026-03-04');
    expect(sims.brevo.contact('a@example.com')?.listIds).toContain(newsId());
    const again = await c.reconcile();
    expect(counts(again)).toEqual({});
    expect(await c.store.listFailures({ limit: 10 })).toEqual([]);
  });
});

describe('tajo-ses reconcile (the command, on the same store)', () => {
  const cli = (args: string[]) =>
    runCli(['reconcile', '--config', writeConfig(join(sims.dir, 'tajo.json'), cfg), ...args], { cwd: sims.dir, env: childEnv(sims.dir), timeoutMs: 60_000 });

  beforeAll(() => ensureBuilt(), 120_000);

  it('exit 0 and "No drift" when Brevo holds what the connector wrote', async () => {
    const r = await cli([]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/No drift/);
  });

  it('exit 1 with the drift as one JSON object; --fix repairs it; then exit 0', async () => {
    expect(await brevo('PUT', `/contacts/${encodeURIComponent('x@example.com')}`, { emailBlacklisted: false })).toBe(204);
    const r = await cli(['--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as ReconcileReport;
    expect(counts(report)).toEqual({ blocklist_missing: 1 });
    expect(report.drift.blocklist_missing.samples[0]).toMatchObject({ email: 'x@example.com' });
    const text = await cli([]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/blocklist_missing\s+1/);
    const fixed = await cli(['--fix', '--json']);
    expect(fixed.code).toBe(1);
    expect(JSON.parse(fixed.stdout)).toMatchObject({ total: 1, queued: 1 });
    await sims.brevo.settle();
    expect(sims.brevo.contact('x@example.com')?.emailBlacklisted).toBe(true);
    expect((await cli([])).code).toBe(0);
  });

  it('--since compares only contacts Brevo modified lately; a bad duration is a usage error', async () => {
    expect((await cli(['--since', 'soon'])).code).toBe(2);
    const r = await cli(['--since', '1h', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ total: 0, since: expect.any(String) });
  });
});

describe('schedule.reconcile (serve)', () => {
  it('the scheduler runs a reconcile when one is due; its corrections are delivered and the run recorded', async () => {
    expect(await brevo('PUT', `/contacts/${encodeURIComponent('x@example.com')}`, { emailBlacklisted: false })).toBe(204);
    const entries = scheduleFor(c).filter((e) => e.reconcile);
    expect(entries).toEqual([{ streams: [], everyMs: 3_600_000, reconcile: true }]);
    const scheduler = new Scheduler(c, pino({ level: 'silent' }), entries);
    await scheduler.start();
    try {
      await until(() => sims.brevo.contact('x@example.com')?.emailBlacklisted === true, 'the scheduled reconcile restored the blocklist');
      const saved = await until(() => c.store.getState(RECONCILE_STATE_KEY), 'the scheduled reconcile recorded its run');
      expect(JSON.parse(saved!)).toMatchObject({ total: 1, drift: { blocklist_missing: 1 }, queued: 1 });
    } finally {
      await scheduler.stop();
    }
    expect(counts(await c.reconcile())).toEqual({});
  });

  it('is off by default', async () => {
    const { parseConfig } = await import('../src/config/load.js');
    const plain = parseConfig({ ...cfg, connectors: { 'amazon-ses': { region: 'us-east-1' } } }, { requireBrevoKey: false, env: {} });
    expect(plain.connectors['amazon-ses'].schedule.reconcile).toBe(0);
    expect(scheduleFor({ config: plain } as Connector).some((e) => e.reconcile)).toBe(false);
  });
});

describe('a member the backfill removed, put back in the list behind the connector', () => {
  it('is reported as list_extra and --fix removes it again', async () => {
    sims.ses.seed({ contacts: [{ list: 'Shop', email: 'a@example.com', topicPreferences: { news: 'OPT_OUT' } }] });
    await c.backfill({ streams: ['contact_lists', 'contacts'] });
    await settle();
    expect(sims.brevo.contact('a@example.com')?.listIds).not.toContain(newsId());
    expect(counts(await c.reconcile())).toEqual({});
    expect(await brevo('POST', `/contacts/lists/${newsId()}/contacts/add`, { emails: ['a@example.com'] })).toBe(201);
    const r = await c.reconcile();
    expect(counts(r)).toEqual({ list_extra: 1 });
    expect(r.drift.list_extra.samples).toEqual([{ kind: 'list_extra', email: 'a@example.com', list: 'Shop / news' }]);
    expect((await c.reconcile({ fix: true })).queued).toBe(1);
    await settle();
    expect(sims.brevo.contact('a@example.com')?.listIds).not.toContain(newsId());
    expect(sims.brevo.contact('a@example.com')?.emailBlacklisted).toBe(false);
    expect(counts(await c.reconcile())).toEqual({});
  });
});
