// Issue: the backfill runs in its own lane; real-time SES events never wait behind a bulk
// import. A 100,000-contact backfill runs at SES's 1 request/s in an in-process connector
// while signed SNS notifications (one Complaint every 2 s) arrive at the real webhook server;
// each must reach the Brevo simulator (event and contact) within seconds. The backfill is
// then stopped through its AbortSignal and everything shuts down cleanly.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startBrevoSim, type BrevoSim } from '../src/sim/brevo/index.js';
import { startSesSim, type SesSim } from '../src/sim/ses/index.js';
import { startSnsSim, type SnsSim } from '../src/sim/sns/index.js';
import { sesEvent } from '../src/sim/ses-events/index.js';
import { buildServer } from '../src/server/app.js';
import type { BackfillProgress } from '../src/engine/backfill.js';
import { inProcessConnector, simConfig, sleep, TOPIC, until } from './backfill-helpers.js';

const CONTACTS = 100_000;
const EVENTS = 10;
const EVERY_MS = 2_000;

describe('real-time events during a large backfill', () => {
  let brevo: BrevoSim;
  let sesSim: SesSim;
  let sns: SnsSim;
  let dir: string;

  beforeAll(async () => {
    brevo = await startBrevoSim({ plan: 'general', importDelayMs: 200 });
    sesSim = await startSesSim({ rps: 1 });
    sesSim.generate({ lists: 2, topicsPerList: 2, contacts: CONTACTS, suppressions: 2_000, seed: 99 });
    sns = await startSnsSim({ region: 'us-east-1' });
    dir = mkdtempSync(join(tmpdir(), 'tajo-bf-lanes-'));
  });

  afterAll(async () => {
    await brevo?.close();
    await sesSim?.close();
    await sns?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`a Complaint every ${EVERY_MS / 1000} s reaches Brevo within seconds while ${CONTACTS.toLocaleString('en')} contacts are backfilled`, async () => {
    const cfg = simConfig({
      sesEndpoint: sesSim.endpoint,
      brevo: { url: brevo.url, apiKey: brevo.apiKey },
      db: join(dir, 'lanes.db'),
      ses: { sns: { topic_arns: [TOPIC], signing_cert_hosts: ['^127\\.0\\.0\\.1$'], allow_http_cert_urls: true } },
    });
    const connector = await inProcessConnector(cfg);
    const app = buildServer(connector);
    const abort = new AbortController();
    let backfill: Promise<unknown> | undefined;
    try {
      await connector.start();
      await app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/webhooks/amazon-ses`;

      let progress: BackfillProgress | undefined;
      backfill = connector.backfill({}, { signal: abort.signal, onProgress: (p) => (progress = p) }).then(
        (s) => ({ ok: true as const, s }),
        (err: unknown) => ({ ok: false as const, err: err as Error }),
      );
      // Start the events once bulk imports are flowing.
      await until(() => (brevo.stats().byRoute['POST /v3/contacts/import'] ?? 0) >= 3, 'the first bulk imports', 60_000, 100);
      const importsBefore = brevo.stats().byRoute['POST /v3/contacts/import'] ?? 0;
      const readBefore = progress?.read ?? 0;

      const eventCalls = () => {
        const r = brevo.stats().byRoute;
        return (r['POST /v3/events'] ?? 0) + (r['POST /v3/events/batch'] ?? 0);
      };
      const callsAtStart = eventCalls();
      const delays: number[] = [];
      const emails: string[] = [];
      const watchers: Array<Promise<void>> = [];
      const t0 = Date.now();
      for (let i = 0; i < EVENTS; i++) {
        const due = t0 + i * EVERY_MS;
        if (due > Date.now()) await sleep(due - Date.now());
        const email = `lane-${i}@example.org`;
        emails.push(email);
        const env = sns.notification(TOPIC, sesEvent('Complaint', { recipients: [email], timestamp: new Date().toISOString() }));
        const sent = Date.now();
        const res = await sns.publish(url, env);
        expect(res.status, res.body).toBe(200);
        // Arrived = Brevo holds the contact's complaint attributes and the event call was made.
        watchers.push(
          until(
            () => {
              const c = brevo.contact(email);
              return c?.emailBlacklisted === true && c.attributes.SES_COMPLAINT_TYPE !== undefined && eventCalls() - callsAtStart >= i + 1;
            },
            `complaint ${i} in Brevo`,
            30_000,
            10,
          ).then(() => {
            delays[i] = Date.now() - sent;
          }),
        );
      }
      await Promise.all(watchers);
      const importsDuring = (brevo.stats().byRoute['POST /v3/contacts/import'] ?? 0) - importsBefore;
      const readDuring = (progress?.read ?? 0) - readBefore;
      const max = Math.max(...delays);

      // Stop the backfill; it settles promptly (resolves, or rejects with 'backfill stopped').
      const tStop = Date.now();
      abort.abort();
      const outcome = (await Promise.race([backfill, sleep(15_000).then(() => 'timeout' as const)])) as { ok: boolean; err?: Error } | 'timeout';
      expect(outcome).not.toBe('timeout');
      const stopMs = Date.now() - tStop;
      if (outcome !== 'timeout' && !outcome.ok) expect(outcome.err?.message).toMatch(/stopped|abort/i);

      // Every event is in Brevo exactly once, with its key.
      const state = brevo.state();
      const ours = state.events.filter((e) => emails.includes(String(e.identifiers.email_id)));
      expect(ours.map((e) => e.event_name)).toEqual(Array(EVENTS).fill('ses_email_complained'));
      expect(new Set(ours.map((e) => String(e.event_properties?.event_key))).size).toBe(EVENTS);
      expect(state.events.length).toBe(EVENTS);
      const cursor = (await connector.store.listCursors()).find((c) => c.stream === 'contacts');
      expect(cursor?.status).not.toBe('complete');

      console.log(
        `[backfill-lanes] delays ms: ${delays.join(', ')}; max ${max} ms; during the events the backfill read ${readDuring} contacts and made ${importsDuring} Brevo imports; ` +
          `contacts read in all ${progress?.read ?? 0} (${progress?.detail ?? ''}); stop took ${stopMs} ms (${outcome === 'timeout' ? 'timeout' : outcome.ok ? 'resolved' : `rejected: ${outcome.err?.message}`})`,
      );
      expect(delays.filter((d) => d !== undefined)).toHaveLength(EVENTS);
      expect(max).toBeLessThan(10_000);
      // The backfill really ran alongside: pages were read and imported while events flowed.
      expect(readDuring).toBeGreaterThanOrEqual(5_000);
      expect(importsDuring).toBeGreaterThan(0);
    } finally {
      abort.abort();
      await backfill;
      await app.close();
      await connector.stop(5_000);
    }
  }, 180_000);
});
