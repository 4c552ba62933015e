// Records -> Brevo operations. Pure: no I/O, no clock. Many records for one contact
// become one contact write whose attributes each carry the time of the event that set
// them, so a later merge (or the delivery ledger) keeps the newest value of each.
import { EVENT_NAMES, SES_ATTRIBUTES, formatValue, type SesAttributeName } from './brevo-model.js';
import type { Scalar, SesContactRecord, SesEventRecord, SesRecord, SesSuppressionRecord } from './types.js';
import type { EventPolicy } from '../config/schema.js';
import type { SesEventType } from './types.js';

/** Lower is more urgent: blocklisting first, then bounce/complaint events, then the rest. */
export const PRIORITY = { blocklist: 0, critical: 1, normal: 2, bulk: 3 } as const;
export type Priority = (typeof PRIORITY)[keyof typeof PRIORITY];
export const PRIORITY_NAMES: Record<number, string> = { 0: 'blocklist', 1: 'critical', 2: 'normal', 3: 'bulk' };

export type Lane = 'realtime' | 'backfill';

export interface AttrChange {
  /** Value already in the format Brevo accepts for the attribute's type. */
  v: string | number | boolean;
  /** Event time in ms: the newest wins. */
  at: number;
}

export interface ContactPayload {
  attrs: Record<string, AttrChange>;
  /** Only ever true: the connector never unblocks (CONTRACT.md section 4). */
  blocklist: boolean;
  /** Brevo list ids to add the contact to (backfill). */
  listIds?: number[];
  /**
   * Topic list memberships by Brevo list name (`<ContactList> / <Topic>`): true = member,
   * false = not; each with its SES time, the newest wins per list (as attributes do).
   */
  lists?: Record<string, AttrChange>;
  /**
   * A correction planned by `reconcile --fix`: Brevo lost what the ledger says it holds, so
   * values as old as the ledger's are written again, and the blocklist even though the
   * ledger records it (never an unblock).
   */
  rewrite?: true;
}

/** The Brevo list that mirrors an SES topic. */
export function topicListName(list: string, topic: string): string {
  return `${list} / ${topic}`;
}

export interface EventPayload {
  event_name: string;
  event_date: string;
  identifiers: { email_id: string };
  event_properties: Record<string, Scalar>;
}

interface OpBase {
  /** contact:<email> for contacts (coalescing key); the event key for events. */
  key: string;
  email: string;
  priority: Priority;
  lane: Lane;
  /** Idempotency keys of the records behind the operation, for `failures show`. */
  sources: string[];
}
export type ContactOp = OpBase & { kind: 'contact'; payload: ContactPayload };
export type EventOp = OpBase & { kind: 'event'; payload: EventPayload };
export type PlannedOp = ContactOp | EventOp;

export interface PlanConfig {
  events: Record<SesEventType, EventPolicy>;
  field_mapping?: Record<string, string>;
  /** `soft_bounce_blocklist_after`: N counted soft bounces blocklist; 0 or absent: never. Window in ms (engine only). */
  bounce_policy?: { soft_bounce_blocklist_after: number; soft_bounce_window?: number };
}

/** SES's complaint feedback type of a recipient saying the mail was not spam: no blocklist. */
export function isNotSpam(feedbackType: Scalar | undefined): boolean {
  return typeof feedbackType === 'string' && feedbackType.trim().toLowerCase() === 'not-spam';
}

/** A soft (transient) bounce, the kind `bounce_policy` counts. */
export function isSoftBounce(r: SesEventRecord): boolean {
  return r.type === 'Bounce' && r.details.bounceType === 'Transient';
}

const MAX_SOURCES = 20;

/**
 * The newest value wins; on equal times (an Open and a Click in the same millisecond) the
 * greater value does, so the outcome never depends on the order records arrive in.
 */
export function newer(ch: AttrChange, cur: AttrChange | undefined): boolean {
  if (!cur) return true;
  if (ch.at !== cur.at) return ch.at > cur.at;
  return String(ch.v) > String(cur.v);
}

export function mergeContactPayload(into: ContactPayload, from: ContactPayload): ContactPayload {
  const attrs = { ...into.attrs };
  for (const [name, ch] of Object.entries(from.attrs)) {
    if (newer(ch, attrs[name])) attrs[name] = ch;
  }
  const out: ContactPayload = { attrs, blocklist: into.blocklist || from.blocklist };
  if (into.lists || from.lists) {
    const lists = { ...into.lists };
    for (const [name, ch] of Object.entries(from.lists ?? {})) if (newer(ch, lists[name])) lists[name] = ch;
    out.lists = lists;
  }
  if (into.rewrite || from.rewrite) out.rewrite = true;
  if (into.listIds || from.listIds) out.listIds = [...new Set([...(into.listIds ?? []), ...(from.listIds ?? [])])].sort((a, b) => a - b);
  return out;
}

export function mergeContactOps(a: ContactOp, b: ContactOp): ContactOp {
  return {
    ...a,
    priority: Math.min(a.priority, b.priority) as Priority,
    lane: a.lane === 'realtime' || b.lane === 'realtime' ? 'realtime' : 'backfill',
    payload: mergeContactPayload(a.payload, b.payload),
    sources: [...new Set([...a.sources, ...b.sources])].slice(-MAX_SOURCES),
  };
}

function set(attrs: Record<string, AttrChange>, name: SesAttributeName, value: unknown, at: number): void {
  const v = formatValue(SES_ATTRIBUTES[name], value);
  if (v === undefined) return;
  const ch = { v, at };
  if (newer(ch, attrs[name])) attrs[name] = ch;
}

function snake(k: string): string {
  return k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function eventProperties(r: SesEventRecord): Record<string, Scalar> {
  const p: Record<string, Scalar> = { event_key: r.key, message_id: r.messageId };
  if (r.subject !== undefined) p.subject = r.subject;
  if (r.from !== undefined) p.from = r.from;
  if (r.configurationSet !== undefined) p.configuration_set = r.configurationSet;
  for (const [k, v] of Object.entries(r.details)) {
    const key = snake(k);
    if (!(key in p)) p[key] = v;
  }
  return p;
}

/** What SES has told us about a contact, as attribute changes and the blocklist flag. */
export function contactChangesForEvent(r: SesEventRecord, softBounceBlocklistAfter = 0): ContactPayload {
  const at = Date.parse(r.timestamp);
  const attrs: Record<string, AttrChange> = {};
  let blocklist = false;
  set(attrs, 'SES_LAST_EVENT', r.type, at);
  set(attrs, 'SES_LAST_EVENT_AT', r.timestamp, at);
  const suppress = (reason: string) => {
    blocklist = true;
    set(attrs, 'SES_SUPPRESSED', true, at);
    set(attrs, 'SES_SUPPRESSION_REASON', reason, at);
    set(attrs, 'SES_SUPPRESSED_AT', r.timestamp, at);
  };
  switch (r.type) {
    case 'Delivery':
      set(attrs, 'SES_LAST_DELIVERED_AT', r.timestamp, at);
      break;
    case 'Open':
      set(attrs, 'SES_LAST_OPENED_AT', r.timestamp, at);
      break;
    case 'Click':
      set(attrs, 'SES_LAST_CLICKED_AT', r.timestamp, at);
      break;
    case 'Bounce':
      set(attrs, 'SES_BOUNCE_TYPE', r.details.bounceType, at);
      set(attrs, 'SES_BOUNCE_SUBTYPE', r.details.bounceSubType, at);
      set(attrs, 'SES_LAST_BOUNCED_AT', r.timestamp, at);
      if (r.details.bounceType === 'Permanent') suppress('BOUNCE');
      if (isSoftBounce(r) && r.softBounceCount !== undefined) {
        set(attrs, 'SES_SOFT_BOUNCE_COUNT', r.softBounceCount, at);
        if (softBounceBlocklistAfter > 0 && r.softBounceCount >= softBounceBlocklistAfter) suppress('SOFT_BOUNCE');
      }
      break;
    case 'Complaint':
      set(attrs, 'SES_COMPLAINT_TYPE', r.details.complaintFeedbackType ?? 'unknown', at);
      set(attrs, 'SES_COMPLAINED_AT', r.timestamp, at);
      // A recipient reporting the mail as not spam is no reason to stop mailing them.
      if (!isNotSpam(r.details.complaintFeedbackType)) suppress('COMPLAINT');
      break;
    case 'Subscription':
      if (typeof r.details.unsubscribeAll === 'boolean') {
        set(attrs, 'SES_UNSUBSCRIBED_ALL', r.details.unsubscribeAll, at);
        if (r.details.unsubscribeAll) blocklist = true;
      }
      if (r.topics) {
        const lists: Record<string, AttrChange> = {};
        for (const [topic, optIn] of Object.entries(r.topics.optIn)) lists[topicListName(r.topics.contactList, topic)] = { v: optIn, at };
        return { attrs, blocklist, lists };
      }
      break;
    default:
      break;
  }
  return { attrs, blocklist };
}

function isCritical(r: SesEventRecord): boolean {
  return r.type === 'Bounce' || r.type === 'Complaint';
}

/** What holds whatever the event policy: the blocklist and topic list membership (consent). */
function consentOnly(c: ContactPayload): ContactPayload {
  return c.lists ? { attrs: {}, blocklist: c.blocklist, lists: c.lists } : { attrs: {}, blocklist: c.blocklist };
}

function planEvent(r: SesEventRecord, policy: EventPolicy, lane: Lane, softAfter: number): PlannedOp[] {
  if (policy === 'ignore') {
    // The blocklist is the promise of the connector: it holds even when the type is ignored.
    const c = contactChangesForEvent(r, softAfter);
    return c.blocklist || c.lists ? [contactOp(r.email, consentOnly(c), c.blocklist ? PRIORITY.blocklist : PRIORITY.normal, lane, r.key)] : [];
  }
  const out: PlannedOp[] = [];
  if (policy === 'attributes' || policy === 'both') {
    const c = contactChangesForEvent(r, softAfter);
    out.push(contactOp(r.email, c, c.blocklist ? PRIORITY.blocklist : PRIORITY.normal, lane, r.key));
  } else {
    const c = contactChangesForEvent(r, softAfter);
    if (c.blocklist || c.lists) out.push(contactOp(r.email, consentOnly(c), c.blocklist ? PRIORITY.blocklist : PRIORITY.normal, lane, r.key));
  }
  if (policy === 'event' || policy === 'both') {
    out.push({
      kind: 'event',
      key: r.key,
      email: r.email,
      priority: isCritical(r) ? PRIORITY.critical : PRIORITY.normal,
      lane,
      sources: [r.key],
      payload: {
        event_name: EVENT_NAMES[r.type],
        event_date: new Date(r.timestamp).toISOString(),
        identifiers: { email_id: r.email },
        event_properties: eventProperties(r),
      },
    });
  }
  return out;
}

function contactOp(email: string, payload: ContactPayload, priority: Priority, lane: Lane, source: string): ContactOp {
  return { kind: 'contact', key: `contact:${email}`, email, priority, lane, sources: [source], payload };
}

function planSuppression(r: SesSuppressionRecord, lane: Lane): PlannedOp {
  const at = Date.parse(r.lastUpdated);
  const attrs: Record<string, AttrChange> = {};
  set(attrs, 'SES_SUPPRESSED', true, at);
  set(attrs, 'SES_SUPPRESSION_REASON', r.reason, at);
  set(attrs, 'SES_SUPPRESSED_AT', r.lastUpdated, at);
  return contactOp(r.email, { attrs, blocklist: true }, PRIORITY.blocklist, lane, r.key);
}

/** Maps SES contact AttributesData fields to Brevo attributes through `field_mapping`. */
function mappedAttributes(r: SesContactRecord, mapping: Record<string, string>, at: number): Record<string, AttrChange> {
  const out: Record<string, AttrChange> = {};
  for (const [from, to] of Object.entries(mapping)) {
    const path = from.startsWith('attributes.') ? from.slice('attributes.'.length) : from;
    const v = r.attributes[path];
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[to] = { v, at };
  }
  return out;
}

export function planContact(r: SesContactRecord, listIds: number[], mapping: Record<string, string>, lane: Lane): PlannedOp {
  const at = r.lastUpdated ? Date.parse(r.lastUpdated) : 0;
  const attrs = mappedAttributes(r, mapping, at);
  set(attrs, 'SES_UNSUBSCRIBED_ALL', r.unsubscribeAll, at);
  const payload: ContactPayload = { attrs, blocklist: r.unsubscribeAll };
  if (listIds.length > 0) payload.listIds = [...listIds].sort((a, b) => a - b);
  return contactOp(r.email, payload, r.unsubscribeAll ? PRIORITY.blocklist : PRIORITY.bulk, lane, r.key);
}

/**
 * `planBrevoOperations(records, config)` (library export): one contact write per contact,
 * coalesced, and one event per record whose type policy asks for events.
 * Contact records need list ids, which only the engine knows; here they map to no list.
 */
export function planBrevoOperations(
  records: readonly SesRecord[],
  config: PlanConfig | { connectors: { 'amazon-ses': PlanConfig } },
  lane: Lane = 'realtime',
): PlannedOp[] {
  const cfg: PlanConfig = 'connectors' in config ? config.connectors['amazon-ses'] : config;
  const contacts = new Map<string, ContactOp>();
  const events = new Map<string, EventOp>();
  const addContact = (op: ContactOp) => {
    const cur = contacts.get(op.email);
    contacts.set(op.email, cur ? mergeContactOps(cur, op) : op);
  };
  for (const r of records) {
    let ops: PlannedOp[];
    if (r.kind === 'ses_event') ops = planEvent(r, cfg.events[r.type], lane, cfg.bounce_policy?.soft_bounce_blocklist_after ?? 0);
    else if (r.kind === 'ses_suppression') ops = [planSuppression(r, lane)];
    else ops = [planContact(r, [], cfg.field_mapping ?? {}, lane)];
    for (const op of ops) {
      if (op.kind === 'contact') addContact(op);
      else if (!events.has(op.key)) events.set(op.key, op);
    }
  }
  return [...contacts.values(), ...events.values()];
}
