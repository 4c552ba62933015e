// The Store contract: every adapter runs this same suite (sqlite.itest.ts, postgres.itest.ts).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import type { Store } from './port.js';
import type { ContactOp, EventOp, PlannedOp } from '../core/plan.js';

export interface StoreHarness {
  store: Store;
  cleanup: () => Promise<void>;
}

const T0 = 1_700_000_000_000;

/** A contact write as the planner makes it (also used by other store and CLI tests). */
export function contact(
  email: string,
  attrs: Record<string, { v: string | number | boolean; at: number }>,
  blocklist = false,
  priority: ContactOp['priority'] = 2,
): ContactOp {
  return {
    kind: 'contact',
    key: `contact:${email}`,
    email,
    lane: 'realtime',
    priority,
    sources: [`src:${email}:${Object.keys(attrs).join(',')}`],
    payload: { attrs, blocklist },
  };
}

/** A custom event as the planner makes it (also used by other store and CLI tests). */
export function event(key: string, email = 'a@example.com', priority: EventOp['priority'] = 2): EventOp {
  return {
    kind: 'event',
    key,
    email,
    lane: 'realtime',
    priority,
    sources: [key],
    payload: { event_name: 'ses_email_sent', event_date: new Date(T0).toISOString(), identifiers: { email_id: email }, event_properties: { event_key: key } },
  };
}

/** The store of the running test: each test gets a fresh, migrated one. */
type CurrentStore = () => Store;

export function storeContract(name: string, make: () => Promise<StoreHarness>): void {
  describe(`Store contract: ${name}`, () => {
    let h: StoreHarness | undefined;
    beforeEach(async () => {
      h = await make();
      await h.store.migrate();
    });
    afterEach(async () => {
      await h?.cleanup();
      h = undefined;
    });
    const store: CurrentStore = () => {
      if (!h) throw new Error('the store contract asked for a store outside a test');
      return h.store;
    };
    inboxContract(store);
    queueContract(store);
    failureContract(store);
    bookkeepingContract(store);
  });
}

/** Claiming and closing webhook envelopes. */
function inboxContract(store: CurrentStore): void {
  it('migrates idempotently and answers ping', async () => {
    const s = store();
    await s.migrate();
    await s.ping();
  });

  it('inbox: inserts, reports duplicates by MessageId, claims in order and closes rows', async () => {
    const s = store();
    const res = await s.insertInbox([
      { messageId: 'm1', source: 'sns', topicArn: 'arn:t', receivedAt: T0, body: '{"a":1}' },
      { messageId: 'm2', source: 'sns', receivedAt: T0, body: '{}' },
      { messageId: 'm1', source: 'sns', receivedAt: T0, body: 'again' },
    ]);
    expect(res).toEqual(['inserted', 'inserted', 'duplicate']);
    expect(await s.insertInbox([{ messageId: 'm2', source: 'sns', receivedAt: T0, body: '{}' }])).toEqual(['duplicate']);
    const claimed = await s.claimInbox(10, 'w1', 60_000, T0);
    expect(claimed.map((r) => r.messageId)).toEqual(['m1', 'm2']);
    expect(claimed[0]!.body).toBe('{"a":1}');
    expect(claimed[0]!.topicArn).toBe('arn:t');
    // leased rows are not handed out twice
    expect(await s.claimInbox(10, 'w2', 60_000, T0 + 1)).toEqual([]);
    const r = await s.commitInbox(
      [
        { id: claimed[0]!.id, state: 'done' },
        { id: claimed[1]!.id, state: 'unparseable', note: 'bad' },
      ],
      [event('k1')],
      T0,
    );
    expect(r).toEqual({ inserted: 1, merged: 0, duplicates: 0 });
    expect((await s.stats()).inbox).toEqual({ done: 1, unparseable: 1 });
    expect(await s.claimInbox(10, 'w2', 60_000, T0 + 120_000)).toEqual([]);
  });

  it('inbox: an expired lease makes the row claimable again', async () => {
    const s = store();
    await s.insertInbox([{ messageId: 'm1', source: 'sns', receivedAt: T0, body: '{}' }]);
    expect(await s.claimInbox(10, 'w1', 1000, T0)).toHaveLength(1);
    expect(await s.claimInbox(10, 'w2', 1000, T0 + 500)).toHaveLength(0);
    expect(await s.claimInbox(10, 'w2', 1000, T0 + 1001)).toHaveLength(1);
  });
}

/** Queuing, coalescing and claiming operations. */
function queueContract(store: CurrentStore): void {
  it('events are deduplicated by key forever', async () => {
    const s = store();
    expect(await s.enqueue([event('k1'), event('k2'), event('k1')], T0)).toEqual({ inserted: 2, merged: 0, duplicates: 1 });
    const c = await s.claimOps({ kind: 'event', limit: 10, owner: 'w', leaseMs: 1000, now: T0 });
    await s.completeOps(
      c.map((o) => o.id),
      T0,
    );
    expect(await s.enqueue([event('k1')], T0 + 10)).toEqual({ inserted: 0, merged: 0, duplicates: 1 });
  });

  it('contact writes coalesce while pending, newest attribute value wins, blocklist only goes up', async () => {
    const s = store();
    await s.enqueue([contact('a@x.io', { A: { v: 'new', at: 20 }, B: { v: 'b1', at: 5 } })], T0);
    const r = await s.enqueue(
      [contact('a@x.io', { A: { v: 'old', at: 10 }, C: { v: true, at: 7 } }, true, 0), contact('b@x.io', { A: { v: 'x', at: 1 } })],
      T0,
    );
    expect(r).toEqual({ inserted: 1, merged: 1, duplicates: 0 });
    const claimed = await s.claimOps({ kind: 'contact', limit: 10, owner: 'w', leaseMs: 1000, now: T0 });
    expect(claimed.map((o) => o.email)).toEqual(['a@x.io', 'b@x.io']); // priority 0 first
    const a = claimed[0]!;
    expect(a.priority).toBe(0);
    expect(a.attempts).toBe(1);
    expect(a.payload).toEqual({ attrs: { A: { v: 'new', at: 20 }, B: { v: 'b1', at: 5 }, C: { v: true, at: 7 } }, blocklist: true });
    // while in flight, a new change makes a new pending row
    await s.enqueue([contact('a@x.io', { D: { v: 1, at: 30 } })], T0);
    const again = await s.claimOps({ kind: 'contact', limit: 10, owner: 'w', leaseMs: 1000, now: T0 });
    expect(again.map((o) => o.payload)).toEqual([{ attrs: { D: { v: 1, at: 30 } }, blocklist: false }]);
  });

  it('retry of a contact merges into a newer pending write for the same contact', async () => {
    const s = store();
    await s.enqueue([contact('a@x.io', { A: { v: 'one', at: 1 } }, true)], T0);
    const [first] = await s.claimOps({ kind: 'contact', limit: 1, owner: 'w', leaseMs: 1000, now: T0 });
    await s.enqueue([contact('a@x.io', { B: { v: 'two', at: 2 } })], T0);
    await s.retryOps([{ id: first!.id, nextAt: T0 + 5000, code: 'server_error', message: '503', status: 503 }], T0);
    const rows = await s.claimOps({ kind: 'contact', limit: 10, owner: 'w', leaseMs: 1000, now: T0 + 10_000 });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.payload).toEqual({ attrs: { A: { v: 'one', at: 1 }, B: { v: 'two', at: 2 } }, blocklist: true });
    expect((await s.getOp(first!.id))!.state).toBe('superseded');
  });

  it('claims respect next_at, priority, lanes and leases; expired leases are recovered', async () => {
    const s = store();
    await s.enqueue([event('low', 'a@x.io', 2), event('high', 'b@x.io', 1)], T0);
    await s.enqueue([{ ...event('bf', 'c@x.io', 2), lane: 'backfill' } as PlannedOp], T0);
    const rt = await s.claimOps({ kind: 'event', lanes: ['realtime'], limit: 10, owner: 'w', leaseMs: 1000, now: T0 });
    expect(rt.map((o) => o.key)).toEqual(['high', 'low']);
    expect(await s.claimOps({ kind: 'event', lanes: ['realtime'], limit: 10, owner: 'w', leaseMs: 1000, now: T0 })).toEqual([]);
    await s.retryOps([{ id: rt[0]!.id, nextAt: T0 + 60_000, code: 'too_many_requests', message: '429', status: 429 }], T0);
    expect(await s.claimOps({ kind: 'event', lanes: ['realtime'], limit: 10, owner: 'w', leaseMs: 1000, now: T0 + 59_000 })).toEqual([]);
    const later = await s.claimOps({ kind: 'event', lanes: ['realtime'], limit: 10, owner: 'w', leaseMs: 1000, now: T0 + 60_000 });
    expect(later.map((o) => [o.key, o.attempts, o.lastCode])).toEqual([['high', 2, 'too_many_requests']]);
    expect(await s.recoverExpired(T0 + 500)).toBe(0);
    expect(await s.recoverExpired(T0 + 1000)).toBe(1); // 'low' was leased until T0+1000
    const bf = await s.claimOps({ kind: 'event', lanes: ['backfill'], limit: 10, owner: 'w2', leaseMs: 1000, now: T0 + 70_000 });
    expect(bf.map((o) => o.key)).toEqual(['bf']);
    expect(await s.leaseOwners()).toContain('w2');
    expect(await s.releaseOwner('w2')).toBe(1);
    expect(await s.recoverExpired(T0 + 70_000)).toBeGreaterThanOrEqual(1);
  });
}

/** Operations that failed or wait for Brevo. */
function failureContract(store: CurrentStore): void {
  it('dead letters: listed with Brevo error, retried and discarded', async () => {
    const s = store();
    await s.enqueue([event('k1'), event('k2'), event('k3')], T0);
    const c = await s.claimOps({ kind: 'event', limit: 10, owner: 'w', leaseMs: 1000, now: T0 });
    await s.deadOps(
      c.map((o) => ({ id: o.id, code: 'invalid_parameter', message: 'bad event_name', status: 400 })),
      T0,
    );
    const f = await s.listFailures({ limit: 10 });
    expect(f.map((o) => [o.key, o.lastCode, o.lastMessage, o.lastStatus, o.state])).toEqual([
      ['k1', 'invalid_parameter', 'bad event_name', 400, 'dead'],
      ['k2', 'invalid_parameter', 'bad event_name', 400, 'dead'],
      ['k3', 'invalid_parameter', 'bad event_name', 400, 'dead'],
    ]);
    expect(await s.retryFailures([f[0]!.id], T0)).toBe(1);
    expect(await s.discardFailures([f[1]!.id], T0)).toBe(1);
    expect((await s.listFailures({ limit: 10 })).map((o) => o.key)).toEqual(['k3']);
    expect(await s.retryFailures('all', T0)).toBe(1);
    expect(await s.listFailures({ limit: 10 })).toEqual([]);
    const again = await s.claimOps({ kind: 'event', limit: 10, owner: 'w', leaseMs: 1000, now: T0 });
    expect(again.map((o) => [o.key, o.attempts])).toEqual([
      ['k1', 1],
      ['k3', 1],
    ]);
  });

  it('awaiting operations are found by ref and finish or go back', async () => {
    const s = store();
    await s.enqueue([contact('a@x.io', { A: { v: 1, at: 1 } }), contact('b@x.io', { A: { v: 1, at: 1 } })], T0);
    const c = await s.claimOps({ kind: 'contact', limit: 10, owner: 'w', leaseMs: 1000, now: T0 });
    await s.awaitOps(
      c.map((o) => o.id),
      'proc-7',
      T0,
      [{ email: 'a@x.io', attrs: { A: 1 }, blocklisted: false }],
    );
    expect(await s.listAwaiting(10)).toEqual([{ ref: 'proc-7', count: 2, since: T0 }]);
    const rows = await s.opsByRef('proc-7');
    expect(rows.map((r) => r.state)).toEqual(['awaiting', 'awaiting']);
    await s.completeOps([rows[0]!.id], T0);
    await s.deadOps([{ id: rows[1]!.id, code: 'invalid_email', message: 'rejected by import' }], T0);
    expect(await s.listAwaiting(10)).toEqual([]);
  });
}

/** Ledger, cursors, state values and statistics. */
function bookkeepingContract(store: CurrentStore): void {
  it('ledger keeps the newest time per attribute and never clears the blocklist', async () => {
    const s = store();
    await s.completeOps([], T0, [{ email: 'a@x.io', attrs: { A: 10, B: 5 }, blocklisted: true }]);
    await s.completeOps([], T0, [{ email: 'a@x.io', attrs: { A: 3, C: 9 }, blocklisted: false }]);
    const l = await s.getLedger(['a@x.io', 'none@x.io']);
    expect(l.get('a@x.io')).toEqual({ email: 'a@x.io', attrs: { A: 10, B: 5, C: 9 }, blocklisted: true });
    expect(l.has('none@x.io')).toBe(false);
  });

  it('cursors and state values round-trip', async () => {
    const s = store();
    expect(await s.getCursor('suppressions')).toBeUndefined();
    await s.setCursor('suppressions', '2024-01-01T00:00:00Z', T0, 'running');
    await s.setCursor('suppressions', '2024-02-01T00:00:00Z', T0 + 1, 'complete', 'ok');
    expect(await s.getCursor('suppressions')).toEqual({
      stream: 'suppressions',
      value: '2024-02-01T00:00:00Z',
      status: 'complete',
      note: 'ok',
      updatedAt: T0 + 1,
    });
    expect((await s.listCursors()).map((c) => c.stream)).toEqual(['suppressions']);
    await s.setState('k', 'v1', T0);
    await s.setState('k', 'v2', T0);
    expect(await s.getState('k')).toBe('v2');
    expect(await s.getState('missing')).toBeUndefined();
  });

  it('stats count operations by kind, state and priority with the oldest open one', async () => {
    const s = store();
    await s.enqueue([event('k1', 'a@x.io', 1), event('k2', 'a@x.io', 2), contact('a@x.io', { A: { v: 1, at: 1 } }, true, 0)], T0);
    const st = await s.stats();
    const find = (kind: string, priority: number) => st.ops.find((o) => o.kind === kind && o.priority === priority && o.state === 'pending');
    expect(find('event', 1)).toMatchObject({ count: 1, oldestCreatedAt: T0 });
    expect(find('contact', 0)).toMatchObject({ count: 1 });
  });

  it('many inserts in one call stay consistent (1,000 envelopes, 1,000 events)', async () => {
    const s = store();
    const rows = Array.from({ length: 1000 }, (_, i) => ({ messageId: `m${i}`, source: 'sns' as const, receivedAt: T0, body: String(i) }));
    expect((await s.insertInbox(rows)).every((r) => r === 'inserted')).toBe(true);
    const r = await s.enqueue(
      Array.from({ length: 1000 }, (_, i) => event(`k${i % 500}`)),
      T0,
    );
    expect(r).toEqual({ inserted: 500, merged: 0, duplicates: 500 });
  });
}
