import { describe, it, expect, afterEach } from 'vitest';
import { pino } from 'pino';
import { SqliteStore } from '../store/sqlite/index.js';
import { Processor, normalizeInbox } from './processor.js';
import { createMetrics } from './metrics.js';
import { sesEvent } from '../sim/ses-events/index.js';
import { parseConfig } from '../config/load.js';

const cfg = parseConfig({ connectors: { 'amazon-ses': { region: 'us-east-1' } }, brevo: { api_key: 'k' } }).connectors['amazon-ses'];
const envelope = (i: number, message: unknown) => ({
  messageId: `m${i}`,
  source: 'sns' as const,
  receivedAt: 0,
  body: JSON.stringify({ Type: 'Notification', MessageId: `m${i}`, Message: typeof message === 'string' ? message : JSON.stringify(message) }),
});

describe('Processor', () => {
  let store: SqliteStore;
  afterEach(async () => {
    await store.close();
  });

  async function pending(): Promise<number> {
    return (await store.stats()).inbox.pending ?? 0;
  }

  it('yields to a webhook burst for at most maxDeferMs, then catches up', async () => {
    store = new SqliteStore(':memory:');
    await store.migrate();
    await store.insertInbox([
      envelope(1, sesEvent('Click', { recipients: ['a@x.io'] })),
      envelope(2, sesEvent('Bounce', { recipients: ['b@x.io'], bounceType: 'Permanent' })),
    ]);
    const p = new Processor({
      store,
      plan: cfg,
      owner: 'w',
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      onPlanned: () => undefined,
      batchSize: 100,
      underPressure: () => true,
      maxDeferMs: 400,
    });
    p.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(await pending()).toBe(2);
    await new Promise((r) => setTimeout(r, 600));
    expect(await pending()).toBe(0);
    await p.stop();
  });

  it('processes at once without pressure, and a bad envelope does not hold up the others', async () => {
    store = new SqliteStore(':memory:');
    await store.migrate();
    await store.insertInbox([envelope(1, 'not json at all'), envelope(2, sesEvent('Delivery', { recipients: ['c@x.io'] }))]);
    const p = new Processor({ store, plan: cfg, owner: 'w', log: pino({ level: 'silent' }), metrics: createMetrics(), onPlanned: () => undefined });
    const r = await p.runOnce();
    expect(r).toMatchObject({ envelopes: 2, records: 1 });
    expect((await store.stats()).inbox).toEqual({ done: 1, unparseable: 1 });
  });

  it('says a planned batch is urgent when it holds a blocklisting (the delivery loops stop waiting for a fuller round)', async () => {
    store = new SqliteStore(':memory:');
    await store.migrate();
    const planned: Array<{ urgent: boolean }> = [];
    const p = new Processor({ store, plan: cfg, owner: 'w', log: pino({ level: 'silent' }), metrics: createMetrics(), onPlanned: (x) => planned.push(x) });
    await store.insertInbox([envelope(1, sesEvent('Delivery', { recipients: ['c@x.io'] }))]);
    await p.runOnce();
    await store.insertInbox([envelope(2, sesEvent('Bounce', { recipients: ['b@x.io'], bounceType: 'Permanent' }))]);
    await p.runOnce();
    expect(planned).toEqual([{ urgent: false }, { urgent: true }]);
  });

  it('normalizeInbox reads raw SES payloads (SQS raw delivery) as well as SNS envelopes', () => {
    const raw = { id: 1, messageId: 'x', source: 'sqs', topicArn: null, receivedAt: 0, body: JSON.stringify(sesEvent('Open', { recipients: ['d@x.io'] })) };
    const { records, outcomes } = normalizeInbox([raw]);
    expect(records.map((r) => r.type)).toEqual(['Open']);
    expect(outcomes).toEqual([{ id: 1, state: 'done' }]);
  });

  it('normalizeInbox clamps an SES time more than 5 minutes past the receipt to the receipt, keeps the key, and counts it', () => {
    const received = Date.parse('2026-03-01T12:00:00.000Z');
    const row = (id: number, timestamp: string) => ({
      id,
      messageId: `e${id}`,
      source: 'sns',
      topicArn: null,
      receivedAt: received,
      body: JSON.stringify({
        Type: 'Notification',
        MessageId: `e${id}`,
        Message: JSON.stringify(sesEvent('Delivery', { recipients: ['d@x.io', 'e@x.io'], timestamp })),
      }),
    });
    const metrics = createMetrics();
    const { records, clamped } = normalizeInbox(
      [row(1, '2999-01-01T00:00:00.000Z'), row(2, '2026-03-01T12:04:59.000Z'), row(3, '2026-03-01T12:05:01.000Z')],
      metrics,
    );
    expect(records.map((r) => r.timestamp)).toEqual([
      '2026-03-01T12:00:00.000Z',
      '2026-03-01T12:00:00.000Z',
      '2026-03-01T12:04:59.000Z',
      '2026-03-01T12:04:59.000Z',
      '2026-03-01T12:00:00.000Z',
      '2026-03-01T12:00:00.000Z',
    ]);
    expect(records[0]!.key).toContain('2999-01-01T00:00:00.000Z');
    expect(clamped).toEqual([
      { messageId: 'e1', records: 2, timestamp: '2999-01-01T00:00:00.000Z', receivedAt: received },
      { messageId: 'e3', records: 2, timestamp: '2026-03-01T12:05:01.000Z', receivedAt: received },
    ]);
  });
});
