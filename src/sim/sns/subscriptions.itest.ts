// The SNS simulator's subscriptions: delivery to an SQS simulator queue (wrapped and verified,
// or raw), and to an HTTP endpoint under a delivery policy (retries, then the subscription's
// dead-letter queue, or discarded without one; a 4xx is not retried).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertCache, verifySnsMessage } from '../../ses/sns.js';
import { startSqsSim, type SqsSim } from '../sqs/index.js';
import { SNS_DEFAULT_HTTP_DELIVERY_POLICY, startSnsSim, type SnsSim } from './index.js';

let sns: SnsSim;
let sqs: SqsSim;
let server: http.Server;
let endpoint: string;
/** Statuses the endpoint answers, in order (then 200); each request is recorded. */
let script: number[] = [];
let requests: Array<{ at: number; body: string; headers: http.IncomingHttpHeaders }> = [];
const FAST = { numRetries: 3, delayMs: 50 };

const verify = (body: string) =>
  verifySnsMessage(body, {
    topicArns: [sns.topicArn('t')],
    maxMessageAgeMs: 60_000,
    signingCertHosts: ['^127\\.0\\.0\\.1$'],
    allowHttpCertUrls: true,
    certCache: new CertCache(),
  });

beforeAll(async () => {
  sns = await startSnsSim();
  sqs = await startSqsSim({ queues: { wrapped: {}, raw: {}, dlq: {}, 'raw-dlq': {} } });
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ at: Date.now(), body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
      res.writeHead(script.shift() ?? 200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/amazon-ses`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await sns?.close();
  await sqs?.close();
});

const fresh = () => {
  script = [];
  requests = [];
};

describe('SNS simulator subscriptions', () => {
  it('delivers to SQS queues: a signed envelope that verifies, or the raw message', async () => {
    const topic = sns.topicArn('sqs-topic');
    const a = sns.subscribe(topic, { protocol: 'sqs', queue: { sqs, queue: 'wrapped' } });
    const b = sns.subscribe(topic, { protocol: 'sqs', queue: { sqs, queue: 'raw' }, rawMessageDelivery: true });
    expect(await sns.publishToTopic(topic, { eventType: 'Send' }, { messageId: 'm-sqs' })).toEqual(['delivered', 'delivered']);
    const [wrapped] = sqs.messages('wrapped');
    const env = JSON.parse(wrapped!.body) as { Type: string; MessageId: string; TopicArn: string; Message: string };
    expect(env).toMatchObject({ Type: 'Notification', MessageId: 'm-sqs', TopicArn: topic, Message: '{"eventType":"Send"}' });
    await expect(
      verifySnsMessage(wrapped!.body, { topicArns: [topic], maxMessageAgeMs: 60_000, signingCertHosts: ['^127\\.0\\.0\\.1$'], allowHttpCertUrls: true }),
    ).resolves.toMatchObject({ MessageId: 'm-sqs' });
    expect(sqs.messages('raw').map((m) => m.body)).toEqual(['{"eventType":"Send"}']);
    expect(a.stats().delivered).toBe(1);
    a.unsubscribe();
    b.unsubscribe();
    // No subscription left: nothing delivered anywhere.
    expect(await sns.publishToTopic(topic, 'x')).toEqual([]);
  });

  it("SNS's default HTTP policy is three retries 20 s apart", () => {
    expect(SNS_DEFAULT_HTTP_DELIVERY_POLICY).toEqual({ numRetries: 3, delayMs: 20_000 });
  });

  it('HTTP: a failed delivery is retried per the policy, the same envelope each time, until the endpoint takes it', async () => {
    fresh();
    script = [500, 503, 429];
    const sub = sns.subscribe(sns.topicArn('t'), { protocol: 'http', endpoint, deliveryPolicy: FAST, deadLetterQueue: { sqs, queue: 'dlq' } });
    expect(await sns.publishToTopic(sns.topicArn('t'), { n: 1 })).toEqual(['delivered']);
    sub.unsubscribe();
    expect(requests).toHaveLength(4);
    expect(new Set(requests.map((r) => r.body)).size).toBe(1);
    expect(requests[0]!.headers['x-amz-sns-subscription-arn']).toBe(sub.arn);
    // Each retry waited the policy's delay.
    for (let i = 1; i < requests.length; i++) expect(requests[i]!.at - requests[i - 1]!.at).toBeGreaterThanOrEqual(FAST.delayMs - 5);
    expect(sub.stats()).toEqual({ delivered: 1, failedAttempts: 3, deadLettered: 0, discarded: 0 });
    expect(sqs.messages('dlq')).toHaveLength(0);
  });

  it('HTTP: when the retries are used up the envelope moves to the dead-letter queue (and verifies there)', async () => {
    fresh();
    script = [500, 500, 500, 500, 500];
    const sub = sns.subscribe(sns.topicArn('t'), { protocol: 'http', endpoint, deliveryPolicy: FAST, deadLetterQueue: { sqs, queue: 'dlq' } });
    expect(await sns.publishToTopic(sns.topicArn('t'), { n: 2 }, { messageId: 'm-dlq' })).toEqual(['dead_lettered']);
    sub.unsubscribe();
    expect(requests).toHaveLength(1 + FAST.numRetries);
    const dlq = sqs.messages('dlq');
    expect(dlq).toHaveLength(1);
    await expect(verify(dlq[0]!.body)).resolves.toMatchObject({ MessageId: 'm-dlq', Message: '{"n":2}' });
    expect(sub.stats()).toEqual({ delivered: 0, failedAttempts: 4, deadLettered: 1, discarded: 0 });
  });

  it('HTTP: a client error (4xx) is not retried: straight to the DLQ; raw delivery posts and dead-letters the bare message', async () => {
    fresh();
    script = [400];
    const sub = sns.subscribe(sns.topicArn('t'), {
      protocol: 'http',
      endpoint,
      deliveryPolicy: FAST,
      deadLetterQueue: { sqs, queue: 'raw-dlq' },
      rawMessageDelivery: true,
    });
    expect(await sns.publishToTopic(sns.topicArn('t'), { n: 3 })).toEqual(['dead_lettered']);
    sub.unsubscribe();
    expect(requests.map((r) => [r.body, r.headers['x-amz-sns-rawdelivery']])).toEqual([['{"n":3}', 'true']]);
    expect(sqs.messages('raw-dlq').map((m) => m.body)).toEqual(['{"n":3}']);
  });

  it('HTTP: an endpoint that is down, without a DLQ: discarded after every retry', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const sub = sns.subscribe(sns.topicArn('t'), { protocol: 'http', endpoint: `http://127.0.0.1:${port}/`, deliveryPolicy: FAST });
    expect(await sns.publishToTopic(sns.topicArn('t'), { n: 4 })).toEqual(['discarded']);
    sub.unsubscribe();
    expect(sub.stats()).toEqual({ delivered: 0, failedAttempts: 4, deadLettered: 0, discarded: 1 });
  });
});
