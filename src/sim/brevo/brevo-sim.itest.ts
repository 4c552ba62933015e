import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBrevoSim } from './index.js';
import type { BrevoSim, BrevoSimOptions } from './index.js';
import { until } from '../../../test/helpers.js';

interface Res {
  status: number;
  body: unknown;
  headers: Headers;
}

async function call(sim: BrevoSim, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const init: RequestInit = { method, headers: { 'api-key': sim.apiKey, ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers = { 'content-type': 'application/json', ...init.headers };
  }
  const res = await fetch(sim.url + path, init);
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown), headers: res.headers };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const b = (r: Res): any => r.body;

async function withSim(opts: BrevoSimOptions, fn: (sim: BrevoSim) => Promise<void>): Promise<void> {
  const sim = await startBrevoSim(opts);
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

async function waitForProcess(sim: BrevoSim, id: number): Promise<Res> {
  for (let i = 0; i < 200; i++) {
    const r = await call(sim, 'GET', `/processes/${id}`);
    if (b(r).status === 'completed') return r;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`process ${id} did not complete`);
}

describe('Brevo simulator: basics', () => {
  let sim: BrevoSim;
  beforeAll(async () => {
    sim = await startBrevoSim({ plan: 'unlimited' });
  });
  afterAll(async () => {
    await sim.close();
  });
  afterEach(() => sim.reset());

  it('listens on loopback with a /v3 base URL', () => {
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v3$/);
  });

  it('requires the api-key header and answers 401 unauthorized, with rate-limit headers', async () => {
    const none = await fetch(sim.url + '/account');
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ code: 'unauthorized' });
    expect(none.headers.get('x-sib-ratelimit-limit')).not.toBeNull();
    const wrong = await call(sim, 'GET', '/account', undefined, { 'api-key': 'nope' });
    expect(wrong.status).toBe(401);
  });

  it('answers GET /account with email, companyName and a plan array', async () => {
    const r = await call(sim, 'GET', '/account');
    expect(r.status).toBe(200);
    expect(b(r)).toMatchObject({ email: expect.any(String), companyName: expect.any(String) });
    expect(Array.isArray(b(r).plan)).toBe(true);
  });

  it('rejects malformed JSON with 400 invalid_parameter, unknown routes with 404, wrong methods with 405', async () => {
    const bad = await call(sim, 'POST', '/contacts', '{"email":');
    expect(bad.status).toBe(400);
    expect(b(bad).code).toBe('invalid_parameter');
    const noCt = await fetch(sim.url + '/contacts', { method: 'POST', headers: { 'api-key': sim.apiKey, 'content-type': 'text/plain' }, body: '{}' });
    expect(noCt.status).toBe(400);
    const unknown = await call(sim, 'GET', '/nowhere');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-sib-ratelimit-remaining')).not.toBeNull();
    const wrong = await call(sim, 'DELETE', '/contacts/folders');
    expect(wrong.status).toBe(405);
  });
});

describe('Brevo simulator: contacts and blocklist', () => {
  let sim: BrevoSim;
  beforeAll(async () => {
    sim = await startBrevoSim({ plan: 'unlimited' });
  });
  afterAll(async () => {
    await sim.close();
  });
  afterEach(() => sim.reset());

  it('creates (201 {id}), refuses a duplicate without updateEnabled, updates with it (204)', async () => {
    const created = await call(sim, 'POST', '/contacts', { email: 'Ann@Example.com', attributes: { FIRSTNAME: 'Ann' } });
    expect(created.status).toBe(201);
    expect(b(created)).toEqual({ id: expect.any(Number) });
    const dup = await call(sim, 'POST', '/contacts', { email: 'ann@example.com' });
    expect(dup.status).toBe(400);
    expect(b(dup).code).toBe('duplicate_parameter');
    const upd = await call(sim, 'POST', '/contacts', { email: 'ann@example.com', attributes: { LASTNAME: 'Lee' }, updateEnabled: true });
    expect(upd.status).toBe(204);
    expect(sim.contact('ANN@example.com')).toMatchObject({ email: 'ann@example.com', attributes: { FIRSTNAME: 'Ann', LASTNAME: 'Lee' } });
  });

  it('rejects invalid emails and wrongly typed fields', async () => {
    expect((await call(sim, 'POST', '/contacts', { email: 'not-an-email' })).status).toBe(400);
    const r = await call(sim, 'POST', '/contacts', { email: 'a@b.co', emailBlacklisted: 'yes' });
    expect(r.status).toBe(400);
    expect(b(r).code).toBe('invalid_parameter');
    expect(sim.contact('a@b.co')).toBeUndefined();
  });

  it('reads and updates by email (with identifierType=email_id) and by id; 404 document_not_found when missing', async () => {
    const id = b(await call(sim, 'POST', '/contacts', { email: 'bob+tag@example.com' })).id as number;
    const enc = encodeURIComponent('bob+tag@example.com');
    const byEmail = await call(sim, 'GET', `/contacts/${enc}?identifierType=email_id`);
    expect(byEmail.status).toBe(200);
    expect(b(byEmail)).toMatchObject({ id, email: 'bob+tag@example.com', emailBlacklisted: false, listIds: [] });
    const put = await call(sim, 'PUT', `/contacts/${id}`, { attributes: { FIRSTNAME: 'Bob' } });
    expect(put.status).toBe(204);
    expect(b(await call(sim, 'GET', `/contacts/${enc}`)).attributes).toEqual({ FIRSTNAME: 'Bob' });
    const missing = await call(sim, 'PUT', `/contacts/${encodeURIComponent('ghost@example.com')}?identifierType=email_id`, { attributes: {} });
    expect(missing.status).toBe(404);
    expect(b(missing).code).toBe('document_not_found');
  });

  it('GET /sim/contacts/{email} reads a contact without auth and without spending the budget', async () => {
    await call(sim, 'POST', '/contacts', { email: 'd@example.com', attributes: { FIRSTNAME: 'Di' } });
    const before = sim.stats().requests;
    const origin = sim.url.replace(/\/v3$/, '');
    const found = await fetch(`${origin}/sim/contacts/${encodeURIComponent('D@example.com')}`);
    expect(found.status).toBe(200);
    expect(await found.json()).toMatchObject({ email: 'd@example.com', attributes: { FIRSTNAME: 'Di' } });
    const missing = await fetch(`${origin}/sim/contacts/${encodeURIComponent('ghost@example.com')}`);
    expect(missing.status).toBe(404);
    expect(sim.stats().requests).toBe(before);
  });

  it('blocklists with emailBlacklisted:true and unblocks with false, recording the unblock', async () => {
    await call(sim, 'POST', '/contacts', { email: 'c@example.com' });
    expect((await call(sim, 'PUT', '/contacts/c%40example.com', { emailBlacklisted: true })).status).toBe(204);
    expect(sim.contact('c@example.com')?.emailBlacklisted).toBe(true);
    expect(sim.state().unblocks).toEqual([]);
    await call(sim, 'PUT', '/contacts/c%40example.com', { emailBlacklisted: false });
    expect(sim.contact('c@example.com')?.emailBlacklisted).toBe(false);
    expect(sim.state().unblocks).toEqual([expect.objectContaining({ email: 'c@example.com', wasBlacklisted: true, source: 'PUT /v3/contacts' })]);
  });

  it('lifts the blocklisting when a contact email changes, as Brevo documents', async () => {
    await call(sim, 'POST', '/contacts', { email: 'old@example.com', emailBlacklisted: true });
    await call(sim, 'PUT', '/contacts/old%40example.com', { attributes: { EMAIL: 'new@example.com' } });
    expect(sim.contact('old@example.com')).toBeUndefined();
    expect(sim.contact('new@example.com')?.emailBlacklisted).toBe(false);
    expect(sim.state().unblocks).toHaveLength(1);
  });
});

describe('Brevo simulator: attribute strictness', () => {
  let sim: BrevoSim;
  beforeAll(async () => {
    sim = await startBrevoSim({ plan: 'unlimited' });
  });
  afterAll(async () => {
    await sim.close();
  });
  afterEach(() => sim.reset());

  async function defineAttributes(): Promise<void> {
    for (const [name, type] of [
      ['SES_LAST_EVENT', 'text'],
      ['SES_LAST_EVENT_AT', 'date'],
      ['SES_SUPPRESSED', 'boolean'],
      ['SCORE', 'float'],
    ] as const) {
      const r = await call(sim, 'POST', `/contacts/attributes/normal/${name}`, { type });
      expect(r.status).toBe(201);
      expect(r.body).toBeUndefined();
    }
  }

  it('creates attributes, lists them, and refuses a duplicate or a bad type', async () => {
    await defineAttributes();
    const list = b(await call(sim, 'GET', '/contacts/attributes')).attributes as unknown[];
    expect(list).toContainEqual({ name: 'SES_LAST_EVENT_AT', category: 'normal', type: 'date' });
    const dup = await call(sim, 'POST', '/contacts/attributes/normal/SES_LAST_EVENT', { type: 'text' });
    expect(b(dup).code).toBe('duplicate_parameter');
    expect((await call(sim, 'POST', '/contacts/attributes/normal/X1', { type: 'id' })).status).toBe(400);
    expect((await call(sim, 'POST', '/contacts/attributes/bogus/X2', { type: 'text' })).status).toBe(400);
  });

  it('silently drops unknown names and wrongly typed values, and records them', async () => {
    await defineAttributes();
    await call(sim, 'POST', '/contacts', { email: 'd@example.com' });
    const r = await call(sim, 'PUT', '/contacts/d%40example.com', {
      attributes: {
        SES_LAST_EVENT: 'Delivery',
        SES_LAST_EVENT_AT: '2024-05-01T10:00:00Z', // a timestamp, not YYYY-MM-DD
        SES_SUPPRESSED: 'true', // a string, not a JSON boolean
        SCORE: '1.5', // a string, not a number
        NOT_DEFINED: 'x',
      },
    });
    expect(r.status).toBe(204);
    expect(sim.contact('d@example.com')?.attributes).toEqual({ SES_LAST_EVENT: 'Delivery' });
    const dropped = sim.state().dropped;
    expect(dropped.map((d) => d.attribute).sort()).toEqual(['NOT_DEFINED', 'SCORE', 'SES_LAST_EVENT_AT', 'SES_SUPPRESSED']);
    expect(dropped.every((d) => d.email === 'd@example.com' && d.reason.length > 0)).toBe(true);

    await call(sim, 'PUT', '/contacts/d%40example.com', { attributes: { SES_LAST_EVENT_AT: '2024-05-01', SES_SUPPRESSED: true, SCORE: 1.5 } });
    expect(sim.contact('d@example.com')?.attributes).toEqual({ SES_LAST_EVENT: 'Delivery', SES_LAST_EVENT_AT: '2024-05-01', SES_SUPPRESSED: true, SCORE: 1.5 });
    expect(sim.state().dropped).toHaveLength(4);
  });

  it('drops impossible calendar dates', async () => {
    await defineAttributes();
    await call(sim, 'POST', '/contacts', { email: 'e@example.com', attributes: { SES_LAST_EVENT_AT: '2024-02-30' } });
    expect(sim.contact('e@example.com')?.attributes).toEqual({});
    expect(sim.state().dropped[0]).toMatchObject({ attribute: 'SES_LAST_EVENT_AT', value: '2024-02-30' });
  });
});

describe('Brevo simulator: folders and lists', () => {
  let sim: BrevoSim;
  beforeAll(async () => {
    sim = await startBrevoSim({ plan: 'unlimited' });
  });
  afterAll(async () => {
    await sim.close();
  });
  afterEach(() => sim.reset());

  it('creates folders and lists and pages them with limit/offset', async () => {
    const folder = await call(sim, 'POST', '/contacts/folders', { name: 'Amazon SES' });
    expect(folder.status).toBe(201);
    const folderId = b(folder).id as number;
    await call(sim, 'POST', '/contacts/folders', { name: 'Other' });
    const ids: number[] = [];
    for (const name of ['news', 'news / promo', 'news / product']) {
      const l = await call(sim, 'POST', '/contacts/lists', { name, folderId });
      expect(l.status).toBe(201);
      ids.push(b(l).id as number);
    }
    expect(ids).not.toContain(folderId);
    const folders = await call(sim, 'GET', '/contacts/folders?limit=1&offset=0');
    expect(b(folders).count).toBe(2);
    expect(b(folders).folders).toHaveLength(1);
    const page2 = b(await call(sim, 'GET', '/contacts/lists?limit=2&offset=2&sort=asc'));
    expect(page2).toMatchObject({ count: 3, lists: [{ id: ids[2], name: 'news / product', folderId }] });
    const inFolder = b(await call(sim, 'GET', `/contacts/folders/${folderId}/lists`));
    expect(inFolder.count).toBe(3);
    expect((await call(sim, 'GET', '/contacts/lists?limit=51')).status).toBe(400);
    expect((await call(sim, 'POST', '/contacts/lists', { name: 'x', folderId: 999 })).status).toBe(400);
    expect((await call(sim, 'GET', '/contacts/folders/999/lists')).status).toBe(404);
  });

  it('adds and removes contacts, failing a call that changes nothing', async () => {
    const folderId = b(await call(sim, 'POST', '/contacts/folders', { name: 'F' })).id as number;
    const listId = b(await call(sim, 'POST', '/contacts/lists', { name: 'L', folderId })).id as number;
    await call(sim, 'POST', '/contacts', { email: 'a@example.com' });
    await call(sim, 'POST', '/contacts', { email: 'b@example.com' });
    const add = await call(sim, 'POST', `/contacts/lists/${listId}/contacts/add`, { emails: ['a@example.com', 'b@example.com', 'ghost@example.com'] });
    expect(add.status).toBe(201);
    expect(b(add)).toEqual({ contacts: { success: ['a@example.com', 'b@example.com'], failure: ['ghost@example.com'] } });
    expect(sim.contact('a@example.com')?.listIds).toEqual([listId]);
    const again = await call(sim, 'POST', `/contacts/lists/${listId}/contacts/add`, { emails: ['a@example.com'] });
    expect(again.status).toBe(400);
    expect(b(again).code).toBe('invalid_parameter');
    const tooMany = Array.from({ length: 151 }, (_, i) => `u${i}@example.com`);
    expect((await call(sim, 'POST', `/contacts/lists/${listId}/contacts/add`, { emails: tooMany })).status).toBe(400);
    const rm = await call(sim, 'POST', `/contacts/lists/${listId}/contacts/remove`, { emails: ['b@example.com'] });
    expect(b(rm).contacts.success).toEqual(['b@example.com']);
    expect(sim.contact('b@example.com')?.listIds).toEqual([]);
    expect(b(await call(sim, 'GET', `/contacts/lists/${listId}`))).toMatchObject({ id: listId, totalSubscribers: 1 });
    expect((await call(sim, 'POST', '/contacts/lists/999/contacts/add', { emails: ['a@example.com'] })).status).toBe(404);
    // Remove is as strict: at most 150 per call, and a call that removes nothing is a 400.
    const rmTooMany = await call(sim, 'POST', `/contacts/lists/${listId}/contacts/remove`, { emails: tooMany });
    expect(rmTooMany.status).toBe(400);
    expect(sim.contact('a@example.com')?.listIds).toEqual([listId]);
    const rmNone = await call(sim, 'POST', `/contacts/lists/${listId}/contacts/remove`, { emails: ['b@example.com'] });
    expect(rmNone.status).toBe(400);
    expect((await call(sim, 'POST', '/contacts/lists/999/contacts/remove', { emails: ['a@example.com'] })).status).toBe(404);
  });
});

describe('Brevo simulator: reading contacts back', () => {
  it("pages GET /contacts (at most 1000) and a list's contacts (at most 500), filtered by modifiedSince", async () => {
    let t = Date.UTC(2026, 0, 1);
    await withSim({ plan: 'unlimited', now: () => t }, async (sim) => {
      const folderId = b(await call(sim, 'POST', '/contacts/folders', { name: 'F' })).id as number;
      const listId = b(await call(sim, 'POST', '/contacts/lists', { name: 'L', folderId })).id as number;
      for (const e of ['a@example.com', 'b@example.com', 'c@example.com']) await call(sim, 'POST', '/contacts', { email: e, listIds: [listId] });
      t += 60_000;
      await call(sim, 'PUT', `/contacts/${encodeURIComponent('b@example.com')}`, { attributes: { FIRSTNAME: 'B' } });
      const p1 = b(await call(sim, 'GET', '/contacts?limit=2&offset=0&sort=asc'));
      expect(p1.count).toBe(3);
      expect(p1.contacts.map((c: { email: string }) => c.email)).toEqual(['a@example.com', 'b@example.com']);
      expect(b(await call(sim, 'GET', '/contacts?limit=2&offset=2&sort=asc')).contacts.map((c: { email: string }) => c.email)).toEqual(['c@example.com']);
      expect((await call(sim, 'GET', '/contacts?limit=1001')).status).toBe(400);
      expect((await call(sim, 'GET', '/contacts?limit=1000')).status).toBe(200);
      const since = encodeURIComponent(new Date(t - 1000).toISOString());
      const recent = b(await call(sim, 'GET', `/contacts?modifiedSince=${since}`));
      expect(recent).toMatchObject({ count: 1, contacts: [{ email: 'b@example.com', attributes: { FIRSTNAME: 'B' } }] });
      expect((await call(sim, 'GET', '/contacts?modifiedSince=yesterday')).status).toBe(400);
      const members = b(await call(sim, 'GET', `/contacts/lists/${listId}/contacts?limit=500&sort=asc`));
      expect(members.count).toBe(3);
      expect((await call(sim, 'GET', `/contacts/lists/${listId}/contacts?limit=501`)).status).toBe(400);
      expect(b(await call(sim, 'GET', `/contacts/lists/${listId}/contacts?modifiedSince=${since}`)).count).toBe(1);
    });
  });
});

describe('Brevo simulator: imports and processes', () => {
  let sim: BrevoSim;
  beforeAll(async () => {
    sim = await startBrevoSim({ plan: 'unlimited', importDelayMs: 400, importMaxBytes: 64 * 1024 });
  });
  afterAll(async () => {
    await sim.close();
  });
  afterEach(() => sim.reset());

  async function setup(): Promise<number> {
    await call(sim, 'POST', '/contacts/attributes/normal/SES_SUPPRESSED', { type: 'boolean' });
    const folderId = b(await call(sim, 'POST', '/contacts/folders', { name: 'Amazon SES' })).id as number;
    return b(await call(sim, 'POST', '/contacts/lists', { name: 'suppressed', folderId })).id as number;
  }

  it('accepts an import (202 processId), runs it asynchronously and reports invalid rows', async () => {
    const listId = await setup();
    await call(sim, 'POST', '/contacts', { email: 'kept@example.com', emailBlacklisted: false });
    const r = await call(sim, 'POST', '/contacts/import', {
      jsonBody: [
        { email: 'one@example.com', attributes: { SES_SUPPRESSED: true, UNKNOWN_ATTR: 1 } },
        { email: 'bad-email', attributes: {} },
        { email: 'ONE@example.com', attributes: {} },
        { email: 'kept@example.com', attributes: { SES_SUPPRESSED: 'yes' } },
      ],
      listIds: [listId],
      emailBlacklist: true,
      updateExistingContacts: true,
      emptyContactsAttributes: false,
      disableNotification: true,
    });
    expect(r.status).toBe(202);
    const processId = b(r).processId as number;
    const early = b(await call(sim, 'GET', `/processes/${processId}`));
    expect(['queued', 'in_process']).toContain(early.status);
    expect(early.name).toBe('IMPORTUSER');
    expect(sim.contact('one@example.com')).toBeUndefined();

    const done = b(await waitForProcess(sim, processId));
    expect(done.import_report.invalid).toEqual([
      { email: 'bad-email', reason: expect.stringContaining('invalid email') },
      { email: 'ONE@example.com', reason: expect.stringContaining('duplicate') },
    ]);
    expect(done.info.import.invalid_emails).toMatch(/\/sim\/processes\/\d+\/invalid_emails\.csv$/);
    const csv = await (await fetch(done.info.import.invalid_emails as string)).text();
    expect(csv).toContain('bad-email');

    expect(sim.contact('one@example.com')).toMatchObject({ emailBlacklisted: true, listIds: [listId], attributes: { SES_SUPPRESSED: true } });
    expect(sim.contact('kept@example.com')).toMatchObject({ emailBlacklisted: true, listIds: [listId], attributes: {} });
    expect(sim.state().dropped.map((d) => [d.email, d.attribute, d.source])).toEqual([
      ['one@example.com', 'UNKNOWN_ATTR', 'POST /v3/contacts/import'],
      ['kept@example.com', 'SES_SUPPRESSED', 'POST /v3/contacts/import'],
    ]);
    const list = b(await call(sim, 'GET', '/processes'));
    expect(list).toMatchObject({ count: 1, processes: [{ id: processId, status: 'completed' }] });
  });

  it('requires listIds (or newList), rejects oversized bodies and unknown processes', async () => {
    const noList = await call(sim, 'POST', '/contacts/import', { jsonBody: [{ email: 'a@example.com' }] });
    expect(noList.status).toBe(400);
    expect(b(noList).code).toBe('missing_parameter');
    const listId = await setup();
    const rows = Array.from({ length: 2000 }, (_, i) => ({ email: `user${i}@example.com`, attributes: {} }));
    const big = await call(sim, 'POST', '/contacts/import', { jsonBody: rows, listIds: [listId] });
    expect(big.status).toBe(413);
    expect(big.headers.get('x-sib-ratelimit-limit')).not.toBeNull();
    expect((await call(sim, 'GET', '/processes/999')).status).toBe(404);
    expect(sim.state().processes).toEqual([]);
  });

  it('settle() waits for pending imports', async () => {
    const listId = await setup();
    await call(sim, 'POST', '/contacts/import', { jsonBody: [{ email: 'z@example.com' }], listIds: [listId] });
    await sim.settle();
    expect(sim.contact('z@example.com')?.listIds).toEqual([listId]);
    expect(sim.state().processes[0]?.status).toBe('completed');
  });
});

describe('Brevo simulator: events', () => {
  let sim: BrevoSim;
  beforeAll(async () => {
    sim = await startBrevoSim({ plan: 'unlimited' });
  });
  afterAll(async () => {
    await sim.close();
  });
  afterEach(() => sim.reset());

  const event = (i: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    event_name: 'ses_email_delivered',
    event_date: '2024-05-01T10:00:00Z',
    identifiers: { email_id: `user${i}@example.com` },
    event_properties: { event_key: `k${i}`, message_id: `m${i}` },
    ...extra,
  });

  it('records an event (204), creates the contact, and applies contact_properties strictly', async () => {
    await call(sim, 'POST', '/contacts/attributes/normal/SES_LAST_EVENT', { type: 'text' });
    const r = await call(sim, 'POST', '/events', event(1, { contact_properties: { SES_LAST_EVENT: 'Delivery', NOPE: 'x' } }));
    expect(r.status).toBe(204);
    const s = sim.state();
    expect(s.events).toEqual([
      expect.objectContaining({
        event_name: 'ses_email_delivered',
        identifiers: { email_id: 'user1@example.com' },
        event_properties: { event_key: 'k1', message_id: 'm1' },
      }),
    ]);
    expect(s.contacts['user1@example.com']?.attributes).toEqual({ SES_LAST_EVENT: 'Delivery' });
    expect(s.dropped).toEqual([expect.objectContaining({ attribute: 'NOPE', source: 'POST /v3/events' })]);
  });

  it('validates event_name, identifiers and event_date', async () => {
    const name = await call(sim, 'POST', '/events', event(1, { event_name: 'ses email sent' }));
    expect(b(name).code).toBe('invalid_parameter');
    const noIds = await call(sim, 'POST', '/events', { event_name: 'x' });
    expect(b(noIds).code).toBe('missing_parameter');
    expect((await call(sim, 'POST', '/events', event(1, { identifiers: {} }))).status).toBe(400);
    expect((await call(sim, 'POST', '/events', event(1, { event_date: 'yesterday' }))).status).toBe(400);
    expect(sim.state().events).toEqual([]);
  });

  it('takes a batch {events} (202), reports per-index errors (207), refuses all-invalid (400) and oversize', async () => {
    const ok = await call(sim, 'POST', '/events/batch', { events: [event(1), event(2)] });
    expect(ok.status).toBe(202);
    expect(b(ok)).toMatchObject({ count: 2 });
    const partial = await call(sim, 'POST', '/events/batch', { events: [event(3), event(4, { event_name: '' }), event(5, { identifiers: {} })] });
    expect(partial.status).toBe(207);
    expect(b(partial)).toMatchObject({ total_events: 3, successful_events: 1, failed_events: 2 });
    const failedIdx = (b(partial).errors as Array<{ eventIndex: number[] }>).flatMap((e) => e.eventIndex).sort();
    expect(failedIdx).toEqual([1, 2]);
    const none = await call(sim, 'POST', '/events/batch', { events: [event(6, { event_name: 'a b' })] });
    expect(none.status).toBe(400);
    const tooMany = await call(sim, 'POST', '/events/batch', { events: Array.from({ length: 201 }, (_, i) => event(i)) });
    expect(tooMany.status).toBe(400);
    expect((await call(sim, 'POST', '/events/batch', [event(7)])).status).toBe(400);
    expect(sim.state().events.map((e) => e.identifiers.email_id)).toEqual(['user1@example.com', 'user2@example.com', 'user3@example.com']);
  });
});

describe('Brevo simulator: rate limits', () => {
  it('sends x-sib-ratelimit-* on every answer and 429s over the per-second budget of a bucket', async () => {
    let t = Date.UTC(2024, 0, 1, 12, 0, 0, 100);
    await withSim({ plan: 'general', now: () => t }, async (sim) => {
      for (let i = 0; i < 10; i++) {
        const r = await call(sim, 'GET', '/contacts/attributes');
        expect(r.status).toBe(200);
        expect(r.headers.get('x-sib-ratelimit-limit')).toBe('10');
        expect(r.headers.get('x-sib-ratelimit-remaining')).toBe(String(9 - i));
        expect(r.headers.get('x-sib-ratelimit-reset')).toBe('1');
      }
      const over = await call(sim, 'GET', '/contacts/attributes');
      expect(over.status).toBe(429);
      expect(b(over).code).toBe('too_many_requests');
      expect(over.headers.get('x-sib-ratelimit-remaining')).toBe('0');
      // Another bucket is unaffected.
      expect((await call(sim, 'POST', '/events', { event_name: 'x', identifiers: { email_id: 'a@example.com' } })).status).toBe(204);
      t += 1000;
      expect((await call(sim, 'GET', '/contacts/attributes')).status).toBe(200);
      expect(sim.stats()).toMatchObject({ throttled: 1, byBucket: { contacts: 12, events: 1 } });
      expect(sim.stats().throttledByRoute).toEqual({ 'GET /v3/contacts/attributes': 1 });
      expect(sim.stats().status['429']).toBe(1);
    });
  });

  it('limits the other bucket to 100 requests per hour and reports the seconds left in the hour', async () => {
    const t = Date.UTC(2024, 0, 1, 12, 59, 0, 0);
    await withSim({ plan: 'general', now: () => t }, async (sim) => {
      for (let i = 0; i < 100; i++) expect((await call(sim, 'GET', '/account')).status).toBe(200);
      const over = await call(sim, 'GET', '/processes');
      expect(over.status).toBe(429);
      expect(over.headers.get('x-sib-ratelimit-limit')).toBe('100');
      expect(over.headers.get('x-sib-ratelimit-reset')).toBe('60');
    });
  });

  it('records per bucket the most requests within any 1 s, across its own clock-aligned windows; 429s do not count', async () => {
    let t = Date.UTC(2024, 0, 1, 12, 0, 0, 900);
    await withSim({ plan: 'general', now: () => t }, async (sim) => {
      // 10 at the end of one second and 10 at the start of the next: Brevo's aligned windows
      // take all 20, yet 20 arrived within 200 ms.
      for (let i = 0; i < 10; i++) expect((await call(sim, 'GET', '/contacts/attributes')).status).toBe(200);
      expect((await call(sim, 'GET', '/contacts/attributes')).status).toBe(429);
      t += 200;
      for (let i = 0; i < 10; i++) expect((await call(sim, 'GET', '/contacts/attributes')).status).toBe(200);
      expect(sim.stats().peakPerSecond).toEqual({ contacts: 20 });
      // Spread out (one every 150 ms, 7 per sliding second): the peak stays what it was.
      t += 1000;
      for (let i = 0; i < 20; i++) {
        await call(sim, 'POST', '/events', { event_name: 'x', identifiers: { email_id: 'a@example.com' } });
        t += 150;
      }
      expect(sim.stats()).toMatchObject({ throttled: 1, peakPerSecond: { contacts: 20, events: 7 } });
      const viaHttp = (await (await fetch(`http://127.0.0.1:${sim.port}/sim/stats`)).json()) as { stats: { peakPerSecond: Record<string, number> } };
      expect(viaHttp.stats.peakPerSecond).toEqual({ contacts: 20, events: 7 });
      // GET /sim/state is state() over HTTP (no key, no budget).
      const state = (await (await fetch(`http://127.0.0.1:${sim.port}/sim/state`)).json()) as unknown;
      expect(state).toEqual(JSON.parse(JSON.stringify(sim.state())));
      expect(sim.stats().requests).toBe(41);
      sim.reset();
      expect(sim.stats().peakPerSecond).toEqual({});
    });
  });

  it('counts a request in the second it arrived in, however long it takes to handle', async () => {
    let t = Date.UTC(2024, 0, 1, 12, 0, 0, 900);
    await withSim({ plan: 'general', now: () => t, faults: { latencyMs: 100 } }, async (sim) => {
      // Ten arrive at .900; the clock passes into the next second while they are handled.
      const first = Array.from({ length: 10 }, () => call(sim, 'GET', '/contacts/attributes'));
      await until(() => sim.stats().requests === 10, 'ten requests arrived', 5_000, 5);
      t += 200;
      expect((await Promise.all(first)).map((r) => r.status)).toEqual(Array(10).fill(200));
      // The next second is whole: ten more go through.
      for (let i = 0; i < 10; i++) expect((await call(sim, 'GET', '/contacts/attributes')).status).toBe(200);
      expect(sim.stats()).toMatchObject({ throttled: 0, peakPerSecond: { contacts: 20 } });
    });
  });

  it('uses the advanced table when asked', async () => {
    await withSim({ plan: 'advanced' }, async (sim) => {
      expect((await call(sim, 'GET', '/contacts/attributes')).headers.get('x-sib-ratelimit-limit')).toBe('20');
    });
  });
});

describe('Brevo simulator: GET /v3/events', () => {
  it('lists custom events by contact_id, event_name and date range, newest first', async () => {
    await withSim({ plan: 'unlimited' }, async (sim) => {
      const ev = (email: string, name: string, date: string, key: string) => ({
        event_name: name,
        event_date: date,
        identifiers: { email_id: email },
        event_properties: { event_key: key },
      });
      await call(sim, 'POST', '/events/batch', {
        events: [
          ev('a@example.com', 'ses_email_sent', '2026-01-01T10:00:00Z', 'k1'),
          ev('a@example.com', 'ses_email_opened', '2026-01-02T10:00:00Z', 'k2'),
          ev('b@example.com', 'ses_email_sent', '2026-01-03T10:00:00Z', 'k3'),
        ],
      });
      await call(sim, 'POST', '/events', ev('a@example.com', 'ses_email_sent', '2026-01-04T10:00:00Z', 'k4'));
      const a = b(await call(sim, 'GET', '/contacts/a%40example.com')).id as number;
      const keys = (r: Res) => (b(r).events as Array<{ event_properties: { event_key: string } }>).map((e) => e.event_properties.event_key);
      const all = await call(sim, 'GET', `/events?contact_id=${a}`);
      expect(all.status).toBe(200);
      expect(keys(all)).toEqual(['k4', 'k2', 'k1']);
      expect(b(all).count).toBe(3);
      expect(b(all).events[0]).toMatchObject({ contact_id: a, event_name: 'ses_email_sent', event_date: '2026-01-04T10:00:00Z' });
      expect(keys(await call(sim, 'GET', `/events?contact_id=${a}&event_name=ses_email_sent`))).toEqual(['k4', 'k1']);
      expect(keys(await call(sim, 'GET', '/events?event_name=ses_email_sent&startDate=2026-01-02&endDate=2026-01-03'))).toEqual(['k3']);
      expect(keys(await call(sim, 'GET', '/events?limit=1&offset=1'))).toEqual(['k3']);
      expect((await call(sim, 'GET', '/events?limit=0')).status).toBe(400);
      expect((await call(sim, 'GET', '/events?startDate=2026-01-02')).status).toBe(400);
    });
  });
});

describe('Brevo simulator: fault injection', () => {
  const create = (sim: BrevoSim, email: string): Promise<Res> => call(sim, 'POST', '/contacts', { email });

  it('answers 5xx internal_error without applying the write', async () => {
    await withSim({ plan: 'unlimited', faults: { errorRate: 1, seed: 1 } }, async (sim) => {
      const r = await create(sim, 'a@example.com');
      expect([500, 502, 503]).toContain(r.status);
      expect(b(r).code).toBe('internal_error');
      expect(sim.contact('a@example.com')).toBeUndefined();
    });
  });

  it('injects 429 bursts within budget', async () => {
    await withSim({ plan: 'unlimited', faults: { throttleRate: 1 } }, async (sim) => {
      const r = await create(sim, 'a@example.com');
      expect(r.status).toBe(429);
      expect(r.headers.get('x-sib-ratelimit-reset')).not.toBeNull();
      expect(sim.stats().throttled).toBe(1);
    });
  });

  it('drops the connection before applying (dropRate) or after applying (dropAfterApplyRate)', async () => {
    await withSim({ plan: 'unlimited', faults: { dropRate: 1 } }, async (sim) => {
      await expect(create(sim, 'lost@example.com')).rejects.toThrow();
      expect(sim.contact('lost@example.com')).toBeUndefined();
      sim.setFaults({ dropRate: 0, dropAfterApplyRate: 1 });
      await expect(create(sim, 'applied@example.com')).rejects.toThrow();
      expect(sim.contact('applied@example.com')).toBeDefined();
      expect(sim.stats().status).toMatchObject({ dropped: 1, dropped_after_apply: 1 });
      sim.setFaults({ dropAfterApplyRate: 0 });
      // The retry of a lost response meets the write it already made.
      expect(b(await create(sim, 'applied@example.com')).code).toBe('duplicate_parameter');
    });
  });

  it('injects 429 storms with rate-limit headers (throttleRate) and without any (throttleBareRate)', async () => {
    await withSim({ plan: 'general', faults: { throttleBareRate: 1 } }, async (sim) => {
      const bare = await create(sim, 'a@example.com');
      expect(bare.status).toBe(429);
      expect(b(bare).code).toBe('too_many_requests');
      expect([...bare.headers.keys()].filter((h) => h.startsWith('x-sib-ratelimit'))).toEqual([]);
      expect(sim.contact('a@example.com')).toBeUndefined();
      sim.setFaults({ throttleBareRate: 0, throttleRate: 1 });
      const headed = await create(sim, 'a@example.com');
      expect(headed.status).toBe(429);
      expect(headed.headers.get('x-sib-ratelimit-remaining')).toBe('0');
      expect(sim.stats().faults).toEqual({ throttle_bare: 1, throttle: 1 });
      expect(sim.stats().throttled).toBe(2);
    });
  });

  it('hangs a call (hangRate) without applying it until the client gives up, then after hangMs cuts it itself', async () => {
    await withSim({ plan: 'unlimited', faults: { hangRate: 1, hangMs: 60_000 } }, async (sim) => {
      const err = await fetch(sim.url + '/contacts', {
        method: 'POST',
        headers: { 'api-key': sim.apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'hung@example.com' }),
        signal: AbortSignal.timeout(200),
      }).catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).name).toBe('TimeoutError');
      expect(sim.contact('hung@example.com')).toBeUndefined();
      sim.setFaults({ hangMs: 50 });
      await expect(create(sim, 'cut@example.com')).rejects.toThrow();
      expect(sim.contact('cut@example.com')).toBeUndefined();
      expect(sim.stats().faults).toEqual({ hang: 2 });
    });
  });

  it('answers 200 with a broken JSON body after applying the call (malformedRate)', async () => {
    await withSim({ plan: 'unlimited', faults: { malformedRate: 1 } }, async (sim) => {
      const res = await fetch(sim.url + '/contacts', {
        method: 'POST',
        headers: { 'api-key': sim.apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'garbled@example.com' }),
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(() => JSON.parse(text) as unknown).toThrow(SyntaxError);
      expect(sim.contact('garbled@example.com')).toBeDefined();
      // Refusals are not garbled: only what Brevo applied.
      expect((await create(sim, 'garbled@example.com')).status).toBe(400);
      expect(sim.stats().faults).toEqual({ malformed: 1 });
    });
  });

  it('answers 503 to every call during an outage window (outageSeconds) and recovers by itself', async () => {
    let t = 1_000_000;
    await withSim({ plan: 'unlimited', now: () => t }, async (sim) => {
      const asked = await fetch(sim.url.replace(/\/v3$/, '') + '/sim/faults', { method: 'POST', body: JSON.stringify({ outageSeconds: 30 }) });
      expect(await asked.json()).toMatchObject({ outageUntil: 1_030_000 });
      expect((await create(sim, 'down@example.com')).status).toBe(503);
      expect((await call(sim, 'GET', '/account')).status).toBe(503);
      expect(sim.contact('down@example.com')).toBeUndefined();
      t += 29_000;
      expect((await create(sim, 'down@example.com')).status).toBe(503);
      t += 1_000;
      expect((await create(sim, 'down@example.com')).status).toBe(201);
      expect(sim.stats().faults).toEqual({ outage: 3 });
      sim.setFaults({ outageSeconds: 10 });
      expect((await call(sim, 'GET', '/account')).status).toBe(503);
      sim.setFaults({ outageSeconds: 0 });
      expect((await call(sim, 'GET', '/account')).status).toBe(200);
    });
  });

  it('counts every injected fault by kind', async () => {
    await withSim({ plan: 'unlimited', faults: { errorRate: 1, seed: 3 } }, async (sim) => {
      await create(sim, 'a@example.com');
      sim.setFaults({ errorRate: 0, dropRate: 1 });
      await expect(create(sim, 'a@example.com')).rejects.toThrow();
      sim.setFaults({ dropRate: 0, dropAfterApplyRate: 1 });
      await expect(create(sim, 'a@example.com')).rejects.toThrow();
      expect(sim.stats().faults).toEqual({ error: 1, dropped: 1, dropped_after_apply: 1 });
    });
  });

  it('is deterministic with a seed', async () => {
    const run = async (): Promise<number[]> => {
      const statuses: number[] = [];
      await withSim({ plan: 'unlimited', faults: { errorRate: 0.3, throttleRate: 0.2, seed: 42 } }, async (sim) => {
        for (let i = 0; i < 40; i++) statuses.push((await create(sim, `u${i}@example.com`)).status);
      });
      return statuses;
    };
    const a = await run();
    expect(await run()).toEqual(a);
    expect(new Set(a).size).toBeGreaterThan(2);
  });

  it('adds latency', async () => {
    await withSim({ plan: 'unlimited', faults: { latencyMs: 60 } }, async (sim) => {
      const t0 = performance.now();
      await call(sim, 'GET', '/account');
      expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    });
  });

  it('refuses out-of-range rates', async () => {
    await expect(startBrevoSim({ faults: { errorRate: 2 } })).rejects.toThrow(RangeError);
    await expect(startBrevoSim({ faults: { hangRate: -1 } })).rejects.toThrow(RangeError);
    await expect(startBrevoSim({ faults: { outageSeconds: -5 } })).rejects.toThrow(RangeError);
  });
});

describe('Brevo simulator: stats, reset and throughput', () => {
  it('counts requests by route and status, and reset() clears everything', async () => {
    await withSim({ plan: 'unlimited' }, async (sim) => {
      await call(sim, 'POST', '/contacts', { email: 'a@example.com' });
      await call(sim, 'GET', '/contacts/a%40example.com');
      const s = sim.stats();
      expect(s.requests).toBe(2);
      expect(s.byRoute).toEqual({ 'POST /v3/contacts': 1, 'GET /v3/contacts/:identifier': 1 });
      expect(s.status).toEqual({ '201': 1, '200': 1 });
      sim.reset();
      expect(sim.stats().requests).toBe(0);
      expect(sim.state().contacts).toEqual({});
      expect(sim.state().attributes.map((a) => a.name)).toContain('FIRSTNAME');
    });
  });

  it('takes 20k events in batches quickly', async () => {
    await withSim({ plan: 'unlimited' }, async (sim) => {
      const t0 = performance.now();
      const batches = Array.from({ length: 100 }, (_, bi) => ({
        events: Array.from({ length: 200 }, (_, i) => ({
          event_name: 'ses_email_sent',
          identifiers: { email_id: `u${(bi * 200 + i) % 5000}@example.com` },
          event_properties: { event_key: `k${bi}-${i}` },
        })),
      }));
      await Promise.all(batches.map((body) => call(sim, 'POST', '/events/batch', body)));
      expect(sim.state().events).toHaveLength(20_000);
      expect(Object.keys(sim.state().contacts)).toHaveLength(5000);
      expect(performance.now() - t0).toBeLessThan(10_000);
    });
  });
});
