// Brevo does not deduplicate custom events: an event whose answer was lost (connection reset
// after Brevo applied it, a timeout, a process killed before the store's commit) must not be
// sent twice. A retried event is looked up by its event_key first (GET /contacts/{email},
// GET /events), and only sent when Brevo does not hold it.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pino } from 'pino';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../src/config/load.js';
import { createConnector } from '../src/engine/connector.js';
import { buildServer } from '../src/server/app.js';
import { sesEvent } from '../src/sim/ses-events/index.js';
import { ALL_EVENTS_BOTH, eventsByKey, LOOPBACK_CERT_HOST, TOPIC, until, useSims } from './helpers.js';

describe('an event whose answer was lost is not sent again', () => {
  const sims = useSims({ brevo: { plan: 'unlimited' }, sns: {}, tmpDir: 'tajo-resend-' });

  it('reset after Brevo applied the call: one event in Brevo, found by its event_key', async () => {
    const cfg = parseConfig({
      connectors: {
        'amazon-ses': {
          region: 'us-east-1',
          sns: { topic_arns: [TOPIC], signing_cert_hosts: [LOOPBACK_CERT_HOST], allow_http_cert_urls: true },
          events: ALL_EVENTS_BOTH,
        },
      },
      brevo: { api_key: sims.brevo.apiKey, base_url: sims.brevo.url },
      store: { url: `sqlite:${join(sims.dir, 'resend.db')}` },
      server: { engine_thread: false },
      delivery: { backoff_base: '100ms', backoff_max: '200ms', max_attempts: 50 },
    });
    const connector = await createConnector(cfg, { logger: pino({ level: 'silent' }), ensureAttributes: true });
    const app = buildServer(connector);
    try {
      await connector.start();
      await app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/webhooks/amazon-ses`;
      sims.brevo.setFaults({ dropAfterApplyRate: 1 });
      const payload = sesEvent('Delivery', {
        messageId: 'lost-answer',
        recipients: ['ann@example.com', 'bob@example.com'],
        timestamp: '2026-03-01T10:00:00.000Z',
      });
      expect((await sims.sns.publish(url, sims.sns.notification(TOPIC, payload))).status).toBe(200);
      // Brevo applied the batch, the connector saw its connection reset, and tries again.
      await until(
        () => (sims.brevo.stats().status.dropped_after_apply ?? 0) >= 3 && sims.brevo.state().events.length > 0,
        'a write applied and its answer lost',
        20_000,
      );
      sims.brevo.setFaults({ dropAfterApplyRate: 0 });
      await connector.waitIdle(30_000);
      const byKey = eventsByKey(sims.brevo.state());
      expect([...byKey.values()].map((evs) => evs.length)).toEqual([1, 1]);
      expect(sims.brevo.stats().byRoute['GET /v3/events']).toBeGreaterThan(0);
      expect(await connector.store.listFailures({ limit: 10 })).toEqual([]);
    } finally {
      await app.close();
      await connector.stop();
    }
  });
});
