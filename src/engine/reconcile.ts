// `reconcile`: reads Brevo back and compares it with what the connector holds (the ledger of
// what it wrote, the blocklist it set, the list memberships a backfill recorded), so "synced"
// is checked instead of assumed. With `fix`, the corrections are queued in the normal outbox
// (contact operations under the usual `contact:<email>` key, delivered by the workers under
// the governor) as `rewrite` payloads: values the ledger says Brevo holds are sent again.
import type { BrevoClient, BrevoContact } from '../brevo/client.js';
import type { LedgerEntry, Store } from '../store/port.js';
import { PRIORITY, type AttrChange, type ContactOp } from '../core/plan.js';
import { SES_ATTRIBUTES, type SesAttributeName } from '../core/brevo-model.js';
import { listLedgerKey } from './contact-body.js';

export const DRIFT_KINDS = ['blocklist_missing', 'attribute_older', 'attribute_different', 'contact_missing', 'list_missing', 'list_extra'] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

export interface Drift {
  kind: DriftKind;
  email: string;
  attribute?: string;
  list?: string;
  /** What the connector wrote (the value the ledger determines). */
  ours?: string | number | boolean;
  /** What Brevo holds (null: nothing). */
  brevo?: string | number | boolean | null;
}

export interface ReconcileReport {
  /** Contacts read from Brevo, ledger entries compared, lists whose members were compared. */
  checked: { brevoContacts: number; ledger: number; lists: number };
  /** Only contacts Brevo reports modified since then were compared (ISO time), when set. */
  since?: string;
  drift: Record<DriftKind, { count: number; samples: Drift[] }>;
  total: number;
  brevoCalls: number;
  /** With fix: contact operations queued. */
  queued?: number;
}

export interface ReconcileOptions {
  fix?: boolean;
  /** Samples kept per kind. Default 10. */
  samples?: number;
  /** Compare only contacts Brevo reports modified at or after this time (ms); list memberships are always read whole. */
  since?: number;
  signal?: AbortSignal;
  now?: () => number;
}

export interface ReconcileDeps {
  store: Store;
  client: BrevoClient;
  /** The connector's Brevo lists by name. */
  lists: { known(): Promise<Record<string, number>> };
}

/** Brevo's largest pages: GET /contacts takes 1000, a list's contacts 500. */
export const CONTACTS_PAGE = 1000;
export const LIST_MEMBERS_PAGE = 500;
const LEDGER_PAGE = 1000;

/** A date attribute's value is the day of its event time, the time the ledger records with it. */
function expectedValue(name: string, at: number): string | boolean | undefined {
  const type = SES_ATTRIBUTES[name as SesAttributeName];
  if (type === 'date') return new Date(at).toISOString().slice(0, 10);
  // SES_SUPPRESSED is only ever written true; other values (text, counts) are not kept by the ledger.
  if (name === 'SES_SUPPRESSED') return true;
  return undefined;
}

function scalar(v: unknown): string | number | boolean | null {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : null;
}

/**
 * Compares one ledger entry with the contact Brevo holds. Attributes are checked where the
 * ledger determines the value: the SES_* dates (the day of the recorded event time) and
 * SES_SUPPRESSED (only ever true).
 */
export function compareContact(entry: LedgerEntry, b: BrevoContact | undefined): Drift[] {
  const out: Drift[] = [];
  if (!b) {
    // Only a contact the connector wrote something checkable to must exist.
    const checkable = entry.blocklisted || Object.entries(entry.attrs).some(([n, at]) => expectedValue(n, at) !== undefined);
    return checkable ? [{ kind: 'contact_missing', email: entry.email }] : [];
  }
  if (entry.blocklisted && b.emailBlacklisted !== true)
    out.push({ kind: 'blocklist_missing', email: entry.email, ours: true, brevo: b.emailBlacklisted ?? null });
  for (const [name, at] of Object.entries(entry.attrs)) {
    const ours = expectedValue(name, at);
    if (ours === undefined) continue;
    const held = scalar(b.attributes?.[name]);
    if (typeof ours === 'string') {
      const day = typeof held === 'string' ? held.slice(0, 10) : null;
      if (day === ours) continue;
      out.push({ kind: day === null || day < ours ? 'attribute_older' : 'attribute_different', email: entry.email, attribute: name, ours, brevo: held });
    } else if (held !== ours) out.push({ kind: 'attribute_different', email: entry.email, attribute: name, ours, brevo: held });
  }
  return out;
}

/** The correction of one contact's drift: what the ledger says Brevo holds, written again. */
export function correction(
  entry: LedgerEntry | undefined,
  email: string,
  drifts: Drift[],
  listIds: number[],
  leaves: Record<string, AttrChange> = {},
): ContactOp {
  const attrs: Record<string, AttrChange> = {};
  let blocklist = false;
  const resendAll = drifts.some((d) => d.kind === 'contact_missing');
  if (entry && (resendAll || drifts.some((d) => d.kind === 'blocklist_missing'))) blocklist = entry.blocklisted;
  for (const d of drifts) if (d.attribute && d.ours !== undefined && entry) attrs[d.attribute] = { v: d.ours, at: entry.attrs[d.attribute]! };
  if (resendAll && entry) {
    for (const [name, at] of Object.entries(entry.attrs)) {
      const v = expectedValue(name, at);
      if (v !== undefined) attrs[name] = { v, at };
    }
  }
  const payload: ContactOp['payload'] = { attrs, blocklist, rewrite: true };
  if (listIds.length > 0) payload.listIds = [...new Set(listIds)].sort((a, b) => a - b);
  if (Object.keys(leaves).length > 0) payload.lists = leaves;
  return {
    kind: 'contact',
    key: `contact:${email}`,
    email,
    priority: blocklist ? PRIORITY.blocklist : PRIORITY.bulk,
    lane: 'backfill',
    sources: [`reconcile:${email}`],
    payload,
  };
}

export async function runReconcile(deps: ReconcileDeps, opts: ReconcileOptions = {}): Promise<ReconcileReport> {
  const { store, client } = deps;
  const now = opts.now ?? Date.now;
  const maxSamples = opts.samples ?? 10;
  const report: ReconcileReport = {
    checked: { brevoContacts: 0, ledger: 0, lists: 0 },
    drift: Object.fromEntries(DRIFT_KINDS.map((k) => [k, { count: 0, samples: [] }])) as unknown as ReconcileReport['drift'],
    total: 0,
    brevoCalls: 0,
  };
  const since = opts.since !== undefined ? new Date(opts.since).toISOString() : undefined;
  if (since) report.since = since;
  const byEmail = new Map<string, Drift[]>();
  const add = (d: Drift) => {
    const k = report.drift[d.kind];
    k.count++;
    report.total++;
    if (k.samples.length < maxSamples) k.samples.push(d);
    byEmail.set(d.email, [...(byEmail.get(d.email) ?? []), d]);
  };

  // 1. Brevo's contacts (those modified since `since`, when set), page by page.
  const brevo = new Map<string, BrevoContact>();
  for (let offset = 0; ; offset += CONTACTS_PAGE) {
    const { data } = await client.listContacts({ limit: CONTACTS_PAGE, offset, ...(since ? { modifiedSince: since } : {}) }, opts.signal);
    report.brevoCalls++;
    const page = data?.contacts ?? [];
    for (const c of page) brevo.set(c.email.toLowerCase(), c);
    if (page.length < CONTACTS_PAGE) break;
  }
  report.checked.brevoContacts = brevo.size;

  // 2. The ledger against them.
  const ledger = new Map<string, LedgerEntry>();
  for (let after: string | undefined; ;) {
    const page = await store.readLedger({ ...(after !== undefined ? { after } : {}), limit: LEDGER_PAGE });
    for (const e of page) {
      const b = brevo.get(e.email.toLowerCase());
      if (since && !b) continue; // not modified since: not compared
      report.checked.ledger++;
      const drifts = compareContact(e, b);
      if (drifts.length > 0) ledger.set(e.email, e);
      for (const d of drifts) add(d);
    }
    if (page.length < LEDGER_PAGE) break;
    after = page[page.length - 1]!.email;
  }

  // 3. List memberships a backfill recorded (and removed) against each list's members in Brevo.
  const joins = new Map<string, number[]>();
  const leaves = new Map<string, Record<string, AttrChange>>();
  const known = await deps.lists.known();
  for (const [name, listId] of Object.entries(known).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const first = await store.readListMembers({ list: name, limit: 1 });
    const removedFirst = await store.readRemovedListMembers({ list: name, limit: 1 });
    if (first.length === 0 && removedFirst.length === 0) continue;
    report.checked.lists++;
    const inBrevo = new Set<string>();
    for (let offset = 0; ; offset += LIST_MEMBERS_PAGE) {
      const { data } = await client.listMembers(listId, { limit: LIST_MEMBERS_PAGE, offset }, opts.signal);
      report.brevoCalls++;
      const page = data?.contacts ?? [];
      for (const c of page) inBrevo.add(c.email.toLowerCase());
      if (page.length < LIST_MEMBERS_PAGE) break;
    }
    for (let after: string | undefined; ;) {
      const page = await store.readListMembers({ list: name, ...(after !== undefined ? { after } : {}), limit: LEDGER_PAGE });
      for (const email of page) {
        if (inBrevo.has(email.toLowerCase())) continue;
        add({ kind: 'list_missing', email, list: name });
        joins.set(email, [...(joins.get(email) ?? []), listId]);
      }
      if (page.length < LEDGER_PAGE) break;
      after = page[page.length - 1]!;
    }
    // Removed by a backfill and a member again: extra, unless a newer write of the connector
    // (a later opt-in) put it back, which the ledger's time of that list tells.
    for (let after: string | undefined; ;) {
      const page = await store.readRemovedListMembers({ list: name, ...(after !== undefined ? { after } : {}), limit: LEDGER_PAGE });
      const present = page.filter((r) => inBrevo.has(r.email.toLowerCase()));
      const held = present.length > 0 ? await store.getLedger(present.map((r) => r.email)) : new Map<string, LedgerEntry>();
      for (const r of present) {
        const at = held.get(r.email)?.attrs[listLedgerKey(name)];
        if (at !== undefined && at > r.at) continue;
        add({ kind: 'list_extra', email: r.email, list: name });
        leaves.set(r.email, { ...leaves.get(r.email), [name]: { v: false, at: at ?? r.at } });
      }
      if (page.length < LEDGER_PAGE) break;
      after = page[page.length - 1]!.email;
    }
  }

  if (opts.fix) {
    const missing = [...byEmail.keys()].filter((e) => !ledger.has(e));
    const more = missing.length > 0 ? await store.getLedger(missing) : new Map<string, LedgerEntry>();
    const ops = [...byEmail].map(([email, drifts]) =>
      correction(ledger.get(email) ?? more.get(email), email, drifts, joins.get(email) ?? [], leaves.get(email)),
    );
    if (ops.length > 0) await store.enqueue(ops, now());
    report.queued = ops.length;
  }
  return report;
}
