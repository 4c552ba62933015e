// Issue 13: `tajo-ses check` reads how SNS and EventBridge deliver to the connector. An HTTP/S
// subscription left at SNS's default delivery policy (3 retries, 20 s apart) without a
// dead-letter queue loses what arrives while the webhook is down: a warning with the fix. Raw
// message delivery on it: a failure (the webhook refuses raw bodies). The EventBridge intake
// needs a rule on source aws.ses targeting an API destination for the connector's endpoint.
// Denied reads are warnings naming the permission. The checks run in-process against the SNS
// and EventBridge simulators, spoken to by the real SDK clients over real sockets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { checkEventBridge, checkSns, retrySpan, type CheckResult } from '../src/engine/check.js';
import { startEventBridgeSim, type EventBridgeSim, type EventBridgeSimRule } from '../src/sim/eventbridge/index.js';
import { startSqsSim, type SqsSim } from '../src/sim/sqs/index.js';
import { CREDS, inProcessConnector } from './backfill-helpers.js';
import { useSims } from './helpers.js';

const HOOK = 'https://hooks.example.com/webhooks/amazon-ses';
const EB_HOOK = 'https://hooks.example.com/webhooks/amazon-ses/eventbridge';
const LONG_POLICY = { numRetries: 100, delayMs: 20_000 };

const sims = useSims({ sns: {}, tmpDir: 'tajo-check-delivery-' });
let sqs: SqsSim;
let eb: EventBridgeSim;
beforeAll(async () => {
  sqs = await startSqsSim({ queues: { 'hook-dlq': {}, intake: {} } });
  eb = await startEventBridgeSim();
});
afterAll(async () => {
  await eb?.close();
  await sqs?.close();
});

let runs = 0;
/** Runs one check with a connector whose connectors.amazon-ses is `ses` over the simulators. */
async function run(which: 'sns' | 'eventbridge', ses: Record<string, unknown>): Promise<CheckResult[]> {
  const c = await inProcessConnector({
    connectors: { 'amazon-ses': { region: 'us-east-1', ...ses } },
    store: { url: `sqlite:${join(sims.dir, `check-${++runs}.db`)}` },
    log: { level: 'silent' },
  });
  try {
    const out: CheckResult[] = [];
    await (which === 'sns' ? checkSns : checkEventBridge)(c, (r) => out.push(r), CREDS);
    return out;
  } finally {
    await c.stop();
  }
}
const snsCheck = (topics: string[], more: Record<string, unknown> = {}) => run('sns', { sns: { topic_arns: topics, endpoint: sims.sns.url }, ...more });
const brief = (rs: CheckResult[]) => rs.map((r) => [r.name, r.ok, r.warning === true]);

describe('check: SNS subscriptions that deliver to the connector', () => {
  it('SES read from a simulator and no sns.endpoint (init --local): not checked, and real SNS is not asked with the simulator keys', async () => {
    const topic = sims.sns.topicArn('beside-sim');
    sims.sns.subscribe(topic, { protocol: 'http', endpoint: HOOK });
    const rs = await run('sns', { endpoint: 'http://127.0.0.1:9', sns: { topic_arns: [topic] } });
    expect(brief(rs)).toEqual([['sns.subscriptions', true, false]]);
    expect(rs[0]!.detail).toContain('connectors.amazon-ses.sns.endpoint is not set');
  });

  it("SNS's default delivery policy and no DLQ: a warning with both fixes (the policy command, a DLQ the SQS intake drains)", async () => {
    const topic = sims.sns.topicArn('defaults');
    const sub = sims.sns.subscribe(topic, { protocol: 'http', endpoint: HOOK });
    const rs = await snsCheck([topic]);
    expect(brief(rs)).toEqual([['sns.delivery_policy', true, true]]);
    expect(rs[0]!.detail).toBe(
      `${HOOK} on ${topic}: it has SNS's default delivery policy (3 retries over about 60 s); it has no dead-letter queue, so what SNS gives up on is discarded: messages that arrive while the webhook is down are lost`,
    );
    expect(rs[0]!.fix).toContain(
      `aws sns set-subscription-attributes --subscription-arn ${sub.arn} --attribute-name DeliveryPolicy --attribute-value '{"healthyRetryPolicy":{"numRetries":100`,
    );
    expect(rs[0]!.fix).toContain(`--subscription-arn ${sub.arn} --attribute-name RedrivePolicy`);
    expect(rs[0]!.fix).toContain('set sqs.queue_url to that queue');
  });

  it('a long delivery policy and a DLQ: ok (and said to be drained when it is the SQS intake queue); only one of them: a warning with the other fix', async () => {
    const topic = sims.sns.topicArn('long');
    sims.sns.subscribe(topic, { protocol: 'http', endpoint: HOOK, deliveryPolicy: LONG_POLICY, deadLetterQueue: { sqs, queue: 'hook-dlq' } });
    const rs = await snsCheck([topic], { sqs: { queue_url: sqs.queueUrl('hook-dlq'), endpoint: sqs.endpoint, raw_message_delivery: false } });
    expect(brief(rs)).toEqual([['sns.delivery_policy', true, false]]);
    expect(rs[0]!.detail).toBe(`${HOOK} on ${topic}: 100 retries over about 33 min, dead-letter queue ${sqs.queueArn('hook-dlq')} (the SQS intake drains it)`);

    const noDlq = sims.sns.topicArn('long-no-dlq');
    sims.sns.subscribe(noDlq, { protocol: 'http', endpoint: HOOK, deliveryPolicy: LONG_POLICY });
    const [a] = await snsCheck([noDlq]);
    expect([a!.ok, a!.warning]).toEqual([true, true]);
    expect(a!.fix).toContain('RedrivePolicy');
    expect(a!.fix).not.toContain('DeliveryPolicy');

    const shortDlq = sims.sns.topicArn('short-dlq');
    sims.sns.subscribe(shortDlq, {
      protocol: 'http',
      endpoint: HOOK,
      deliveryPolicy: { numRetries: 10, delayMs: 20_000 },
      deadLetterQueue: { sqs, queue: 'hook-dlq' },
    });
    const [b] = await snsCheck([shortDlq]);
    expect([b!.ok, b!.warning]).toEqual([true, true]);
    expect(b!.detail).toContain('its delivery policy retries 10 times over about 200 s');
    expect(b!.fix).toContain('DeliveryPolicy');
    expect(b!.fix).not.toContain('RedrivePolicy');
  });

  it('raw message delivery on the HTTPS subscription: a failure with the command that turns it off', async () => {
    const topic = sims.sns.topicArn('raw');
    const sub = sims.sns.subscribe(topic, {
      protocol: 'http',
      endpoint: HOOK,
      rawMessageDelivery: true,
      deliveryPolicy: LONG_POLICY,
      deadLetterQueue: { sqs, queue: 'hook-dlq' },
    });
    const rs = await snsCheck([topic]);
    expect(brief(rs)).toEqual([
      ['sns.raw_delivery', false, false],
      ['sns.delivery_policy', true, false],
    ]);
    expect(rs[0]!.detail).toContain('400 raw_message_delivery_enabled');
    expect(rs[0]!.fix).toBe(`aws sns set-subscription-attributes --subscription-arn ${sub.arn} --attribute-name RawMessageDelivery --attribute-value false`);
  });

  it('access denied: a warning naming the permission, never a crash', async () => {
    const topic = sims.sns.topicArn('denied');
    sims.sns.subscribe(topic, { protocol: 'http', endpoint: HOOK });
    try {
      sims.sns.deny(['ListSubscriptionsByTopic']);
      const listing = await snsCheck([topic]);
      expect(brief(listing)).toEqual([['sns.subscriptions', true, true]]);
      expect(listing[0]!.detail).toContain('not authorized to perform: SNS:ListSubscriptionsByTopic');
      expect(listing[0]!.fix).toMatch(/^allow sns:ListSubscriptionsByTopic on .* and sns:GetSubscriptionAttributes /);
      sims.sns.deny(['GetSubscriptionAttributes']);
      const reading = await snsCheck([topic]);
      expect(brief(reading)).toEqual([['sns.delivery_policy', true, true]]);
      expect(reading[0]!.fix).toMatch(/^allow sns:GetSubscriptionAttributes /);
    } finally {
      sims.sns.deny([]);
    }
  });

  it("which subscriptions: those on the webhook's path when there are any; an endpoint's password and query are never printed; one result per subscription", async () => {
    const topic = sims.sns.topicArn('several');
    sims.sns.subscribe(topic, { protocol: 'http', endpoint: 'https://tajo:s3cr3t-pw@a.example.com/webhooks/amazon-ses?token=t0k3n' });
    sims.sns.subscribe(topic, { protocol: 'http', endpoint: 'http://b.example.com/webhooks/amazon-ses/' });
    sims.sns.subscribe(topic, { protocol: 'http', endpoint: 'https://someone-else.example.com/hook' });
    const rs = await snsCheck([topic]);
    expect(rs.map((r) => r.name)).toEqual(['sns.delivery_policy', 'sns.delivery_policy.2']);
    expect(rs[0]!.detail).toMatch(/^https:\/\/a\.example\.com\/webhooks\/amazon-ses\?… on /);
    expect(rs[1]!.detail).toMatch(/^http:\/\/b\.example\.com\/webhooks\/amazon-ses\/ on /);
    expect(JSON.stringify(rs)).not.toMatch(/s3cr3t|t0k3n|someone-else/);
    // None on the webhook path: every HTTP/S subscription is named.
    const other = sims.sns.topicArn('elsewhere');
    sims.sns.subscribe(other, { protocol: 'http', endpoint: 'https://proxy.example.com/in' });
    const [e] = await snsCheck([other]);
    expect(e!.detail).toMatch(/^https:\/\/proxy\.example\.com\/in on /);
  });

  it('a topic without an HTTP/S subscription: a warning; a topic that does not exist: a failure', async () => {
    const empty = sims.sns.topicArn('no-subscribers');
    sims.sns.createTopic(empty);
    const rs = await snsCheck([empty, sims.sns.topicArn('never-created')]);
    expect(brief(rs)).toEqual([
      ['sns.subscriptions', true, true],
      ['sns.subscriptions.2', false, false],
    ]);
    expect(rs[0]!.fix).toContain('/webhooks/amazon-ses');
    expect(rs[1]!.fix).toContain('sns.topic_arns');
  });

  it("the SQS intake queue's subscription: raw delivery while sqs.raw_message_delivery is false is a failure", async () => {
    const topic = sims.sns.topicArn('to-queue');
    const sub = sims.sns.subscribe(topic, { protocol: 'sqs', queue: { sqs, queue: 'intake' }, rawMessageDelivery: true });
    const strict = await snsCheck([topic], { sqs: { queue_url: sqs.queueUrl('intake'), endpoint: sqs.endpoint, raw_message_delivery: false } });
    expect(brief(strict)).toEqual([['sns.sqs_subscription', false, false]]);
    expect(strict[0]!.fix).toContain(`--subscription-arn ${sub.arn} --attribute-name RawMessageDelivery --attribute-value false`);
    const auto = await snsCheck([topic], { sqs: { queue_url: sqs.queueUrl('intake'), endpoint: sqs.endpoint, raw_message_delivery: 'auto' } });
    expect(brief(auto)).toEqual([['sns.sqs_subscription', true, false]]);
    expect(auto[0]!.detail).toContain('raw SES records');
  });

  it('retrySpan: SNS default 60 s; phases at min and max delay, a linear climb between', () => {
    expect(retrySpan(undefined)).toEqual({ retries: 3, seconds: 60 });
    expect(retrySpan('{"healthyRetryPolicy":{"numRetries":100,"minDelayTarget":20,"maxDelayTarget":20}}')).toEqual({ retries: 100, seconds: 2000 });
    // 2 immediate, 3 at 10 s, 5 at 100 s, 10 climbing from 10 to 100 s (sum 10*10 + 90*11/2 = 595).
    expect(
      retrySpan(
        '{"healthyRetryPolicy":{"numRetries":20,"numNoDelayRetries":2,"numMinDelayRetries":3,"numMaxDelayRetries":5,"minDelayTarget":10,"maxDelayTarget":100}}',
      ),
    ).toEqual({ retries: 20, seconds: 30 + 500 + 595 });
  });
});

describe('check: the EventBridge rule and API destination', () => {
  const ebCheck = (secret = 'eb-secret') => run('eventbridge', { eventbridge: { secret, endpoint: eb.endpoint } });
  const ours = (over: Partial<EventBridgeSimRule> = {}, dlq = true): EventBridgeSimRule => ({
    name: 'ses-to-tajo',
    eventPattern: { source: ['aws.ses'], 'detail-type': ['Email Bounced', 'Email Delivered'] },
    targets: [{ id: 'tajo', arn: eb.apiDestinationArn('tajo'), ...(dlq ? { deadLetterArn: 'arn:aws:sqs:us-east-1:123456789012:eb-dlq' } : {}) }],
    ...over,
  });
  const destinations = [
    { name: 'tajo', invocationEndpoint: EB_HOOK },
    { name: 'crm', invocationEndpoint: 'https://crm.example.com/events' },
  ];
  const other = (): EventBridgeSimRule => ({
    name: 'ses-to-crm',
    eventPattern: { source: ['aws.ses'] },
    targets: [{ id: 'crm', arn: eb.apiDestinationArn('crm') }],
  });

  it('a rule on source aws.ses targeting an API destination for /webhooks/amazon-ses/eventbridge: ok', async () => {
    eb.seed({ rules: [other(), ours()], apiDestinations: destinations });
    const rs = await ebCheck();
    expect(brief(rs)).toEqual([['eventbridge.rule', true, false]]);
    expect(rs[0]!.detail).toBe(
      `rule ses-to-tajo sends source aws.ses events to the API destination tajo (POST ${EB_HOOK}), dead-letter queue arn:aws:sqs:us-east-1:123456789012:eb-dlq`,
    );
    // Without a secret the intake is off: nothing is read.
    const before = eb.calls()['ListRules'] ?? 0;
    expect(await ebCheck('')).toEqual([]);
    expect(eb.calls()['ListRules'] ?? 0).toBe(before);
  });

  it('the rule disabled, or its target without a DLQ: a warning with the fix', async () => {
    eb.seed({ rules: [ours({ state: 'DISABLED' })], apiDestinations: destinations });
    const [disabled] = await ebCheck();
    expect([disabled!.ok, disabled!.warning]).toEqual([true, true]);
    expect(disabled!.fix).toBe('enable the rule: aws events enable-rule --name ses-to-tajo');
    eb.seed({ rules: [ours({}, false)], apiDestinations: destinations });
    const [noDlq] = await ebCheck();
    expect([noDlq!.ok, noDlq!.warning]).toEqual([true, true]);
    expect(noDlq!.fix).toContain('dead-letter queue');
  });

  it('no rule for the connector: a warning with the AWS steps', async () => {
    eb.seed({ rules: [other(), { name: 'nightly', targets: [] }], apiDestinations: destinations });
    const [missing] = await ebCheck();
    expect([missing!.name, missing!.ok, missing!.warning]).toEqual(['eventbridge.rule', true, true]);
    expect(missing!.detail).toBe(
      'no rule matching source aws.ses on the default event bus targets an API destination for /webhooks/amazon-ses/eventbridge (found: ses-to-crm -> https://crm.example.com/events)',
    );
    expect(missing!.fix).toMatch(
      /connection with API key authorization \(key x-api-key.*API destination on it \(POST https:\/\/YOUR-HOST\/webhooks\/amazon-ses\/eventbridge\).*rule on the default event bus/,
    );
    eb.seed({ rules: [], apiDestinations: [] });
    const [none] = await ebCheck();
    expect(none!.detail).toMatch(/^no rule on the default event bus \(us-east-1\) matches source aws\.ses/);
  });

  it('access denied: a warning naming the permissions, never a crash', async () => {
    eb.seed({ rules: [ours()], apiDestinations: destinations });
    try {
      for (const op of ['ListRules', 'ListTargetsByRule', 'DescribeApiDestination']) {
        eb.deny([op]);
        const rs = await ebCheck();
        expect(brief(rs), op).toEqual([['eventbridge.rule', true, true]]);
        expect(rs[0]!.detail, op).toContain(`(${op})`);
        expect(rs[0]!.fix).toBe(
          "allow events:ListRules, events:ListTargetsByRule and events:DescribeApiDestination for the connector's AWS identity (optional: check reads the rule and its API destination with them)",
        );
      }
    } finally {
      eb.deny([]);
    }
  });
});
