// SES payload -> normalized records, one per recipient (CONTRACT.md sections 4 and 5).
// Pure and allocation-light: it runs once per SNS message on the ingest hot path.

import { TajoError } from '../core/errors.js';
import { normalizeEmail } from '../core/types.js';
import type { ParsedSesNotification, Scalar, SesEventRecord, SesEventType, UnknownSesRecord } from '../core/types.js';

export type SesParseErrorCode = 'malformed_ses_payload';

type Obj = Record<string, unknown>;

// SES spells one type with a space in event publishing; the camel form is accepted too so
// that payloads re-serialized by other tools still map.
const RAW_TO_TYPE: ReadonlyMap<string, SesEventType> = new Map<string, SesEventType>([
  ['Send', 'Send'],
  ['Delivery', 'Delivery'],
  ['Open', 'Open'],
  ['Click', 'Click'],
  ['Bounce', 'Bounce'],
  ['Complaint', 'Complaint'],
  ['Reject', 'Reject'],
  ['DeliveryDelay', 'DeliveryDelay'],
  ['Rendering Failure', 'RenderingFailure'],
  ['RenderingFailure', 'RenderingFailure'],
  ['Subscription', 'Subscription'],
]);

// SES publishes this plain-text line (not JSON) once when an SNS event destination is added to a
// configuration set. It is expected setup noise, so it must not be rejected as malformed.
const DESTINATION_VALIDATION_NOTICE = 'Successfully validated SNS topic for Amazon SES event publishing.';

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function obj(v: unknown): Obj | undefined {
  return isObj(v) ? v : undefined;
}

const CANONICAL_UTC = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;

/**
 * ISO-8601 in UTC with milliseconds when the value parses; the raw string otherwise, so an
 * odd format still yields a stable key instead of a lost event. SES's own documentation shows
 * `2018-10-08T14:05:45 +0000`, which `Date` rejects: the offset is repaired first.
 */
export function normalizeSesTimestamp(v: string): string {
  // SES almost always sends this exact shape already; skipping Date halves the parse cost.
  if (v.length === 24 && CANONICAL_UTC.test(v)) return v;
  let ms = Date.parse(v);
  if (Number.isNaN(ms)) {
    const repaired = v.replace(/\s*([+-])(\d{2}):?(\d{2})$/, '$1$2:$3');
    ms = repaired === v ? Number.NaN : Date.parse(repaired);
  }
  return Number.isNaN(ms) ? v : new Date(ms).toISOString();
}

/** `"Name" <a@b.com>` -> `a@b.com`, lower-cased and trimmed; undefined when it is no address. */
export function extractAddress(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  let s = v;
  const lt = s.lastIndexOf('<');
  if (lt !== -1) {
    const gt = s.indexOf('>', lt);
    if (gt !== -1) s = s.slice(lt + 1, gt);
  }
  s = normalizeEmail(s);
  // A key segment with ':' or whitespace would make keys ambiguous; SES never sends such addresses.
  if (s === '' || !s.includes('@') || /[\s:<>]/.test(s)) return undefined;
  return s;
}

function put(details: Record<string, Scalar>, key: string, v: unknown): void {
  if (typeof v === 'string') {
    if (v !== '') details[key] = v;
  } else if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) {
    details[key] = v;
  }
}

/** `{k: [v1, v2], k2: [v3]}` -> `k=v1;k=v2;k2=v3`, keys sorted so equal tags give equal strings. */
function flattenLinkTags(v: unknown): string | undefined {
  const tags = obj(v);
  if (!tags) return undefined;
  const parts: string[] = [];
  for (const k of Object.keys(tags).sort()) {
    const vals = tags[k];
    const list = Array.isArray(vals) ? vals : [vals];
    for (const x of list) {
      if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') parts.push(`${k}=${String(x)}`);
    }
  }
  return parts.length > 0 ? parts.join(';') : undefined;
}

/**
 * Topic preferences -> `topic=OptOut;topic2=OptIn`. SES documents `topicSubscriptionStatus` as a
 * list of `{topicName, subscriptionStatus}`; a map `{topic: status}` is accepted as well.
 */
function flattenTopicPreferences(v: unknown): string | undefined {
  const prefs = obj(v);
  if (!prefs) return undefined;
  const parts: string[] = [];
  const statuses = prefs['topicSubscriptionStatus'];
  if (Array.isArray(statuses)) {
    for (const s of statuses) {
      const name = isObj(s) ? str(s['topicName']) : undefined;
      const status = isObj(s) ? str(s['subscriptionStatus']) : undefined;
      if (name && status) parts.push(`${name}=${status}`);
    }
  } else if (isObj(statuses)) {
    for (const name of Object.keys(statuses)) {
      const status = str(statuses[name]);
      if (status) parts.push(`${name}=${status}`);
    }
  }
  parts.sort();
  return parts.join(';');
}

/** `[{topicName, subscriptionStatus}]` (or a `{topic: status}` map) -> topic -> opted in. */
function topicStatuses(v: unknown, into: Record<string, boolean>): void {
  const add = (name: string | undefined, status: string | undefined) => {
    if (name && status) into[name] = status.toLowerCase().replace(/[^a-z]/g, '') === 'optin';
  };
  if (Array.isArray(v)) {
    for (const s of v) if (isObj(s)) add(str(s['topicName']), str(s['subscriptionStatus']));
  } else if (isObj(v)) {
    for (const name of Object.keys(v)) add(name, str(v[name]));
  }
}

/**
 * The effective preference per topic after a Subscription event: the contact's own when it has
 * one, else the topic default; UnsubscribeAll opts out of every topic named (new or old).
 */
function effectiveTopics(t: Obj): SesEventRecord['topics'] {
  const contactList = str(t['contactList']);
  const next = obj(t['newTopicPreferences']);
  if (!contactList || !next) return undefined;
  const optIn: Record<string, boolean> = {};
  topicStatuses(next['topicDefaultSubscriptionStatus'], optIn);
  topicStatuses(next['topicSubscriptionStatus'], optIn);
  if (next['unsubscribeAll'] === true) {
    const prev = obj(t['oldTopicPreferences']);
    if (prev) {
      topicStatuses(prev['topicDefaultSubscriptionStatus'], optIn);
      topicStatuses(prev['topicSubscriptionStatus'], optIn);
    }
    for (const k of Object.keys(optIn)) optIn[k] = false;
  }
  return Object.keys(optIn).length > 0 ? { contactList, optIn } : undefined;
}

interface Recipient {
  email: string;
  /** Per-recipient fields (bounce action/status, delay diagnostic...). */
  entry: Obj | undefined;
}

function recipientsFrom(list: unknown): Recipient[] {
  if (!Array.isArray(list)) return [];
  const out: Recipient[] = [];
  for (const item of list) {
    if (isObj(item)) {
      const email = extractAddress(item['emailAddress']);
      if (email) out.push({ email, entry: item });
    } else {
      const email = extractAddress(item);
      if (email) out.push({ email, entry: undefined });
    }
  }
  return out;
}

/** Where each type keeps its own object and its recipients. */
const TYPE_OBJECT: Readonly<Record<SesEventType, string>> = {
  Send: 'send',
  Delivery: 'delivery',
  Open: 'open',
  Click: 'click',
  Bounce: 'bounce',
  Complaint: 'complaint',
  Reject: 'reject',
  DeliveryDelay: 'deliveryDelay',
  // SES names it `failure`, not after the event type.
  RenderingFailure: 'failure',
  Subscription: 'subscription',
};

// For these the type object itself names the recipients, so without it there is nobody to attribute.
const RECIPIENTS_IN_TYPE_OBJECT: Readonly<Partial<Record<SesEventType, string>>> = {
  Bounce: 'bouncedRecipients',
  Complaint: 'complainedRecipients',
  Delivery: 'recipients',
  DeliveryDelay: 'delayedRecipients',
};

function unknown(rawType: string, reason: string): ParsedSesNotification {
  const u: UnknownSesRecord = { kind: 'unknown', rawType, reason };
  return { records: [], unknown: [u] };
}

function decode(message: unknown): { payload: Obj } | { notice: ParsedSesNotification } {
  let value: unknown = message;
  if (typeof message === 'string') {
    try {
      value = JSON.parse(message);
    } catch (cause) {
      if (message.trim() === DESTINATION_VALIDATION_NOTICE) {
        return { notice: unknown('', 'SNS event destination validation notice from SES (setup message, not an event)') };
      }
      const head = message.length > 80 ? `${message.slice(0, 80)}...` : message;
      throw new TajoError<SesParseErrorCode>('malformed_ses_payload', `SES payload is not JSON: ${JSON.stringify(head)}`, {
        cause,
        details: { length: message.length },
      });
    }
  }
  if (!isObj(value)) {
    const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new TajoError<SesParseErrorCode>(
      'malformed_ses_payload',
      `SES payload must be a JSON object (the SNS Message with eventType or notificationType), got ${what}`,
    );
  }
  return { payload: value };
}

/**
 * Turns one SES payload (the SNS `Message`, as a string or already parsed) into one record per
 * recipient. Throws TajoError('malformed_ses_payload') only when the input is not a JSON object;
 * anything else it does not understand lands in `unknown` with a reason.
 */
export function parseSesNotification(message: string | unknown): ParsedSesNotification {
  const decoded = decode(message);
  return 'notice' in decoded ? decoded.notice : parsePayload(decoded.payload);
}

function parsePayload(p: Obj): ParsedSesNotification {
  const eventType = p['eventType'];
  const notificationType = p['notificationType'];
  const format: SesEventRecord['format'] = typeof eventType === 'string' ? 'eventType' : 'notificationType';
  const rawType = typeof eventType === 'string' ? eventType : typeof notificationType === 'string' ? notificationType : undefined;

  if (rawType === undefined) {
    if (p['Type'] === 'Notification' && typeof p['Message'] === 'string') {
      return unknown('', 'this is an SNS envelope: pass its Message field, not the envelope');
    }
    return unknown('', 'payload has neither eventType nor notificationType');
  }
  if (rawType === 'AmazonSnsSubscriptionSucceeded') {
    return unknown(rawType, 'SES notice that an identity feedback topic was subscribed (setup message, not an event)');
  }
  const type = RAW_TO_TYPE.get(rawType);
  if (type === undefined) return unknown(rawType, `unknown SES ${format} ${JSON.stringify(rawType)}`);

  const mail = obj(p['mail']);
  const messageId = mail ? str(mail['messageId']) : undefined;
  if (!mail || messageId === undefined) return unknown(rawType, 'missing mail.messageId');

  const typeKey = TYPE_OBJECT[type];
  const t = obj(p[typeKey]);
  const recipientsKey = RECIPIENTS_IN_TYPE_OBJECT[type];
  let recipients: Recipient[];
  if (recipientsKey !== undefined) {
    if (!t) return unknown(rawType, `missing ${typeKey} object`);
    recipients = recipientsFrom(t[recipientsKey]);
    if (recipients.length === 0) return unknown(rawType, `no recipients in ${typeKey}.${recipientsKey}`);
  } else {
    recipients = recipientsFrom(mail['destination']);
    if (recipients.length === 0) return unknown(rawType, 'no recipients in mail.destination');
  }

  // Send, Reject and RenderingFailure have no time of their own: the mail's is the event's.
  const ownTime = type === 'Send' || type === 'Reject' || type === 'RenderingFailure' ? undefined : t ? str(t['timestamp']) : undefined;
  const rawTime = ownTime ?? str(mail['timestamp']);
  if (rawTime === undefined) return unknown(rawType, `no timestamp in ${typeKey}.timestamp or mail.timestamp`);
  const timestamp = normalizeSesTimestamp(rawTime);
  // Every record carries a usable event time: ordering and Brevo's event_date depend on it.
  if (Number.isNaN(Date.parse(timestamp))) return unknown(rawType, `unparsable timestamp ${JSON.stringify(rawTime.slice(0, 40))}`);

  const common = obj(mail['commonHeaders']);
  const subject = common ? str(common['subject']) : undefined;
  const fromList = common ? common['from'] : undefined;
  const from = (Array.isArray(fromList) ? str(fromList[0]) : str(fromList)) ?? str(mail['source']);
  const tags = obj(mail['tags']);
  const cs = tags ? tags['ses:configuration-set'] : undefined;
  const configurationSet = Array.isArray(cs) ? str(cs[0]) : str(cs);

  const shared: Record<string, Scalar> = {};
  const topics = type === 'Subscription' && t ? effectiveTopics(t) : undefined;
  let discriminator = timestamp;
  if (t) {
    switch (type) {
      case 'Bounce':
        put(shared, 'bounceType', t['bounceType']);
        put(shared, 'bounceSubType', t['bounceSubType']);
        put(shared, 'reportingMta', t['reportingMTA']);
        put(shared, 'feedbackId', t['feedbackId']);
        discriminator = str(t['feedbackId']) ?? timestamp;
        break;
      case 'Complaint':
        put(shared, 'complaintFeedbackType', t['complaintFeedbackType']);
        put(shared, 'complaintSubType', t['complaintSubType']);
        put(shared, 'userAgent', t['userAgent']);
        put(shared, 'feedbackId', t['feedbackId']);
        put(shared, 'arrivalDate', t['arrivalDate']);
        discriminator = str(t['feedbackId']) ?? timestamp;
        break;
      case 'Delivery':
        put(shared, 'processingTimeMillis', t['processingTimeMillis']);
        put(shared, 'smtpResponse', t['smtpResponse']);
        put(shared, 'reportingMta', t['reportingMTA']);
        break;
      case 'DeliveryDelay':
        put(shared, 'delayType', t['delayType']);
        put(shared, 'expirationTime', t['expirationTime']);
        put(shared, 'reportingMta', t['reportingMTA']);
        break;
      case 'Open':
        put(shared, 'ipAddress', t['ipAddress']);
        put(shared, 'userAgent', t['userAgent']);
        break;
      case 'Click': {
        put(shared, 'link', t['link']);
        put(shared, 'ipAddress', t['ipAddress']);
        put(shared, 'userAgent', t['userAgent']);
        put(shared, 'linkTags', flattenLinkTags(t['linkTags']));
        const link = str(t['link']);
        if (link !== undefined) discriminator = `${timestamp}:${link}`;
        break;
      }
      case 'Reject':
        put(shared, 'reason', t['reason']);
        break;
      case 'RenderingFailure':
        put(shared, 'templateName', t['templateName']);
        put(shared, 'errorMessage', t['errorMessage']);
        break;
      case 'Subscription': {
        const next = obj(t['newTopicPreferences']);
        const prev = obj(t['oldTopicPreferences']);
        put(shared, 'contactList', t['contactList']);
        put(shared, 'source', t['source']);
        put(shared, 'newTopicPreferences', flattenTopicPreferences(next));
        put(shared, 'oldTopicPreferences', flattenTopicPreferences(prev));
        if (prev && typeof prev['unsubscribeAll'] === 'boolean') shared['oldUnsubscribeAll'] = prev['unsubscribeAll'];
        break;
      }
      case 'Send':
        break;
    }
  }
  if (type === 'Subscription') {
    // Always present, so planning never has to guess: only an explicit true unsubscribes.
    const next = t ? obj(t['newTopicPreferences']) : undefined;
    shared['unsubscribeAll'] = next?.['unsubscribeAll'] === true;
  }

  const records: SesEventRecord[] = [];
  const seen = recipients.length > 1 ? new Set<string>() : undefined;
  for (const r of recipients) {
    const key = `ses:${messageId}:${type}:${r.email}:${discriminator}`;
    if (seen) {
      if (seen.has(key)) continue;
      seen.add(key);
    }
    let details = shared;
    if (r.entry && (type === 'Bounce' || type === 'DeliveryDelay')) {
      details = { ...shared };
      if (type === 'Bounce') put(details, 'action', r.entry['action']);
      put(details, 'status', r.entry['status']);
      put(details, 'diagnosticCode', r.entry['diagnosticCode']);
    } else if (recipients.length > 1) {
      // Records may be mutated downstream; never let two of them share one details object.
      details = { ...shared };
    }
    const rec: SesEventRecord = { kind: 'ses_event', key, type, rawType, format, email: r.email, timestamp, messageId, details };
    if (subject !== undefined) rec.subject = subject;
    if (from !== undefined) rec.from = from;
    if (configurationSet !== undefined) rec.configurationSet = configurationSet;
    if (topics) rec.topics = { contactList: topics.contactList, optIn: { ...topics.optIn } };
    records.push(rec);
  }
  return { records, unknown: [] };
}
