// The EventBridge simulator, driven by the real @aws-sdk/client-eventbridge (AWS JSON 1.1): the
// reads `tajo-ses check` makes of the EventBridge intake's set-up, paging, and the errors the SDK
// must map (a missing rule or API destination, access denied).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AccessDeniedException,
  DescribeApiDestinationCommand,
  EventBridgeClient,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-eventbridge';
import { startEventBridgeSim, type EventBridgeSim } from './index.js';

let sim: EventBridgeSim;
let events: EventBridgeClient;
const PATTERN = { source: ['aws.ses'], 'detail-type': ['Email Bounced'] };

beforeAll(async () => {
  sim = await startEventBridgeSim();
  sim.seed({
    rules: [
      {
        name: 'ses-to-tajo',
        eventPattern: PATTERN,
        targets: [{ id: 'tajo', arn: sim.apiDestinationArn('tajo'), deadLetterArn: 'arn:aws:sqs:us-east-1:123456789012:eb-dlq' }],
      },
      { name: 'ses-archive', eventPattern: PATTERN, state: 'DISABLED' },
      { name: 'nightly', targets: [{ id: 'fn', arn: 'arn:aws:lambda:us-east-1:123456789012:function:nightly' }] },
      { name: 'ses-on-custom-bus', eventBusName: 'custom', eventPattern: PATTERN },
    ],
    apiDestinations: [{ name: 'tajo', invocationEndpoint: 'https://hooks.example.com/webhooks/amazon-ses/eventbridge' }],
  });
  events = new EventBridgeClient({
    region: 'us-east-1',
    endpoint: sim.endpoint,
    credentials: { accessKeyId: 'AKIDSIM', secretAccessKey: 'sim-secret' },
    maxAttempts: 1,
  });
});
afterAll(async () => {
  events?.destroy();
  await sim?.close();
});

describe('EventBridge simulator with the real SDK', () => {
  it('ListRules: the default bus unless EventBusName, NamePrefix, patterns as JSON text, paging', async () => {
    const all = await events.send(new ListRulesCommand({}));
    expect(all.Rules?.map((r) => [r.Name, r.State, r.EventBusName])).toEqual([
      ['ses-to-tajo', 'ENABLED', 'default'],
      ['ses-archive', 'DISABLED', 'default'],
      ['nightly', 'ENABLED', 'default'],
    ]);
    expect(JSON.parse(all.Rules![0]!.EventPattern!)).toEqual(PATTERN);
    expect(all.Rules![2]!.EventPattern).toBeUndefined();
    expect(all.Rules![0]!.Arn).toBe('arn:aws:events:us-east-1:123456789012:rule/ses-to-tajo');
    expect((await events.send(new ListRulesCommand({ NamePrefix: 'ses-' }))).Rules?.map((r) => r.Name)).toEqual(['ses-to-tajo', 'ses-archive']);
    expect((await events.send(new ListRulesCommand({ EventBusName: 'custom' }))).Rules?.map((r) => r.Name)).toEqual(['ses-on-custom-bus']);
    const first = await events.send(new ListRulesCommand({ Limit: 2 }));
    expect(first.Rules).toHaveLength(2);
    expect(first.NextToken).toBeTruthy();
    const second = await events.send(new ListRulesCommand({ Limit: 2, NextToken: first.NextToken }));
    expect(second.Rules?.map((r) => r.Name)).toEqual(['nightly']);
    expect(second.NextToken).toBeUndefined();
  });

  it('ListTargetsByRule and DescribeApiDestination; unknown ones are ResourceNotFoundException', async () => {
    const t = await events.send(new ListTargetsByRuleCommand({ Rule: 'ses-to-tajo' }));
    expect(t.Targets).toEqual([{ Id: 'tajo', Arn: sim.apiDestinationArn('tajo'), DeadLetterConfig: { Arn: 'arn:aws:sqs:us-east-1:123456789012:eb-dlq' } }]);
    const d = await events.send(new DescribeApiDestinationCommand({ Name: 'tajo' }));
    expect(d).toMatchObject({
      Name: 'tajo',
      ApiDestinationArn: sim.apiDestinationArn('tajo'),
      InvocationEndpoint: 'https://hooks.example.com/webhooks/amazon-ses/eventbridge',
      HttpMethod: 'POST',
      ApiDestinationState: 'ACTIVE',
    });
    expect(d.CreationTime).toBeInstanceOf(Date);
    await expect(events.send(new ListTargetsByRuleCommand({ Rule: 'ses-on-custom-bus' }))).rejects.toBeInstanceOf(ResourceNotFoundException);
    expect((await events.send(new ListTargetsByRuleCommand({ Rule: 'ses-on-custom-bus', EventBusName: 'custom' }))).Targets).toEqual([]);
    await expect(events.send(new DescribeApiDestinationCommand({ Name: 'nope' }))).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('deny: AccessDeniedException naming the action', async () => {
    sim.deny(['DescribeApiDestination']);
    try {
      expect((await events.send(new ListRulesCommand({}))).Rules).toHaveLength(3);
      const err = await events.send(new DescribeApiDestinationCommand({ Name: 'tajo' })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AccessDeniedException);
      expect((err as Error).message).toContain('events:DescribeApiDestination');
      sim.deny(['*']);
      await expect(events.send(new ListRulesCommand({}))).rejects.toBeInstanceOf(AccessDeniedException);
    } finally {
      sim.deny([]);
    }
    expect(sim.calls()['ListRules']).toBeGreaterThan(0);
  });
});
