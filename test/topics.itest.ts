// Topic preferences both ways (issue 10): Subscription events over signed SNS deliveries add
// the contact to `<List> / <Topic>` on opt-in and remove it on opt-out, newest SES time wins,
// UnsubscribeAll leaves every topic list named, topic defaults apply where the contact has no
// preference of its own. Judged by the Brevo simulator's lists and its call log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sesEvent } from '../src/sim/ses-events/index.js';
import { startStack, type Stack } from './helpers.js';

const REMOVE_ROUTE = 'POST /v3/contacts/lists/:listId/contacts/remove';
const t = (h: number) => `2026-06-01T${String(h).padStart(2, '0')}:00:00.000Z`;

let stack: Stack;

type Prefs = Record<string, 'OptIn' | 'OptOut'>;

async function subscription(email: string | string[], at: string, o: { prefs?: Prefs; defaults?: Prefs; unsubscribeAll?: boolean } = {}): Promise<void> {
  const payload = sesEvent('Subscription', {
    recipients: Array.isArray(email) ? email : [email],
    timestamp: at,
    contactList: 'Customers',
    topicPreferences: o.prefs ?? {},
    ...(o.defaults ? { topicDefaults: o.defaults } : {}),
    ...(o.unsubscribeAll !== undefined ? { unsubscribeAll: o.unsubscribeAll } : {}),
  });
  const res = await stack.publish(stack.sns.notification(stack.topic, payload));
  expect(res.status, res.text).toBe(200);
  await stack.connector.waitIdle(60_000, { includeAwaiting: true });
  await stack.brevo.settle();
}

/** Names of the Brevo lists the contact is in. */
function listsOf(email: string): string[] {
  const s = stack.brevo.state();
  const names = new Map(s.lists.map((l) => [l.id, l.name]));
  return (s.contacts[email]?.listIds ?? []).map((id) => names.get(id) ?? `#${id}`).sort();
}

const removals = () => stack.brevo.stats().byRoute[REMOVE_ROUTE] ?? 0;

beforeAll(async () => {
  stack = await startStack({ plan: 'unlimited' });
});

afterAll(async () => {
  await stack?.stop();
});

describe('Subscription events move topic list membership both ways', () => {
  it('opt-in adds the contact to the topic list; a later opt-out removes it (one remove call), without blocklisting', async () => {
    const email = 'inout@example.com';
    await subscription(email, t(1), { prefs: { news: 'OptIn' } });
    expect(listsOf(email)).toEqual(['Customers / news']);
    const before = removals();
    await subscription(email, t(2), { prefs: { news: 'OptOut' } });
    expect(listsOf(email)).toEqual([]);
    expect(removals() - before).toBe(1);
    expect(stack.brevo.contact(email)?.emailBlacklisted).toBe(false);
    expect(stack.brevo.contact(email)?.attributes.SES_UNSUBSCRIBED_ALL).toBe(false);
  });

  it('reverse order: an older opt-in arriving after a newer opt-out does not add the contact back', async () => {
    const email = 'reverse@example.com';
    await subscription(email, t(1), { prefs: { news: 'OptIn' } });
    expect(listsOf(email)).toEqual(['Customers / news']);
    await subscription(email, t(5), { prefs: { news: 'OptOut' } });
    expect(listsOf(email)).toEqual([]);
    // The opt-in of 03:00, delivered late (an SNS retry), is older than the opt-out of 05:00.
    await subscription(email, t(3), { prefs: { news: 'OptIn' } });
    expect(listsOf(email)).toEqual([]);
  });

  it('UnsubscribeAll leaves every topic list the event names and blocklists', async () => {
    const email = 'all@example.com';
    await subscription(email, t(1), { prefs: { news: 'OptIn', deals: 'OptIn' } });
    expect(listsOf(email)).toEqual(['Customers / deals', 'Customers / news']);
    await subscription(email, t(2), { prefs: { news: 'OptIn', deals: 'OptIn' }, unsubscribeAll: true });
    expect(listsOf(email)).toEqual([]);
    expect(stack.brevo.contact(email)?.emailBlacklisted).toBe(true);
  });

  it('a topic default applies where the contact has no preference of its own; a default change moves only those contacts', async () => {
    const plain = 'default@example.com';
    const own = 'own@example.com';
    await subscription(plain, t(1), { defaults: { weekly: 'OptIn' } });
    await subscription(own, t(1), { prefs: { weekly: 'OptIn' }, defaults: { weekly: 'OptIn' } });
    expect(listsOf(plain)).toEqual(['Customers / weekly']);
    expect(listsOf(own)).toEqual(['Customers / weekly']);
    // The topic's default becomes OptOut: the contact who never chose leaves, the one who opted in stays.
    await subscription(plain, t(2), { defaults: { weekly: 'OptOut' } });
    await subscription(own, t(2), { prefs: { weekly: 'OptIn' }, defaults: { weekly: 'OptOut' } });
    expect(listsOf(plain)).toEqual([]);
    expect(listsOf(own)).toEqual(['Customers / weekly']);
  });

  it('a backlog (160 contacts, written by import) leaves the list in calls of at most 150 emails', async () => {
    const many = Array.from({ length: 160 }, (_, i) => `bulk${i}@example.com`);
    await subscription(many, t(1), { prefs: { promo: 'OptIn' } });
    expect(many.filter((e) => listsOf(e).includes('Customers / promo'))).toHaveLength(160);
    const before = removals();
    await subscription(many, t(2), { prefs: { promo: 'OptOut' } });
    // (An import files every row in a list: those without one go to the connector's `SES recipients`.)
    expect(many.filter((e) => listsOf(e).includes('Customers / promo'))).toEqual([]);
    // 160 = 150 + 10: two calls (the simulator refuses a call over 150, as Brevo does).
    expect(removals() - before).toBe(2);
  });

  it('an opt-out of a topic whose list was never made creates no list and calls nothing', async () => {
    const before = removals();
    await subscription('never@example.com', t(1), { prefs: { never: 'OptOut' } });
    expect(stack.brevo.state().lists.map((l) => l.name)).not.toContain('Customers / never');
    expect(removals()).toBe(before);
  });

  it('nothing was refused or dropped on the way', async () => {
    const st = await stack.connector.store.stats();
    expect(st.ops.filter((o) => o.state === 'dead')).toEqual([]);
    expect(stack.brevo.state().dropped).toEqual([]);
  });
});
