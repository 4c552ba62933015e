// The governor over a store: several governors (standing for several processes) on one
// store never grant more than the plan together, a pause reaches all of them, takes are
// batched, and what Brevo's headers tell about a route is persisted and adopted.
import { setMaxListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../store/sqlite/index.js';
import { Governor, routeKey, SHARED_MARGIN_MS } from './governor.js';
import { SharedBudget } from './shared-budget.js';
import { until } from '../../test/helpers.js';

let store: SqliteStore;
beforeEach(async () => {
  store = new SqliteStore(':memory:');
  await store.migrate();
});
afterEach(async () => {
  await store.close();
});

async function sharedGovernor(): Promise<Governor> {
  const g = new Governor({ plan: 'general', marginMs: 0 });
  await g.useStore(store);
  return g;
}

describe('governors sharing a store', () => {
  it('widens the margin of their windows once they share the store (grants leave later than the store stamps them)', async () => {
    const g = new Governor({ plan: 'general' });
    const before = g
      .status()
      .find((b) => b.bucket === 'contacts')!
      .windows.map((w) => w.windowMs);
    expect(before).toEqual([1050, 3_600_050]);
    const seq = await g.acquire('contacts');
    expect(seq).toBe(1);
    await g.useStore(store);
    const after = g.status().find((b) => b.bucket === 'contacts')!;
    expect(after.windows.map((w) => w.windowMs)).toEqual([1000 + SHARED_MARGIN_MS, 3_600_000 + SHARED_MARGIN_MS]);
    // What the windows held is kept.
    expect(after.windows.map((w) => w.used)).toEqual([1, 1]);
    // The store counts on the same (wider) windows.
    await g.acquire('contacts');
    expect((await store.budgetStatus()).buckets.find((b) => b.bucket === 'contacts')?.windows.map((w) => w.windowMs)).toEqual([
      1000 + SHARED_MARGIN_MS,
      3_600_000 + SHARED_MARGIN_MS,
    ]);
    // An explicit margin stays what it was told.
    const fixed = new Governor({ plan: 'general', marginMs: 0 });
    await fixed.useStore(store);
    expect(
      fixed
        .status()
        .find((b) => b.bucket === 'events')!
        .windows.map((w) => w.windowMs),
    ).toEqual([1000, 3_600_000]);
  });

  it('two governors together get no more than the 100/h of the other bucket', async () => {
    const a = await sharedGovernor();
    const b = await sharedGovernor();
    const abort = new AbortController();
    setMaxListeners(200, abort.signal);
    let granted = 0;
    const take = (g: Governor) =>
      g.acquire('other', abort.signal).then(
        () => granted++,
        () => undefined,
      );
    const all = [...Array.from({ length: 70 }, () => take(a)), ...Array.from({ length: 70 }, () => take(b))];
    const status = async () => (await store.budgetStatus()).buckets.find((x) => x.bucket === 'other');
    await until(() => granted === 100, '100 requests granted');
    // The 101st waits: the store refuses it for the rest of the hour.
    await until(() => a.waitMs('other') > 60_000 || b.waitMs('other') > 60_000, 'the governor left with requests told to wait');
    expect((await store.takeBudget({ bucket: 'other', windows: [{ limit: 100, windowMs: 3_600_000 }] })).granted).toBe(false);
    expect(granted).toBe(100);
    expect((await status())?.windows[0]?.used).toBe(100);
    abort.abort();
    await Promise.all(all);
    // Alone, each governor would have granted all 70 at once.
    const alone = new Governor({ plan: 'general' });
    expect(Array.from({ length: 70 }, () => alone.tryAcquire('other')).every((s) => s > 0)).toBe(true);
  });

  it('takes the requests waiting at once in one store round-trip', async () => {
    const a = await sharedGovernor();
    await Promise.all(Array.from({ length: 40 }, () => a.acquire('other')));
    const st = a.sharedStats()!;
    expect(st.granted).toBe(40);
    // At most half the tightest window per round-trip (50 of 100): one round for the first waiter, one for the rest.
    expect(st.takes).toBeLessThanOrEqual(3);
    expect(SharedBudget.batchLimit([{ limit: 10, windowMs: 1000 }])).toBe(5);
  });

  it('a 429 seen by one governor holds the bucket back for the other', async () => {
    const a = await sharedGovernor();
    const b = await sharedGovernor();
    const seq = await a.acquire('events');
    a.observe('events', seq, 429, { limit: 10, remaining: 0, resetSec: 30 }, 'POST /v3/events');
    await until(
      async () => ((await store.budgetStatus()).buckets.find((x) => x.bucket === 'events')?.pausedUntil ?? 0) > Date.now() + 20_000,
      'the pause in the store',
    );
    const abort = new AbortController();
    const waiting = b.acquire('events', abort.signal).catch((err: unknown) => err);
    await until(() => b.waitMs('events') > 20_000, 'the other governor told to wait');
    abort.abort();
    expect(await waiting).toBeDefined();
    expect(b.tryAcquire('contacts')).toBeGreaterThan(0);
  });

  it('learns the bucket of a route from the headers, persists it, and a new governor adopts it', async () => {
    const a = await sharedGovernor();
    expect(a.bucketFor('POST', '/events/batch')).toBe('events');
    const seq = await a.acquire('events');
    // Brevo answers the batch endpoint with the hourly 100 of "other endpoints".
    expect(a.observe('events', seq, 202, { limit: 100, remaining: 99, resetSec: 1800 }, routeKey('POST', '/events/batch'))).toBe('other');
    expect(a.bucketFor('POST', '/events/batch')).toBe('other');
    expect(a.bucketFor('POST', '/events')).toBe('events');
    await until(async () => (await store.listRouteBuckets()).length === 1, 'the route persisted');
    expect(await store.listRouteBuckets()).toEqual([
      expect.objectContaining({ route: 'POST /v3/events/batch', bucket: 'other', limit: 100, windowMs: 3_600_000 }),
    ]);
    const b = await sharedGovernor();
    expect(b.bucketFor('POST', '/events/batch')).toBe('other');
    // Headers that fit the route's bucket change nothing; a 10/s answer fits events and contacts, and keeps the table's.
    expect(b.observe('events', 1, 202, { limit: 10, remaining: 9, resetSec: 1 }, routeKey('POST', '/events'))).toBe('events');
    expect(b.observe('contacts', 1, 201, { limit: 10, remaining: 9, resetSec: 1 }, routeKey('POST', '/contacts'))).toBe('contacts');
    // Limits of no known bucket (another plan, or unlimited) leave the table's choice.
    expect(b.observe('events', 1, 202, { limit: 1_000_000, remaining: 9, resetSec: 0 }, routeKey('POST', '/events'))).toBe('events');
  });

  it('names routes without ids, queries or attribute names', () => {
    expect(routeKey('get', '/processes/123?x=1')).toBe('GET /v3/processes/{id}');
    expect(routeKey('POST', '/v3/contacts/lists/7/contacts/add')).toBe('POST /v3/contacts/lists/{id}/contacts/add');
    expect(routeKey('POST', '/contacts/attributes/normal/SES_LAST_EVENT')).toBe('POST /v3/contacts/attributes/{category}/{name}');
    expect(routeKey('GET', '/processes?limit=50&offset=0')).toBe('GET /v3/processes');
  });
});
