// `serve` runs processing and delivery on an engine thread: what an operator sees must not
// change (deliveries, /metrics, /admin/status, a clean SIGTERM; a refused Brevo key: brevo-down-at-start.itest.ts).
import { describe, it, expect, afterAll } from 'vitest';
import { realisticMix } from '../src/sim/ses-events/index.js';
import { parseSesNotification } from '../src/ses/parse.js';
import { expectedBrevoState } from '../src/sim/oracle.js';
import { ALL_EVENTS_BOTH, TOPIC, untilBrevoMatches, freePort, metricValue, until, useSims, type ServeProcess, spawnRealtimeServe } from './helpers.js';

describe('serve with its engine thread', () => {
  const sims = useSims({ brevo: { plan: 'unlimited', importDelayMs: 20 }, sns: {}, tmpDir: 'tajo-thread-' });
  let serve: ServeProcess | undefined;
  afterAll(() => {
    serve?.child.kill('SIGKILL');
  });

  it('acknowledges, delivers, and reports the metrics and Brevo budget of both threads', async () => {
    const port = await freePort();
    serve = spawnRealtimeServe(sims, { name: 'main', port, apiKey: sims.brevo.apiKey });
    const base = `http://127.0.0.1:${port}`;
    await serve.ready(port);

    const payloads = realisticMix(300, { recipients: 40, seed: 8 });
    for (const p of payloads) {
      const res = await sims.sns.publish(`${base}/webhooks/amazon-ses`, sims.sns.notification(TOPIC, p));
      expect(res.status).toBe(200);
    }
    const exp = await untilBrevoMatches(sims.brevo, payloads, {
      policy: ALL_EVENTS_BOTH,
      what: 'Brevo to hold every event and attribute',
      timeoutMs: 30_000,
      everyMs: 100,
    });
    // The engine thread logs under its own name.
    expect(serve.logs()).toContain('"thread":"engine"');

    const text = await fetch(`${base}/metrics`).then((r) => r.text());
    // From the answering thread:
    expect(metricValue(text, 'tajo_ses_webhook_requests_total', { outcome: 'accepted' })).toBe(300);
    expect(text).toMatch(/^tajo_ses_process_cpu_seconds_total \S+$/m);
    // From the engine thread:
    expect(metricValue(text, 'tajo_ses_records_total', { type: 'Send' })).toBeGreaterThan(0);
    expect(metricValue(text, 'tajo_ses_delivered_total', { kind: 'event' })).toBe(exp.events.size);
    expect(metricValue(text, 'tajo_ses_brevo_calls_total', { endpoint: 'events_batch', status: 'ok' })).toBeGreaterThan(0);
    // One family per name: a scraper refuses a page that repeats one.
    const families = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
    expect(new Set(families).size).toBe(families.length);

    const status = (await fetch(`${base}/admin/status`).then((r) => r.json())) as { inbox: Record<string, number>; rateLimit: Array<{ bucket: string }> };
    expect(status.inbox.done).toBe(300);
    await until(
      async () => ((await fetch(`${base}/admin/status`).then((r) => r.json())) as typeof status).rateLimit.some((b) => b.bucket === 'events'),
      'the engine governor in /admin/status',
      5_000,
      100,
    );

    serve.child.kill('SIGTERM');
    expect(await serve.exited()).toBe(0);
    expect(serve.logs()).toContain('stopped cleanly');
    serve = undefined;
  });

  it('server.engine_thread: false runs everything on one thread, with the same results', async () => {
    const port = await freePort();
    serve = spawnRealtimeServe(sims, { name: 'inline', port, apiKey: sims.brevo.apiKey, server: { engine_thread: false } });
    const base = `http://127.0.0.1:${port}`;
    await serve.ready(port);
    const before = sims.brevo.state().events.length;
    const payloads = realisticMix(50, { recipients: 10, seed: 99 });
    for (const p of payloads) expect((await sims.sns.publish(`${base}/webhooks/amazon-ses`, sims.sns.notification(TOPIC, p))).status).toBe(200);
    const expected = expectedBrevoState(
      payloads.flatMap((p) => parseSesNotification(p).records),
      ALL_EVENTS_BOTH,
    ).events.size;
    await until(() => sims.brevo.state().events.length === before + expected, 'the inline engine to deliver', 30_000, 100);
    expect(serve.logs()).not.toContain('"thread":"engine"');
    serve.child.kill('SIGTERM');
    expect(await serve.exited()).toBe(0);
    serve = undefined;
  });
});
