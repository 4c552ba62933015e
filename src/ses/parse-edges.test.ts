// Parser behaviour on inputs the simulator does not produce: alternative spellings SES documents,
// missing or odd fields, and the exact texts of what lands in `unknown`.
import { describe, expect, it } from 'vitest';
import { TajoError } from '../core/errors.js';
import type { SesEventRecord } from '../core/types.js';
import { sesEvent } from '../sim/ses-events/index.js';
import { extractAddress, normalizeSesTimestamp, parseSesNotification } from './parse.js';

const MID = 'mid-1';
const T = '2026-03-01T10:20:30.400Z';
const MAIL_T = '2026-03-01T10:00:00.000Z';

type Obj = Record<string, unknown>;

function only(message: unknown): SesEventRecord {
  const parsed = parseSesNotification(message);
  expect(parsed.unknown).toEqual([]);
  expect(parsed.records).toHaveLength(1);
  return parsed.records[0]!;
}

function reason(message: unknown): string {
  const parsed = parseSesNotification(message);
  expect(parsed.records).toEqual([]);
  expect(parsed.unknown).toHaveLength(1);
  return parsed.unknown[0]!.reason;
}

/** A minimal payload: only what the parser needs, so each test adds exactly what it checks. */
function payload(type: string, typeObject: Obj | undefined, mail: Obj = {}): Obj {
  const p: Obj = { eventType: type, mail: { messageId: MID, timestamp: MAIL_T, destination: ['a@example.com'], ...mail } };
  const key = {
    Bounce: 'bounce',
    Complaint: 'complaint',
    Delivery: 'delivery',
    DeliveryDelay: 'deliveryDelay',
    Open: 'open',
    Click: 'click',
    Send: 'send',
    Reject: 'reject',
    'Rendering Failure': 'failure',
    RenderingFailure: 'failure',
    Subscription: 'subscription',
  }[type];
  if (typeObject !== undefined && key !== undefined) p[key] = typeObject;
  return p;
}

function malformed(fn: () => unknown): TajoError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TajoError);
    return err as TajoError;
  }
  throw new Error('expected a TajoError');
}

describe('normalizeSesTimestamp', () => {
  it('returns canonical UTC strings as they are', () => {
    expect(normalizeSesTimestamp('2026-12-31T23:59:59.999Z')).toBe('2026-12-31T23:59:59.999Z');
    expect(normalizeSesTimestamp('2026-01-01T00:00:00.000Z')).toBe('2026-01-01T00:00:00.000Z');
  });

  it('normalizes a 24-character time that is not canonical', () => {
    expect(normalizeSesTimestamp('2018-10-08T14:05:45+0000')).toBe('2018-10-08T14:05:45.000Z');
    expect(normalizeSesTimestamp('2018-10-08T14:05:45+0100')).toBe('2018-10-08T13:05:45.000Z');
  });

  it('repairs a separated offset in its documented forms', () => {
    expect(normalizeSesTimestamp('2018-10-08T14:05:45 -0130')).toBe('2018-10-08T15:35:45.000Z');
    expect(normalizeSesTimestamp('2018-10-08T14:05:45 +00:00')).toBe('2018-10-08T14:05:45.000Z');
    expect(normalizeSesTimestamp('2018-10-08T14:05:45  +0100')).toBe('2018-10-08T13:05:45.000Z');
  });

  it('normalizes 24:00 to midnight of the next day', () => {
    expect(normalizeSesTimestamp('2026-02-03T24:00:00.000Z')).toBe('2026-02-04T00:00:00.000Z');
  });

  it('keeps what it cannot read', () => {
    expect(normalizeSesTimestamp('2018-10-08T14:05:45 +01')).toBe('2018-10-08T14:05:45 +01');
    expect(normalizeSesTimestamp('')).toBe('');
  });
});

describe('extractAddress', () => {
  it('takes the last <...> and refuses anything that cannot be one key segment', () => {
    expect(extractAddress('"A <x>" <Real@Example.com>')).toBe('real@example.com');
    expect(extractAddress('Name <a@example.com')).toBeUndefined();
    expect(extractAddress('<>')).toBeUndefined();
    expect(extractAddress('')).toBeUndefined();
    expect(extractAddress('a b@example.com')).toBeUndefined();
    expect(extractAddress('a:b@example.com')).toBeUndefined();
    expect(extractAddress('a>b@example.com')).toBeUndefined();
    expect(extractAddress('bob@example.com>')).toBeUndefined();
    expect(extractAddress('nobody')).toBeUndefined();
    expect(extractAddress('<a@example.com> trailing')).toBe('a@example.com');
    expect(extractAddress('plain@example.com')).toBe('plain@example.com');
  });
});

describe('parseSesNotification: spellings and types', () => {
  it('accepts the camel-case RenderingFailure spelling', () => {
    const rec = only(payload('RenderingFailure', { templateName: 'W' }));
    expect(rec.type).toBe('RenderingFailure');
    expect(rec.rawType).toBe('RenderingFailure');
  });

  it('a non-string eventType falls back to notificationType', () => {
    const p = { ...payload('Send', {}), eventType: 5, notificationType: 'Send' };
    expect(only(p)).toMatchObject({ type: 'Send', format: 'notificationType' });
  });

  it('a non-string notificationType is no type', () => {
    const parsed = parseSesNotification({ notificationType: 5, mail: { messageId: MID } });
    expect(parsed.unknown).toEqual([{ kind: 'unknown', rawType: '', reason: 'payload has neither eventType nor notificationType' }]);
  });

  it('names the unknown type, quoted, and the format it came in', () => {
    expect(reason({ eventType: 'Teleport', mail: { messageId: 'm' } })).toBe('unknown SES eventType "Teleport"');
    expect(reason({ notificationType: 'Received', mail: { messageId: 'm' } })).toBe('unknown SES notificationType "Received"');
  });

  it('an object with Type Notification but no Message string is no envelope', () => {
    expect(reason({ Type: 'Notification' })).toBe('payload has neither eventType nor notificationType');
    expect(reason({ Type: 'Other', Message: '{}' })).toBe('payload has neither eventType nor notificationType');
    expect(reason({ Type: 'Notification', Message: '{}' })).toBe('this is an SNS envelope: pass its Message field, not the envelope');
  });

  it('gives exact reasons for what it cannot attribute', () => {
    expect(reason({ eventType: 'Send', mail: { messageId: '', destination: ['a@example.com'], timestamp: T } })).toBe('missing mail.messageId');
    expect(reason({ eventType: 'Send', mail: 'nope' })).toBe('missing mail.messageId');
    expect(reason(payload('Bounce', undefined))).toBe('missing bounce object');
    expect(reason(payload('Bounce', { bouncedRecipients: [] }))).toBe('no recipients in bounce.bouncedRecipients');
    expect(reason(payload('DeliveryDelay', { delayedRecipients: 'a@example.com' }))).toBe('no recipients in deliveryDelay.delayedRecipients');
    expect(reason(payload('Open', {}, { destination: [] }))).toBe('no recipients in mail.destination');
    expect(reason(payload('Open', {}, { timestamp: undefined }))).toBe('no timestamp in open.timestamp or mail.timestamp');
  });

  it('refuses a time it cannot read, quoting at most 40 characters of it', () => {
    expect(reason(payload('Send', {}, { timestamp: 'yesterday' }))).toBe('unparsable timestamp "yesterday"');
    const long = `${'9'.repeat(40)}END`;
    expect(reason(payload('Send', {}, { timestamp: long }))).toBe(`unparsable timestamp "${'9'.repeat(40)}"`);
  });
});

describe('parseSesNotification: times and keys', () => {
  it('Send, Reject and RenderingFailure are timed by the mail even when their object has a timestamp', () => {
    for (const type of ['Send', 'Reject', 'Rendering Failure']) {
      expect(only(payload(type, { timestamp: T })).timestamp, type).toBe(MAIL_T);
    }
    expect(only(payload('Open', { timestamp: T })).timestamp).toBe(T);
  });

  it('a type without its object is timed by the mail and has no type fields', () => {
    const open = only(payload('Open', undefined));
    expect(open.timestamp).toBe(MAIL_T);
    expect(open.details).toEqual({});
    expect(only(payload('Subscription', undefined)).details).toEqual({ unsubscribeAll: false });
  });

  it('a complaint without feedbackId and a click without link are keyed by time', () => {
    const complaint = only(payload('Complaint', { timestamp: T, complainedRecipients: [{ emailAddress: 'a@example.com' }] }));
    expect(complaint.key).toBe(`ses:${MID}:Complaint:a@example.com:${T}`);
    const click = only(payload('Click', { timestamp: T }));
    expect(click.key).toBe(`ses:${MID}:Click:a@example.com:${T}`);
  });
});

describe('parseSesNotification: mail fields', () => {
  it('reads a single from header and a single configuration-set tag given as strings', () => {
    const rec = only(payload('Send', {}, { commonHeaders: { from: 'Shop <shop@example.com>', subject: 'Hi' }, tags: { 'ses:configuration-set': 'cs' } }));
    expect(rec).toMatchObject({ from: 'Shop <shop@example.com>', subject: 'Hi', configurationSet: 'cs' });
  });

  it('has no subject, from or configurationSet property when SES reports none', () => {
    const rec = only(payload('Send', {}));
    expect(rec).not.toHaveProperty('subject');
    expect(rec).not.toHaveProperty('from');
    expect(rec).not.toHaveProperty('configurationSet');
    expect(only(payload('Send', {}, { source: 'src@example.com' })).from).toBe('src@example.com');
  });
});

describe('parseSesNotification: type fields', () => {
  it('drops empty strings and non-finite numbers, keeps booleans', () => {
    const rec = only(
      payload('Delivery', { timestamp: T, recipients: ['a@example.com'], smtpResponse: '', processingTimeMillis: Infinity, reportingMTA: true }),
    );
    expect(rec.details).toEqual({ reportingMta: true });
  });

  it('flattens scalar link tags and sorts by key; no usable tag gives no field', () => {
    const rec = only(payload('Click', { timestamp: T, link: 'https://x.example/', linkTags: { b: 'x', a: [1, true, { no: 1 }], c: null } }));
    expect(rec.details['linkTags']).toBe('a=1;a=true;b=x');
    expect(only(payload('Click', { timestamp: T, linkTags: {} })).details).not.toHaveProperty('linkTags');
    expect(only(payload('Click', { timestamp: T, linkTags: ['a'] })).details).not.toHaveProperty('linkTags');
  });

  it('topic preferences: sorted, incomplete entries skipped, no usable entry gives no field', () => {
    const rec = only(
      payload('Subscription', {
        timestamp: T,
        newTopicPreferences: {
          unsubscribeAll: 'true',
          topicSubscriptionStatus: [
            { topicName: 'weekly', subscriptionStatus: 'OptOut' },
            { topicName: 'offers', subscriptionStatus: 'OptIn' },
            { topicName: 'x' },
            { subscriptionStatus: 'OptIn' },
            'junk',
          ],
        },
        oldTopicPreferences: { topicSubscriptionStatus: { weekly: 'OptIn', gone: '' } },
      }),
    );
    expect(rec.details).toStrictEqual({ newTopicPreferences: 'offers=OptIn;weekly=OptOut', oldTopicPreferences: 'weekly=OptIn', unsubscribeAll: false });
    const none = only(
      payload('Subscription', { timestamp: T, newTopicPreferences: { topicSubscriptionStatus: 'x' }, oldTopicPreferences: { unsubscribeAll: true } }),
    );
    expect(none.details).toEqual({ oldUnsubscribeAll: true, unsubscribeAll: false });
  });

  it('a complaint keeps its sub-type when SES gives one (complaints from the suppression list)', () => {
    const rec = only(
      payload('Complaint', { timestamp: T, complaintSubType: 'OnAccountSuppressionList', complainedRecipients: [{ emailAddress: 'a@example.com' }] }),
    );
    expect(rec.details).toEqual({ complaintSubType: 'OnAccountSuppressionList' });
  });

  it('only bounces take the per-recipient action; complaints take no per-recipient fields', () => {
    const delay = only(payload('DeliveryDelay', { timestamp: T, delayedRecipients: [{ emailAddress: 'a@example.com', action: 'delayed', status: '4.4.1' }] }));
    expect(delay.details).toEqual({ status: '4.4.1' });
    const complaint = only(
      payload('Complaint', { timestamp: T, complainedRecipients: [{ emailAddress: 'a@example.com', status: '5.0.0', diagnosticCode: 'x' }] }),
    );
    expect(complaint.details).toEqual({});
  });

  it('records of one payload each get the type fields, never in a shared object', () => {
    const parsed = parseSesNotification(sesEvent('Open', { recipients: ['a@example.com', 'b@example.com'] }));
    const [a, b] = parsed.records;
    expect(a!.details).toEqual({ ipAddress: '192.0.2.44', userAgent: expect.stringContaining('Mozilla') });
    expect(b!.details).toEqual(a!.details);
    expect(a!.details).not.toBe(b!.details);
  });
});

describe('parseSesNotification: what is no SES payload', () => {
  it('the SES validation line is recognized with surrounding whitespace', () => {
    const parsed = parseSesNotification('\n  Successfully validated SNS topic for Amazon SES event publishing.  \n');
    expect(parsed.records).toEqual([]);
    expect(parsed.unknown).toEqual([
      { kind: 'unknown', rawType: '', reason: 'SNS event destination validation notice from SES (setup message, not an event)' },
    ]);
  });

  it('says what it got instead of a JSON object', () => {
    const got = (v: unknown) => malformed(() => parseSesNotification(v)).message;
    expect(got('null')).toBe('SES payload must be a JSON object (the SNS Message with eventType or notificationType), got null');
    expect(got('[1]')).toMatch(/, got an array$/);
    expect(got('42')).toMatch(/, got a number$/);
    expect(got(true)).toMatch(/, got a boolean$/);
  });

  it('quotes at most 80 characters of text that is not JSON, and records its length', () => {
    const short = malformed(() => parseSesNotification('hello'));
    expect(short.message).toBe('SES payload is not JSON: "hello"');
    expect(short.details).toEqual({ length: 5 });
    expect(short.cause).toBeInstanceOf(SyntaxError);
    const text = `${'x'.repeat(80)}TAIL`;
    const long = malformed(() => parseSesNotification(text));
    expect(long.message).toBe(`SES payload is not JSON: "${'x'.repeat(80)}..."`);
    expect(long.details).toEqual({ length: 84 });
    expect(malformed(() => parseSesNotification('x'.repeat(80))).message).toBe(`SES payload is not JSON: "${'x'.repeat(80)}"`);
  });
});
