import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TajoError } from '../core/errors.js';
import { SES_EVENT_TYPES } from '../core/types.js';
import type { SesEventRecord, SesEventType } from '../core/types.js';
import { sesEvent, sesNotification } from '../sim/ses-events/index.js';
import { extractAddress, normalizeSesTimestamp, parseSesNotification } from './parse.js';

function fixture(name: string): string {
  return readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
}

function only(message: unknown): SesEventRecord {
  const parsed = parseSesNotification(message);
  expect(parsed.unknown).toEqual([]);
  expect(parsed.records).toHaveLength(1);
  return parsed.records[0] as SesEventRecord;
}

function expectThrowsCode(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(TajoError);
  expect((caught as TajoError).code).toBe(code);
  expect((caught as TajoError).retryable).toBe(false);
}

const MID = '0100018dabc00000-11111111-2222-4333-8444-555555555555-000000';
const T = '2026-03-01T10:20:30.400Z';

describe('parseSesNotification: eventType format', () => {
  const discriminators: Record<SesEventType, string> = {
    Send: T,
    Delivery: T,
    Open: T,
    Click: `${T}:https://x.example/a?b=c`,
    Bounce: 'fb-bounce-1',
    Complaint: 'fb-complaint-1',
    Reject: T,
    DeliveryDelay: T,
    RenderingFailure: T,
    Subscription: T,
  };

  for (const type of SES_EVENT_TYPES) {
    it(`${type}: one record with the contract key`, () => {
      const payload = sesEvent(type, {
        messageId: MID,
        recipients: ['Someone@Example.com'],
        timestamp: T,
        // Send, Reject and RenderingFailure are timed by the mail itself.
        mailTimestamp: ['Send', 'Reject', 'RenderingFailure'].includes(type) ? T : '2026-03-01T10:00:00.000Z',
        link: 'https://x.example/a?b=c',
        feedbackId: type === 'Bounce' ? 'fb-bounce-1' : 'fb-complaint-1',
        subject: 'Spring sale',
        from: 'Shop <shop@example.com>',
        configurationSet: 'marketing',
      });
      const rec = only(payload);
      expect(rec).toMatchObject({
        kind: 'ses_event',
        type,
        rawType: type === 'RenderingFailure' ? 'Rendering Failure' : type,
        format: 'eventType',
        email: 'someone@example.com',
        timestamp: T,
        messageId: MID,
        from: 'Shop <shop@example.com>',
        configurationSet: 'marketing',
      });
      expect(rec.key).toBe(`ses:${MID}:${type}:someone@example.com:${discriminators[type]}`);
      if (type !== 'RenderingFailure') expect(rec.subject).toBe('Spring sale');
      for (const v of Object.values(rec.details)) expect(['string', 'number', 'boolean']).toContain(typeof v);
    });
  }

  it('the string and the parsed object give the same records', () => {
    const payload = sesEvent('Click', { messageId: MID });
    expect(parseSesNotification(JSON.stringify(payload))).toEqual(parseSesNotification(payload));
  });

  it('maps `Rendering Failure` and reads its `failure` object', () => {
    const rec = only(sesEvent('RenderingFailure', { templateName: 'Welcome', mailTimestamp: T }));
    expect(rec.type).toBe('RenderingFailure');
    expect(rec.rawType).toBe('Rendering Failure');
    expect(rec.details).toEqual({ templateName: 'Welcome', errorMessage: "Attribute 'firstName' is not present in the rendering data." });
    expect(rec.timestamp).toBe(T);
  });

  it('Bounce: type fields, per-recipient DSN fields, feedbackId discriminator', () => {
    const rec = only(sesEvent('Bounce', { messageId: MID, bounceType: 'Transient', bounceSubType: 'MailboxFull', feedbackId: 'fb-9' }));
    expect(rec.key).toBe(`ses:${MID}:Bounce:recipient@example.com:fb-9`);
    expect(rec.details).toEqual({
      bounceType: 'Transient',
      bounceSubType: 'MailboxFull',
      reportingMta: 'dns; a12-34.smtp-out.amazonses.com',
      feedbackId: 'fb-9',
      action: 'failed',
      status: '5.2.2',
      diagnosticCode: 'smtp; 552 5.2.2 mailbox over quota',
    });
  });

  it('Complaint: feedback report fields', () => {
    const rec = only(sesEvent('Complaint', { feedbackId: 'fb-c', complaintFeedbackType: 'not-spam', timestamp: T }));
    expect(rec.details).toEqual({
      complaintFeedbackType: 'not-spam',
      userAgent: 'Example Mail FBL/2.1',
      feedbackId: 'fb-c',
      arrivalDate: T,
    });
  });

  it('Delivery, Open, DeliveryDelay, Reject: their own fields', () => {
    const delivery = only(sesEvent('Delivery', { timestamp: T, mailTimestamp: '2026-03-01T10:20:28.400Z' }));
    expect(delivery.details).toEqual({
      processingTimeMillis: 2000,
      smtpResponse: '250 2.0.0 OK queued as 4Q8zXk1mVbz9',
      reportingMta: 'a12-34.smtp-out.amazonses.com',
    });
    expect(only(sesEvent('Open')).details).toEqual({
      ipAddress: '192.0.2.44',
      userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko)',
    });
    expect(only(sesEvent('DeliveryDelay', { delayType: 'TransientCommunicationFailure', mailTimestamp: T })).details).toEqual({
      delayType: 'TransientCommunicationFailure',
      expirationTime: '2026-03-02T00:20:30.400Z',
      reportingMta: '203.0.113.25',
      status: '4.2.2',
      diagnosticCode: 'smtp; 452 4.2.2 mailbox full',
    });
    expect(only(sesEvent('Reject')).details).toEqual({ reason: 'Bad content' });
  });

  it('Click: link in key and details, linkTags flattened', () => {
    const rec = only(
      sesEvent('Click', {
        messageId: MID,
        timestamp: T,
        link: 'https://shop.example.com/p/1',
        linkTags: { campaign: ['spring'], variant: ['b', 'c'] },
      }),
    );
    expect(rec.key).toBe(`ses:${MID}:Click:recipient@example.com:${T}:https://shop.example.com/p/1`);
    expect(rec.details['link']).toBe('https://shop.example.com/p/1');
    expect(rec.details['linkTags']).toBe('campaign=spring;variant=b;variant=c');
  });

  it('two clicks on different links at the same time keep different keys', () => {
    const a = only(sesEvent('Click', { messageId: MID, timestamp: T, link: 'https://a.example/' }));
    const b = only(sesEvent('Click', { messageId: MID, timestamp: T, link: 'https://b.example/' }));
    expect(a.key).not.toBe(b.key);
  });

  it('Subscription: preferences flattened, unsubscribeAll always present', () => {
    const topicOnly = only(sesEvent('Subscription', { contactList: 'Customers', topic: 'weekly', timestamp: T }));
    expect(topicOnly.details).toEqual({
      contactList: 'Customers',
      source: 'UnsubscribeHeader',
      newTopicPreferences: 'weekly=OptOut',
      oldTopicPreferences: 'weekly=OptIn',
      oldUnsubscribeAll: false,
      unsubscribeAll: false,
    });
    expect(topicOnly.timestamp).toBe(T);
    expect(only(sesEvent('Subscription', { unsubscribeAll: true })).details['unsubscribeAll']).toBe(true);

    const bare = sesEvent('Subscription', { messageId: MID });
    delete (bare['subscription'] as Record<string, unknown>)['newTopicPreferences'];
    expect(only(bare).details['unsubscribeAll']).toBe(false);
  });

  it('Subscription: tolerates topic statuses given as a map', () => {
    const p = sesEvent('Subscription');
    (p['subscription'] as Record<string, unknown>)['newTopicPreferences'] = {
      unsubscribeAll: true,
      topicSubscriptionStatus: { weekly: 'OptOut', offers: 'OptOut' },
    };
    const rec = only(p);
    expect(rec.details['newTopicPreferences']).toBe('offers=OptOut;weekly=OptOut');
    expect(rec.details['unsubscribeAll']).toBe(true);
  });
});

describe('parseSesNotification: notificationType format', () => {
  for (const type of ['Bounce', 'Complaint', 'Delivery'] as const) {
    it(`${type}`, () => {
      const rec = only(sesNotification(type, { messageId: MID, timestamp: T, feedbackId: 'fb-n', recipients: ['a@example.com'] }));
      expect(rec).toMatchObject({ type, rawType: type, format: 'notificationType', email: 'a@example.com', timestamp: T, messageId: MID });
      expect(rec.key).toBe(`ses:${MID}:${type}:a@example.com:${type === 'Delivery' ? T : 'fb-n'}`);
      expect(rec.configurationSet).toBeUndefined();
      expect(rec.subject).toBe('Your January update');
    });
  }

  it('the same delivery in both formats has the same key', () => {
    const opts = { messageId: MID, timestamp: T, recipients: ['a@example.com'] };
    expect(only(sesNotification('Delivery', opts)).key).toBe(only(sesEvent('Delivery', opts)).key);
  });

  it('complaint fixture: odd mail timestamp, no headers, from falls back to mail.source', () => {
    const rec = only(fixture('notification-complaint.json'));
    expect(rec).toMatchObject({
      type: 'Complaint',
      format: 'notificationType',
      email: 'linus@example.net',
      timestamp: '2026-02-04T16:03:00.500Z',
      from: 'letters@northwind.example',
    });
    expect(rec.subject).toBeUndefined();
    expect(rec.key).toBe(
      'ses:0100018d0a1b2000-aaaabbbb-cccc-4ddd-8eee-ffff00001111-000000:Complaint:linus@example.net:0100018d0f9e8d7c-11112222-3333-4444-9555-666677778888-000000',
    );
  });

  it('the legacy subscription notice is no event', () => {
    const parsed = parseSesNotification({
      notificationType: 'AmazonSnsSubscriptionSucceeded',
      message: "You have successfully subscribed your Amazon SNS topic 'arn:aws:sns:us-east-1:1:t' to receive 'Bounce' notifications.",
    });
    expect(parsed.records).toEqual([]);
    expect(parsed.unknown).toEqual([{ kind: 'unknown', rawType: 'AmazonSnsSubscriptionSucceeded', reason: expect.stringContaining('setup') }]);
  });
});

describe('parseSesNotification: recipients', () => {
  it('fans out to every recipient the type names, not to mail.destination', () => {
    const parsed = parseSesNotification(fixture('event-bounce-two-recipients.json'));
    expect(parsed.unknown).toEqual([]);
    expect(parsed.records.map((r) => r.email)).toEqual(['ada.lovelace@example.org', 'grace@example.org']);
    const [ada, grace] = parsed.records as [SesEventRecord, SesEventRecord];
    expect(ada.key).toBe(
      'ses:0100018d0a1b2000-aaaabbbb-cccc-4ddd-8eee-ffff00001111-000000:Bounce:ada.lovelace@example.org:0100018d0a1b2c3d-5e6f7a8b-1c2d-4e5f-8a9b-0c1d2e3f4a5b-000000',
    );
    expect(ada.details['diagnosticCode']).toBe('smtp; 550 5.1.1 <ada.lovelace@example.org>: no such user');
    expect(grace.details['diagnosticCode']).toBe('smtp; 550 5.1.1 mailbox unavailable');
    expect(ada).toMatchObject({ subject: 'February catalogue', configurationSet: 'northwind-marketing', timestamp: '2026-02-03T08:15:09.412Z' });
    expect(ada.details).not.toBe(grace.details);
  });

  it('Send and Delivery fan out over several recipients', () => {
    const recipients = ['a@example.com', 'b@example.com', 'c@example.com'];
    for (const type of ['Send', 'Delivery', 'Open', 'DeliveryDelay', 'Complaint'] as const) {
      const parsed = parseSesNotification(sesEvent(type, { recipients }));
      expect(parsed.records.map((r) => r.email)).toEqual(recipients);
      expect(new Set(parsed.records.map((r) => r.key)).size).toBe(3);
    }
  });

  it('normalizes case, spaces and display names', () => {
    const parsed = parseSesNotification(
      sesEvent('Send', { recipients: ['  MiXeD@Example.COM ', '"Doe, Jane" <Jane.Doe@Example.com>', 'Bob <BOB@example.com >'] }),
    );
    expect(parsed.records.map((r) => r.email)).toEqual(['mixed@example.com', 'jane.doe@example.com', 'bob@example.com']);
    expect(extractAddress('no address here')).toBeUndefined();
    expect(extractAddress(42)).toBeUndefined();
  });

  it('drops duplicates inside one payload', () => {
    const parsed = parseSesNotification(sesEvent('Delivery', { recipients: ['a@example.com', 'A@EXAMPLE.COM', 'Someone <a@example.com>', 'b@example.com'] }));
    expect(parsed.records.map((r) => r.email)).toEqual(['a@example.com', 'b@example.com']);
  });

  it('skips entries that are no address and keeps the others', () => {
    const p = sesEvent('Bounce');
    (p['bounce'] as Record<string, unknown>)['bouncedRecipients'] = [{ emailAddress: 'x@example.com' }, {}, null, 'y@example.com', { emailAddress: 3 }];
    expect(parseSesNotification(p).records.map((r) => r.email)).toEqual(['x@example.com', 'y@example.com']);
  });
});

describe('parseSesNotification: timestamps', () => {
  it('normalizes parseable times to UTC ISO and keeps the raw string otherwise', () => {
    expect(normalizeSesTimestamp('2009-12-03T04:24:21.000-05:00')).toBe('2009-12-03T09:24:21.000Z');
    expect(normalizeSesTimestamp('2018-10-08T14:05:45 +0000')).toBe('2018-10-08T14:05:45.000Z');
    expect(normalizeSesTimestamp('2024-04-25T18:10:04.973666+03:00')).toBe('2024-04-25T15:10:04.973Z');
    expect(normalizeSesTimestamp('not a time')).toBe('not a time');
  });

  it('falls back to mail.timestamp when the event has no time of its own', () => {
    const p = sesEvent('Open', { mailTimestamp: T });
    delete (p['open'] as Record<string, unknown>)['timestamp'];
    const rec = only(p);
    expect(rec.timestamp).toBe(T);
    expect(rec.key.endsWith(`:${T}`)).toBe(true);
  });

  it('a bounce without feedbackId is keyed by its time', () => {
    const p = sesEvent('Bounce', { messageId: MID, timestamp: T });
    delete (p['bounce'] as Record<string, unknown>)['feedbackId'];
    expect(only(p).key).toBe(`ses:${MID}:Bounce:recipient@example.com:${T}`);
  });
});

describe('parseSesNotification: tolerated and rejected input', () => {
  it.each([
    ['unknown eventType', { eventType: 'Teleport', mail: { messageId: 'm' } }, 'Teleport', /unknown SES eventType/],
    ['unknown notificationType', { notificationType: 'Received', mail: { messageId: 'm' } }, 'Received', /unknown SES notificationType/],
    ['no type at all', { mail: { messageId: 'm' } }, '', /neither eventType nor notificationType/],
    ['an SNS envelope', { Type: 'Notification', Message: '{}' }, '', /SNS envelope/],
    ['no mail', { eventType: 'Send' }, 'Send', /mail\.messageId/],
    ['no messageId', { eventType: 'Send', mail: { destination: ['a@example.com'], timestamp: T } }, 'Send', /mail\.messageId/],
    ['no destination', { eventType: 'Open', mail: { messageId: 'm', timestamp: T } }, 'Open', /mail\.destination/],
    ['no bounce object', { eventType: 'Bounce', mail: { messageId: 'm', destination: ['a@example.com'] } }, 'Bounce', /missing bounce/],
    ['empty recipients', { notificationType: 'Delivery', mail: { messageId: 'm' }, delivery: { recipients: [] } }, 'Delivery', /no recipients/],
    ['no time anywhere', { eventType: 'Send', mail: { messageId: 'm', destination: ['a@example.com'] } }, 'Send', /timestamp/],
  ])('%s goes to unknown', (_name, payload, rawType, reason) => {
    const parsed = parseSesNotification(payload);
    expect(parsed.records).toEqual([]);
    expect(parsed.unknown).toHaveLength(1);
    expect(parsed.unknown[0]).toMatchObject({ kind: 'unknown', rawType });
    expect(parsed.unknown[0]?.reason).toMatch(reason);
  });

  it('ignores extra fields SES may add', () => {
    const p: Record<string, unknown> = { ...sesEvent('Delivery'), futureField: { nested: [1, 2] }, eventId: 'e-1' };
    (p['delivery'] as Record<string, unknown>)['newThing'] = { a: 1 };
    expect(only(p).details).not.toHaveProperty('newThing');
  });

  it('the SES event-destination validation line is a notice, not an error', () => {
    const parsed = parseSesNotification('Successfully validated SNS topic for Amazon SES event publishing.');
    expect(parsed.records).toEqual([]);
    expect(parsed.unknown[0]?.reason).toMatch(/validation/);
  });

  it('throws malformed_ses_payload on non-JSON and on JSON that is no object', () => {
    expectThrowsCode(() => parseSesNotification('{"eventType": "Send",'), 'malformed_ses_payload');
    expectThrowsCode(() => parseSesNotification('hello'), 'malformed_ses_payload');
    expectThrowsCode(() => parseSesNotification('[1,2]'), 'malformed_ses_payload');
    expectThrowsCode(() => parseSesNotification('null'), 'malformed_ses_payload');
    expectThrowsCode(() => parseSesNotification(42), 'malformed_ses_payload');
    expectThrowsCode(() => parseSesNotification(undefined), 'malformed_ses_payload');
    expect(() => parseSesNotification('hello')).toThrow(/not JSON/);
  });

  it('property: any JSON object parses without throwing, and keys are unique', () => {
    // Weighted towards payloads that look like SES, so that most runs produce records to check.
    const address = fc.oneof(
      { arbitrary: fc.emailAddress(), weight: 4 },
      { arbitrary: fc.emailAddress().map((e) => ` "N, M" <${e.toUpperCase()}> `), weight: 2 },
      { arbitrary: fc.constantFrom('dup@example.com', 'DUP@example.com ', 'X <dup@example.com>'), weight: 2 },
      { arbitrary: fc.string(), weight: 1 },
    );
    const typeName = fc.oneof(
      { arbitrary: fc.constantFrom(...SES_EVENT_TYPES, 'Rendering Failure'), weight: 6 },
      { arbitrary: fc.constantFrom('AmazonSnsSubscriptionSucceeded', 'constructor', '__proto__', 'toString'), weight: 1 },
      { arbitrary: fc.string(), weight: 1 },
    );
    const time = fc.oneof(
      { arbitrary: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), weight: 4 },
      { arbitrary: fc.string(), weight: 1 },
      { arbitrary: fc.jsonValue(), weight: 1 },
    );
    const recipientList = fc.array(
      fc.oneof(
        { arbitrary: address, weight: 3 },
        { arbitrary: fc.record({ emailAddress: address, status: fc.string(), diagnosticCode: fc.string() }), weight: 3 },
        { arbitrary: fc.jsonValue(), weight: 1 },
      ),
      { maxLength: 5 },
    );
    const typeObject = fc.record(
      {
        timestamp: time,
        feedbackId: fc.oneof(fc.constant('fb-1'), fc.string(), fc.jsonValue()),
        link: fc.oneof(fc.webUrl(), fc.jsonValue()),
        bouncedRecipients: recipientList,
        complainedRecipients: recipientList,
        recipients: recipientList,
        delayedRecipients: recipientList,
        linkTags: fc.oneof(fc.dictionary(fc.string(), fc.array(fc.string())), fc.jsonValue()),
        newTopicPreferences: fc.jsonValue(),
        oldTopicPreferences: fc.jsonValue(),
      },
      { requiredKeys: ['timestamp', 'bouncedRecipients', 'complainedRecipients', 'recipients', 'delayedRecipients'] },
    );
    const sesLike = fc
      .record(
        {
          type: typeName,
          useNotificationType: fc.boolean(),
          mail: fc.record(
            {
              messageId: fc.oneof({ arbitrary: fc.string({ minLength: 1 }), weight: 6 }, { arbitrary: fc.jsonValue(), weight: 1 }),
              destination: recipientList,
              timestamp: time,
              commonHeaders: fc.oneof(fc.record({ subject: fc.string(), from: fc.array(fc.string()) }), fc.jsonValue()),
              tags: fc.oneof(fc.dictionary(fc.string(), fc.array(fc.string())), fc.jsonValue()),
            },
            { requiredKeys: ['messageId', 'destination', 'timestamp'] },
          ),
          body: typeObject,
          extra: fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }),
        },
        { requiredKeys: ['type', 'useNotificationType', 'mail', 'body'] },
      )
      .map(({ type, useNotificationType, mail, body, extra }) => ({
        ...extra,
        [useNotificationType ? 'notificationType' : 'eventType']: type,
        mail,
        // Every type object key at once: the parser must pick the one its type names.
        bounce: body,
        complaint: body,
        delivery: body,
        open: body,
        click: body,
        deliveryDelay: body,
        subscription: body,
        failure: body,
        reject: body,
      }));
    let withRecords = 0;
    const anyObject = fc.oneof({ arbitrary: sesLike, weight: 4 }, { arbitrary: fc.dictionary(fc.string(), fc.jsonValue()), weight: 1 });
    fc.assert(
      fc.property(anyObject, fc.boolean(), (payload, asString) => {
        const parsed = parseSesNotification(asString ? JSON.stringify(payload) : payload);
        const keys = parsed.records.map((r) => r.key);
        expect(new Set(keys).size).toBe(keys.length);
        if (keys.length > 0) withRecords++;
        for (const r of parsed.records) {
          expect(r.email).toBe(r.email.trim().toLowerCase());
          expect(r.key.startsWith(`ses:${r.messageId}:${r.type}:${r.email}:`)).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
    // Guards the generator itself: a property that only ever sees rejected input proves little.
    expect(withRecords).toBeGreaterThan(200);
  });
});

describe('fixtures', () => {
  it('subscription fixture', () => {
    const rec = only(fixture('event-subscription.json'));
    expect(rec).toMatchObject({
      type: 'Subscription',
      email: 'ada.lovelace@example.org',
      timestamp: '2026-02-05T12:34:56.789Z',
      subject: 'This week at Northwind',
      from: 'Northwind News <news@northwind.example>',
      configurationSet: 'northwind-marketing',
      details: {
        contactList: 'Northwind',
        source: 'UnsubscribeHeader',
        newTopicPreferences: 'offers=OptIn;weekly=OptOut',
        oldTopicPreferences: 'offers=OptIn;weekly=OptIn',
        unsubscribeAll: false,
      },
    });
  });
});
