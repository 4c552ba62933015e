// The SQS intake against the SQS simulator (spoken to by the real @aws-sdk/client-sqs): SNS
// envelopes (verified like the webhook) and raw SES records, a message seen again after its
// visibility timeout (a duplicate, not a second Brevo write), visibility extended while the
// commit is slow, and poison messages recorded once in failures and left to the redrive policy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { sesEvent, type SesPayload } from '../src/sim/ses-events/index.js';
import { startSqsSim, type SqsSim } from '../src/sim/sqs/index.js';
import type { SqsIntake } from '../src/engine/sqs.js';
import { checkSqs, type CheckResult } from '../src/engine/check.js';
import { ALL_EVENTS_BOTH, eventsByKey, holdInboxCommits, metricValue, startStack, until, untilBrevoMatches, type Stack } from './helpers.js';

const CREDENTIALS = { accessKeyId: 'AKIDSIM', secretAccessKey: 'sim-secret' };
const ADMIN_TOKEN = 'sqs-admin-token';

let sqsSim: SqsSim;
let stack: Stack;
let intake: SqsIntake;
let sdk: SQSClient;
const payloads: SesPayload[] = [];

beforeAll(async () => {
  sqsSim = await startSqsSim({
    queues: { 'events-dlq': {}, events: { visibilityTimeoutSeconds: 2, redrive: { deadLetterQueue: 'events-dlq', maxReceiveCount: 2 } } },
  });
  stack = await startStack({
    plan: 'unlimited',
    adminToken: ADMIN_TOKEN,
    events: ALL_EVENTS_BOTH,
    sqs: { queue_url: sqsSim.queueUrl('events'), endpoint: sqsSim.endpoint, raw_message_delivery: 'auto' },
  });
  intake = stack.connector.createSqsIntake({ credentials: CREDENTIALS })!;
  sdk = new SQSClient({ region: 'us-east-1', endpoint: sqsSim.endpoint, credentials: CREDENTIALS });
});
afterAll(async () => {
  await intake?.stop();
  sdk?.destroy();
  await stack?.stop();
  await sqsSim?.close();
});

const sqsCount = async (outcome: string) => metricValue((await stack.get('/metrics')).text, 'tajo_ses_sqs_messages_total', { outcome });
const queueEmpty = () => sqsSim.messages('events').length === 0;

describe('SQS intake', () => {
  it('a message stored but not deleted (a crash before the delete) comes back after its visibility timeout as a duplicate: one Brevo write', async () => {
    const payload = sesEvent('Bounce', { messageId: 'sqs-crash', recipients: ['crash@example.com'], bounceType: 'Permanent', feedbackId: 'sqs-crash-fb' });
    payloads.push(payload);
    sqsSim.send('events', JSON.stringify(payload));
    // Received and committed by this intake, then "killed" before its delete.
    const res = await sdk.send(new ReceiveMessageCommand({ QueueUrl: sqsSim.queueUrl('events'), VisibilityTimeout: 1, MaxNumberOfMessages: 1 }));
    expect(await intake.ingest(res.Messages![0]!)).toBe('stored');
    await intake.start();
    await until(queueEmpty, 'the redelivered message deleted', 15_000);
    expect(await sqsCount('duplicate')).toBe(1);
    expect(sqsSim.messages('events-dlq')).toHaveLength(0);
    await untilBrevoMatches(stack.brevo, payloads, { policy: ALL_EVENTS_BOTH, what: 'the bounce once', timeoutMs: 20_000 });
    const keys = [...eventsByKey(stack.brevo.state()).entries()].filter(([k]) => k.startsWith('ses:sqs-crash:'));
    expect(keys.map(([, evs]) => evs.length)).toEqual([1]);
  });

  it('wrapped SNS envelopes (verified) and raw SES records are stored, deleted after the commit, and reach Brevo', async () => {
    const batch: SesPayload[] = [];
    for (let i = 0; i < 12; i++) {
      const p = sesEvent(i % 2 === 0 ? 'Delivery' : 'Click', {
        messageId: `sqs-mix-${i}`,
        recipients: [`mix${i}@example.com`],
        timestamp: `2026-05-01T10:${String(i).padStart(2, '0')}:00.000Z`,
      });
      batch.push(p);
      const body = i % 3 === 0 ? JSON.stringify(p) : JSON.stringify(stack.sns.notification(stack.topic, p, { signatureVersion: i % 2 === 0 ? '1' : '2' }));
      sqsSim.send('events', body);
    }
    payloads.push(...batch);
    await until(queueEmpty, 'every message deleted', 20_000);
    await untilBrevoMatches(stack.brevo, payloads, { policy: ALL_EVENTS_BOTH, what: 'Brevo holds every SQS message', timeoutMs: 30_000 });
    expect(await sqsCount('accepted')).toBe(13);
  });

  it('the same SNS envelope in two SQS messages (SNS delivered twice) is stored once', async () => {
    const p = sesEvent('Open', { messageId: 'sqs-twice', recipients: ['twice@example.com'] });
    payloads.push(p);
    const env = JSON.stringify(stack.sns.notification(stack.topic, p));
    const dupBefore = await sqsCount('duplicate');
    sqsSim.send('events', env);
    sqsSim.send('events', env);
    await until(queueEmpty, 'both deleted', 20_000);
    expect(await sqsCount('duplicate')).toBe(dupBefore + 1);
    await untilBrevoMatches(stack.brevo, payloads, { policy: ALL_EVENTS_BOTH, what: 'the open once', timeoutMs: 20_000 });
  });

  it('while the commit is slow the visibility is extended: the message is not received twice', async () => {
    const { release } = holdInboxCommits(stack.connector.store);
    const changesBefore = sqsSim.calls()['ChangeMessageVisibilityBatch'] ?? 0;
    try {
      const p = sesEvent('Send', { messageId: 'sqs-slow', recipients: ['slow@example.com'] });
      payloads.push(p);
      sqsSim.send('events', JSON.stringify(p));
      // Held past two visibility timeouts (2 s each): only extensions keep it from coming back.
      await until(() => (sqsSim.calls()['ChangeMessageVisibilityBatch'] ?? 0) >= changesBefore + 3, 'visibility extended three times', 20_000);
      expect(sqsSim.messages('events').map((m) => m.receiveCount)).toEqual([1]);
    } finally {
      release();
    }
    await until(queueEmpty, 'the slow message deleted', 20_000);
  });

  it('poison messages (not JSON, an envelope of a topic not allowed, a forged signature) are counted, recorded once in failures, never deleted, and end in the DLQ by the redrive policy', async () => {
    const other = stack.sns.notification('arn:aws:sns:us-east-1:123456789012:not-ours', sesEvent('Send'));
    const forged = { ...stack.sns.notification(stack.topic, sesEvent('Send')), Message: JSON.stringify(sesEvent('Bounce')) };
    const sent = [sqsSim.send('events', 'not json at all'), sqsSim.send('events', JSON.stringify(other)), sqsSim.send('events', JSON.stringify(forged))];
    await until(() => sqsSim.messages('events-dlq').length === 3, 'three messages in the DLQ', 30_000);
    expect(queueEmpty()).toBe(true);
    expect(await sqsCount('malformed_json')).toBe(2);
    expect(await sqsCount('topic_not_allowed')).toBe(2);
    expect(await sqsCount('bad_signature')).toBe(2);
    expect(sqsSim.messages('events-dlq').map((m) => m.receiveCount)).toEqual([2, 2, 2]);
    // Received twice each, recorded once each: reason code and SQS message id, in GET /admin/failures.
    const res = await stack.get('/admin/failures', { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(res.status).toBe(200);
    const body = res.json as unknown as { failures: unknown[]; refused: Array<{ kind: string; reason: string; sqsMessageId: string; source: string }> };
    expect(body.failures).toEqual([]);
    expect(body.refused.map((r) => [r.kind, r.source, r.reason, r.sqsMessageId])).toEqual([
      ['refused_message', 'sqs', 'malformed_json', sent[0]],
      ['refused_message', 'sqs', 'topic_not_allowed', sent[1]],
      ['refused_message', 'sqs', 'bad_signature', sent[2]],
    ]);
  });

  it('check: the queue readable with its redrive policy, and a warning that raw bodies are accepted', async () => {
    const results: CheckResult[] = [];
    await checkSqs(stack.connector, (r) => results.push(r), CREDENTIALS);
    expect(results.map((r) => [r.name, r.ok, r.warning === true])).toEqual([
      ['sqs.queue', true, false],
      ['sqs.redrive_policy', true, false],
      ['sqs.raw_message_delivery', true, true],
    ]);
    expect(results[1]!.detail).toContain(sqsSim.queueArn('events-dlq'));
    // A queue without a redrive policy: a warning, unless sqs.poison: delete disposes of poison messages.
    sqsSim.createQueue('no-dlq');
    for (const poison of ['redrive', 'delete'] as const) {
      const plain = await startStack({
        plan: 'unlimited',
        sqs: { queue_url: sqsSim.queueUrl('no-dlq'), endpoint: sqsSim.endpoint, raw_message_delivery: false, poison },
      });
      try {
        const got: CheckResult[] = [];
        await checkSqs(plain.connector, (r) => got.push(r), CREDENTIALS);
        const redrive = got.find((r) => r.name === 'sqs.redrive_policy');
        expect(redrive?.warning === true, poison).toBe(poison === 'redrive');
        if (poison === 'redrive') expect(redrive?.fix).toContain('sqs.poison: delete');
      } finally {
        await plain.stop();
      }
    }
    const missing = await startStack({
      plan: 'unlimited',
      sqs: { queue_url: `${sqsSim.endpoint}/123456789012/gone`, endpoint: sqsSim.endpoint, raw_message_delivery: false },
    });
    try {
      const bad: CheckResult[] = [];
      await checkSqs(missing.connector, (r) => bad.push(r), CREDENTIALS);
      expect(bad.map((r) => [r.name, r.ok])).toEqual([['sqs.queue', false]]);
      expect(bad[0]!.fix).toContain('sqs:ReceiveMessage');
    } finally {
      await missing.stop();
    }
  });
});
