// The SQS intake's decision per message, without a queue: which bodies are stored under which
// inbox id, and which are poison (recorded once for `failures`, left for the redrive policy or
// deleted per `sqs.poison`).
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { DeleteMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { sesConnectorSchema } from '../config/schema.js';
import { sesEvent } from '../sim/ses-events/index.js';
import { openStore } from '../store/index.js';
import type { InboxInsert, Store } from '../store/port.js';
import { createMetrics } from './metrics.js';
import { SqsIntake } from './sqs.js';
import type { InboxWriter } from './ingest.js';

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function intake(raw: boolean | 'auto', poison: 'redrive' | 'delete' = 'redrive', store?: Store, sqsClient?: SQSClient) {
  if (!store) {
    store = await openStore('sqlite::memory:');
    await store.migrate();
    stores.push(store);
  }
  const rows: InboxInsert[] = [];
  const writer = { write: async (r: InboxInsert) => (rows.push(r), 'inserted' as const), backlog: () => 0 } as unknown as InboxWriter;
  const cfg = sesConnectorSchema.parse({ region: 'us-east-1', sqs: { queue_url: 'http://127.0.0.1:9/123456789012/q', raw_message_delivery: raw, poison } });
  const metrics = createMetrics();
  const client = sqsClient ?? new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const i = new SqsIntake({
    cfg,
    writer,
    store,
    verify: { topicArns: [], maxMessageAgeMs: 3_600_000 },
    log: pino({ level: 'silent' }),
    metrics,
    onStored: () => undefined,
    client,
  });
  return { i, rows, metrics, store };
}

const raw = { MessageId: 'm-1', ReceiptHandle: 'r', Body: JSON.stringify(sesEvent('Delivery', { messageId: 'u1' })) };

describe('SqsIntake.ingest', () => {
  it('stores a raw SES record under its SQS MessageId when raw_message_delivery is auto or true', async () => {
    for (const mode of ['auto', true] as const) {
      const { i, rows } = await intake(mode);
      expect(await i.ingest(raw)).toBe('stored');
      expect(rows.map((r) => [r.messageId, r.source, r.body])).toEqual([['sqs:m-1', 'sqs', raw.Body]]);
    }
  });

  it('refuses a raw SES record when raw_message_delivery is false (poison, nothing stored)', async () => {
    const { i, rows, metrics, store } = await intake(false);
    expect(await i.ingest(raw)).toBe('poison');
    expect(rows).toEqual([]);
    expect(await metrics.registry.getSingleMetricAsString('tajo_ses_sqs_messages_total')).toContain('outcome="raw_message_refused"} 1');
    expect((await store.listRefusedMessages({ limit: 10 })).map((r) => [r.key, r.reason, r.externalId, r.body])).toEqual([
      ['sqs:m-1', 'raw_message_refused', 'm-1', raw.Body],
    ]);
  });

  it('a body that is neither an SNS envelope nor an SES record, or not JSON, is poison', async () => {
    const { i, rows, store } = await intake('auto');
    expect(await i.ingest({ MessageId: 'a', Body: '{"hello":1}' })).toBe('poison');
    expect(await i.ingest({ MessageId: 'b', Body: 'hello' })).toBe('poison');
    // Redelivered by SQS (same MessageId): recorded once.
    expect(await i.ingest({ MessageId: 'b', Body: 'hello' })).toBe('poison');
    // No MessageId: keyed by the body's hash.
    expect(await i.ingest({ Body: 'nope' })).toBe('poison');
    expect(await i.ingest({ Body: 'nope' })).toBe('poison');
    expect(rows).toEqual([]);
    const refused = await store.listRefusedMessages({ limit: 10 });
    expect(refused.map((r) => [r.reason, r.externalId, r.body])).toEqual([
      ['malformed_envelope', 'a', '{"hello":1}'],
      ['malformed_json', 'b', 'hello'],
      ['malformed_json', null, 'nope'],
    ]);
    expect(refused[2]?.key).toMatch(/^sqs-body:[0-9a-f]{64}$/);
  });

  it('sqs.poison: delete deletes a poison message once it is recorded; unrecorded (store down) it stays', async () => {
    const { i, store } = await intake('auto', 'delete');
    expect(await i.ingest({ MessageId: 'a', Body: 'hello' })).toBe('poison_deleted');
    expect((await store.listRefusedMessages({ limit: 10 })).map((r) => r.key)).toEqual(['sqs:a']);
    const down = { recordRefusedMessage: async () => Promise.reject(new Error('store down')) } as unknown as Store;
    const { i: i2 } = await intake('auto', 'delete', down);
    expect(await i2.ingest({ MessageId: 'c', Body: 'hello' })).toBe('poison');
  });

  it('a batch deletes what is stored, and a poison message only under sqs.poison: delete', async () => {
    for (const mode of ['redrive', 'delete'] as const) {
      const deleted: string[] = [];
      const client = {
        send: async (cmd: { input: { Entries?: Array<{ ReceiptHandle: string }> } }) => {
          if (cmd instanceof DeleteMessageBatchCommand) for (const e of cmd.input.Entries ?? []) deleted.push(e.ReceiptHandle);
          return {};
        },
        destroy: () => undefined,
      } as unknown as SQSClient;
      const { i } = await intake('auto', mode, undefined, client);
      const outcomes = await i.handleBatch([raw, { MessageId: 'p', ReceiptHandle: 'r-poison', Body: 'not json' }]);
      expect(outcomes, mode).toEqual(['stored', mode === 'delete' ? 'poison_deleted' : 'poison']);
      expect(deleted, mode).toEqual(mode === 'delete' ? ['r', 'r-poison'] : ['r']);
    }
  });

  it('start does not fail when the queue cannot be read (serve and its webhook stay up); the pollers retry', async () => {
    const lines: string[] = [];
    const cfg = sesConnectorSchema.parse({ region: 'us-east-1', sqs: { queue_url: 'http://127.0.0.1:9/123456789012/q', pollers: 1 } });
    let calls = 0;
    const client = {
      send: async () => {
        calls++;
        throw new Error('AccessDenied');
      },
      destroy: () => undefined,
    } as unknown as SQSClient;
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const i = new SqsIntake({
      cfg,
      writer: {} as InboxWriter,
      store: {} as Store,
      verify: { topicArns: [], maxMessageAgeMs: 1 },
      log,
      metrics: createMetrics(),
      onStored: () => undefined,
      client,
    });
    await i.start();
    await i.stop();
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(lines.join('')).toContain('sqs:GetQueueAttributes');
  });
});
