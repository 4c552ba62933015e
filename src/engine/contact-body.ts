// The Brevo contact write a contact operation stands for, given what Brevo already holds
// (the ledger): only values newer than Brevo's are sent, and a blocklisting only once.
import type { ContactUpsert } from '../brevo/client.js';
import type { ContactPayload } from '../core/plan.js';
import type { LedgerEntry, OpRow } from '../store/port.js';

/** Ledger key under which the time of a list membership change is kept (next to the attributes'). */
export function listLedgerKey(name: string): string {
  return `list:${name}`;
}

/** Topic list changes newer than what Brevo holds (the ledger): lists to join and to leave, by name. */
export function listChanges(p: ContactPayload, ledger: LedgerEntry | undefined): { add: string[]; remove: string[] } {
  const add: string[] = [];
  const remove: string[] = [];
  for (const [name, ch] of Object.entries(p.lists ?? {})) {
    const held = ledger?.attrs[listLedgerKey(name)];
    if (held !== undefined && (p.rewrite ? ch.at < held : ch.at <= held)) continue;
    (ch.v === true ? add : remove).push(name);
  }
  return { add, remove };
}

/** Brevo lists by name: `ensure` finds or creates one (to join it), `find` never creates (to leave it). */
export interface ListResolver {
  ensure(name: string): Promise<number>;
  find(name: string): Promise<number | undefined>;
}

/** Per operation, the list ids to join and to leave (a list that does not exist has no one to remove). */
export async function resolveListChanges(
  ops: OpRow[],
  ledger: Map<string, LedgerEntry>,
  listId: ListResolver | undefined,
): Promise<Array<{ add: number[]; remove: number[] }>> {
  const out: Array<{ add: number[]; remove: number[] }> = [];
  for (const op of ops) {
    const ch = listChanges(op.payload as ContactPayload, ledger.get(op.email));
    if (!listId || (ch.add.length === 0 && ch.remove.length === 0)) {
      out.push({ add: [], remove: [] });
      continue;
    }
    const add: number[] = [];
    const remove: number[] = [];
    for (const n of ch.add) add.push(await listId.ensure(n));
    for (const n of ch.remove) {
      const id = await listId.find(n);
      if (id !== undefined) remove.push(id);
    }
    out.push({ add, remove });
  }
  return out;
}

export function contactBody(email: string, p: ContactPayload, ledger: LedgerEntry | undefined, joinIds: number[] = []): ContactUpsert {
  const attributes: NonNullable<ContactUpsert['attributes']> = {};
  for (const [name, ch] of Object.entries(p.attrs)) {
    const held = ledger?.attrs[name];
    // A rewrite (reconcile --fix) sends again a value as old as the one the ledger records.
    if (held === undefined || ch.at > held || (p.rewrite && ch.at === held)) attributes[name] = ch.v;
  }
  const body: ContactUpsert = { email };
  if (Object.keys(attributes).length > 0) body.attributes = attributes;
  if (p.blocklist && (!ledger?.blocklisted || p.rewrite)) body.emailBlacklisted = true;
  const listIds = [...new Set([...(p.listIds ?? []), ...joinIds])].sort((a, b) => a - b);
  if (listIds.length > 0) body.listIds = listIds;
  return body;
}

/** Brevo already holds newer values for everything in the body: no call is needed. */
export function nothingToSend(body: ContactUpsert): boolean {
  return !body.attributes && !body.emailBlacklisted && !body.listIds;
}

/** What Brevo holds for the contact once the operation is written. */
export function ledgerOf(op: OpRow): LedgerEntry {
  const p = op.payload as ContactPayload;
  const attrs = Object.fromEntries(Object.entries(p.attrs).map(([k, c]) => [k, c.at]));
  for (const [name, c] of Object.entries(p.lists ?? {})) attrs[listLedgerKey(name)] = c.at;
  return { email: op.email, attrs, blocklisted: p.blocklist };
}
