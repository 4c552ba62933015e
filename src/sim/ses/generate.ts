import type { SesState } from './model.js';
import { prefCode } from './model.js';

export interface SesSimGenerateOptions {
  lists: number;
  topicsPerList: number;
  /** Total contact rows, spread round-robin over the lists: contact i is `user{i}@example.com` in list `list-{i % lists + 1}`. */
  contacts: number;
  suppressions: number;
  /** Same seed (and same `now`) gives the same data. */
  seed: number;
  /** Share of (contact, topic) pairs with an explicit OPT_OUT. Default 0.1. */
  optOutRate?: number;
  /** Share of (contact, topic) pairs with an explicit OPT_IN. Default 0.3; the rest fall back to the topic default. */
  optInRate?: number;
  /** Default 0.02. */
  unsubscribeAllRate?: number;
  /** Share of suppressions with reason COMPLAINT. Default 0.1. */
  complaintRate?: number;
  /** Contacts' LastUpdatedTimestamp spreads over this many days before now. Default 365. */
  contactDays?: number;
  /** Suppressions' LastUpdateTime spreads over this many days before now. Default 90. */
  suppressionDays?: number;
}

const DAY_MS = 86_400_000;

export { prng } from '../prng.js';
import { prng } from '../prng.js';

export function generate(state: SesState, now: number, opts: SesSimGenerateOptions): void {
  for (const [key, n] of [
    ['lists', opts.lists],
    ['topicsPerList', opts.topicsPerList],
    ['contacts', opts.contacts],
    ['suppressions', opts.suppressions],
  ] as const) {
    if (!Number.isInteger(n) || n < 0) throw new Error(`ses-sim generate: ${key} must be a non-negative integer, got ${n}`);
  }
  if (opts.contacts > 0 && opts.lists === 0) throw new Error('ses-sim generate: contacts need at least one list (lists >= 1)');
  const rand = prng(opts.seed);
  const optOut = opts.optOutRate ?? 0.1;
  const optIn = opts.optInRate ?? 0.3;
  const unsubRate = opts.unsubscribeAllRate ?? 0.02;
  const complaintRate = opts.complaintRate ?? 0.1;
  const contactSpan = (opts.contactDays ?? 365) * DAY_MS;
  const suppressionSpan = (opts.suppressionDays ?? 90) * DAY_MS;

  const topics = Array.from({ length: opts.topicsPerList }, (_, k) => ({
    name: `topic-${k + 1}`,
    displayName: `Topic ${k + 1}`,
    description: `Generated topic ${k + 1}`,
    // Alternate defaults so both the OPT_IN and the OPT_OUT fallback paths get exercised.
    defaultSubscriptionStatus: k % 2 === 0 ? ('OPT_IN' as const) : ('OPT_OUT' as const),
  }));
  const lists = Array.from({ length: opts.lists }, (_, n) =>
    state.upsertList({ name: `list-${n + 1}`, description: `Generated contact list ${n + 1}`, topics }),
  );
  const topicIdx = lists.map((l) => topics.map((t) => l.topicIdx(t.name) ?? 0));
  const inCode = prefCode('OPT_IN');
  const outCode = prefCode('OPT_OUT');

  for (let i = 0; i < opts.contacts; i++) {
    const li = i % opts.lists;
    const list = lists[li];
    const idx = topicIdx[li];
    if (!list || !idx) continue;
    const t = now - Math.floor(rand() * contactSpan);
    const row = list.ensure(`user${i}@example.com`, t);
    for (const k of idx) {
      const r = rand();
      list.setPref(k, row, r < optOut ? outCode : r < optOut + optIn ? inCode : 0);
    }
    list.setUnsubscribeAll(row, rand() < unsubRate);
    list.setLastUpdated(row, t);
    list.markGeneratedAttributes(row);
  }

  for (let i = 0; i < opts.suppressions; i++) {
    // Every other suppression hits a generated contact, as real suppression lists overlap the audience.
    const email = i % 2 === 0 && i < opts.contacts ? `user${i}@example.com` : `bounced-${opts.seed}-${i}@example.net`;
    const reason = rand() < complaintRate ? 'COMPLAINT' : 'BOUNCE';
    state.suppressions.upsert(email, reason, now - Math.floor(rand() * suppressionSpan));
  }
}
