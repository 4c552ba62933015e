import { describe, expect, it } from 'vitest';
import type { Store, StoreStats } from '../store/port.js';
import { collectStatus } from './status.js';

/** The few store reads a status report makes, over fixed statistics. */
function storeWith(ops: StoreStats['ops']): Store {
  const store = {
    kind: 'postgres',
    stats: async () => ({ inbox: {}, ops }),
    listCursors: async () => [],
    getState: async () => undefined,
    waitingErrors: async () => ({ count: 0, newest: null }),
  };
  return store as unknown as Store;
}

const row = (kind: 'contact' | 'event', state: StoreStats['ops'][number]['state'], priority: number, lane: 'realtime' | 'backfill' = 'realtime') => ({
  kind,
  lane,
  state,
  priority,
  count: 1,
  oldestCreatedAt: null,
});

describe('collectStatus', () => {
  it('sorts queue rows whatever order the store answers in: open work first, settled work last', async () => {
    // As PostgreSQL may answer a GROUP BY: in no particular order.
    const s = await collectStatus(
      storeWith([
        row('event', 'done', 2),
        row('contact', 'superseded', 2),
        row('event', 'pending', 2),
        row('contact', 'done', 0),
        row('event', 'dead', 1),
        row('contact', 'pending', 3, 'backfill'),
        row('contact', 'pending', 0),
        row('event', 'inflight', 2),
        row('contact', 'discarded', 2),
        row('contact', 'awaiting', 3, 'backfill'),
      ]),
      undefined,
      undefined,
      Date.UTC(2026, 0, 1),
    );
    expect(s.queues.map((q) => `${q.state} ${q.kind}/${q.lane}/${q.class}`)).toEqual([
      'inflight event/realtime/normal',
      'pending contact/backfill/bulk',
      'pending contact/realtime/blocklist',
      'pending event/realtime/normal',
      'awaiting contact/backfill/bulk',
      'dead event/realtime/critical',
      'done contact/realtime/blocklist',
      'done event/realtime/normal',
      'superseded contact/realtime/normal',
      'discarded contact/realtime/normal',
    ]);
  });
});
