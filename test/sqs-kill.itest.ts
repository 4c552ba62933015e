// `serve` polling SQS is SIGKILLed after it committed a message (and Brevo got it) but before its
// DeleteMessageBatch was answered. The message comes back to the next `serve` after its
// visibility timeout: a duplicate, deleted, and no second Brevo write.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sesEvent } from '../src/sim/ses-events/index.js';
import { startSqsSim, type SqsSim } from '../src/sim/sqs/index.js';
import { ALL_EVENTS_BOTH, TOPIC, eventsByKey, freePort, metricValue, spawnServe, until, untilBrevoMatches, useSims, writeServeConfig } from './helpers.js';
import { ensureBuilt } from './cli-run.js';

ensureBuilt();

describe('serve with an SQS intake, killed between commit and delete', () => {
  const sims = useSims({ brevo: { plan: 'unlimited' }, sns: {}, tmpDir: 'tajo-sqs-kill-' });
  let sqsSim: SqsSim;
  beforeAll(async () => {
    sqsSim = await startSqsSim({ queues: { dlq: {}, events: { visibilityTimeoutSeconds: 2, redrive: { deadLetterQueue: 'dlq', maxReceiveCount: 5 } } } });
    // The default credential chain of the spawned serve reads these.
    process.env.AWS_ACCESS_KEY_ID = 'AKIDSIM';
    process.env.AWS_SECRET_ACCESS_KEY = 'sim-secret';
  });
  afterAll(async () => {
    await sqsSim?.close();
  });

  it('the redelivered message is a duplicate, not a second Brevo write', async () => {
    const port = await freePort();
    const config = writeServeConfig({
      dir: sims.dir,
      name: 'sqs-kill',
      port,
      brevo: { url: sims.brevo.url, apiKey: sims.brevo.apiKey, plan: 'extended' },
      ses: {
        sync: { contacts: false, suppressions: false, account: false },
        sqs: { queue_url: sqsSim.queueUrl('events'), endpoint: sqsSim.endpoint, pollers: 1 },
      },
    });
    const first = spawnServe(config);
    try {
      await first.ready(port);
      sqsSim.holdDeletes(true);
      const payload = sesEvent('Bounce', {
        messageId: 'sqs-kill',
        recipients: ['kill.one@example.com', 'kill.two@example.com'],
        bounceType: 'Permanent',
        feedbackId: 'kill-fb',
      });
      sqsSim.send('events', JSON.stringify(sims.sns.notification(TOPIC, payload)));
      // The delete is only sent after the commit; Brevo gets the bounce from this first serve.
      await until(() => (sqsSim.calls()['DeleteMessageBatch'] ?? 0) >= 1, `a delete after the commit (logs: ${first.logs().slice(-1500)})`, 30_000);
      await untilBrevoMatches(sims.brevo, [payload], { policy: ALL_EVENTS_BOTH, what: 'the bounce in Brevo before the kill', timeoutMs: 30_000 });
      first.child.kill('SIGKILL');
      await first.exited();
      expect(sqsSim.messages('events')).toHaveLength(1);

      sqsSim.holdDeletes(false);
      const second = spawnServe(config);
      try {
        await second.ready(port);
        await until(() => sqsSim.messages('events').length === 0, `the redelivered message deleted (logs: ${second.logs().slice(-1500)})`, 30_000);
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        expect(metricValue(metrics, 'tajo_ses_sqs_messages_total', { outcome: 'duplicate' })).toBe(1);
        expect(metricValue(metrics, 'tajo_ses_sqs_messages_total', { outcome: 'accepted' })).toBe(0);
        await untilBrevoMatches(sims.brevo, [payload], { policy: ALL_EVENTS_BOTH, what: 'Brevo unchanged', timeoutMs: 10_000 });
        const counts = [...eventsByKey(sims.brevo.state()).entries()].filter(([k]) => k.startsWith('ses:sqs-kill:')).map(([, evs]) => evs.length);
        expect(counts).toEqual([1, 1]);
      } finally {
        second.child.kill('SIGTERM');
        await second.exited();
      }
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
    }
  }, 120_000);
});
