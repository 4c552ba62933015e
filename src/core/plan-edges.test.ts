// Planner behaviour at the edges: hand-built records (library users build their own, and not
// only what the parser emits), merge rules in isolation, and the value formats of brevo-model.
import { describe, expect, it } from 'vitest';
import type { EventPolicy } from '../config/schema.js';
import { formatValue, isValidEventName } from './brevo-model.js';
import {
  PRIORITY,
  PRIORITY_NAMES,
  contactChangesForEvent,
  mergeContactOps,
  mergeContactPayload,
  newer,
  planBrevoOperations,
  planContact,
  type ContactOp,
  type EventOp,
  type PlannedOp,
} from './plan.js';
import { SES_EVENT_TYPES, type SesContactRecord, type SesEventRecord, type SesEventType } from './types.js';

const AT = '2026-02-03T10:11:12.345Z';
const AT_MS = Date.parse(AT);

const ALL = (p: EventPolicy): Record<SesEventType, EventPolicy> => Object.fromEntries(SES_EVENT_TYPES.map((t) => [t, p])) as Record<SesEventType, EventPolicy>;

function rec(type: SesEventType, over: Partial<SesEventRecord> = {}): SesEventRecord {
  return {
    kind: 'ses_event',
    key: `ses:m-1:${type}:ann@example.com:${AT}`,
    type,
    rawType: type,
    format: 'eventType',
    email: 'ann@example.com',
    timestamp: AT,
    messageId: 'm-1',
    details: {},
    ...over,
  };
}

function contactRecord(over: Partial<SesContactRecord> = {}): SesContactRecord {
  return {
    kind: 'ses_contact',
    key: 'ses-contact:Customers:amy@example.com',
    list: 'Customers',
    email: 'amy@example.com',
    unsubscribeAll: false,
    topics: {},
    attributes: {},
    ...over,
  };
}

function contacts(ops: PlannedOp[]): ContactOp[] {
  return ops.filter((o): o is ContactOp => o.kind === 'contact');
}

function events(ops: PlannedOp[]): EventOp[] {
  return ops.filter((o): o is EventOp => o.kind === 'event');
}

function contactOp(over: Partial<ContactOp> = {}): ContactOp {
  return {
    kind: 'contact',
    key: 'contact:ann@example.com',
    email: 'ann@example.com',
    priority: PRIORITY.normal,
    lane: 'backfill',
    sources: ['s-1'],
    payload: { attrs: {}, blocklist: false },
    ...over,
  };
}

describe('PRIORITY_NAMES', () => {
  it('names every priority class (shown by status and in delivery logs)', () => {
    expect(PRIORITY_NAMES).toEqual({ 0: 'blocklist', 1: 'critical', 2: 'normal', 3: 'bulk' });
    for (const [name, n] of Object.entries(PRIORITY)) expect(PRIORITY_NAMES[n]).toBe(name);
  });
});

describe('newer', () => {
  it('the later time wins; on equal times the greater value; anything beats nothing', () => {
    expect(newer({ v: 'a', at: 2 }, undefined)).toBe(true);
    expect(newer({ v: 'a', at: 2 }, { v: 'z', at: 1 })).toBe(true);
    expect(newer({ v: 'z', at: 1 }, { v: 'a', at: 2 })).toBe(false);
    expect(newer({ v: 'Open', at: 5 }, { v: 'Click', at: 5 })).toBe(true);
    expect(newer({ v: 'Click', at: 5 }, { v: 'Open', at: 5 })).toBe(false);
    // Booleans and numbers compare by their string form, so the outcome is still order-free.
    expect(newer({ v: true, at: 5 }, { v: false, at: 5 })).toBe(true);
    expect(newer({ v: false, at: 5 }, { v: true, at: 5 })).toBe(false);
  });
});

describe('mergeContactPayload', () => {
  it('keeps the newer value of each attribute from either side and leaves its inputs alone', () => {
    const into = { attrs: { A: { v: 'new', at: 20 }, B: { v: 'old', at: 1 } }, blocklist: false };
    const from = { attrs: { A: { v: 'old', at: 10 }, B: { v: 'new', at: 2 }, C: { v: 'only', at: 3 } }, blocklist: false };
    const out = mergeContactPayload(into, from);
    expect(out.attrs).toEqual({ A: { v: 'new', at: 20 }, B: { v: 'new', at: 2 }, C: { v: 'only', at: 3 } });
    expect(into.attrs).toEqual({ A: { v: 'new', at: 20 }, B: { v: 'old', at: 1 } });
    expect(out.blocklist).toBe(false);
  });

  it('keeps list ids present on one side only, sorted numerically', () => {
    const none = { attrs: {}, blocklist: false };
    expect(mergeContactPayload({ ...none, listIds: [10, 9, 100] }, none).listIds).toEqual([9, 10, 100]);
    expect(mergeContactPayload(none, { ...none, listIds: [100, 9] }).listIds).toEqual([9, 100]);
    expect(mergeContactPayload({ ...none, listIds: [10, 2] }, { ...none, listIds: [2, 30] }).listIds).toEqual([2, 10, 30]);
  });
});

describe('mergeContactOps', () => {
  it('takes the most urgent priority, whichever side has it', () => {
    const bulk = contactOp({ priority: PRIORITY.bulk });
    const block = contactOp({ priority: PRIORITY.blocklist });
    expect(mergeContactOps(bulk, block).priority).toBe(PRIORITY.blocklist);
    expect(mergeContactOps(block, bulk).priority).toBe(PRIORITY.blocklist);
  });

  it('stays on the backfill lane when both are backfill', () => {
    expect(mergeContactOps(contactOp(), contactOp()).lane).toBe('backfill');
  });

  it('unions sources without duplicates and keeps the 20 most recent', () => {
    expect(mergeContactOps(contactOp({ sources: ['a', 'b'] }), contactOp({ sources: ['b', 'c'] })).sources).toEqual(['a', 'b', 'c']);
    const many = Array.from({ length: 25 }, (_, i) => `s-${i}`);
    const merged = mergeContactOps(contactOp({ sources: many.slice(0, 15) }), contactOp({ sources: many.slice(15) })).sources;
    expect(merged).toEqual(many.slice(5));
  });
});

describe('contactChangesForEvent on hand-built records', () => {
  it('a complaint without a feedback type records it as unknown', () => {
    const c = contactChangesForEvent(rec('Complaint'));
    expect(c.attrs.SES_COMPLAINT_TYPE).toEqual({ v: 'unknown', at: AT_MS });
    expect(c.blocklist).toBe(true);
  });

  it('a bounce without type fields sets no bounce type attributes and does not blocklist', () => {
    const c = contactChangesForEvent(rec('Bounce'));
    expect(Object.keys(c.attrs).sort()).toEqual(['SES_LAST_BOUNCED_AT', 'SES_LAST_EVENT', 'SES_LAST_EVENT_AT']);
    expect(c.blocklist).toBe(false);
  });

  it('a Subscription without an unsubscribeAll flag changes neither the attribute nor the blocklist', () => {
    const c = contactChangesForEvent(rec('Subscription', { details: { unsubscribeAll: 'yes' } }));
    expect(c.attrs.SES_UNSUBSCRIBED_ALL).toBeUndefined();
    expect(c.blocklist).toBe(false);
  });

  it('a Subscription with unsubscribeAll false records it without blocklisting', () => {
    const c = contactChangesForEvent(rec('Subscription', { details: { unsubscribeAll: false } }));
    expect(c.attrs.SES_UNSUBSCRIBED_ALL).toEqual({ v: false, at: AT_MS });
    expect(c.blocklist).toBe(false);
  });

  it('every attribute carries the time of the event', () => {
    const c = contactChangesForEvent(rec('Bounce', { details: { bounceType: 'Permanent', bounceSubType: 'General' } }));
    for (const [name, ch] of Object.entries(c.attrs)) expect(ch.at, name).toBe(AT_MS);
    expect(c.attrs.SES_SUPPRESSED_AT?.v).toBe('2026-02-03');
  });
});

describe('planned events', () => {
  it('an event op carries the record key, the lane and the record as its only source', () => {
    const r = rec('Open');
    const [e] = events(planBrevoOperations([r], { events: ALL('event') }, 'backfill'));
    expect(e).toMatchObject({ kind: 'event', key: r.key, email: 'ann@example.com', lane: 'backfill', sources: [r.key], priority: PRIORITY.normal });
  });

  it('the lane defaults to realtime', () => {
    const ops = planBrevoOperations([rec('Open')], { events: ALL('both') });
    expect(ops.map((o) => o.lane)).toEqual(['realtime', 'realtime']);
  });

  it('type fields never overwrite the identifying properties', () => {
    const r = rec('Open', {
      subject: 'Hello',
      from: 'shop@example.com',
      configurationSet: 'cs',
      details: { eventKey: 'forged', messageId: 'forged', subject: 'forged', from: 'forged', configurationSet: 'forged', userAgent: 'UA' },
    });
    const [e] = events(planBrevoOperations([r], { events: ALL('event') }));
    expect(e!.payload.event_properties).toEqual({
      event_key: r.key,
      message_id: 'm-1',
      subject: 'Hello',
      from: 'shop@example.com',
      configuration_set: 'cs',
      user_agent: 'UA',
    });
  });

  it('properties are only the identifying ones when the record has no optional fields', () => {
    const r = rec('Send');
    const [e] = events(planBrevoOperations([r], { events: ALL('event') }));
    expect(e!.payload.event_properties).toStrictEqual({ event_key: r.key, message_id: 'm-1' });
  });

  it('a blocklisting record under the event policy: the blocklist op keeps lane and source', () => {
    const r = rec('Complaint');
    const [c] = contacts(planBrevoOperations([r], { events: ALL('event') }, 'backfill'));
    expect(c).toMatchObject({ key: 'contact:ann@example.com', lane: 'backfill', sources: [r.key], priority: PRIORITY.blocklist });
    const [i] = contacts(planBrevoOperations([r], { events: ALL('ignore') }, 'backfill'));
    expect(i).toMatchObject({ key: 'contact:ann@example.com', lane: 'backfill', sources: [r.key], priority: PRIORITY.blocklist });
  });
});

describe('planContact', () => {
  it('without lastUpdated, its attributes carry time 0 (any event is newer)', () => {
    const op = planContact(contactRecord({ attributes: { firstName: 'Amy' } }), [], { firstName: 'FIRSTNAME' }, 'backfill') as ContactOp;
    expect(op.payload.attrs).toEqual({ FIRSTNAME: { v: 'Amy', at: 0 }, SES_UNSUBSCRIBED_ALL: { v: false, at: 0 } });
  });

  it('with lastUpdated, its attributes carry that time', () => {
    const op = planContact(contactRecord({ lastUpdated: AT, attributes: { firstName: 'Amy' } }), [], { firstName: 'FIRSTNAME' }, 'realtime') as ContactOp;
    expect(op.payload.attrs.FIRSTNAME).toEqual({ v: 'Amy', at: AT_MS });
    expect(op.lane).toBe('realtime');
  });

  it('no list ids: no listIds field; list ids: sorted numerically, the caller array untouched', () => {
    expect((planContact(contactRecord(), [], {}, 'backfill') as ContactOp).payload).not.toHaveProperty('listIds');
    const ids = [10, 9, 100];
    expect((planContact(contactRecord(), ids, {}, 'backfill') as ContactOp).payload.listIds).toEqual([9, 10, 100]);
    expect(ids).toEqual([10, 9, 100]);
  });

  it('a field mapping key only loses an exact leading "attributes." prefix', () => {
    const r = contactRecord({ attributes: { 'x.attributes.y': 'kept', plan: 'gold' } });
    const op = planContact(r, [], { 'x.attributes.y': 'X', 'attributes.plan': 'PLAN' }, 'backfill') as ContactOp;
    expect(op.payload.attrs.X?.v).toBe('kept');
    expect(op.payload.attrs.PLAN?.v).toBe('gold');
  });

  it('contact records plan without a field_mapping in the config', () => {
    const [c] = contacts(planBrevoOperations([contactRecord({ attributes: { firstName: 'Amy' } })], { events: ALL('both') }, 'backfill'));
    expect(Object.keys(c!.payload.attrs)).toEqual(['SES_UNSUBSCRIBED_ALL']);
    expect(c!.payload).not.toHaveProperty('listIds');
    expect(c!.priority).toBe(PRIORITY.bulk);
  });
});

describe('brevo-model value formats and event names', () => {
  it('each type turns away values of other types', () => {
    expect(formatValue('date', Date.parse(AT))).toBeUndefined();
    // Both would pass Date.parse after string conversion: only strings are dates here.
    expect(formatValue('date', 2026)).toBeUndefined();
    expect(formatValue('date', new Date(AT))).toBeUndefined();
    expect(formatValue('float', '1.5')).toBeUndefined();
    expect(formatValue('float', Number.POSITIVE_INFINITY)).toBeUndefined();
    expect(formatValue('text', undefined)).toBeUndefined();
    expect(formatValue('text', false)).toBe('false');
    expect(formatValue('boolean', 0)).toBeUndefined();
  });

  it('event names are lower-case letters and underscores only', () => {
    for (const bad of ['', 'Ses_email', 'ses-email', 'ses_email!', 'email2', 'x ses', 'ses_email\n'])
      expect(isValidEventName(bad), JSON.stringify(bad)).toBe(false);
    expect(isValidEventName('a')).toBe(true);
  });
});
