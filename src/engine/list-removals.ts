// Topic opt-outs: contacts leave Brevo lists through POST /contacts/lists/{id}/contacts/remove,
// grouped per list, at most 150 emails a call (Brevo's limit), after their contact writes.
// Removal never touches the blocklist.
import type { BrevoClient } from '../brevo/client.js';
import type { OpRow } from '../store/port.js';
import { attemptCall, type CallContext, type Outcome } from './outcome.js';

export const REMOVE_MAX_EMAILS = 150;

/**
 * For each operation whose write succeeded (`done` or `accepted`) and that leaves lists,
 * removes it from them; a failed removal call replaces the outcome of every operation in it.
 */
export async function removeFromLists(
  client: BrevoClient,
  call: CallContext,
  ops: OpRow[],
  removals: Array<{ remove: number[] }>,
  outcomes: Outcome[],
  signal?: AbortSignal,
): Promise<void> {
  const byList = new Map<number, number[]>();
  ops.forEach((_, i) => {
    const o = outcomes[i];
    if (!o || (o.kind !== 'done' && o.kind !== 'accepted')) return;
    for (const id of removals[i]?.remove ?? []) byList.set(id, [...(byList.get(id) ?? []), i]);
  });
  for (const [listId, idx] of byList) {
    for (let from = 0; from < idx.length; from += REMOVE_MAX_EMAILS) {
      const chunk = idx.slice(from, from + REMOVE_MAX_EMAILS);
      const emails = [...new Set(chunk.map((i) => ops[i]!.email))];
      const o = await attemptCall(call, 'contacts_lists_remove', () => client.removeFromList(listId, emails, signal));
      if (o.kind !== 'done') for (const i of chunk) outcomes[i] = o;
    }
  }
}
