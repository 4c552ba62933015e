// The Brevo contact write a contact operation stands for, given what Brevo already holds
// (the ledger): only values newer than Brevo's are sent, and a blocklisting only once.
import type { ContactUpsert } from '../brevo/client.js';
import type { ContactPayload } from '../core/plan.js';
import type { LedgerEntry, OpRow } from '../store/port.js';

export function contactBody(email: string, p: ContactPayload, ledger: LedgerEntry | undefined): ContactUpsert {
  const attributes: NonNullable<ContactUpsert['attributes']> = {};
  for (const [name, ch] of Object.entries(p.attrs)) {
    const held = ledger?.attrs[name];
    if (held === undefined || ch.at > held) attributes[name] = ch.v;
  }
  const body: ContactUpsert = { email };
  if (Object.keys(attributes).length > 0) body.attributes = attributes;
  if (p.blocklist && !ledger?.blocklisted) body.emailBlacklisted = true;
  if (p.listIds && p.listIds.length > 0) body.listIds = p.listIds;
  return body;
}

/** Brevo already holds newer values for everything in the body: no call is needed. */
export function nothingToSend(body: ContactUpsert): boolean {
  return !body.attributes && !body.emailBlacklisted && !body.listIds;
}

/** What Brevo holds for the contact once the operation is written. */
export function ledgerOf(op: OpRow): LedgerEntry {
  const p = op.payload as ContactPayload;
  return { email: op.email, attrs: Object.fromEntries(Object.entries(p.attrs).map(([k, c]) => [k, c.at])), blocklisted: p.blocklist };
}
