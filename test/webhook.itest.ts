// Every SES event type, both payload formats, several recipients per payload, through signed
// SNS deliveries over HTTP; judged only by what the Brevo simulator holds afterwards.
// Expectations are written from CONTRACT.md sections 1 (default `events:` policy), 4 and 5,
// not from the planner.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sesEvent, sesNotification, type SesPayload } from '../src/sim/ses-events/index.js';
import type { BrevoSimState } from '../src/sim/brevo/index.js';
import type { SesEventType } from '../src/core/types.js';
import { EVENT_NAMES } from '../src/core/brevo-model.js';
import { sesConnectorSchema } from '../src/config/schema.js';
import { day, eventsByKey, eventsOf, startStack, type Stack } from './helpers.js';

// The default `events:` policy (CONTRACT.md section 1) and the event names (section 4) are
// pinned to the contract once, by src/config/load.test.ts and src/core/plan.test.ts; this
// suite uses the values those tests hold to the contract instead of a third copy.
const DEFAULT_POLICY = sesConnectorSchema.parse({ region: 'us-east-1' }).events;

const FROM = 'Example News <news@example.com>';
const SUBJECT = 'March news';
const LINK = 'https://shop.example.com/offers?utm_source=ses&x=1';

interface Case {
  name: string;
  type: SesEventType;
  format: 'eventType' | 'notificationType';
  recipients: string[];
  /** ISO time of the event itself. */
  at: string;
  messageId: string;
  sig: '1' | '2';
  bounceType?: 'Permanent' | 'Transient';
  bounceSubType?: string;
  feedbackId?: string;
  unsubscribeAll?: boolean;
  /** Event properties the type must carry (CONTRACT.md section 4: "the type's own fields"). */
  props?: Record<string, unknown>;
}

const t = (d: number) => `2026-03-${String(d).padStart(2, '0')}T10:${String(d).padStart(2, '0')}:00.000Z`;

const CASES: Case[] = [
  {
    name: 'Send',
    type: 'Send',
    format: 'eventType',
    recipients: [' Send.One@Example.COM ', 'send.two@example.com', 'SEND.THREE@example.com'],
    at: t(1),
    messageId: 'itest-send',
    sig: '1',
  },
  {
    name: 'Delivery',
    type: 'Delivery',
    format: 'eventType',
    recipients: ['Deliv.One@Example.com', ' deliv.two@example.com'],
    at: t(2),
    messageId: 'itest-delivery',
    sig: '2',
  },
  {
    name: 'Open',
    type: 'Open',
    format: 'eventType',
    recipients: ['Open.One@Example.com', 'open.two@EXAMPLE.com '],
    at: t(3),
    messageId: 'itest-open',
    sig: '1',
  },
  {
    name: 'Click',
    type: 'Click',
    format: 'eventType',
    recipients: ['Click.One@Example.com', ' click.two@example.com'],
    at: t(4),
    messageId: 'itest-click',
    sig: '2',
    props: { link: LINK, user_agent: expect.stringContaining('Mozilla') },
  },
  {
    name: 'Bounce Permanent',
    type: 'Bounce',
    format: 'eventType',
    recipients: ['Hard.One@Example.com', 'hard.two@example.com ', 'HARD.THREE@example.com'],
    at: t(5),
    messageId: 'itest-hard',
    sig: '1',
    bounceType: 'Permanent',
    bounceSubType: 'NoEmail',
    feedbackId: 'itest-fb-hard',
    props: { bounce_type: 'Permanent', bounce_sub_type: 'NoEmail', diagnostic_code: expect.stringContaining('550') },
  },
  {
    name: 'Bounce Transient',
    type: 'Bounce',
    format: 'eventType',
    recipients: ['Soft.One@Example.com', ' soft.two@example.com'],
    at: t(6),
    messageId: 'itest-soft',
    sig: '2',
    bounceType: 'Transient',
    bounceSubType: 'MailboxFull',
    feedbackId: 'itest-fb-soft',
    props: { bounce_type: 'Transient', bounce_sub_type: 'MailboxFull', diagnostic_code: expect.stringContaining('552') },
  },
  {
    name: 'Complaint',
    type: 'Complaint',
    format: 'eventType',
    recipients: ['Angry.One@Example.com', ' angry.two@example.com'],
    at: t(7),
    messageId: 'itest-complaint',
    sig: '1',
    feedbackId: 'itest-fb-complaint',
    props: { complaint_feedback_type: 'abuse', user_agent: expect.any(String) },
  },
  {
    name: 'Reject',
    type: 'Reject',
    format: 'eventType',
    recipients: ['Reject.One@Example.com', ' reject.two@example.com'],
    at: t(8),
    messageId: 'itest-reject',
    sig: '2',
    props: { reason: 'Bad content' },
  },
  {
    name: 'DeliveryDelay',
    type: 'DeliveryDelay',
    format: 'eventType',
    recipients: ['Slow.One@Example.com', 'slow.two@example.com '],
    at: t(9),
    messageId: 'itest-delay',
    sig: '1',
    props: { delay_type: 'MailboxFull' },
  },
  {
    name: 'Rendering Failure',
    type: 'RenderingFailure',
    format: 'eventType',
    recipients: ['Tpl.One@Example.com', ' tpl.two@example.com'],
    at: t(10),
    messageId: 'itest-render',
    sig: '2',
    props: { template_name: 'WelcomeTemplate' },
  },
  {
    name: 'Subscription unsubscribeAll=true',
    type: 'Subscription',
    format: 'eventType',
    recipients: ['Leaver.One@Example.com', ' leaver.two@example.com'],
    at: t(11),
    messageId: 'itest-unsub-all',
    sig: '1',
    unsubscribeAll: true,
    props: { unsubscribe_all: true },
  },
  {
    name: 'Subscription unsubscribeAll=false',
    type: 'Subscription',
    format: 'eventType',
    recipients: ['Topic.One@Example.com', ' topic.two@example.com'],
    at: t(12),
    messageId: 'itest-unsub-topic',
    sig: '2',
    unsubscribeAll: false,
    props: { unsubscribe_all: false },
  },
  {
    name: 'notificationType Bounce',
    type: 'Bounce',
    format: 'notificationType',
    recipients: ['Old.Hard@Example.com', ' old.hard2@example.com'],
    at: t(13),
    messageId: 'itest-n-bounce',
    sig: '1',
    bounceType: 'Permanent',
    bounceSubType: 'General',
    feedbackId: 'itest-fb-n-bounce',
    props: { bounce_type: 'Permanent', bounce_sub_type: 'General' },
  },
  {
    name: 'notificationType Complaint',
    type: 'Complaint',
    format: 'notificationType',
    recipients: ['Old.Angry@Example.com', 'OLD.ANGRY2@example.com '],
    at: t(14),
    messageId: 'itest-n-complaint',
    sig: '2',
    feedbackId: 'itest-fb-n-complaint',
    props: { complaint_feedback_type: 'abuse' },
  },
  {
    name: 'notificationType Delivery',
    type: 'Delivery',
    format: 'notificationType',
    recipients: ['Old.Ok@Example.com', ' old.ok2@example.com'],
    at: t(15),
    messageId: 'itest-n-delivery',
    sig: '1',
  },
];

function payloadOf(c: Case): SesPayload {
  const common = {
    messageId: c.messageId,
    recipients: c.recipients,
    timestamp: c.at,
    subject: SUBJECT,
    from: FROM,
    ...(c.bounceType ? { bounceType: c.bounceType } : {}),
    ...(c.bounceSubType ? { bounceSubType: c.bounceSubType } : {}),
    ...(c.feedbackId ? { feedbackId: c.feedbackId } : {}),
    ...(c.unsubscribeAll !== undefined ? { unsubscribeAll: c.unsubscribeAll } : {}),
    ...(c.type === 'Click' ? { link: LINK } : {}),
  };
  if (c.format === 'notificationType') return sesNotification(c.type as 'Bounce' | 'Complaint' | 'Delivery', common);
  return sesEvent(c.type, common);
}

const norm = (e: string) => e.trim().toLowerCase();

/** CONTRACT.md section 5: ses:<mail.messageId>:<eventType>:<recipient>:<discriminator>. */
function keyOf(c: Case, recipient: string): string {
  const disc = c.type === 'Bounce' || c.type === 'Complaint' ? c.feedbackId! : c.type === 'Click' ? `${c.at}:${LINK}` : c.at;
  return `ses:${c.messageId}:${c.type}:${norm(recipient)}:${disc}`;
}

function blocklists(c: Case): boolean {
  return (c.type === 'Bounce' && c.bounceType === 'Permanent') || c.type === 'Complaint' || (c.type === 'Subscription' && c.unsubscribeAll === true);
}

/** The SES_* attributes a contact must hold after this one event (CONTRACT.md section 4). */
function expectedAttributes(c: Case): Record<string, unknown> {
  const p = DEFAULT_POLICY[c.type];
  if (p !== 'attributes' && p !== 'both') return {};
  const d = day(c.at);
  const a: Record<string, unknown> = { SES_LAST_EVENT: c.type, SES_LAST_EVENT_AT: d };
  if (c.type === 'Delivery') a.SES_LAST_DELIVERED_AT = d;
  if (c.type === 'Open') a.SES_LAST_OPENED_AT = d;
  if (c.type === 'Click') a.SES_LAST_CLICKED_AT = d;
  if (c.type === 'Bounce') {
    a.SES_BOUNCE_TYPE = c.bounceType;
    a.SES_BOUNCE_SUBTYPE = c.bounceSubType;
    a.SES_LAST_BOUNCED_AT = d;
    if (c.bounceType === 'Permanent') Object.assign(a, { SES_SUPPRESSED: true, SES_SUPPRESSION_REASON: 'BOUNCE', SES_SUPPRESSED_AT: d });
    // Soft bounces are counted per recipient (bounce_policy; with the default policy they never blocklist).
    if (c.bounceType === 'Transient') a.SES_SOFT_BOUNCE_COUNT = 1;
  }
  if (c.type === 'Complaint')
    Object.assign(a, { SES_COMPLAINT_TYPE: 'abuse', SES_COMPLAINED_AT: d, SES_SUPPRESSED: true, SES_SUPPRESSION_REASON: 'COMPLAINT', SES_SUPPRESSED_AT: d });
  if (c.type === 'Subscription') a.SES_UNSUBSCRIBED_ALL = c.unsubscribeAll === true;
  return a;
}

function sesAttributes(state: BrevoSimState, email: string): Record<string, unknown> {
  const attrs = state.contacts[norm(email)]?.attributes ?? {};
  return Object.fromEntries(Object.entries(attrs).filter(([k]) => k.startsWith('SES_')));
}

let stack: Stack;
let state: BrevoSimState;

beforeAll(async () => {
  stack = await startStack({ plan: 'unlimited' });
  for (const c of CASES) {
    const res = await stack.publish(
      stack.sns.notification(stack.topic, payloadOf(c), { signatureVersion: c.sig, subject: 'Amazon SES Email Event Notification' }),
    );
    expect(res.status, `${c.name}: ${res.text}`).toBe(200);
    expect(res.json).toMatchObject({ ok: true, outcome: 'stored' });
  }
  // Contact writes may go out as an import: follow it until Brevo has applied it.
  await stack.connector.waitIdle(60_000, { includeAwaiting: true });
  await stack.brevo.settle();
  state = stack.brevo.state();
});

afterAll(async () => {
  await stack?.stop();
});

describe('every SES event type reaches Brevo as the contract says', () => {
  it('delivered everything: no dead letters, no unparseable envelope', async () => {
    const st = await stack.connector.store.stats();
    expect(st.inbox).toEqual({ done: CASES.length });
    expect(st.ops.filter((o) => o.state === 'dead')).toEqual([]);
  });

  describe.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    it('sets the SES_* attributes of each recipient (identified by the lower-cased, trimmed email)', () => {
      for (const r of c.recipients) {
        expect(sesAttributes(state, r), `${c.name} ${JSON.stringify(r)}`).toEqual(expectedAttributes(c));
      }
    });

    it(`blocklists the recipients ${blocklists(c) ? '' : 'NOT '}`, () => {
      for (const r of c.recipients) {
        const contact = state.contacts[norm(r)];
        if (blocklists(c)) expect(contact?.emailBlacklisted, `${c.name} ${r}`).toBe(true);
        else expect(contact?.emailBlacklisted ?? false, `${c.name} ${r}`).toBe(false);
      }
    });

    const policy = DEFAULT_POLICY[c.type];
    const wantsEvent = policy === 'event' || policy === 'both';
    it(wantsEvent ? `sends one ${EVENT_NAMES[c.type]} event per recipient with the contract's properties` : 'sends no custom event (attributes only)', () => {
      for (const r of c.recipients) {
        const evs = eventsOf(state, r);
        if (!wantsEvent) {
          expect(evs, `${c.name} ${r}`).toEqual([]);
          continue;
        }
        expect(evs, `${c.name} ${r}`).toHaveLength(1);
        const ev = evs[0]!;
        expect(ev.event_name).toBe(EVENT_NAMES[c.type]);
        expect(ev.identifiers).toEqual({ email_id: norm(r) });
        if (ev.event_date !== undefined) expect(Date.parse(ev.event_date)).toBe(Date.parse(c.at));
        const p = ev.event_properties ?? {};
        expect(p.event_key).toBe(keyOf(c, r));
        expect(p.message_id).toBe(c.messageId);
        expect(String(p.from)).toContain('news@example.com');
        // RenderingFailure payloads carry no headers: the subject is unknown there.
        if (c.type === 'RenderingFailure') expect(p.subject).toBeUndefined();
        else expect(p.subject).toBe(SUBJECT);
        // The identity-feedback format carries no configuration set tag.
        if (c.format === 'eventType') expect(p.configuration_set).toBe('tajo-default');
        else expect(p.configuration_set).toBeUndefined();
        expect(p).toMatchObject(c.props ?? {});
      }
    });
  });

  it('has exactly the expected events, one per record key, and nothing else', () => {
    const expected = new Map<string, string>();
    for (const c of CASES) {
      const p = DEFAULT_POLICY[c.type];
      if (p === 'event' || p === 'both') for (const r of c.recipients) expected.set(keyOf(c, r), EVENT_NAMES[c.type]);
    }
    const got = eventsByKey(state);
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [k, evs] of got) {
      expect(evs, k).toHaveLength(1);
      expect(evs[0]!.event_name).toBe(expected.get(k));
    }
    // Event names follow [a-z_] (CONTRACT.md section 4).
    for (const e of state.events) expect(e.event_name).toMatch(/^[a-z_]+$/);
  });

  it('blocklists exactly the contacts with a permanent bounce, a complaint or unsubscribeAll', () => {
    const expected = CASES.filter(blocklists)
      .flatMap((c) => c.recipients.map(norm))
      .sort();
    const blocked = Object.values(state.contacts)
      .filter((c) => c.emailBlacklisted)
      .map((c) => c.email)
      .sort();
    expect(blocked).toEqual(expected);
  });

  it('never writes ext_id and keeps contacts keyed by the normalized email', () => {
    for (const [k, c] of Object.entries(state.contacts)) {
      expect(k).toBe(norm(k));
      expect(c.attributes.EXT_ID).toBeUndefined();
    }
  });

  it('Brevo dropped no attribute value and was never asked to unblock', () => {
    expect(state.dropped).toEqual([]);
    expect(state.unblocks ?? []).toEqual([]);
  });
});

describe('attributes only move forward in time', () => {
  it('an older Delivery arriving after a newer Click does not move SES_LAST_EVENT backwards', async () => {
    const email = 'Order.Test@Example.com';
    const click = sesEvent('Click', { messageId: 'itest-order-2', recipients: [email], timestamp: '2026-04-10T08:00:00.000Z', link: LINK });
    const delivery = sesEvent('Delivery', { messageId: 'itest-order-1', recipients: [` ${email.toUpperCase()} `], timestamp: '2026-04-05T08:00:00.000Z' });

    expect((await stack.publish(stack.sns.notification(stack.topic, click, { signatureVersion: '2' }))).status).toBe(200);
    await stack.connector.waitIdle(60_000);
    const after1 = sesAttributes(stack.brevo.state(), email);
    expect(after1).toMatchObject({ SES_LAST_EVENT: 'Click', SES_LAST_EVENT_AT: '2026-04-10', SES_LAST_CLICKED_AT: '2026-04-10' });

    expect((await stack.publish(stack.sns.notification(stack.topic, delivery, { signatureVersion: '1' }))).status).toBe(200);
    await stack.connector.waitIdle(60_000);
    const s = stack.brevo.state();
    expect(sesAttributes(s, email)).toEqual({
      SES_LAST_EVENT: 'Click',
      SES_LAST_EVENT_AT: '2026-04-10',
      SES_LAST_CLICKED_AT: '2026-04-10',
      // New information of its own kind is still recorded.
      SES_LAST_DELIVERED_AT: '2026-04-05',
    });
    // Click is `both`: one event; Delivery is `attributes`: none.
    expect(eventsOf(s, email).map((e) => e.event_name)).toEqual(['ses_email_clicked']);
    expect(s.dropped).toEqual([]);
  });

  it('an older permanent bounce after a newer Delivery still blocklists and records the bounce, but SES_LAST_EVENT stays Delivery', async () => {
    const email = 'late.bounce@example.com';
    const delivery = sesEvent('Delivery', { messageId: 'itest-late-2', recipients: [email], timestamp: '2026-04-20T08:00:00.000Z' });
    const bounce = sesEvent('Bounce', {
      messageId: 'itest-late-1',
      recipients: [email],
      timestamp: '2026-04-18T08:00:00.000Z',
      bounceType: 'Permanent',
      bounceSubType: 'General',
      feedbackId: 'itest-fb-late',
    });
    expect((await stack.publish(stack.sns.notification(stack.topic, delivery))).status).toBe(200);
    await stack.connector.waitIdle(60_000);
    expect(stack.brevo.contact(email)?.emailBlacklisted).toBe(false);
    expect((await stack.publish(stack.sns.notification(stack.topic, bounce))).status).toBe(200);
    await stack.connector.waitIdle(60_000);
    const s = stack.brevo.state();
    expect(s.contacts[email]?.emailBlacklisted).toBe(true);
    expect(sesAttributes(s, email)).toEqual({
      SES_LAST_EVENT: 'Delivery',
      SES_LAST_EVENT_AT: '2026-04-20',
      SES_LAST_DELIVERED_AT: '2026-04-20',
      SES_BOUNCE_TYPE: 'Permanent',
      SES_BOUNCE_SUBTYPE: 'General',
      SES_LAST_BOUNCED_AT: '2026-04-18',
      SES_SUPPRESSED: true,
      SES_SUPPRESSION_REASON: 'BOUNCE',
      SES_SUPPRESSED_AT: '2026-04-18',
    });
    expect(eventsOf(s, email).map((e) => e.event_name)).toEqual(['ses_email_bounced']);
  });

  it('the same holds when both arrive back to back (possibly in one processing batch), older last', async () => {
    const email = 'order.burst@example.com';
    const newer = sesEvent('Open', { messageId: 'itest-burst-1', recipients: [email], timestamp: '2026-05-20T08:00:00.000Z' });
    const older = sesEvent('Bounce', {
      messageId: 'itest-burst-0',
      recipients: [email],
      timestamp: '2026-05-02T08:00:00.000Z',
      bounceType: 'Transient',
      bounceSubType: 'General',
      feedbackId: 'itest-fb-burst',
    });
    const [a, b] = await Promise.all([stack.publish(stack.sns.notification(stack.topic, newer)), stack.publish(stack.sns.notification(stack.topic, older))]);
    expect([a.status, b.status]).toEqual([200, 200]);
    await stack.connector.waitIdle(60_000);
    const s = stack.brevo.state();
    expect(sesAttributes(s, email)).toEqual({
      SES_LAST_EVENT: 'Open',
      SES_LAST_EVENT_AT: '2026-05-20',
      SES_LAST_OPENED_AT: '2026-05-20',
      SES_BOUNCE_TYPE: 'Transient',
      SES_BOUNCE_SUBTYPE: 'General',
      SES_LAST_BOUNCED_AT: '2026-05-02',
      SES_SOFT_BOUNCE_COUNT: 1,
    });
    expect(s.contacts[email]?.emailBlacklisted).toBe(false);
    expect(s.dropped).toEqual([]);
    expect(s.unblocks).toEqual([]);
  });
});

describe('a payload the connector cannot plan', () => {
  // BUG: an SES event whose own timestamp does not parse is accepted (200, stored) and then
  // wedges processing. src/ses/parse.ts:59 (normalizeSesTimestamp) keeps the raw string, and
  // src/core/plan.ts:176 calls `new Date(r.timestamp).toISOString()`, which throws RangeError
  // for an event-producing type; src/engine/processor.ts:63 plans the whole claimed batch at
  // once, so the error also blocks every other envelope claimed with it, retried every 60 s
  // (inbox lease) forever. Expected: the bad envelope is closed as unparseable (or its record
  // sent without event_date) and the others in its batch are delivered.
  it('an event with an unparsable timestamp does not block the envelopes processed with it', async () => {
    const s = await startStack({ plan: 'unlimited' });
    try {
      const bad = sesEvent('Click', {
        messageId: 'itest-poison',
        recipients: ['poison@example.com'],
        timestamp: 'not-a-time',
        mailTimestamp: '2026-03-01T10:00:00.000Z',
      });
      const good = sesEvent('Reject', { messageId: 'itest-good', recipients: ['Good@Example.com'], timestamp: '2026-03-01T10:00:00.000Z' });
      // Published together so that both are stored in one commit and claimed in one batch.
      const answers = await Promise.all([s.publish(s.sns.notification(s.topic, bad)), s.publish(s.sns.notification(s.topic, good))]);
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      await s.connector.waitIdle(5_000);
      expect(eventsOf(s.brevo.state(), 'good@example.com').map((e) => e.event_name)).toEqual(['ses_email_rejected']);
      expect((await s.connector.store.stats()).inbox.pending ?? 0).toBe(0);
    } finally {
      await s.stop();
    }
  });
});
