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
    if ((r.type === 'Bounce' && r.details.bounceType === 'Permanent') || r.type === 'Complaint' || (r.type === 'Subscription' && r.details.unsubscribeAll === true)) exp.blocklisted.add(r.email);
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
  blocklist: { expected: number; received: number };
  contacts: number;
  droppedValues: number;
  byName: Record<string, number>;
}

export function compareWithBrevo(exp: Expected, state: BrevoSimState, opts: { allowDuplicates?: boolean } = {}): Comparison {
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
  for (const e of blocked) if (!exp.blocklisted.has(e)) problems.push(`${e} is blocklisted in Brevo but SES gave no reason`);

  let wrongLast = 0;
  for (const [email, l] of exp.lastEvent) {
    const c = state.contacts[email];
    const got = c?.attributes.SES_LAST_EVENT;
    if (got !== l.type) {
      wrongLast++;
      if (wrongLast <= 5) problems.push(`${email}: SES_LAST_EVENT is ${JSON.stringify(got)}, expected ${l.type}`);
    }
  }
  if (wrongLast > 5) problems.push(`... and ${wrongLast - 5} more contacts with a wrong SES_LAST_EVENT`);
  if (state.dropped.length > 0) problems.push(`Brevo dropped ${state.dropped.length} attribute value(s), e.g. ${JSON.stringify(state.dropped[0])}`);
  return {
    ok: problems.length === 0,
    problems,
    events: { expected: exp.events.size, received: state.events.length, unique: seen.size, duplicates, missing, unexpected },
    blocklist: { expected: exp.blocklisted.size, received: blocked.size },
    contacts: contacts.length,
    droppedValues: state.dropped.length,
    byName,
  };
}
