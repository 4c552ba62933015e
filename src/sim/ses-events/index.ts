// Builders of SES payloads (the JSON object SES puts in the SNS `Message`) for tests, the demo
// and benchmarks. Shapes follow the SES developer guide; values are invented.
// Deterministic: the same calls in the same order give the same payloads.

import type { SesEventType } from '../../core/types.js';
import { randomUUID } from 'node:crypto';
import { prng as rng } from '../prng.js';
import { EVENTBRIDGE_DETAIL_TYPES } from '../../ses/eventbridge.js';

export type SesPayload = Record<string, unknown>;

export type BounceType = 'Permanent' | 'Transient' | 'Undetermined';

export interface SesEventOptions {
  /** SES message id; default: a new one per call (each call is another message). */
  messageId?: string;
  /** Recipients of the mail (and of the event); default `['recipient@example.com']`. */
  recipients?: string[];
  /** Time of the event itself; default: a fixed base time plus a typical delay for the type. */
  timestamp?: string;
  /** Time the mail was sent (`mail.timestamp`); default: derived from `timestamp`. */
  mailTimestamp?: string;
  subject?: string;
  /** `From` header and envelope source; default `Example News <news@example.com>`. */
  from?: string;
  /** `ses:configuration-set` tag; default `tajo-default` (eventType format only). */
  configurationSet?: string;
  bounceType?: BounceType;
  bounceSubType?: string;
  link?: string;
  linkTags?: Record<string, string[]>;
  feedbackId?: string;
  /** Subscription: new preference UnsubscribeAll; default false (a single topic opt-out). */
  unsubscribeAll?: boolean;
  contactList?: string;
  topic?: string;
  /** Subscription: the new explicit preferences (default: `topic` OptOut). */
  topicPreferences?: Record<string, 'OptIn' | 'OptOut'>;
  /** Subscription: the topics' defaults (`topicDefaultSubscriptionStatus`); default: none sent. */
  topicDefaults?: Record<string, 'OptIn' | 'OptOut'>;
  delayType?: string;
  complaintFeedbackType?: string;
  /** Reject reason; SES documents only `Bad content`. */
  reason?: string;
  templateName?: string;
}

const BASE_TIME = Date.parse('2026-01-15T09:00:00.000Z');
const ACCOUNT = '123456789012';

// Typical distance from send to event, used when only one of the two times is given.
const DELAY_MS: Readonly<Record<SesEventType, number>> = {
  Send: 0,
  Reject: 0,
  RenderingFailure: 0,
  Delivery: 2_350,
  DeliveryDelay: 600_000,
  Bounce: 4_100,
  Open: 1_800_000,
  Click: 1_920_000,
  Complaint: 7_200_000,
  Subscription: 3_600_000,
};

const RAW_TYPE: Readonly<Record<SesEventType, string>> = {
  Send: 'Send',
  Delivery: 'Delivery',
  Open: 'Open',
  Click: 'Click',
  Bounce: 'Bounce',
  Complaint: 'Complaint',
  Reject: 'Reject',
  DeliveryDelay: 'DeliveryDelay',
  RenderingFailure: 'Rendering Failure',
  Subscription: 'Subscription',
};

const DEFAULT_SUBTYPE: Readonly<Record<BounceType, string>> = {
  Permanent: 'General',
  Transient: 'General',
  Undetermined: 'Undetermined',
};

const BOUNCE_DSN: Readonly<Record<string, { status: string; diagnosticCode: string }>> = {
  'Permanent/General': { status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 recipient address rejected' },
  'Permanent/NoEmail': { status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 mailbox does not exist' },
  'Permanent/Suppressed': {
    status: '5.1.1',
    diagnosticCode: 'Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an invalid address.',
  },
  'Permanent/OnAccountSuppressionList': {
    status: '5.1.1',
    diagnosticCode: 'Amazon SES did not send the message to this address because it is on the suppression list for your account.',
  },
  'Transient/General': { status: '4.0.0', diagnosticCode: 'smtp; 450 4.0.0 temporary failure, try again later' },
  'Transient/MailboxFull': { status: '5.2.2', diagnosticCode: 'smtp; 552 5.2.2 mailbox over quota' },
  'Transient/MessageTooLarge': { status: '5.3.4', diagnosticCode: 'smtp; 552 5.3.4 message size exceeds limit' },
  'Transient/ContentRejected': { status: '5.7.1', diagnosticCode: 'smtp; 554 5.7.1 message content rejected' },
  'Transient/AttachmentRejected': { status: '5.7.1', diagnosticCode: 'smtp; 554 5.7.1 attachment type not allowed' },
  'Undetermined/Undetermined': { status: '5.0.0', diagnosticCode: 'smtp; 550 unrecognized response' },
};

// ---- deterministic ids -------------------------------------------------------------------

/** FNV-1a, enough to spread ids; not for security. */
function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function hex(n: number, width: number): string {
  return (n >>> 0).toString(16).padStart(8, '0').slice(-width);
}

/** An id shaped like SES's: `0100018d...-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx-000000`. */
function sesStyleId(seed: string, epochMs: number): string {
  const a = hash32(seed);
  const b = hash32(seed, a);
  const c = hash32(seed, b);
  const d = hash32(seed, c);
  const ts = Math.max(0, Math.floor(epochMs)).toString(16).padStart(14, '0').slice(-14);
  return `01${ts}-${hex(a, 8)}-${hex(b, 4)}-${hex(b >>> 16, 4)}-${hex(c, 4)}-${hex(c >>> 16, 4)}${hex(d, 8)}-000000`;
}

let messageCounter = 0;

// ---- payload building --------------------------------------------------------------------

interface Resolved {
  messageId: string;
  recipients: string[];
  mailTime: string;
  eventTime: string;
  subject: string;
  from: string;
  configurationSet: string | undefined;
  opts: SesEventOptions;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function times(type: SesEventType, opts: SesEventOptions): { eventTime: string; mailTime: string } {
  const delay = DELAY_MS[type];
  if (opts.timestamp !== undefined) {
    if (opts.mailTimestamp !== undefined) return { eventTime: opts.timestamp, mailTime: opts.mailTimestamp };
    const eventMs = Date.parse(opts.timestamp);
    return { eventTime: opts.timestamp, mailTime: iso(Number.isNaN(eventMs) ? BASE_TIME : eventMs - delay) };
  }
  if (opts.mailTimestamp !== undefined) {
    const mailMs = Date.parse(opts.mailTimestamp);
    return { eventTime: iso((Number.isNaN(mailMs) ? BASE_TIME : mailMs) + delay), mailTime: opts.mailTimestamp };
  }
  return { eventTime: iso(BASE_TIME + delay), mailTime: iso(BASE_TIME) };
}

function resolve(type: SesEventType, opts: SesEventOptions, withConfigSet: boolean): Resolved {
  const { eventTime, mailTime } = times(type, opts);
  return {
    messageId: opts.messageId ?? sesStyleId(`message:${++messageCounter}`, Date.parse(mailTime) || BASE_TIME),
    recipients: opts.recipients ?? ['recipient@example.com'],
    mailTime,
    eventTime,
    subject: opts.subject ?? 'Your January update',
    from: opts.from ?? 'Example News <news@example.com>',
    configurationSet: opts.configurationSet ?? (withConfigSet ? 'tajo-default' : undefined),
    opts,
  };
}

function addressOf(v: string): string {
  const lt = v.lastIndexOf('<');
  const gt = lt === -1 ? -1 : v.indexOf('>', lt);
  return lt !== -1 && gt !== -1 ? v.slice(lt + 1, gt) : v.trim();
}

function mailObject(r: Resolved, format: 'eventType' | 'notificationType', withHeaders: boolean): SesPayload {
  const fromAddress = addressOf(r.from);
  const domain = fromAddress.slice(fromAddress.indexOf('@') + 1) || 'example.com';
  const mail: SesPayload = {
    timestamp: r.mailTime,
    source: r.from,
    sourceArn: `arn:aws:ses:us-east-1:${ACCOUNT}:identity/${domain}`,
    ...(format === 'notificationType' ? { sourceIp: '198.51.100.24' } : {}),
    sendingAccountId: ACCOUNT,
    messageId: r.messageId,
    destination: [...r.recipients],
  };
  if (withHeaders) {
    const to = r.recipients.join(', ');
    mail['headersTruncated'] = false;
    mail['headers'] = [
      { name: 'From', value: r.from },
      { name: 'To', value: to },
      { name: 'Subject', value: r.subject },
      { name: 'MIME-Version', value: '1.0' },
      { name: 'Content-Type', value: 'multipart/alternative; boundary="----=_Part_0_1234567.1700000000000"' },
    ];
    mail['commonHeaders'] = {
      from: [r.from],
      to: [...r.recipients],
      messageId: r.messageId,
      subject: r.subject,
    };
  } else {
    mail['headersTruncated'] = false;
  }
  if (r.configurationSet !== undefined) {
    mail['tags'] = {
      'ses:operation': ['SendEmail'],
      'ses:configuration-set': [r.configurationSet],
      'ses:source-ip': ['198.51.100.24'],
      'ses:from-domain': [domain],
      'ses:caller-identity': ['tajo-sender'],
    };
  }
  return mail;
}

function bounceObject(r: Resolved, recipients: readonly string[]): SesPayload {
  const bounceType = r.opts.bounceType ?? 'Permanent';
  const bounceSubType = r.opts.bounceSubType ?? DEFAULT_SUBTYPE[bounceType];
  const dsn = BOUNCE_DSN[`${bounceType}/${bounceSubType}`] ?? BOUNCE_DSN['Permanent/General'];
  return {
    bounceType,
    bounceSubType,
    bouncedRecipients: recipients.map((emailAddress) => ({
      emailAddress,
      action: 'failed',
      status: dsn?.status ?? '5.0.0',
      diagnosticCode: dsn?.diagnosticCode ?? 'smtp; 550 rejected',
    })),
    timestamp: r.eventTime,
    feedbackId: r.opts.feedbackId ?? sesStyleId(`bounce:${r.messageId}:${r.eventTime}`, Date.parse(r.eventTime) || BASE_TIME),
    reportingMTA: 'dns; a12-34.smtp-out.amazonses.com',
    remoteMtaIp: '203.0.113.25',
  };
}

function complaintObject(r: Resolved, recipients: readonly string[]): SesPayload {
  return {
    feedbackId: r.opts.feedbackId ?? sesStyleId(`complaint:${r.messageId}:${r.eventTime}`, Date.parse(r.eventTime) || BASE_TIME),
    complaintSubType: null,
    complainedRecipients: recipients.map((emailAddress) => ({ emailAddress })),
    timestamp: r.eventTime,
    userAgent: 'Example Mail FBL/2.1',
    complaintFeedbackType: r.opts.complaintFeedbackType ?? 'abuse',
    arrivalDate: r.eventTime,
  };
}

function deliveryObject(r: Resolved, recipients: readonly string[]): SesPayload {
  const processing = Math.max(1, (Date.parse(r.eventTime) || 0) - (Date.parse(r.mailTime) || 0));
  return {
    timestamp: r.eventTime,
    processingTimeMillis: processing,
    recipients: [...recipients],
    smtpResponse: '250 2.0.0 OK queued as 4Q8zXk1mVbz9',
    reportingMTA: 'a12-34.smtp-out.amazonses.com',
    remoteMtaIp: '203.0.113.25',
  };
}

function typeSpecific(type: SesEventType, r: Resolved): [string, SesPayload] {
  const o = r.opts;
  switch (type) {
    case 'Send':
      return ['send', {}];
    case 'Delivery':
      return ['delivery', deliveryObject(r, r.recipients)];
    case 'Bounce':
      return ['bounce', bounceObject(r, r.recipients)];
    case 'Complaint':
      return ['complaint', complaintObject(r, r.recipients)];
    case 'Reject':
      return ['reject', { reason: o.reason ?? 'Bad content' }];
    case 'Open':
      return [
        'open',
        {
          ipAddress: '192.0.2.44',
          timestamp: r.eventTime,
          userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko)',
        },
      ];
    case 'Click':
      return [
        'click',
        {
          ipAddress: '192.0.2.44',
          link: o.link ?? 'https://shop.example.com/offers?utm_source=ses',
          ...(o.linkTags ? { linkTags: o.linkTags } : {}),
          timestamp: r.eventTime,
          userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
        },
      ];
    case 'RenderingFailure':
      return [
        'failure',
        {
          errorMessage: "Attribute 'firstName' is not present in the rendering data.",
          templateName: o.templateName ?? 'WelcomeTemplate',
        },
      ];
    case 'DeliveryDelay':
      return [
        'deliveryDelay',
        {
          timestamp: r.eventTime,
          delayType: o.delayType ?? 'MailboxFull',
          expirationTime: iso((Date.parse(r.mailTime) || BASE_TIME) + 14 * 3_600_000),
          reportingMTA: '203.0.113.25',
          delayedRecipients: r.recipients.map((emailAddress) => ({
            emailAddress,
            status: '4.2.2',
            diagnosticCode: 'smtp; 452 4.2.2 mailbox full',
          })),
        },
      ];
    case 'Subscription': {
      const topic = o.topic ?? 'newsletter';
      const all = o.unsubscribeAll ?? false;
      const statuses = (m: Record<string, string>) => Object.entries(m).map(([topicName, subscriptionStatus]) => ({ topicName, subscriptionStatus }));
      return [
        'subscription',
        {
          contactList: o.contactList ?? 'Customers',
          timestamp: r.eventTime,
          source: 'UnsubscribeHeader',
          newTopicPreferences: {
            unsubscribeAll: all,
            topicSubscriptionStatus: statuses(o.topicPreferences ?? { [topic]: 'OptOut' }),
            ...(o.topicDefaults ? { topicDefaultSubscriptionStatus: statuses(o.topicDefaults) } : {}),
          },
          oldTopicPreferences: {
            unsubscribeAll: false,
            topicSubscriptionStatus: [{ topicName: topic, subscriptionStatus: 'OptIn' }],
          },
        },
      ];
    }
  }
}

/** A payload in the event publishing format (`eventType`, from a configuration set). */
export function sesEvent(type: SesEventType, opts: SesEventOptions = {}): SesPayload {
  const r = resolve(type, opts, true);
  // Rendering failures happen before the message exists, so SES has no headers to report.
  const mail = mailObject(r, 'eventType', type !== 'RenderingFailure');
  const [key, body] = typeSpecific(type, r);
  return { eventType: RAW_TYPE[type], mail, [key]: body };
}

/**
 * A payload in the identity feedback format (`notificationType`). SES adds no tags there unless
 * the message went through a configuration set, so `configurationSet` is only set when asked.
 */
export function sesNotification(type: 'Bounce' | 'Complaint' | 'Delivery', opts: SesEventOptions = {}): SesPayload {
  const r = resolve(type, opts, false);
  const mail = mailObject(r, 'notificationType', true);
  const [key, body] = typeSpecific(type, r);
  return { notificationType: type, mail, [key]: body };
}

// ---- realistic mix ----------------------------------------------------------------------

// Per message, chosen so that events come out as Send 40%, Delivery 38%, Open 12%, Click 5%,
// Bounce 3%, DeliveryDelay 1.5%, Complaint 0.5% (2.5 events per message on average).
const P_BOUNCE_INSTEAD = 0.05;
const P_BOUNCE_AFTER_DELIVERY = 0.025 / 0.95;
const P_OPEN = 0.3 / 0.95;
const P_CLICK = 0.125 / 0.3;
const P_DELAY = 0.0375;
const P_COMPLAINT = 0.0125 / 0.95;

const SUBJECTS = ['Your January update', 'New arrivals this week', 'Your order has shipped', 'Last chance: 20% off', 'We miss you'];
const LINKS = ['https://shop.example.com/new', 'https://shop.example.com/sale', 'https://example.com/account', 'https://example.com/blog/winter'];

function pickBounce(r: () => number): { bounceType: BounceType; bounceSubType: string } {
  const x = r();
  if (x < 2 / 3) {
    const y = r();
    return { bounceType: 'Permanent', bounceSubType: y < 0.6 ? 'General' : y < 0.9 ? 'NoEmail' : 'Suppressed' };
  }
  if (x < 0.92) {
    const y = r();
    return { bounceType: 'Transient', bounceSubType: y < 0.5 ? 'General' : y < 0.85 ? 'MailboxFull' : 'ContentRejected' };
  }
  return { bounceType: 'Undetermined', bounceSubType: 'Undetermined' };
}

/** Minutes-to-hours skew: most reactions come soon, a long tail comes late. */
function skewed(r: () => number, minMs: number, maxMs: number): number {
  const u = r();
  return Math.round(minMs + (maxMs - minMs) * u * u * u);
}

/**
 * `n` payloads (eventType format, one recipient each) in time order, deterministic for a seed.
 * Within one message: send < delay < delivery < open < click, bounces and complaints after it.
 */
export function realisticMix(n: number, opts: { recipients: number; seed: number; start?: Date; configurationSet?: string }): SesPayload[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`realisticMix: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(opts.recipients) || opts.recipients < 1) {
    throw new RangeError(`realisticMix: recipients must be a positive integer, got ${opts.recipients}`);
  }
  const r = rng(opts.seed);
  const start = opts.start?.getTime() ?? BASE_TIME;
  const configurationSet = opts.configurationSet ?? 'tajo-default';
  const out: Array<{ at: number; seq: number; payload: SesPayload }> = [];
  let seq = 0;
  let sendAt = start;
  let m = 0;

  while (out.length < n) {
    m++;
    sendAt += 1 + Math.floor(r() * 200);
    const recipient = `user${Math.floor(r() * opts.recipients)}@example.com`;
    const base: SesEventOptions = {
      messageId: sesStyleId(`mix:${opts.seed}:${m}`, sendAt),
      recipients: [recipient],
      mailTimestamp: iso(sendAt),
      subject: SUBJECTS[Math.floor(r() * SUBJECTS.length)] ?? 'Update',
      configurationSet,
    };
    const chain: Array<[SesEventType, number, SesEventOptions?]> = [['Send', sendAt]];
    let t = sendAt + 200 + Math.floor(r() * 3_000);
    if (r() < P_DELAY) {
      t = sendAt + skewed(r, 60_000, 3_600_000);
      chain.push(['DeliveryDelay', t]);
      t += skewed(r, 60_000, 7_200_000);
    }
    if (r() < P_BOUNCE_INSTEAD) {
      chain.push(['Bounce', t, pickBounce(r)]);
    } else {
      const deliveredAt = t;
      chain.push(['Delivery', deliveredAt]);
      if (r() < P_BOUNCE_AFTER_DELIVERY) chain.push(['Bounce', deliveredAt + skewed(r, 30_000, 7_200_000), pickBounce(r)]);
      if (r() < P_OPEN) {
        const openAt = deliveredAt + skewed(r, 5_000, 6 * 3_600_000);
        chain.push(['Open', openAt]);
        if (r() < P_CLICK) {
          chain.push(['Click', openAt + skewed(r, 2_000, 600_000), { link: LINKS[Math.floor(r() * LINKS.length)] ?? 'https://example.com/' }]);
        }
      }
      if (r() < P_COMPLAINT) chain.push(['Complaint', deliveredAt + skewed(r, 600_000, 48 * 3_600_000)]);
    }
    for (const [type, at, extra] of chain) {
      if (out.length >= n) break;
      out.push({ at, seq: seq++, payload: sesEvent(type, { ...base, ...extra, timestamp: iso(at) }) });
    }
  }
  out.sort((a, b) => a.at - b.at || a.seq - b.seq);
  return out.map((e) => e.payload);
}

// ---- EventBridge ------------------------------------------------------------------------

const DETAIL_TYPE: ReadonlyMap<string, string> = new Map(
  [...EVENTBRIDGE_DETAIL_TYPES].map(([detailType, type]) => [type === 'RenderingFailure' ? 'Rendering Failure' : type, detailType]),
);

/**
 * The event SES puts on the default event bus for an event-publishing payload (`eventType`), as
 * an API destination POSTs it: `detail` is the payload, `detail-type` follows its eventType.
 */
export function eventBridgeEvent(payload: SesPayload, opts: { id?: string; detailType?: string; region?: string } = {}): Record<string, unknown> {
  const eventType = String(payload['eventType'] ?? '');
  const detailType = opts.detailType ?? DETAIL_TYPE.get(eventType);
  if (detailType === undefined) throw new Error(`eventBridgeEvent: no detail-type for eventType ${JSON.stringify(eventType)} (pass opts.detailType)`);
  const mail = payload['mail'] as { timestamp?: string } | undefined;
  return {
    version: '0',
    id: opts.id ?? randomUUID(),
    'detail-type': detailType,
    source: 'aws.ses',
    account: ACCOUNT,
    time: mail?.timestamp ?? new Date(BASE_TIME).toISOString(),
    region: opts.region ?? 'us-east-1',
    resources: [],
    detail: payload,
  };
}
