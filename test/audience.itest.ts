// Audience state that stays true (issue 10): the soft-bounce policy, not-spam complaints and
// SES times in the future, over signed SNS deliveries; judged by what the Brevo simulator holds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sesEvent, type SesPayload } from '../src/sim/ses-events/index.js';
import type { BrevoSimState } from '../src/sim/brevo/index.js';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { day, metricValue, startStack, type Stack } from './helpers.js';

const DAY = 86_400_000;
const NOW = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();

let stack: Stack;
let state: BrevoSimState;
let softBounces = 0;

function softBounce(email: string, at: number): SesPayload {
  softBounces += 1;
  return sesEvent('Bounce', {
    recipients: [email],
    timestamp: iso(at),
    bounceType: 'Transient',
    bounceSubType: 'MailboxFull',
    feedbackId: `fb-soft-${softBounces}`,
  });
}

async function publish(payload: SesPayload): Promise<void> {
  const res = await stack.publish(stack.sns.notification(stack.topic, payload, { subject: 'Amazon SES Email Event Notification' }));
  expect(res.status, res.text).toBe(200);
}

async function settle(): Promise<BrevoSimState> {
  await stack.connector.waitIdle(60_000, { includeAwaiting: true });
  await stack.brevo.settle();
  return stack.brevo.state();
}

const contact = (email: string) => state.contacts[email];

beforeAll(async () => {
  stack = await startStack({ plan: 'unlimited', ses: { bounce_policy: { soft_bounce_blocklist_after: 3, soft_bounce_window: '7d' } } });
  // N-1 soft bounces within the window.
  await publish(softBounce('two@example.com', NOW - 3 * DAY));
  await publish(softBounce('two@example.com', NOW - 2 * DAY));
  // N within the window: the Nth blocklists.
  await publish(softBounce('three@example.com', NOW - 5 * DAY));
  await publish(softBounce('three@example.com', NOW - 3 * DAY));
  await publish(softBounce('three@example.com', NOW - DAY));
  // N in all, but never more than N-1 within any 7 days.
  await publish(softBounce('spread@example.com', NOW - 12 * DAY));
  await publish(softBounce('spread@example.com', NOW - 6 * DAY));
  await publish(softBounce('spread@example.com', NOW - DAY));
  // Two soft bounces, one of them delivered three times (new SNS MessageIds): counted once.
  const replayed = softBounce('replay@example.com', NOW - 2 * DAY);
  await publish(replayed);
  await publish(replayed);
  await publish(softBounce('replay@example.com', NOW - DAY));
  await publish(replayed);
  // Complaints: not-spam is a recipient vouching for the mail; abuse is not.
  await publish(
    sesEvent('Complaint', { recipients: ['notspam@example.com'], timestamp: iso(NOW - DAY), complaintFeedbackType: 'not-spam', feedbackId: 'fb-ns' }),
  );
  await publish(sesEvent('Complaint', { recipients: ['abuse@example.com'], timestamp: iso(NOW - DAY), complaintFeedbackType: 'abuse', feedbackId: 'fb-ab' }));
  state = await settle();
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

describe('bounce_policy: soft_bounce_blocklist_after 3 within 7d', () => {
  it('N-1 soft bounces within the window do not blocklist; the count is on the contact', () => {
    expect(contact('two@example.com')?.emailBlacklisted ?? false).toBe(false);
    expect(contact('two@example.com')?.attributes.SES_SOFT_BOUNCE_COUNT).toBe(2);
    expect(contact('two@example.com')?.attributes.SES_SUPPRESSED).toBeUndefined();
  });

  it('the Nth soft bounce within the window blocklists, with reason SOFT_BOUNCE', () => {
    const c = contact('three@example.com');
    expect(c?.emailBlacklisted).toBe(true);
    expect(c?.attributes).toMatchObject({
      SES_SOFT_BOUNCE_COUNT: 3,
      SES_SUPPRESSED: true,
      SES_SUPPRESSION_REASON: 'SOFT_BOUNCE',
      SES_BOUNCE_TYPE: 'Transient',
    });
  });

  it('N soft bounces spread wider than the window do not blocklist', () => {
    expect(contact('spread@example.com')?.emailBlacklisted ?? false).toBe(false);
    expect(contact('spread@example.com')?.attributes.SES_SOFT_BOUNCE_COUNT).toBe(2);
  });

  it('a bounce delivered again (same SES feedbackId, new SNS MessageId) is not counted twice', () => {
    expect(contact('replay@example.com')?.emailBlacklisted ?? false).toBe(false);
    expect(contact('replay@example.com')?.attributes.SES_SOFT_BOUNCE_COUNT).toBe(2);
  });

  it('a not-spam complaint does not blocklist; an abuse complaint does', () => {
    expect(contact('notspam@example.com')?.emailBlacklisted ?? false).toBe(false);
    expect(contact('notspam@example.com')?.attributes.SES_COMPLAINT_TYPE).toBe('not-spam');
    expect(contact('notspam@example.com')?.attributes.SES_SUPPRESSED).toBeUndefined();
    expect(contact('abuse@example.com')?.emailBlacklisted).toBe(true);
  });

  it('the counts survive a restart: a store reopened on the same file keeps counting', async () => {
    const path = join(stack.dir, 'restart.db');
    const first = new SqliteStore(path);
    await first.migrate();
    await first.recordSoftBounces(
      [
        { key: 'r1', email: 'r@example.com', at: NOW - 2 * DAY },
        { key: 'r2', email: 'r@example.com', at: NOW - DAY },
      ],
      7 * DAY,
      NOW,
    );
    await first.close();
    const second = new SqliteStore(path);
    try {
      await second.migrate();
      expect(await second.recordSoftBounces([{ key: 'r3', email: 'r@example.com', at: NOW }], 7 * DAY, NOW)).toEqual([3]);
    } finally {
      await second.close();
    }
  });
});

describe('an SES time in the future of its receipt', () => {
  it('is clamped to the receipt time, so a later real event still moves the attributes', async () => {
    const email = 'future@example.com';
    await publish(sesEvent('Delivery', { recipients: [email], timestamp: '2999-01-01T00:00:00.000Z' }));
    let s = await settle();
    const today = day(iso(Date.now()));
    expect(s.contacts[email]?.attributes).toMatchObject({ SES_LAST_EVENT: 'Delivery', SES_LAST_DELIVERED_AT: today });
    expect(metricValue(await stack.connector.metricsText(), 'tajo_ses_clamped_timestamps_total')).toBe(1);
    // A real event one minute later (within the allowed skew): newer than the clamped one.
    await publish(sesEvent('Open', { recipients: [email], timestamp: iso(Date.now() + 60_000) }));
    s = await settle();
    expect(s.contacts[email]?.attributes).toMatchObject({ SES_LAST_EVENT: 'Open', SES_LAST_OPENED_AT: day(iso(Date.now() + 60_000)) });
    expect(metricValue(await stack.connector.metricsText(), 'tajo_ses_clamped_timestamps_total')).toBe(1);
  });
});
