// The EventBridge API destination intake (POST /webhooks/amazon-ses/eventbridge) over real
// HTTP: every SES detail-type reaches Brevo as the same payload through SNS would; the
// connection's secret header is the authentication; replays are dropped by the event id; an
// oversize body, a store outage and back-pressure get the answers EventBridge acts on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventBridgeEvent, sesEvent, type SesPayload } from '../src/sim/ses-events/index.js';
import { SES_EVENT_TYPES } from '../src/core/types.js';
import { EVENTBRIDGE_DETAIL_TYPES } from '../src/ses/eventbridge.js';
import {
  ALL_EVENTS_BOTH,
  eventsByKey,
  holdInboxCommits,
  inboxTotal,
  metricValue,
  startStack,
  until,
  untilBrevoMatches,
  type HttpAnswer,
  type Stack,
} from './helpers.js';

const SECRET = 'eb-secret-0123456789';
const PATH = '/webhooks/amazon-ses/eventbridge';

function post(stack: Stack, event: unknown, headers: Record<string, string> = { 'x-api-key': SECRET }): Promise<HttpAnswer> {
  const body = typeof event === 'string' ? event : JSON.stringify(event);
  return stack.request('POST', PATH, { headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body });
}

const at = (i: number) => `2026-04-0${1 + (i % 9)}T08:${String(10 + i).padStart(2, '0')}:00.000Z`;

describe('EventBridge intake with a secret configured', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ plan: 'unlimited', events: ALL_EVENTS_BOTH, eventbridge: { secret: SECRET } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const payloads: SesPayload[] = [];

  it('knows the ten SES detail-types, one per SES event type', () => {
    expect([...EVENTBRIDGE_DETAIL_TYPES.keys()].sort()).toEqual(
      [
        'Email Bounced',
        'Email Clicked',
        'Email Complaint Received',
        'Email Delivered',
        'Email Delivery Delayed',
        'Email Opened',
        'Email Rejected',
        'Email Rendering Failed',
        'Email Sent',
        'Email Subscribed',
      ].sort(),
    );
    expect([...EVENTBRIDGE_DETAIL_TYPES.values()].sort()).toEqual([...SES_EVENT_TYPES].sort());
  });

  it('every detail-type is stored (200 after the commit) and reaches Brevo as the SES record says', async () => {
    SES_EVENT_TYPES.forEach((type, i) => {
      payloads.push(
        sesEvent(type, {
          messageId: `eb-${type}`,
          recipients: [`eb.${type.toLowerCase()}@example.com`, `Eb.Two.${type}@Example.com`],
          timestamp: at(i),
          bounceType: 'Permanent',
          feedbackId: `eb-fb-${type}`,
        }),
      );
    });
    for (const p of payloads) {
      const event = eventBridgeEvent(p);
      const res = await post(stack, event);
      expect({ type: event['detail-type'], status: res.status, outcome: res.json?.outcome }).toEqual({
        type: event['detail-type'],
        status: 200,
        outcome: 'stored',
      });
    }
    await untilBrevoMatches(stack.brevo, payloads, { policy: ALL_EVENTS_BOTH, what: 'Brevo holds every EventBridge event', timeoutMs: 30_000 });
    const m = await stack.get('/metrics');
    expect(metricValue(m.text, 'tajo_ses_eventbridge_requests_total', { outcome: 'accepted' })).toBe(SES_EVENT_TYPES.length);
  });

  it('a replayed event (same id) is acknowledged as a duplicate and written to Brevo once', async () => {
    const payload = sesEvent('Click', { messageId: 'eb-replay', recipients: ['replay@example.com'], timestamp: '2026-04-20T10:00:00.000Z' });
    const event = eventBridgeEvent(payload, { id: 'replayed-event-id' });
    const before = await inboxTotal(stack.connector);
    const answers = [await post(stack, event), await post(stack, event), ...(await Promise.all([post(stack, event), post(stack, event)]))];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(answers.map((a) => a.json?.outcome)).toEqual(['stored', 'duplicate', 'duplicate', 'duplicate']);
    expect(await inboxTotal(stack.connector)).toBe(before + 1);
    payloads.push(payload);
    await untilBrevoMatches(stack.brevo, payloads, { policy: ALL_EVENTS_BOTH, what: 'the replayed click once', timeoutMs: 20_000 });
    const keys = [...eventsByKey(stack.brevo.state()).entries()].filter(([k]) => k.startsWith('ses:eb-replay:'));
    expect(keys.map(([, evs]) => evs.length)).toEqual([1]);
  });

  it('an unknown detail-type is stored, counted as unknown and sends nothing to Brevo', async () => {
    const unknownBefore = metricValue((await stack.get('/metrics')).text, 'tajo_ses_unknown_records_total', { type: 'other' });
    const eventsBefore = stack.brevo.state().events.length;
    const event = {
      ...eventBridgeEvent(sesEvent('Send', { messageId: 'eb-unknown' })),
      'detail-type': 'Sending Status Disabled',
      detail: { reason: 'paused' },
    };
    const res = await post(stack, event);
    expect(res.status).toBe(200);
    expect(res.json?.outcome).toBe('stored');
    await until(
      async () => metricValue((await stack.get('/metrics')).text, 'tajo_ses_unknown_records_total', { type: 'other' }) === unknownBefore + 1,
      'the unknown detail-type counted',
    );
    await stack.connector.waitIdle(10_000);
    expect(stack.brevo.state().events.length).toBe(eventsBefore);
  });

  it('a wrong, missing, repeated or differently named secret header is refused with 401 and stores nothing', async () => {
    const event = eventBridgeEvent(sesEvent('Delivery', { messageId: 'eb-unauth' }));
    const before = await inboxTotal(stack.connector);
    const wrong = await post(stack, event, { 'x-api-key': `${SECRET}x` });
    const prefix = await post(stack, event, { 'x-api-key': SECRET.slice(0, -1) });
    const missing = await post(stack, event, {});
    const otherHeader = await post(stack, event, { authorization: SECRET });
    for (const r of [wrong, prefix, missing, otherHeader]) {
      expect(r.status).toBe(401);
      expect(r.json?.reason).toBe('unauthorized');
      expect(r.text).not.toContain(SECRET);
    }
    expect(await inboxTotal(stack.connector)).toBe(before);
    // Header names are case-insensitive in HTTP.
    expect((await post(stack, event, { 'X-Api-Key': SECRET })).status).toBe(200);
  });

  it('a body that is not an EventBridge event is refused with 400', async () => {
    for (const body of [
      'not json',
      '[]',
      JSON.stringify({ id: '', 'detail-type': 'Email Sent', source: 'aws.ses', detail: {} }),
      JSON.stringify({ id: 'x' }),
    ]) {
      const res = await post(stack, body);
      expect(res.status).toBe(400);
      expect(res.json?.reason).toBe('malformed_event');
    }
  });

  it('a body over 256 KiB is refused with 413', async () => {
    const big = eventBridgeEvent(sesEvent('Send', { messageId: 'eb-big', subject: 'x'.repeat(257 * 1024) }));
    const res = await post(stack, big);
    expect(res.status).toBe(413);
    expect(res.json?.reason).toBe('payload_too_large');
  });

  it('answers 429 with Retry-After while the store is behind, and stores the event once it catches up', async () => {
    const { release } = holdInboxCommits(stack.connector.store);
    try {
      const eb = stack.connector.eventbridge as unknown as { maxBacklog: number };
      const saved = eb.maxBacklog;
      eb.maxBacklog = 1;
      try {
        const first = post(stack, eventBridgeEvent(sesEvent('Open', { messageId: 'eb-slow-1' })));
        await until(() => stack.connector.writer.backlog() === 1, 'the first event waiting for its commit');
        // Bounded only so that a connector that waits for the store instead fails here rather than hangs.
        const second = await Promise.race([
          post(stack, eventBridgeEvent(sesEvent('Open', { messageId: 'eb-slow-2' }))),
          new Promise<HttpAnswer>((r) =>
            setTimeout(() => r({ status: 0, headers: new Headers(), text: 'no answer while the store was held', json: undefined }), 10_000),
          ),
        ]);
        expect(second.status).toBe(429);
        expect(second.headers.get('retry-after')).toBe('1');
        expect(second.json?.reason).toBe('throttled');
        release();
        expect((await first).status).toBe(200);
      } finally {
        eb.maxBacklog = saved;
      }
    } finally {
      release();
    }
  });
});

describe('EventBridge intake without a secret, and with the store down', () => {
  it('answers 404 when eventbridge.secret is empty, whatever the header', async () => {
    const stack = await startStack({ plan: 'unlimited' });
    try {
      const event = eventBridgeEvent(sesEvent('Send'));
      for (const headers of [{}, { 'x-api-key': '' }, { 'x-api-key': SECRET }] as Array<Record<string, string>>) {
        const res = await post(stack, event, headers);
        expect(res.status).toBe(404);
        expect(res.json?.reason).toBe('not_enabled');
      }
      expect(await inboxTotal(stack.connector)).toBe(0);
    } finally {
      await stack.stop();
    }
  });

  it('a custom header name carries the secret; 503 (EventBridge retries) when the store cannot commit', async () => {
    const stack = await startStack({ plan: 'unlimited', eventbridge: { header_name: 'X-Tajo-Key', secret: SECRET } });
    try {
      const event = eventBridgeEvent(sesEvent('Send', { messageId: 'eb-down' }));
      expect((await post(stack, event, { 'x-api-key': SECRET })).status).toBe(401);
      expect((await post(stack, event, { 'x-tajo-key': SECRET })).status).toBe(200);
      await stack.connector.store.close();
      const res = await post(stack, eventBridgeEvent(sesEvent('Send', { messageId: 'eb-down-2' })), { 'x-tajo-key': SECRET });
      expect(res.status).toBe(503);
      expect(res.json?.reason).toBe('store_unavailable');
      expect(metricValue((await stack.get('/metrics')).text, 'tajo_ses_eventbridge_requests_total', { outcome: 'store_unavailable' })).toBe(1);
    } finally {
      await stack.stop();
    }
  });
});
