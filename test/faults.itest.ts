// Issue: nothing lost when Brevo fails or throttles, or when the process is killed.
import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { pino } from 'pino';
import type { SnsSim } from '../src/sim/sns/index.js';
import { realisticMix } from '../src/sim/ses-events/index.js';
import { parseSesNotification } from '../src/ses/parse.js';
import { expectedBrevoState, compareWithBrevo } from '../src/sim/oracle.js';
import { parseConfig } from '../src/config/load.js';
import { createConnector } from '../src/engine/connector.js';
import { buildServer } from '../src/server/app.js';
import type { SesEventRecord } from '../src/core/types.js';
import type { SnsEnvelope } from '../src/ses/sns.js';
import type { AddressInfo } from 'node:net';
import { ALL_EVENTS_BOTH, freePort, LOOPBACK_CERT_HOST, spawnServe, TOPIC, until, useSims, writeServeConfig, type ServeProcess } from './helpers.js';

async function publishAll(sns: SnsSim, url: string, envs: SnsEnvelope[], concurrency = 32): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < envs.length) {
      const env = envs[next++]!;
      for (let attempt = 0; ; attempt++) {
        const res = await sns.publish(url, env).catch(() => ({ status: 0, body: '' }));
        if (res.status === 200) break;
        if (attempt > 50) throw new Error(`envelope ${env.MessageId} never acknowledged: ${res.status} ${res.body}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

function recordsOf(payloads: Array<Record<string, unknown>>): SesEventRecord[] {
  return payloads.flatMap((p) => parseSesNotification(p).records);
}

describe('delivery under Brevo faults', () => {
  const sims = useSims({ brevo: { plan: 'general', faults: { errorRate: 0.3, throttleRate: 0.1, seed: 7 } }, sns: {}, tmpDir: 'tajo-faults-' });

  it('5,000 events with 30% 5xx and 429 bursts: each arrives exactly once or is a dead letter with Brevo error', async () => {
    const cfg = parseConfig({
      connectors: {
        'amazon-ses': {
          region: 'us-east-1',
          sns: { topic_arns: [TOPIC], signing_cert_hosts: [LOOPBACK_CERT_HOST], allow_http_cert_urls: true },
          events: ALL_EVENTS_BOTH,
        },
      },
      brevo: { api_key: sims.brevo.apiKey, base_url: sims.brevo.url },
      store: { url: `sqlite:${join(sims.dir, 'faults.db')}` },
      delivery: { backoff_base: '100ms', backoff_max: '2s', max_attempts: 12 },
    });
    // Attributes before the faults start: set-up retrying under 30% faults would eat the time budget.
    const connector = await createConnector(cfg, { logger: pino({ level: 'silent' }), ensureAttributes: true });
    const app = buildServer(connector);
    try {
      // Attributes are created while Brevo fails too: start() must get through it.
      sims.brevo.setFaults({ errorRate: 0, throttleRate: 0 });
      await connector.start();
      sims.brevo.setFaults({ errorRate: 0.3, throttleRate: 0.1, seed: 7 });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/webhooks/amazon-ses`;
      const payloads = realisticMix(5000, { recipients: 150, seed: 11 });
      await publishAll(
        sims.sns,
        url,
        payloads.map((p) => sims.sns.notification(TOPIC, p)),
      );
      await connector.waitIdle(170_000);
      await sims.brevo.settle();

      const records = recordsOf(payloads);
      const exp = expectedBrevoState(records, cfg.connectors['amazon-ses'].events);
      const state = sims.brevo.state();
      const failures = await connector.store.listFailures({ limit: 10_000 });
      const deadKeys = new Set(failures.filter((f) => f.kind === 'event').map((f) => f.key));
      for (const f of failures) {
        expect(f.lastCode).toBeTruthy();
        expect(f.lastMessage).toBeTruthy();
      }
      const counts = new Map<string, number>();
      for (const e of state.events) counts.set(String(e.event_properties?.event_key), (counts.get(String(e.event_properties?.event_key)) ?? 0) + 1);
      let missing = 0;
      for (const key of exp.events.keys()) {
        const n = counts.get(key) ?? 0;
        if (n === 0 && !deadKeys.has(key)) missing++;
        expect(n, `event ${key} delivered ${n} times`).toBeLessThanOrEqual(1);
      }
      expect(missing).toBe(0);
      expect(exp.events.size).toBeGreaterThan(4900);
      const stats = sims.brevo.stats();
      // The faults really happened.
      expect((stats.status['500'] ?? 0) + (stats.status['502'] ?? 0) + (stats.status['503'] ?? 0)).toBeGreaterThan(0);
      expect(stats.throttled).toBeGreaterThan(0);
      if (failures.length === 0) {
        const cmp = compareWithBrevo(exp, state);
        expect(cmp.problems).toEqual([]);
      }
    } finally {
      await app.close();
      await connector.stop();
    }
  });
});

describe('SIGKILL mid-delivery', () => {
  const sims = useSims({ brevo: { plan: 'general', faults: { latencyMs: 20 } }, sns: {}, tmpDir: 'tajo-kill-' });
  let serve: ServeProcess | undefined;
  afterAll(() => {
    serve?.child.kill('SIGKILL');
  });

  it('a killed serve resumes after restart: nothing accepted is lost', async () => {
    const port = await freePort();
    const configPath = writeServeConfig({
      dir: sims.dir,
      name: 'kill',
      port,
      brevo: { url: sims.brevo.url, apiKey: '${SIM_KEY}' },
      delivery: { backoff_base: '100ms', backoff_max: '2s', batch_size: 50 },
    });
    process.env.SIM_KEY = sims.brevo.apiKey;
    serve = spawnServe(configPath);
    await serve.ready(port);
    const url = `http://127.0.0.1:${port}/webhooks/amazon-ses`;
    const payloads = realisticMix(5000, { recipients: 100, seed: 5 });
    await publishAll(
      sims.sns,
      url,
      payloads.map((p) => sims.sns.notification(TOPIC, p)),
    );
    const records = recordsOf(payloads);
    const exp = expectedBrevoState(records, ALL_EVENTS_BOTH);

    // Kill it while Brevo holds part of the events (50 per batch at 10 batches/s).
    await until(
      () => sims.brevo.stats().byRoute['POST /v3/events/batch'] !== undefined && sims.brevo.state().events.length >= 500,
      'first deliveries',
      60_000,
      100,
    );
    const before = sims.brevo.state().events.length;
    serve.child.kill('SIGKILL');
    await serve.exited();
    expect(before).toBeLessThan(exp.events.size);

    serve = spawnServe(configPath);
    await serve.ready(port);
    await until(
      () => {
        const keys = new Set(sims.brevo.state().events.map((e) => String(e.event_properties?.event_key)));
        for (const k of exp.events.keys()) if (!keys.has(k)) return false;
        return true;
      },
      'every event after restart',
      150_000,
      100,
    );
    // Attribute writes finish too: the blocklist and the newest event per contact.
    await until(() => compareWithBrevo(exp, sims.brevo.state(), { allowDuplicates: true }).ok, 'contacts after restart', 60_000, 100);
    const cmp = compareWithBrevo(exp, sims.brevo.state(), { allowDuplicates: true });
    expect(cmp.events.missing).toBe(0);
    // A batch in flight at the kill is looked up by event_key before it is sent again: none twice.
    expect(cmp.events.duplicates).toBe(0);

    serve.child.kill('SIGTERM');
    expect(await serve.exited()).toBe(0);
    serve = undefined;
  });
});
