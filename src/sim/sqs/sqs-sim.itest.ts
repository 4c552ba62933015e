// The SQS simulator, driven by the real @aws-sdk/client-sqs: if the SDK can parse every answer
// (MD5 checks included) and map every error, the connector's SQS intake meets the same protocol
// it will meet on AWS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { startSqsSim, type SqsSim } from './index.js';

let sim: SqsSim;
let sqs: SQSClient;

beforeAll(async () => {
  sim = await startSqsSim({
    queues: {
      dlq: {},
      main: { visibilityTimeoutSeconds: 1, redrive: { deadLetterQueue: 'dlq', maxReceiveCount: 2 } },
      plain: { visibilityTimeoutSeconds: 30 },
    },
  });
  sqs = new SQSClient({ region: 'us-east-1', endpoint: sim.endpoint, credentials: { accessKeyId: 'AKIDSIM', secretAccessKey: 'sim-secret' } });
});
afterAll(async () => {
  sqs?.destroy();
  await sim?.close();
});

const receive = (QueueUrl: string, more: { WaitTimeSeconds?: number; MaxNumberOfMessages?: number; VisibilityTimeout?: number } = {}) =>
  sqs.send(new ReceiveMessageCommand({ QueueUrl, MessageSystemAttributeNames: ['All'], ...more }));

describe('SQS simulator with the real SDK', () => {
  it('SendMessage then ReceiveMessage: body, MD5 (checked by the SDK), ApproximateReceiveCount', async () => {
    const url = sim.queueUrl('plain');
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{"hello":"wörld"}' }));
    expect(sent.MessageId).toMatch(/^[0-9a-f-]{36}$/);
    const got = await receive(url, { MaxNumberOfMessages: 10 });
    expect(got.Messages).toHaveLength(1);
    const m = got.Messages![0]!;
    expect(m.Body).toBe('{"hello":"wörld"}');
    expect(m.MessageId).toBe(sent.MessageId);
    expect(m.Attributes?.ApproximateReceiveCount).toBe('1');
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: [{ Id: 'a', ReceiptHandle: m.ReceiptHandle! }] }));
    expect(sim.messages('plain')).toHaveLength(0);
  });

  it('MaxNumberOfMessages caps a receive at 10; a long poll returns as soon as a message arrives', async () => {
    const url = sim.queueUrl('plain');
    for (let i = 0; i < 12; i++) sim.send('plain', `m${i}`);
    const first = await receive(url, { MaxNumberOfMessages: 10 });
    expect(first.Messages).toHaveLength(10);
    const second = await receive(url, { MaxNumberOfMessages: 10 });
    expect(second.Messages).toHaveLength(2);
    const entries = [...first.Messages!, ...second.Messages!].map((m, i) => ({ Id: `e${i}`, ReceiptHandle: m.ReceiptHandle! }));
    const del1 = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: entries.slice(0, 10) }));
    const del2 = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: entries.slice(10) }));
    expect((del1.Successful ?? []).length + (del2.Successful ?? []).length).toBe(12);
    expect(sim.messages('plain')).toHaveLength(0);

    const waiting = receive(url, { WaitTimeSeconds: 20 });
    await new Promise((r) => setTimeout(r, 100));
    sim.send('plain', 'late');
    const got = await waiting;
    expect(got.Messages?.map((m) => m.Body)).toEqual(['late']);
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: [{ Id: 'x', ReceiptHandle: got.Messages![0]!.ReceiptHandle! }] }));
  });

  it('an empty long poll ends after WaitTimeSeconds with no messages', async () => {
    const got = await receive(sim.queueUrl('plain'), { WaitTimeSeconds: 1 });
    expect(got.Messages ?? []).toEqual([]);
  });

  it('an unacknowledged message comes back after its visibility timeout with a new receipt and a higher count; the stale receipt deletes nothing', async () => {
    const url = sim.queueUrl('plain');
    sim.send('plain', 'again');
    const a = (await receive(url, { VisibilityTimeout: 1 })).Messages![0]!;
    expect((await receive(url)).Messages ?? []).toEqual([]);
    const b = (await receive(url, { WaitTimeSeconds: 5 })).Messages![0]!;
    expect(b.MessageId).toBe(a.MessageId);
    expect(b.ReceiptHandle).not.toBe(a.ReceiptHandle);
    expect(b.Attributes?.ApproximateReceiveCount).toBe('2');
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: [{ Id: 'old', ReceiptHandle: a.ReceiptHandle! }] }));
    expect(sim.messages('plain')).toHaveLength(1);
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: [{ Id: 'new', ReceiptHandle: b.ReceiptHandle! }] }));
    expect(sim.messages('plain')).toHaveLength(0);
  });

  it('ChangeMessageVisibility(Batch) extends or ends the invisibility; a stale receipt is refused', async () => {
    const url = sim.queueUrl('plain');
    sim.send('plain', 'one');
    sim.send('plain', 'two');
    const [m1, m2] = (await receive(url, { MaxNumberOfMessages: 2, VisibilityTimeout: 30 })).Messages!;
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m1!.ReceiptHandle!, VisibilityTimeout: 0 }));
    const again = (await receive(url, { VisibilityTimeout: 30 })).Messages!;
    expect(again.map((m) => m.Body)).toEqual(['one']);
    await expect(
      sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m1!.ReceiptHandle!, VisibilityTimeout: 5 })),
    ).rejects.toMatchObject({
      name: 'MessageNotInflight',
    });
    const res = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: 'ok', ReceiptHandle: m2!.ReceiptHandle!, VisibilityTimeout: 60 },
          { Id: 'stale', ReceiptHandle: m1!.ReceiptHandle!, VisibilityTimeout: 60 },
        ],
      }),
    );
    expect(res.Successful?.map((s) => s.Id)).toEqual(['ok']);
    expect(res.Failed?.map((f) => [f.Id, f.Code])).toEqual([['stale', 'MessageNotInflight']]);
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: '1', ReceiptHandle: again[0]!.ReceiptHandle! },
          { Id: '2', ReceiptHandle: m2!.ReceiptHandle! },
        ],
      }),
    );
    expect(sim.messages('plain')).toHaveLength(0);
  });

  it('after maxReceiveCount receives, the next receive moves the message to the dead-letter queue', async () => {
    const url = sim.queueUrl('main');
    sim.send('main', 'poison');
    for (let i = 1; i <= 2; i++) {
      const got = (await receive(url, { WaitTimeSeconds: 5 })).Messages!;
      expect(got[0]!.Attributes?.ApproximateReceiveCount).toBe(String(i));
    }
    expect((await receive(url, { WaitTimeSeconds: 2 })).Messages ?? []).toEqual([]);
    expect(sim.messages('main')).toHaveLength(0);
    const dead = (await receive(sim.queueUrl('dlq'))).Messages!;
    expect(dead.map((m) => m.Body)).toEqual(['poison']);
  });

  it('GetQueueAttributes reports the visibility timeout, the redrive policy and the depths', async () => {
    const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: sim.queueUrl('main'), AttributeNames: ['All'] }));
    expect(res.Attributes?.VisibilityTimeout).toBe('1');
    expect(JSON.parse(res.Attributes?.RedrivePolicy ?? '{}')).toEqual({ deadLetterTargetArn: sim.queueArn('dlq'), maxReceiveCount: 2 });
    expect(res.Attributes?.QueueArn).toBe(sim.queueArn('main'));
    const one = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: sim.queueUrl('dlq'), AttributeNames: ['ApproximateNumberOfMessagesNotVisible'] }));
    expect(one.Attributes).toEqual({ ApproximateNumberOfMessagesNotVisible: '1' });
  });

  it('an unknown queue is the SDK QueueDoesNotExist error', async () => {
    const err = await receive(`${sim.endpoint}/123456789012/nope`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueDoesNotExist);
  });
});
