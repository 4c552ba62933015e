// Nothing lost when the webhook was down (issue 13, point 4): SNS delivers to the webhook of
// `serve` under an HTTP delivery policy with a dead-letter queue attached to the subscription.
// While `serve` is down, SNS gives up on the notifications of the outage and moves them to
// that DLQ; `serve`, back with its SQS intake pointed at the DLQ (`sqs.queue_url`), drains it.
// Brevo ends exactly as if the webhook had never been down, although the outage's events reach
// it after later ones (ordered by their SES timestamps, not by arrival).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realisticMix, type SesPayload } from '../src/sim/ses-events/index.js';
import { startSqsSim, type SqsSim } from '../src/sim/sqs/index.js';
import { ALL_EVENTS_BOTH, TOPIC, freePort, metricValue, spawnServe, until, untilBrevoMatches, useSims, writeServeConfig } from './helpers.js';
import { ensureBuilt } from './cli-run.js';

ensureBuilt();

// SNS's default policy is 3 retries 20 s apart; the same shape, faster.
const POLICY = { numRetries: 3, delayMs: 100 };

describe('webhook down, SNS gives up to its subscription DLQ, the SQS intake drains it', () => {
  const sims = useSims({ brevo: { plan: 'unlimited' }, sns: {}, tmpDir: 'tajo-sns-dlq-' });
  let sqsSim: SqsSim;
  beforeAll(async () => {
    sqsSim = await startSqsSim({ queues: { 'webhook-dlq': { visibilityTimeoutSeconds: 5 } } });
    // The default credential chain of the spawned serve reads these.
    process.env.AWS_ACCESS_KEY_ID = 'AKIDSIM';
    process.env.AWS_SECRET_ACCESS_KEY = 'sim-secret';
  });
  afterAll(async () => {
    await sqsSim?.close();
  });

  it('Brevo ends exactly as if the webhook had never been down', async () => {
    const payloads: SesPayload[] = realisticMix(24, { recipients: 6, seed: 13 });
    const third = Math.ceil(payloads.length / 3);
    const [before, during, after] = [payloads.slice(0, third), payloads.slice(third, 2 * third), payloads.slice(2 * third)];
    expect(during.length).toBeGreaterThan(0);

    const port = await freePort();
    const config = writeServeConfig({
      dir: sims.dir,
      name: 'sns-dlq',
      port,
      brevo: { url: sims.brevo.url, apiKey: sims.brevo.apiKey, plan: 'extended' },
      ses: {
        sync: { contacts: false, suppressions: false, account: false },
        // The DLQ holds SNS envelopes: verified like the webhook, raw bodies refused.
        sqs: { queue_url: sqsSim.queueUrl('webhook-dlq'), endpoint: sqsSim.endpoint, pollers: 1, raw_message_delivery: false },
      },
    });
    const sub = sims.sns.subscribe(TOPIC, {
      protocol: 'http',
      endpoint: `http://127.0.0.1:${port}/webhooks/amazon-ses`,
      deliveryPolicy: POLICY,
      deadLetterQueue: { sqs: sqsSim, queue: 'webhook-dlq' },
    });
    const publish = async (batch: SesPayload[]) => (await Promise.all(batch.map((p) => sims.sns.publishToTopic(TOPIC, p)))).flat();

    const first = spawnServe(config);
    try {
      await first.ready(port);
      expect(new Set(await publish(before))).toEqual(new Set(['delivered']));
      await untilBrevoMatches(sims.brevo, before, { policy: ALL_EVENTS_BOTH, what: 'the first third in Brevo', timeoutMs: 30_000 });
    } finally {
      first.child.kill('SIGTERM');
      await first.exited();
    }

    // The outage: every notification fails 1 + 3 times, then SNS moves it to the DLQ.
    expect(new Set(await publish(during))).toEqual(new Set(['dead_lettered']));
    expect(sqsSim.messages('webhook-dlq')).toHaveLength(during.length);
    expect(sub.stats()).toMatchObject({ deadLettered: during.length, discarded: 0, failedAttempts: during.length * (1 + POLICY.numRetries) });

    const second = spawnServe(config);
    try {
      await second.ready(port);
      // Later events first, over the webhook; the outage's come from the DLQ.
      expect(new Set(await publish(after))).toEqual(new Set(['delivered']));
      await until(() => sqsSim.messages('webhook-dlq').length === 0, `the DLQ drained (logs: ${second.logs().slice(-1500)})`, 30_000);
      await untilBrevoMatches(sims.brevo, payloads, { policy: ALL_EVENTS_BOTH, what: 'Brevo as if the webhook had never been down', timeoutMs: 40_000 });
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metricValue(metrics, 'tajo_ses_sqs_messages_total', { outcome: 'accepted' })).toBe(during.length);
      expect(metricValue(metrics, 'tajo_ses_sqs_messages_total', { outcome: 'duplicate' })).toBe(0);
      expect(sub.stats()).toMatchObject({ delivered: before.length + after.length, deadLettered: during.length, discarded: 0 });
    } finally {
      second.child.kill('SIGTERM');
      await second.exited();
      sub.unsubscribe();
    }
  }, 120_000);
});
