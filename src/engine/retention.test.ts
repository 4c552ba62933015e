// InboxRetention (issue 11, finding 8): a pass in bounded steps with fixed cut-offs, saved for status.
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SqliteStore } from '../store/sqlite/index.js';
import { InboxRetention, loadRetentionPass } from './retention.js';

const DAY = 86_400_000;
const T0 = 1_700_000_000_000;

describe('InboxRetention', () => {
  let store: SqliteStore;
  afterEach(async () => {
    await store.close();
  });

  /** n closed envelopes received at T0 + i minutes, and one never planned, at T0. */
  async function inbox(n: number): Promise<void> {
    store = new SqliteStore(':memory:');
    await store.migrate();
    await store.insertInbox(
      Array.from({ length: n }, (_, i) => ({ messageId: `m${i}`, source: 'sns' as const, receivedAt: T0 + i * 60_000, body: `{"i":${i}}` })),
    );
    const rows = await store.claimInbox(n, 'w', 60_000, T0);
    await store.commitInbox(
      rows.map((r) => ({ id: r.id, state: 'done' as const })),
      [],
      T0,
    );
    await store.insertInbox([{ messageId: 'pending', source: 'sns', receivedAt: T0, body: '{}' }]);
  }

  it('prunes in steps of at most `batch`, keeps what is not planned, and saves the pass once it is over', async () => {
    await inbox(5);
    // Cut-offs at T0 + 2.5 min: m0, m1 and m2 are past both.
    let now = T0 + DAY + 150_000;
    const r = new InboxRetention({
      store,
      log: pino({ level: 'silent' }),
      policy: { bodiesMs: DAY, dedupeKeysMs: DAY, everyMs: 60_000 },
      batch: 2,
      now: () => now,
    });
    // Bodies go first (2 a step), rows follow once their body is gone (2 a step).
    expect(await r.step()).toBe(2 + 2);
    expect(await loadRetentionPass(store)).toBeUndefined();
    // The cut-offs stay those of the pass's start: a clock moving on does not extend the pass.
    now += 10 * DAY;
    expect(await r.step()).toBe(1 + 1);
    expect(await r.step()).toBe(0);
    const first = { at: now, bodies: 3, rows: 3 };
    expect(await loadRetentionPass(store)).toEqual({ ...first, policy: { bodiesMs: DAY, dedupeKeysMs: DAY }, lastPrune: first });
    expect(await store.inboxRetention()).toEqual({ rows: 3, bodies: 3, oldestBody: T0 });
    // The next pass takes the new time.
    expect(await r.step()).toBe(2 + 2);
    expect(await r.step()).toBe(0);
    expect(await store.inboxRetention()).toEqual({ rows: 1, bodies: 1, oldestBody: T0 });
    expect((await store.claimInbox(10, 'w2', 60_000, T0 + 120_000)).map((x) => x.body)).toEqual(['{}']);
  });

  it('between the two cut-offs drops bodies only: the message ids still dedupe a replay', async () => {
    await inbox(3);
    const now = T0 + DAY + 10 * 60_000;
    const r = new InboxRetention({ store, log: pino({ level: 'silent' }), policy: { bodiesMs: DAY, dedupeKeysMs: 30 * DAY, everyMs: 60_000 }, now: () => now });
    expect(await r.step()).toBe(3);
    expect(await r.step()).toBe(0);
    expect(await loadRetentionPass(store)).toMatchObject({ bodies: 3, rows: 0 });
    expect(await store.inboxRetention()).toEqual({ rows: 4, bodies: 1, oldestBody: T0 });
    expect(await store.insertInbox([{ messageId: 'm1', source: 'sns', receivedAt: now, body: '{"again":1}' }])).toEqual(['duplicate']);
  });
});
