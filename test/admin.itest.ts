// Operator surface (CONTRACT.md section 3): /healthz, /readyz, /metrics, /admin/status,
// /admin/failures, POST /admin/failures/:id/retry, /ui, and the admin_token guard.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlannedOp } from '../src/core/plan.js';
import type { FailureView } from '../src/engine/failures.js';
import { sesEvent } from '../src/sim/ses-events/index.js';
import { recordSyncRun } from '../src/engine/sync-runs.js';
import { metricValue, startStack, until, type Stack } from './helpers.js';

const TOKEN = 'itest-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let stack: Stack;

beforeAll(async () => {
  // max_attempts 2: a retryable Brevo failure becomes a dead letter after one retry, so a test
  // can make one quickly and then see POST /admin/failures/:id/retry deliver it; a refusal
  // (400) must die at its first attempt, which 2 tells apart from a retried one.
  stack = await startStack({ plan: 'unlimited', adminToken: TOKEN, delivery: { max_attempts: 2 } });
});
afterAll(async () => {
  await stack?.stop();
});

function badEvent(key: string, email: string): PlannedOp {
  return {
    kind: 'event',
    key,
    email,
    priority: 2,
    lane: 'realtime',
    sources: [key],
    // Brevo refuses this name (letters, digits, '-' and '_' only): 400, not retryable.
    payload: { event_name: 'Bad Name!', event_date: '2026-03-01T10:00:00.000Z', identifiers: { email_id: email }, event_properties: { event_key: key } },
  };
}

/** POST /v3/events (one event) and POST /v3/events/batch calls Brevo has seen so far. */
const eventCalls = () => stack.brevo.stats().byRoute['POST /v3/events'] ?? 0;
const batchCalls = () => stack.brevo.stats().byRoute['POST /v3/events/batch'] ?? 0;

async function failures(): Promise<FailureView[]> {
  const res = await stack.get('/admin/failures', AUTH);
  expect(res.status, res.text).toBe(200);
  return (res.json as { failures: FailureView[] }).failures;
}

describe('liveness, readiness, metrics', () => {
  it('GET /healthz answers 200 without a token', async () => {
    const res = await stack.get('/healthz');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ok: true });
  });

  it('GET /readyz answers 200 with the store kind when the store is reachable', async () => {
    const res = await stack.get('/readyz');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ ok: true, store: 'sqlite' });
  });

  it('GET /metrics is Prometheus text with the connector series', async () => {
    // Something to count first.
    const env = stack.sns.notification(
      stack.topic,
      sesEvent('Click', { messageId: 'admin-click', recipients: ['Metrics@Example.com'], timestamp: '2026-03-01T10:00:00.000Z' }),
    );
    expect((await stack.publish(env)).status).toBe(200);
    await stack.connector.waitIdle(30_000);
    const res = await stack.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/^# HELP tajo_ses_webhook_requests_total /m);
    expect(res.text).toMatch(/^# TYPE tajo_ses_webhook_requests_total counter$/m);
    expect(res.text).toMatch(/^# TYPE tajo_ses_queue_depth gauge$/m);
    expect(res.text).toMatch(/^# TYPE tajo_ses_webhook_seconds histogram$/m);
    expect(metricValue(res.text, 'tajo_ses_webhook_requests_total', { outcome: 'accepted' })).toBe(1);
    expect(metricValue(res.text, 'tajo_ses_records_total', { type: 'Click' })).toBe(1);
    expect(metricValue(res.text, 'tajo_ses_delivered_total', { kind: 'event' })).toBe(1);
    expect(metricValue(res.text, 'tajo_ses_delivered_total', { kind: 'contact' })).toBe(1);
    // Every sample line is `name{labels} value`.
    for (const line of res.text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/);
    }
  });
});

describe('metrics an alert can rely on', () => {
  it('lag series stay at 0 when nothing is open; dead letters as a gauge; sync gauges per stream from the run history', async () => {
    await stack.connector.waitIdle(30_000);
    const t0 = Date.UTC(2026, 2, 1, 10, 0, 0);
    await recordSyncRun(stack.connector.store, { streams: ['suppressions'], startedAt: t0, endedAt: t0 + 4_500, read: 3, written: 3, error: null }, Date.now());
    await recordSyncRun(
      stack.connector.store,
      { streams: ['contact_lists', 'contacts'], startedAt: t0, endedAt: t0 + 1_000, read: 1, written: 1, error: null },
      Date.now(),
    );
    await recordSyncRun(
      stack.connector.store,
      { streams: ['contact_lists', 'contacts'], startedAt: t0 + 60_000, endedAt: t0 + 61_000, read: 0, written: 0, error: 'ListContacts: boom' },
      Date.now(),
    );
    const text = (await stack.get('/metrics')).text;
    for (const kind of ['contact', 'event'])
      for (const priority of ['blocklist', 'critical', 'normal', 'bulk'])
        expect(text, `${kind}/${priority}`).toMatch(new RegExp(`^tajo_ses_queue_lag_seconds\\{kind="${kind}",priority="${priority}"\\} 0$`, 'm'));
    expect(text).toMatch(/^tajo_ses_dead_letters 0$/m);
    expect(metricValue(text, 'tajo_ses_sync_last_success_timestamp_seconds', { stream: 'suppressions' })).toBe((t0 + 4_500) / 1000);
    expect(metricValue(text, 'tajo_ses_sync_last_success_duration_seconds', { stream: 'suppressions' })).toBe(4.5);
    expect(metricValue(text, 'tajo_ses_sync_last_run_failed', { stream: 'suppressions' })).toBe(0);
    // The newest contacts run failed: flagged, while the last success stays the earlier run.
    expect(metricValue(text, 'tajo_ses_sync_last_run_failed', { stream: 'contacts' })).toBe(1);
    expect(metricValue(text, 'tajo_ses_sync_last_success_timestamp_seconds', { stream: 'contacts' })).toBe((t0 + 1_000) / 1000);
    expect(text).not.toMatch(/^tajo_ses_sync_last_success_timestamp_seconds\{stream="account"\}/m);
  });
});

describe('admin token', () => {
  const guarded = ['/admin/status', '/admin/failures', '/admin/dashboard', '/ui', '/ui/app.js'];

  it.each(guarded)('GET %s without a token is 401', async (path) => {
    const res = await stack.get(path);
    expect(res.status).toBe(401);
    expect(res.json?.reason).toBe('unauthorized');
  });

  it.each(guarded)('GET %s with a wrong bearer token is 401', async (path) => {
    for (const h of [{ authorization: 'Bearer wrong' }, { authorization: `Bearer ${TOKEN}x` }, { authorization: `Basic ${TOKEN}` }, { authorization: TOKEN }]) {
      const res = await stack.get(path, h);
      expect(res.status, JSON.stringify(h)).toBe(401);
    }
  });

  it.each(guarded)('GET %s with the right bearer token is 200', async (path) => {
    expect((await stack.get(path, AUTH)).status).toBe(200);
  });

  it('POST /admin/failures/:id/retry needs the token too', async () => {
    expect((await stack.request('POST', '/admin/failures/1/retry')).status).toBe(401);
    expect((await stack.request('POST', '/admin/failures/1/retry', { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
  });

  it('/metrics, /healthz and /readyz stay open (no token)', async () => {
    for (const p of ['/metrics', '/healthz', '/readyz']) expect((await stack.get(p)).status, p).toBe(200);
  });

  it('without admin_token, /admin answers loopback clients', async () => {
    const open = await startStack({ plan: 'unlimited' });
    try {
      expect((await open.get('/admin/status')).status).toBe(200);
      expect((await open.get('/ui')).status).toBe(200);
    } finally {
      await open.stop();
    }
  });
});

describe('status, failures, retry, dashboard', () => {
  it('GET /admin/status has the documented shape', async () => {
    const res = await stack.get('/admin/status', AUTH);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const s = res.json!;
    expect(s).toMatchObject({ store: 'sqlite', deadLetters: 0 });
    expect(Number.isNaN(Date.parse(String(s.at)))).toBe(false);
    expect(s.inbox).toEqual({ done: 1 });
    expect(Array.isArray(s.queues)).toBe(true);
    expect(s.queues).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'event', state: 'done', count: 1 })]));
    expect(Array.isArray(s.lag)).toBe(true);
    expect(Array.isArray(s.streams)).toBe(true);
    expect(Array.isArray(s.rateLimit)).toBe(true);
    expect((s.rateLimit as Array<{ bucket: string }>).map((b) => b.bucket)).toEqual(expect.arrayContaining(['contacts', 'events']));
  });

  it('an event Brevo refuses becomes a dead letter listed by GET /admin/failures with Brevo code and message', async () => {
    expect(await failures()).toEqual([]);
    const callsBefore = eventCalls();
    await stack.connector.store.enqueue([badEvent('admin:bad-name', 'dead.letter@example.com')], Date.now());
    stack.connector.deliverer.wake();
    await stack.connector.waitIdle(30_000);
    const list = await failures();
    expect(list).toHaveLength(1);
    const f = list[0]!;
    expect(f).toMatchObject({
      kind: 'event',
      state: 'dead',
      email: 'dead.letter@example.com',
      key: 'admin:bad-name',
      sources: ['admin:bad-name'],
      attempts: 1,
      error: { code: 'invalid_parameter', status: 400 },
      call: { method: 'POST', path: '/v3/events', body: expect.objectContaining({ event_name: 'Bad Name!' }) },
    });
    expect(f.error.message).toMatch(/event_name/);
    // A 400 is final: sent once, never retried.
    expect(eventCalls()).toBe(callsBefore + 1);
    expect(stack.brevo.state().events.filter((e) => e.event_name === 'Bad Name!')).toEqual([]);

    const status = await stack.get('/admin/status', AUTH);
    expect(status.json?.deadLetters).toBe(1);
    const m = await stack.get('/metrics');
    expect(metricValue(m.text, 'tajo_ses_dead_letters_total', { kind: 'event', code: 'invalid_parameter' })).toBe(1);
  });

  it('GET /ui is HTML and shows the dead-letter count', async () => {
    const res = await stack.get('/ui', AUTH);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.text).toMatch(/^<!doctype html>/i);
    expect(res.text).toMatch(/1 dead letter\(s\)/);
    expect(res.text).toContain('dead.letter@example.com');
    // In a browser, ?token= is traded for a cookie (test/server-hardening.itest.ts has the details).
    const viaQuery = await fetch(`${stack.base}/ui?token=${encodeURIComponent(TOKEN)}`, { redirect: 'manual' });
    expect(viaQuery.status).toBe(303);
    const cookie = (viaQuery.headers.get('set-cookie') ?? '').split(';')[0]!;
    expect((await stack.get('/ui', { cookie })).text).toMatch(/1 dead letter\(s\)/);
  });

  it('POST /admin/failures/:id/retry of a refused event sends it again (and it dies again, with a fresh attempt count)', async () => {
    const [f] = await failures();
    const requestsBefore = eventCalls();
    const res = await stack.request('POST', `/admin/failures/${f!.id}/retry`, { headers: AUTH });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toEqual({ ok: true, retried: 1 });
    await until(() => eventCalls() > requestsBefore, 'the retried event to reach Brevo');
    await stack.connector.waitIdle(30_000);
    expect(eventCalls()).toBe(requestsBefore + 1);
    const again = await failures();
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ id: f!.id, state: 'dead', attempts: 1, error: { code: 'invalid_parameter' } });
  });

  it('POST /admin/failures/:id/retry delivers a dead letter once Brevo is healthy again', async () => {
    // Brevo fails every request: a 5xx is retried, so with max_attempts 2 the event goes dead at its second attempt.
    stack.brevo.setFaults({ errorRate: 1 });
    const payload = sesEvent('Reject', { messageId: 'admin-reject', recipients: ['Retry.Me@Example.com'], timestamp: '2026-03-02T10:00:00.000Z' });
    try {
      expect((await stack.publish(stack.sns.notification(stack.topic, payload))).status).toBe(200);
      await stack.connector.waitIdle(30_000);
    } finally {
      stack.brevo.setFaults({ errorRate: 0 });
    }
    const list = await failures();
    const dead = list.find((x) => x.email === 'retry.me@example.com');
    expect(dead).toMatchObject({ kind: 'event', state: 'dead', attempts: 2, error: { status: expect.any(Number) } });
    expect(dead!.error.status).toBeGreaterThanOrEqual(500);
    expect(stack.brevo.state().events.filter((e) => e.identifiers.email_id === 'retry.me@example.com')).toEqual([]);

    const res = await stack.request('POST', `/admin/failures/${dead!.id}/retry`, { headers: AUTH });
    expect(res.json).toEqual({ ok: true, retried: 1 });
    await stack.connector.waitIdle(30_000);
    const evs = stack.brevo.state().events.filter((e) => e.identifiers.email_id === 'retry.me@example.com');
    expect(evs.map((e) => e.event_name)).toEqual(['ses_email_rejected']);
    expect(evs[0]!.event_properties?.event_key).toBe('ses:admin-reject:Reject:retry.me@example.com:2026-03-02T10:00:00.000Z');
    expect((await failures()).map((x) => x.email)).toEqual(['dead.letter@example.com']);
    const ui = await stack.get('/ui', AUTH);
    expect(ui.text).toMatch(/1 dead letter\(s\)/);
  });

  it('POST /admin/failures/:id/retry: 404 for an id that is not a dead letter, 400 for a malformed id', async () => {
    const notFound = await stack.request('POST', '/admin/failures/999999/retry', { headers: AUTH });
    expect(notFound.status).toBe(404);
    expect(notFound.json?.reason).toBe('not_found');
    for (const id of ['abc', '0', '-1', '1.5']) {
      const bad = await stack.request('POST', `/admin/failures/${id}/retry`, { headers: AUTH });
      expect(bad.status, id).toBe(400);
      expect(bad.json?.reason).toBe('invalid_id');
    }
  });

  it('GET /admin/failures pages with limit and offset', async () => {
    const [batchesBefore, callsBefore] = [batchCalls(), eventCalls()];
    await stack.connector.store.enqueue([badEvent('admin:bad-2', 'dead2@example.com'), badEvent('admin:bad-3', 'dead3@example.com')], Date.now());
    stack.connector.deliverer.wake();
    await stack.connector.waitIdle(30_000);
    const all = await failures();
    expect(all.map((f) => f.key)).toEqual(['admin:bad-name', 'admin:bad-2', 'admin:bad-3']);
    // Brevo refused the whole batch (400): each event was sent once alone and died at that first attempt.
    expect(all.slice(1).map((f) => f.attempts)).toEqual([1, 1]);
    expect([batchCalls(), eventCalls()]).toEqual([batchesBefore + 1, callsBefore + 2]);
    const page = await stack.get('/admin/failures?limit=1&offset=1', AUTH);
    expect((page.json as { failures: FailureView[] }).failures.map((f) => f.key)).toEqual(['admin:bad-2']);
    const ui = await stack.get('/ui', AUTH);
    expect(ui.text).toMatch(/3 dead letter\(s\)/);
    expect((await stack.get('/admin/status', AUTH)).json?.deadLetters).toBe(3);
  });

  it('one refused event in a batch does not sink the others: only it becomes a dead letter', async () => {
    const good = (i: number): PlannedOp => ({
      kind: 'event',
      key: `admin:good-${i}`,
      email: `batch${i}@example.com`,
      priority: 2,
      lane: 'realtime',
      sources: [`admin:good-${i}`],
      payload: {
        event_name: 'ses_email_rejected',
        event_date: '2026-03-03T10:00:00.000Z',
        identifiers: { email_id: `batch${i}@example.com` },
        event_properties: { event_key: `admin:good-${i}` },
      },
    });
    const [batchesBefore, callsBefore] = [batchCalls(), eventCalls()];
    // One transaction: the deliverer claims them together and sends one /events/batch.
    await stack.connector.store.enqueue([good(1), badEvent('admin:bad-batch', 'batch.bad@example.com'), good(2), good(3)], Date.now());
    stack.connector.deliverer.wake();
    await stack.connector.waitIdle(30_000);
    const keys = stack.brevo
      .state()
      .events.map((e) => String(e.event_properties?.event_key))
      .filter((k) => k.startsWith('admin:'));
    expect(keys.sort()).toEqual(['admin:good-1', 'admin:good-2', 'admin:good-3']);
    // 207: Brevo applied the others and named the bad one, which dies at once; nothing is resent.
    expect([batchCalls(), eventCalls()]).toEqual([batchesBefore + 1, callsBefore]);
    const list = await failures();
    expect(list.map((f) => f.key)).toEqual(['admin:bad-name', 'admin:bad-2', 'admin:bad-3', 'admin:bad-batch']);
    expect(list[3]).toMatchObject({ attempts: 1, error: { code: 'invalid_parameter', status: 207 } });
    expect((await stack.get('/ui', AUTH)).text).toMatch(/4 dead letter\(s\)/);
    expect(metricValue((await stack.get('/metrics')).text, 'tajo_ses_dead_letters')).toBe(4);
  });

  it('the dashboard JSON: sections grouped by code with retry-all, search by email, a page per dead letter', async () => {
    const list = await failures();
    const dash = await stack.get('/admin/dashboard', AUTH);
    expect(dash.status, dash.text).toBe(200);
    const sections = (dash.json as { sections: Record<string, string> }).sections;
    expect(Object.keys(sections).sort()).toEqual(['sec-at', 'sec-charts', 'sec-dead', 'sec-details', 'sec-health', 'sec-syncs']);
    expect(sections['sec-health']).toMatch(/4 dead letter\(s\)/);
    expect(sections['sec-dead']).toContain('data-action="retry-code" data-code="invalid_parameter" data-count="4"');
    for (const f of list) expect(sections['sec-dead']).toContain(`data-action="discard" data-id="${f.id}"`);
    expect(sections['sec-charts']).toMatch(/<svg id="chart-flow"/);

    const found = (await stack.get('/admin/dashboard?email=batch.bad', AUTH)).json as { sections: Record<string, string> };
    expect(found.sections['sec-dead']).toContain('batch.bad@example.com');
    expect(found.sections['sec-dead']).not.toContain('dead2@example.com');
    expect((await stack.get('/ui?email=dead2', AUTH)).text).not.toContain('batch.bad@example.com');

    const one = list.find((f) => f.key === 'admin:bad-batch')!;
    const view = await stack.get(`/admin/failures/${one.id}`, AUTH);
    expect(view.json).toMatchObject({ id: one.id, state: 'dead', call: { method: 'POST', path: '/v3/events' } });
    const page = await stack.get(`/ui/failures/${one.id}`, AUTH);
    expect(page.status).toBe(200);
    expect(page.text).toContain('batch.bad@example.com');
    expect(page.text).toContain('POST /v3/events');
    expect(page.text).toContain('&quot;event_name&quot;: &quot;Bad Name!&quot;');
    expect(page.text).toMatch(/<td>207<\/td><td>invalid_parameter<\/td>/);
    // Its attempts: one, refused inside a batch (207).
    expect(page.text).toMatch(/<td>1<\/td><td>[0-9T:.-]+Z<\/td><td>207<\/td><td>invalid_parameter<\/td>/);
    expect((await stack.get('/ui/failures/999999', AUTH)).status).toBe(404);
    expect((await stack.get('/ui/failures/1', {})).status).toBe(401);
  });

  it('POST /admin/failures/:id/discard drops one dead letter; another site cannot', async () => {
    const f = (await failures()).find((x) => x.key === 'admin:bad-3')!;
    const json = { ...AUTH, 'content-type': 'application/json' };
    const foreign = await stack.request('POST', `/admin/failures/${f.id}/discard`, { headers: { ...json, origin: 'http://evil.example' }, body: '{}' });
    expect(foreign.status).toBe(403);
    expect(foreign.json?.reason).toBe('cross_site_refused');
    const res = await stack.request('POST', `/admin/failures/${f.id}/discard`, { headers: json, body: '{}' });
    expect(res.json).toEqual({ ok: true, discarded: 1 });
    expect((await stack.request('POST', `/admin/failures/${f.id}/discard`, { headers: json, body: '{}' })).status).toBe(404);
    expect((await failures()).map((x) => x.key)).not.toContain('admin:bad-3');
    expect((await stack.get(`/admin/failures/${f.id}`, AUTH)).json).toMatchObject({ state: 'discarded' });
  });

  it('POST /admin/failures/retry {code} retries every dead letter with that code', async () => {
    const json = { ...AUTH, 'content-type': 'application/json' };
    const before = await failures();
    expect(before.map((f) => f.error.code)).toEqual(['invalid_parameter', 'invalid_parameter', 'invalid_parameter']);
    const none = await stack.request('POST', '/admin/failures/retry', { headers: json, body: JSON.stringify({ code: 'no_such_code' }) });
    expect(none.json).toEqual({ ok: true, retried: 0 });
    for (const body of ['[]', '{"code": 5}', 'nope', '{}']) {
      const bad = await stack.request('POST', '/admin/failures/retry', { headers: json, body });
      expect(bad.status, body).toBe(400);
    }
    const calls = eventCalls() + batchCalls();
    const res = await stack.request('POST', '/admin/failures/retry', { headers: json, body: JSON.stringify({ code: 'invalid_parameter' }) });
    expect(res.json).toEqual({ ok: true, retried: 3 });
    await until(() => eventCalls() + batchCalls() > calls, 'the retried events to reach Brevo');
    await stack.connector.waitIdle(30_000);
    // Brevo refuses them again: dead again, the same three.
    expect((await failures()).map((f) => f.id).sort()).toEqual(before.map((f) => f.id).sort());
  });
});
