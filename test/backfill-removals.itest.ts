// Backfill removals (issue 10): a contacts backfill records the Brevo list membership it
// wrote; a later pass removes from the Brevo lists exactly what it had added and SES no longer
// holds (a topic opt-out, a contact deleted from the SES contact list), with one remove call
// per list, and leaves members an operator added by hand alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Connector } from '../src/engine/connector.js';
import { inProcessConnector, simConfig } from './backfill-helpers.js';
import { useSims } from './helpers.js';

const REMOVE_ROUTE = 'POST /v3/contacts/lists/:listId/contacts/remove';

const sims = useSims({ brevo: { plan: 'unlimited', importDelayMs: 50 }, ses: {}, tmpDir: 'tajo-bf-removals-' });
let c: Connector;

async function backfill(): Promise<number> {
  const before = sims.brevo.stats().byRoute[REMOVE_ROUTE] ?? 0;
  await c.backfill({ streams: ['contact_lists', 'contacts'] });
  await c.waitIdle(60_000, { includeAwaiting: true });
  await sims.brevo.settle();
  return (sims.brevo.stats().byRoute[REMOVE_ROUTE] ?? 0) - before;
}

/** Brevo list name -> its members (sorted), for the lists of the folder's `Shop` contact list. */
function brevoLists(): Record<string, string[]> {
  const s = sims.brevo.state();
  const out: Record<string, string[]> = {};
  for (const l of s.lists.filter((x) => x.name === 'Shop' || x.name.startsWith('Shop / '))) {
    out[l.name] = Object.values(s.contacts)
      .filter((ct) => ct.listIds.includes(l.id))
      .map((ct) => ct.email)
      .sort();
  }
  return out;
}

beforeAll(async () => {
  sims.ses.seed({
    contactLists: [
      {
        name: 'Shop',
        topics: [
          { name: 'news', defaultSubscriptionStatus: 'OPT_OUT' },
          { name: 'deals', defaultSubscriptionStatus: 'OPT_IN' },
        ],
      },
    ],
    contacts: [
      { list: 'Shop', email: 'a@example.com', topicPreferences: { news: 'OPT_IN' } },
      { list: 'Shop', email: 'b@example.com', topicPreferences: { news: 'OPT_IN' } },
      { list: 'Shop', email: 'c@example.com' },
      { list: 'Shop', email: 'd@example.com', topicPreferences: { deals: 'OPT_OUT' } },
      { list: 'Shop', email: 'e@example.com' },
    ],
  });
  c = await inProcessConnector(
    simConfig({ sesEndpoint: sims.ses.endpoint, brevo: { url: sims.brevo.url, apiKey: sims.brevo.apiKey }, db: join(sims.dir, 'r.db') }),
  );
  await c.start();
}, 60_000);

afterAll(async () => {
  await c?.stop(5_000);
});

describe('a later contacts backfill removes what it had added and SES no longer holds', () => {
  it('first pass: the Brevo lists mirror SES, nothing removed', async () => {
    expect(await backfill()).toBe(0);
    expect(brevoLists()).toEqual({
      Shop: ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com', 'e@example.com'],
      'Shop / news': ['a@example.com', 'b@example.com'],
      'Shop / deals': ['a@example.com', 'b@example.com', 'c@example.com', 'e@example.com'],
    });
  });

  it('after opt-outs and a deletion in SES, the next pass removes exactly those, one call per list; a hand-added member stays', async () => {
    // An operator puts c in the news list by hand, for a reason of their own: not ours to remove.
    const newsId = sims.brevo.state().lists.find((l) => l.name === 'Shop / news')!.id;
    const res = await fetch(`${sims.brevo.url}/contacts/lists/${newsId}/contacts/add`, {
      method: 'POST',
      headers: { 'api-key': sims.brevo.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ emails: ['c@example.com'] }),
    });
    expect(res.status).toBe(201);
    sims.ses.seed({
      contacts: [
        { list: 'Shop', email: 'a@example.com', topicPreferences: { news: 'OPT_OUT' } },
        { list: 'Shop', email: 'e@example.com', topicPreferences: { deals: 'OPT_OUT' } },
      ],
    });
    expect(sims.ses.deleteContact('Shop', 'b@example.com')).toBe(true);
    // Shop: b; Shop / news: a, b; Shop / deals: b, e.
    expect(await backfill()).toBe(3);
    expect(brevoLists()).toEqual({
      Shop: ['a@example.com', 'c@example.com', 'd@example.com', 'e@example.com'],
      'Shop / news': ['c@example.com'],
      'Shop / deals': ['a@example.com', 'c@example.com'],
    });
    // Leaving lists never touches the blocklist.
    expect(Object.values(sims.brevo.state().contacts).filter((ct) => ct.emailBlacklisted)).toEqual([]);
  });

  it('a pass with no change in SES removes nothing', async () => {
    expect(await backfill()).toBe(0);
    expect(brevoLists()['Shop / news']).toEqual(['c@example.com']);
  });

  it('no dead letters', async () => {
    expect(await c.store.listFailures({ limit: 10 })).toEqual([]);
  });
});
