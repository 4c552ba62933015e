// An independent statement of what Brevo must hold after a set of SES events, written
// straight from CONTRACT.md section 4 (not from the planner), and a comparison against the
// Brevo simulator's state. Used by `demo`, end-to-end tests and benchmarks.
import type { SesEventRecord, SesEventType } from '../core/types.js';
import type { EventPolicy } from '../config/schema.js';
import type { BrevoSimState } from './brevo/index.js';

const EVENT_NAME: Record<SesEventType, string> = {
  Send: 'ses_email_sent',
  Delivery: 'ses_email_delivered',
  Bounce: 'ses_email_bounced',
  Complaint: 'ses_email_complained',
  Reject: 'ses_email_rejected',
  Open: 'ses_email_opened',
  Click: 'ses_email_clicked',
  RenderingFailure: 'ses_email_rendering_failed',
  DeliveryDelay: 'ses_email_delivery_delayed',
  Subscription: 'ses_subscription_changed',
};

export interface Expected {
  /** event_key -> event name */
  events: Map<string, string>;
  blocklisted: Set<string>;
  /** email -> eventType of its newest event (when attributes are enabled for it) */
  lastEvent: Map<string, { type: string; at: number }>;
}

export function expectedBrevoState(records: SesEventRecord[], policies: Record<SesEventType, EventPolicy>): Expected {
  const exp: Expected = { events: new Map(), blocklisted: new Set(), lastEvent: new Map() };
  for (const r of records) {
    const p = policies[r.type];
    if (p === 'event' || p === 'both') exp.events.set(r.key, EVENT_NAME[r.type]);
    if (
      (r.type === 'Bounce' && r.details.bounceType === 'Permanent') ||
      (r.type === 'Complaint' && r.details.complaintFeedbackType !== 'not-spam') ||
      (r.type === 'Subscription' && r.details.unsubscribeAll === true)
    )
      exp.blocklisted.add(r.email);
    if (p === 'attributes' || p === 'both') {
      const at = Date.parse(r.timestamp);
      const cur = exp.lastEvent.get(r.email);
      if (!cur || at > cur.at) exp.lastEvent.set(r.email, { type: r.type, at });
    }
  }
  return exp;
}

export interface Comparison {
  ok: boolean;
  problems: string[];
  events: { expected: number; received: number; unique: number; duplicates: number; missing: number; unexpected: number };
  /** `alsoAllowed`: blocklisted for a reason outside the events compared (`alsoBlocklisted`, e.g. backfilled suppressions). */
  blocklist: { expected: number; received: number; alsoAllowed: number };
  contacts: number;
  droppedValues: number;
  byName: Record<string, number>;
}

export interface CompareOptions {
  allowDuplicates?: boolean;
  alsoBlocklisted?: Set<string>;
  /** Also check SES_LAST_EVENT_AT: the day (`YYYY-MM-DD`, a Brevo date) of the newest event. */
  lastEventAt?: boolean;
}

export function compareWithBrevo(exp: Expected, state: BrevoSimState, opts: CompareOptions = {}): Comparison {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const byName: Record<string, number> = {};
  for (const e of state.events) {
    const key = String(e.event_properties?.event_key ?? '');
    seen.set(key, (seen.get(key) ?? 0) + 1);
    byName[e.event_name] = (byName[e.event_name] ?? 0) + 1;
    if (exp.events.has(key) && exp.events.get(key) !== e.event_name) problems.push(`event ${key} arrived as ${e.event_name}, expected ${exp.events.get(key)}`);
  }
  let missing = 0;
  for (const k of exp.events.keys()) if (!seen.has(k)) missing++;
  let duplicates = 0;
  let unexpected = 0;
  for (const [k, n] of seen) {
    if (n > 1) duplicates += n - 1;
    if (!exp.events.has(k)) unexpected++;
  }
  if (missing > 0) problems.push(`${missing} expected event(s) missing in Brevo`);
  if (unexpected > 0) problems.push(`${unexpected} event key(s) in Brevo that were never published`);
  if (duplicates > 0 && !opts.allowDuplicates) problems.push(`${duplicates} duplicate event(s) in Brevo`);

  const contacts = Object.values(state.contacts);
  const blocked = new Set(contacts.filter((c) => c.emailBlacklisted).map((c) => c.email.toLowerCase()));
  for (const e of exp.blocklisted) if (!blocked.has(e)) problems.push(`${e} should be blocklisted in Brevo but is not`);
  for (const e of blocked) if (!exp.blocklisted.has(e) && !opts.alsoBlocklisted?.has(e)) problems.push(`${e} is blocklisted in Brevo but SES gave no reason`);

  let wrongLast = 0;
  for (const [email, l] of exp.lastEvent) {
    const c = state.contacts[email];
    const got = c?.attributes.SES_LAST_EVENT;
    const day = new Date(l.at).toISOString().slice(0, 10);
    const gotAt = c?.attributes.SES_LAST_EVENT_AT;
    if (got !== l.type || (opts.lastEventAt && gotAt !== day)) {
      wrongLast++;
      if (wrongLast <= 5)
        problems.push(
          got !== l.type
            ? `${email}: SES_LAST_EVENT is ${JSON.stringify(got)}, expected ${l.type}`
            : `${email}: SES_LAST_EVENT_AT is ${JSON.stringify(gotAt)}, expected ${day}`,
        );
    }
  }
  if (wrongLast > 5) problems.push(`... and ${wrongLast - 5} more contacts with a wrong SES_LAST_EVENT${opts.lastEventAt ? ' or SES_LAST_EVENT_AT' : ''}`);
  if (state.dropped.length > 0) problems.push(`Brevo dropped ${state.dropped.length} attribute value(s), e.g. ${JSON.stringify(state.dropped[0])}`);
  return {
    ok: problems.length === 0,
    problems,
    events: { expected: exp.events.size, received: state.events.length, unique: seen.size, duplicates, missing, unexpected },
    blocklist: {
      expected: exp.blocklisted.size,
      received: blocked.size,
      alsoAllowed: [...blocked].filter((e) => !exp.blocklisted.has(e) && opts.alsoBlocklisted?.has(e)).length,
    },
    contacts: contacts.length,
    droppedValues: state.dropped.length,
    byName,
  };
}

/** What Brevo must hold after a backfill, from the SES simulator's data (CONTRACT.md section 4). */
export interface SesDataForOracle {
  contactLists: Array<{ name: string; topics: Array<{ name: string; defaultSubscriptionStatus: 'OPT_IN' | 'OPT_OUT' }> }>;
  contacts: Array<{ list: string; email: string; topicPreferences: Record<string, 'OPT_IN' | 'OPT_OUT'>; unsubscribeAll: boolean }>;
  suppressions: Array<{ email: string; reason: string }>;
}

export function compareBackfill(
  ses: SesDataForOracle,
  state: BrevoSimState,
  folder = 'Amazon SES',
  alsoBlocklisted: Set<string> = new Set(),
): { ok: boolean; problems: string[]; checked: { contacts: number; memberships: number; blocklisted: number } } {
  const problems: string[] = [];
  const add = (p: string) => {
    if (problems.length < 25) problems.push(p);
  };
  const f = state.folders.filter((x) => x.name === folder);
  if (f.length !== 1) add(`expected exactly one Brevo folder named ${folder}, found ${f.length}`);
  const listsByName = new Map<string, number[]>();
  for (const l of state.lists) if (f.some((x) => x.id === l.folderId)) listsByName.set(l.name, [...(listsByName.get(l.name) ?? []), l.id]);
  for (const [n, ids] of listsByName) if (ids.length > 1) add(`list ${n} exists ${ids.length} times`);
  const expectedMembers = new Map<string, Set<string>>();
  const member = (list: string, email: string) => {
    const s = expectedMembers.get(list) ?? new Set<string>();
    s.add(email);
    expectedMembers.set(list, s);
  };
  const blocklisted = new Set<string>();
  const unsubAll = new Map<string, boolean>();
  for (const c of ses.contacts) {
    const email = c.email.trim().toLowerCase();
    const list = ses.contactLists.find((l) => l.name === c.list);
    member(c.list, email);
    if (c.unsubscribeAll) blocklisted.add(email);
    unsubAll.set(email, (unsubAll.get(email) ?? false) || c.unsubscribeAll);
    if (!list || c.unsubscribeAll) continue;
    for (const t of list.topics) if ((c.topicPreferences[t.name] ?? t.defaultSubscriptionStatus) === 'OPT_IN') member(`${c.list} / ${t.name}`, email);
  }
  for (const s of ses.suppressions) blocklisted.add(s.email.trim().toLowerCase());
  for (const l of ses.contactLists) {
    if (!listsByName.has(l.name)) add(`Brevo has no list ${l.name}`);
    for (const t of l.topics) if (!listsByName.has(`${l.name} / ${t.name}`)) add(`Brevo has no list ${l.name} / ${t.name}`);
  }
  let memberships = 0;
  const byId = new Map<number, string>();
  for (const [n, ids] of listsByName) for (const id of ids) byId.set(id, n);
  const actualMembers = new Map<string, Set<string>>();
  for (const c of Object.values(state.contacts)) {
    for (const id of c.listIds) {
      const n = byId.get(id);
      if (!n) continue;
      const s = actualMembers.get(n) ?? new Set<string>();
      s.add(c.email.toLowerCase());
      actualMembers.set(n, s);
    }
  }
  for (const [list, emails] of expectedMembers) {
    const got = actualMembers.get(list) ?? new Set<string>();
    for (const e of emails) if (!got.has(e)) add(`${e} missing from list ${list}`);
    for (const e of got) if (!emails.has(e)) add(`${e} is in list ${list} but should not be`);
    memberships += emails.size;
  }
  const contacts = Object.values(state.contacts);
  for (const c of contacts) {
    const e = c.email.toLowerCase();
    if (c.emailBlacklisted && !blocklisted.has(e) && !alsoBlocklisted.has(e)) add(`${e} is blocklisted but SES has no reason`);
  }
  for (const e of blocklisted) if (!state.contacts[e]?.emailBlacklisted) add(`${e} should be blocklisted`);
  for (const s of ses.suppressions) {
    const c = state.contacts[s.email.toLowerCase()];
    if (!c || alsoBlocklisted.has(s.email.toLowerCase())) continue;
    if (c.attributes.SES_SUPPRESSED !== true) add(`${s.email}: SES_SUPPRESSED is ${JSON.stringify(c.attributes.SES_SUPPRESSED)}`);
    if (c.attributes.SES_SUPPRESSION_REASON !== s.reason)
      add(`${s.email}: SES_SUPPRESSION_REASON is ${JSON.stringify(c.attributes.SES_SUPPRESSION_REASON)}, expected ${s.reason}`);
  }
  for (const [e, v] of unsubAll) {
    const got = state.contacts[e]?.attributes.SES_UNSUBSCRIBED_ALL;
    if (got !== v) add(`${e}: SES_UNSUBSCRIBED_ALL is ${JSON.stringify(got)}, expected ${v}`);
  }
  if (state.dropped.length > 0) add(`Brevo dropped ${state.dropped.length} attribute value(s), e.g. ${JSON.stringify(state.dropped[0])}`);
  return { ok: problems.length === 0, problems, checked: { contacts: unsubAll.size, memberships, blocklisted: blocklisted.size } };
}
