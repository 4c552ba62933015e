// The SQS intake's decision per message, without a queue: which bodies are stored under which
// inbox id, and which are poison (left for the redrive policy).
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SQSClient } from '@aws-sdk/client-sqs';
import { sesConnectorSchema } from '../config/schema.js';
import { sesEvent } from '../sim/ses-events/index.js';
import type { InboxInsert } from '../store/port.js';
import { createMetrics } from './metrics.js';
import { SqsIntake } from './sqs.js';
import type { InboxWriter } from './ingest.js';

function intake(raw: boolean | 'auto') {
  const rows: InboxInsert[] = [];
  const writer = { write: async (r: InboxInsert) => (rows.push(r), 'inserted' as const), backlog: () => 0 } as unknown as InboxWriter;
  const cfg = sesConnectorSchema.parse({ region: 'us-east-1', sqs: { queue_url: 'http://127.0.0.1:9/123456789012/q', raw_message_delivery: raw } });
  const metrics = createMetrics();
  const client = new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const i = new SqsIntake({
    cfg,
    writer,
    verify: { topicArns: [], maxMessageAgeMs: 3_600_000 },
    log: pino({ level: 'silent' }),
    metrics,
    onStored: () => undefined,
    client,
  });
  return { i, rows, metrics };
}

const raw = { MessageId: 'm-1', ReceiptHandle: 'r', Body: JSON.stringify(sesEvent('Delivery', { messageId: 'u1' })) };

describe('SqsIntake.ingest', () => {
  it('stores a raw SES record under its SQS MessageId when raw_message_delivery is auto or true', async () => {
    for (const mode of ['auto', true] as const) {
      const { i, rows } = intake(mode);
      expect(await i.ingest(raw)).toBe('stored');
      expect(rows.map((r) => [r.messageId, r.source, r.body])).toEqual([['sqs:m-1', 'sqs', raw.Body]]);
    }
  });

  it('refuses a raw SES record when raw_message_delivery is false (poison, nothing stored)', async () => {
    const { i, rows, metrics } = intake(false);
    expect(await i.ingest(raw)).toBe('poison');
    expect(rows).toEqual([]);
    expect(await metrics.registry.getSingleMetricAsString('tajo_ses_sqs_messages_total')).toContain('outcome="raw_message_refused"} 1');
  });

  it('a body that is neither an SNS envelope nor an SES record, or not JSON, is poison', async () => {
    const { i, rows } = intake('auto');
    expect(await i.ingest({ MessageId: 'a', Body: '{"hello":1}' })).toBe('poison');
    expect(await i.ingest({ MessageId: 'b', Body: 'hello' })).toBe('poison');
    expect(rows).toEqual([]);
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
