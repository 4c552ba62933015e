// Brevo does not deduplicate custom events: an event whose answer was lost (connection reset
// after Brevo applied it, a timeout, a process killed before the store's commit) must not be
// sent twice. A retried event is looked up by its event_key first, and only sent when Brevo
// does not hold it: events of a few contacts by GET /contacts/{email} then GET /events of the
// contact; those of more contacts by one GET /events over the time window they can be in.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pino } from 'pino';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../src/config/load.js';
import { createConnector } from '../src/engine/connector.js';
import { buildServer } from '../src/server/app.js';
import { sesEvent } from '../src/sim/ses-events/index.js';
import { ALL_EVENTS_BOTH, LOOPBACK_CERT_HOST, TOPIC, until, useSims } from './helpers.js';

describe('an event whose answer was lost is not sent again', () => {
  const sims = useSims({ brevo: { plan: 'unlimited' }, sns: {}, tmpDir: 'tajo-resend-' });

  const configFor = (db: string) =>
    parseConfig({
      connectors: {
        'amazon-ses': {
          region: 'us-east-1',
          sns: { topic_arns: [TOPIC], signing_cert_hosts: [LOOPBACK_CERT_HOST], allow_http_cert_urls: true },
          events: ALL_EVENTS_BOTH,
        },
      },
      brevo: { api_key: sims.brevo.apiKey, base_url: sims.brevo.url },
      store: { url: `sqlite:${join(sims.dir, db)}` },
      server: { engine_thread: false },
      delivery: { backoff_base: '100ms', backoff_max: '200ms', max_attempts: 50 },
    });

  /** Events of other contacts, of the same name, in the window being looked up (Brevo holds more than ours). */
  const otherEvents = async (n: number) => {
    const events = Array.from({ length: n }, (_, i) => ({
      event_name: 'ses_email_delivered',
      event_date: new Date().toISOString(),
      identifiers: { email_id: `other${i}@example.com` },
      event_properties: { event_key: `other-${i}` },
    }));
    const res = await fetch(`${sims.brevo.url}/events/batch`, {
      method: 'POST',
      headers: { 'api-key': sims.brevo.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    expect(res.status).toBeLessThan(300);
  };

  /** One Delivery to `recipients` whose Brevo answers are lost after Brevo applied them, then Brevo answers again. */
  const deliverWithLostAnswers = async (opts: { db: string; recipients: string[]; lookupWindow?: { page: number; maxEvents: number } }) => {
    const connector = await createConnector(configFor(opts.db), {
      logger: pino({ level: 'silent' }),
      ensureAttributes: true,
      ...(opts.lookupWindow ? { delivery: { lookupWindow: opts.lookupWindow } } : {}),
    });
    const app = buildServer(connector);
    try {
      await connector.start();
      await app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/webhooks/amazon-ses`;
      sims.brevo.setFaults({ dropAfterApplyRate: 1 });
      const payload = sesEvent('Delivery', { messageId: `lost-${opts.db}`, recipients: opts.recipients, timestamp: '2026-03-01T10:00:00.000Z' });
      expect((await sims.sns.publish(url, sims.sns.notification(TOPIC, payload))).status).toBe(200);
      await until(
        () =>
          (sims.brevo.stats().status.dropped_after_apply ?? 0) >= 3 && sims.brevo.state().events.some((e) => e.identifiers?.email_id === opts.recipients[0]),
        'a write applied and its answer lost',
        20_000,
      );
      sims.brevo.setFaults({ dropAfterApplyRate: 0 });
      await connector.waitIdle(30_000);
      expect(await connector.store.listFailures({ limit: 10 })).toEqual([]);
    } finally {
      await app.close();
      await connector.stop();
    }
  };

  /** How many times Brevo holds each of our events to `recipients` (one key per recipient). */
  const ours = (recipients: string[]) => {
    const mine = sims.brevo.state().events.filter((e) => recipients.includes(e.identifiers?.email_id ?? ''));
    const byKey = new Map<unknown, number>();
    for (const e of mine) byKey.set(e.event_properties?.event_key, (byKey.get(e.event_properties?.event_key) ?? 0) + 1);
    return [...byKey.values()];
  };
  const reads = (route: string) => sims.brevo.stats().byRoute[route] ?? 0;

  it('a round of many contacts in doubt: one time window read, paged, no contact read, each event once', async () => {
    await otherEvents(12);
    const recipients = Array.from({ length: 8 }, (_, i) => `r${i}@example.com`);
    // Pages of 5: the window's 20 events (12 of others) take 4 pages, none skipped.
    const before = { contacts: reads('GET /v3/contacts/:identifier'), events: reads('GET /v3/events') };
    await deliverWithLostAnswers({ db: 'window.db', recipients, lookupWindow: { page: 5, maxEvents: 1000 } });
    expect(ours(recipients)).toEqual(recipients.map(() => 1));
    expect(reads('GET /v3/contacts/:identifier') - before.contacts).toBe(0);
    expect(reads('GET /v3/events') - before.events).toBeGreaterThanOrEqual(4);
  });

  it('a window holding more events than allowed: looked up contact by contact instead, each event once', async () => {
    await otherEvents(12);
    const recipients = Array.from({ length: 4 }, (_, i) => `s${i}@example.com`);
    const before = reads('GET /v3/contacts/:identifier');
    await deliverWithLostAnswers({ db: 'fallback.db', recipients, lookupWindow: { page: 5, maxEvents: 10 } });
    expect(ours(recipients)).toEqual(recipients.map(() => 1));
    expect(reads('GET /v3/contacts/:identifier') - before).toBeGreaterThanOrEqual(recipients.length);
  });

  it('reset after Brevo applied the call: one event in Brevo, found by its event_key (two contacts: one by one)', async () => {
    const recipients = ['ann@example.com', 'bob@example.com'];
    const before = { contacts: reads('GET /v3/contacts/:identifier'), events: reads('GET /v3/events') };
    await deliverWithLostAnswers({ db: 'resend.db', recipients });
    expect(ours(recipients)).toEqual([1, 1]);
    expect(reads('GET /v3/events') - before.events).toBeGreaterThan(0);
    expect(reads('GET /v3/contacts/:identifier') - before.contacts).toBeGreaterThan(0);
  });
});
