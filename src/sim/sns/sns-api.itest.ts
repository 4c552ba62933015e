// The SNS simulator's API, driven by the real @aws-sdk/client-sns (AWS Query protocol): if the SDK
// parses every answer and maps every error, `tajo-ses check` meets the protocol it meets on AWS.
// A delivery policy, redrive policy or raw delivery set through the API changes how the
// simulator delivers.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthorizationErrorException,
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  NotFoundException,
  SetSubscriptionAttributesCommand,
  SNSClient,
} from '@aws-sdk/client-sns';
import { startSnsSim, SNS_DEFAULT_EFFECTIVE_DELIVERY_POLICY, type SnsSim } from './index.js';
import { startSqsSim, type SqsSim } from '../sqs/index.js';
import { listenOn } from '../listen.js';

const CREDENTIALS = { accessKeyId: 'AKIDSIM', secretAccessKey: 'sim-secret' };

let sim: SnsSim;
let sqs: SqsSim;
let sns: SNSClient;
let down: Server;
let downUrl: string;
let downHits = 0;

beforeAll(async () => {
  sqs = await startSqsSim({ queues: { 'hook-dlq': {}, intake: {} } });
  sim = await startSnsSim({ sqs });
  sns = new SNSClient({ region: 'us-east-1', endpoint: sim.url, credentials: CREDENTIALS, maxAttempts: 1 });
  // A webhook that is always down (503).
  down = createServer((_req, res) => {
    downHits++;
    res.writeHead(503).end();
  });
  downUrl = `${(await listenOn(down, {})).origin}/webhooks/amazon-ses`;
});
afterAll(async () => {
  sns?.destroy();
  await sim?.close();
  await sqs?.close();
  down?.closeAllConnections();
  await new Promise<void>((r) => (down ? down.close(() => r()) : r()));
});

describe('SNS simulator API with the real SDK', () => {
  it('ListSubscriptionsByTopic lists HTTP/S and SQS subscriptions; an unknown topic is NotFound', async () => {
    const topic = sim.topicArn('listed');
    const hook = sim.subscribe(topic, { protocol: 'http', endpoint: 'https://hooks.example.com/webhooks/amazon-ses' });
    const queue = sim.subscribe(topic, { protocol: 'sqs', queue: { sqs, queue: 'intake' } });
    sim.subscribe(sim.topicArn('other'), { protocol: 'http', endpoint: 'http://other.example.com/' });
    const res = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topic }));
    expect(res.Subscriptions).toEqual([
      { TopicArn: topic, Protocol: 'https', SubscriptionArn: hook.arn, Owner: '123456789012', Endpoint: 'https://hooks.example.com/webhooks/amazon-ses' },
      { TopicArn: topic, Protocol: 'sqs', SubscriptionArn: queue.arn, Owner: '123456789012', Endpoint: sqs.queueArn('intake') },
    ]);
    expect(res.NextToken).toBeUndefined();
    sim.createTopic(sim.topicArn('empty'));
    expect((await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: sim.topicArn('empty') }))).Subscriptions ?? []).toEqual([]);
    const err = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: sim.topicArn('nope') })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundException);
    expect((err as NotFoundException).$metadata.httpStatusCode).toBe(404);
  });

  it('GetSubscriptionAttributes: SNS defaults, then what SetSubscriptionAttributes set', async () => {
    const topic = sim.topicArn('attrs');
    const sub = sim.subscribe(topic, { protocol: 'http', endpoint: 'https://hooks.example.com/webhooks/amazon-ses' });
    const get = async () => (await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: sub.arn }))).Attributes ?? {};
    const before = await get();
    expect(before).toMatchObject({ SubscriptionArn: sub.arn, TopicArn: topic, Protocol: 'https', RawMessageDelivery: 'false', PendingConfirmation: 'false' });
    expect(before['DeliveryPolicy']).toBeUndefined();
    expect(before['RedrivePolicy']).toBeUndefined();
    expect(JSON.parse(before['EffectiveDeliveryPolicy']!)).toEqual(SNS_DEFAULT_EFFECTIVE_DELIVERY_POLICY);

    const policy = '{"healthyRetryPolicy":{"numRetries":100,"minDelayTarget":20,"maxDelayTarget":20,"backoffFunction":"linear"}}';
    const redrive = JSON.stringify({ deadLetterTargetArn: sqs.queueArn('hook-dlq') });
    await sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: sub.arn, AttributeName: 'DeliveryPolicy', AttributeValue: policy }));
    await sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: sub.arn, AttributeName: 'RedrivePolicy', AttributeValue: redrive }));
    await sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: sub.arn, AttributeName: 'RawMessageDelivery', AttributeValue: 'true' }));
    const after = await get();
    expect(after['DeliveryPolicy']).toBe(policy);
    expect(JSON.parse(after['EffectiveDeliveryPolicy']!).healthyRetryPolicy).toMatchObject({ numRetries: 100, minDelayTarget: 20, numNoDelayRetries: 0 });
    expect(after['RedrivePolicy']).toBe(redrive);
    expect(after['RawMessageDelivery']).toBe('true');

    const bad = await sns
      .send(
        new SetSubscriptionAttributesCommand({
          SubscriptionArn: sub.arn,
          AttributeName: 'DeliveryPolicy',
          AttributeValue: '{"healthyRetryPolicy":{"numRetries":1000}}',
        }),
      )
      .catch((e: unknown) => e as Error);
    expect(bad).toMatchObject({ name: 'InvalidParameterException' });
    const gone = await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: `${topic}:no-such` })).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(NotFoundException);
  });

  it('a delivery policy and redrive policy set through the API decide where an undeliverable message goes', async () => {
    const topic = sim.topicArn('redriven');
    const sub = sim.subscribe(topic, { protocol: 'http', endpoint: downUrl, timeoutMs: 2_000 });
    await sns.send(
      new SetSubscriptionAttributesCommand({
        SubscriptionArn: sub.arn,
        AttributeName: 'DeliveryPolicy',
        AttributeValue: '{"healthyRetryPolicy":{"numRetries":2,"minDelayTarget":0,"maxDelayTarget":0}}',
      }),
    );
    await sns.send(
      new SetSubscriptionAttributesCommand({
        SubscriptionArn: sub.arn,
        AttributeName: 'RedrivePolicy',
        AttributeValue: JSON.stringify({ deadLetterTargetArn: sqs.queueArn('hook-dlq') }),
      }),
    );
    const hitsBefore = downHits;
    expect(await sim.publishToTopic(topic, { hello: 'dlq' })).toEqual(['dead_lettered']);
    expect(downHits - hitsBefore).toBe(3);
    const dlq = sqs.messages('hook-dlq');
    expect(dlq).toHaveLength(1);
    expect(JSON.parse(JSON.parse(dlq[0]!.body).Message)).toEqual({ hello: 'dlq' });
    // Removing the redrive policy: discarded again, as SNS does.
    await sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: sub.arn, AttributeName: 'RedrivePolicy', AttributeValue: '' }));
    expect(await sim.publishToTopic(topic, { hello: 'gone' })).toEqual(['discarded']);
  });

  it('deny: the chosen actions answer AuthorizationError (403), naming the action; others still answer', async () => {
    const topic = sim.topicArn('denied');
    const sub = sim.subscribe(topic, { protocol: 'http', endpoint: 'https://hooks.example.com/webhooks/amazon-ses' });
    sim.deny(['GetSubscriptionAttributes']);
    try {
      expect((await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topic }))).Subscriptions).toHaveLength(1);
      const err = await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: sub.arn })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthorizationErrorException);
      expect((err as Error).message).toContain('SNS:GetSubscriptionAttributes');
      expect((err as AuthorizationErrorException).$metadata.httpStatusCode).toBe(403);
      sim.deny(['*']);
      await expect(sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topic }))).rejects.toBeInstanceOf(AuthorizationErrorException);
    } finally {
      sim.deny([]);
    }
    expect(sim.apiCalls()['GetSubscriptionAttributes']).toBeGreaterThan(0);
  });
});
