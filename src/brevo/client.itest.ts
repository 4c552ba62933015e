import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BrevoSim } from '../sim/brevo/index.js';
import { planBrevoOperations, type EventOp, type EventPayload } from '../core/plan.js';
import { SES_ATTRIBUTES } from '../core/brevo-model.js';
import { parseSesNotification } from '../ses/parse.js';
import { sesEvent } from '../sim/ses-events/index.js';
import { BrevoClient, BrevoError, isRetryableStatus, type BrevoClientOptions, type ContactUpsert } from './client.js';
import { Governor } from './governor.js';
import { useSims } from '../../test/helpers.js';

// 2026-01-01T00:00:00Z plus 1000 s: the sim's per-second window resets in 1 s, its hourly one in 2600 s.
const HOUR_START = Date.parse('2026-01-01T00:00:00.000Z');
const SIM_NOW = HOUR_START + 1_000_000;

interface Recorded {
  method: string;
  url: string;
  body: string | undefined;
}

function recordingFetch(log: Recorded[]): typeof fetch {
  return async (input, init) => {
    log.push({ method: init?.method ?? 'GET', url: String(input), body: typeof init?.body === 'string' ? init.body : undefined });
    return fetch(input, init);
  };
}

function client(sim: BrevoSim, opts: Partial<BrevoClientOptions> = {}): BrevoClient {
  return new BrevoClient({ baseUrl: sim.url, apiKey: sim.apiKey, timeoutMs: 5000, ...opts });
}

async function caught(p: Promise<unknown>): Promise<BrevoError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(BrevoError);
    return err as BrevoError;
  }
  throw new Error('expected the call to fail with a BrevoError');
}

/**
 * A Brevo simulator on the fixed clock SIM_NOW for the enclosing describe block; data,
 * faults and rate-limit windows are cleared after each test.
 */
function useClockedSim(): { readonly brevo: BrevoSim } {
  const sims = useSims({ brevo: { plan: 'general', now: () => SIM_NOW } });
  afterEach(() => {
    sims.brevo.setFaults({
      errorRate: 0,
      throttleRate: 0,
      latencyMs: 0,
      dropRate: 0,
      dropAfterApplyRate: 0,
      malformedRate: 0,
      hangRate: 0,
      throttleBareRate: 0,
    });
    sims.brevo.reset();
  });
  return sims;
}

function eventPayloads(n: number, email: string): EventPayload[] {
  const records = Array.from(
    { length: n },
    (_, i) =>
      parseSesNotification(sesEvent('Click', { recipients: [email], timestamp: new Date(Date.parse('2026-01-15T10:00:00.000Z') + i * 1000).toISOString() }))
        .records,
  ).flat();
  const ops = planBrevoOperations(records, {
    events: {
      Send: 'event',
      Delivery: 'event',
      Open: 'event',
      Click: 'event',
      Bounce: 'event',
      Complaint: 'event',
      Reject: 'event',
      DeliveryDelay: 'event',
      RenderingFailure: 'event',
      Subscription: 'event',
    },
  });
  return ops.filter((o): o is EventOp => o.kind === 'event').map((o) => o.payload);
}

describe('isRetryableStatus', () => {
  it('retries throttling, timeouts, Too Early and server faults only', () => {
    for (const s of [408, 425, 429, 500, 502, 503, 504]) expect(isRetryableStatus(s), String(s)).toBe(true);
    for (const s of [400, 401, 402, 403, 404, 405, 409, 413, 422]) expect(isRetryableStatus(s), String(s)).toBe(false);
  });
});

describe('BrevoClient against the Brevo simulator: error classification', () => {
  const sims = useClockedSim();

  it('429 over budget: retryable too_many_requests, retryAfterMs from x-sib-ratelimit-reset', async () => {
    const c = client(sims.brevo);
    for (let i = 0; i < 10; i++) await c.upsertContact({ email: `u${i}@example.com` });
    const err = await caught(c.upsertContact({ email: 'u10@example.com' }));
    expect(err.code).toBe('too_many_requests');
    expect(err.status).toBe(429);
    expect(err.retryable).toBe(true);
    expect(err.bucket).toBe('contacts');
    expect(err.retryAfterMs).toBe(1000);
    expect(sims.brevo.contact('u10@example.com')).toBeUndefined();
  });

  it('429 on the hourly "other" bucket carries the hour reset (2600 s here)', async () => {
    sims.brevo.setFaults({ throttleRate: 1 });
    const err = await caught(client(sims.brevo).getAccount());
    expect(err.code).toBe('too_many_requests');
    expect(err.retryable).toBe(true);
    expect(err.bucket).toBe('other');
    expect(err.retryAfterMs).toBe(2_600_000);
  });

  it('5xx: retryable, Brevo code and message kept', async () => {
    sims.brevo.setFaults({ errorRate: 1 });
    const err = await caught(client(sims.brevo).upsertContact({ email: 'a@example.com' }));
    expect([500, 502, 503]).toContain(err.status);
    expect(err.retryable).toBe(true);
    expect(err.code).toBe('internal_error');
    expect(err.message).toContain('Simulated server error');
    expect(err.retryAfterMs).toBeUndefined();
  });

  it('5xx without a JSON body: server_error with the text as message', async () => {
    const c = new BrevoClient({
      baseUrl: 'http://brevo.invalid/v3',
      apiKey: 'k',
      fetchImpl: async () => new Response('upstream connect error', { status: 503, statusText: 'Service Unavailable' }),
    });
    const err = await caught(c.sendEvent(eventPayloads(1, 'a@example.com')[0]!));
    expect(err.code).toBe('server_error');
    expect(err.status).toBe(503);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('upstream connect error');
  });

  it('400: not retryable, Brevo code and message kept', async () => {
    const err = await caught(client(sims.brevo).upsertContact({ email: 'not-an-email' }));
    expect(err.status).toBe(400);
    expect(err.code).toBe('invalid_parameter');
    expect(err.message).toContain('Invalid email address');
    expect(err.message).toContain('POST /contacts');
    expect(err.retryable).toBe(false);
    expect(err.retryAfterMs).toBeUndefined();
  });

  it('400 duplicate and 404 not found keep their codes', async () => {
    const c = client(sims.brevo);
    await c.createAttribute('normal', 'SES_LAST_EVENT', 'text');
    const dup = await caught(c.createAttribute('normal', 'SES_LAST_EVENT', 'text'));
    expect(dup).toMatchObject({ code: 'duplicate_parameter', status: 400, retryable: false });
    const nf = await caught(c.getProcess(987654));
    expect(nf).toMatchObject({ code: 'document_not_found', status: 404, retryable: false });
  });

  it('401: unauthorized, not retryable', async () => {
    const err = await caught(client(sims.brevo, { apiKey: 'wrong-key' }).upsertContact({ email: 'a@example.com' }));
    expect(err.code).toBe('unauthorized');
    expect(err.status).toBe(401);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('Key not found');
    expect(err.message).not.toContain('wrong-key');
  });

  it('a dropped connection is a retryable network_error', async () => {
    sims.brevo.setFaults({ dropRate: 1 });
    const err = await caught(client(sims.brevo).upsertContact({ email: 'a@example.com' }));
    expect(err.code).toBe('network_error');
    expect(err.status).toBe(0);
    expect(err.retryable).toBe(true);
    expect(sims.brevo.contact('a@example.com')).toBeUndefined();
  });

  it('a response lost after Brevo applied the request is a retryable network_error too (the retry must be idempotent)', async () => {
    sims.brevo.setFaults({ dropAfterApplyRate: 1 });
    const err = await caught(client(sims.brevo).upsertContact({ email: 'b@example.com', emailBlacklisted: true }));
    expect(err.code).toBe('network_error');
    expect(err.retryable).toBe(true);
    expect(sims.brevo.contact('b@example.com')?.emailBlacklisted).toBe(true);
  });

  it('a 200 whose body is not JSON is a retryable bad_response (what Brevo did is unknown)', async () => {
    sims.brevo.setFaults({ malformedRate: 1 });
    const err = await caught(client(sims.brevo).createFolder('Garbled'));
    expect(err.code).toBe('bad_response');
    expect(err.status).toBe(200);
    expect(err.retryable).toBe(true);
    expect(sims.brevo.state().folders.map((f) => f.name)).toContain('Garbled');
  });

  it('a call never answered (hung) is a retryable timeout and was not applied', async () => {
    sims.brevo.setFaults({ hangRate: 1, hangMs: 5000 });
    const err = await caught(client(sims.brevo, { timeoutMs: 150 }).upsertContact({ email: 'hung@example.com' }));
    expect(err.code).toBe('timeout');
    expect(err.retryable).toBe(true);
    expect(sims.brevo.contact('hung@example.com')).toBeUndefined();
  });

  it('a 429 without rate-limit headers is still retryable, after a wait of its own', async () => {
    sims.brevo.setFaults({ throttleBareRate: 1 });
    const err = await caught(client(sims.brevo).upsertContact({ email: 'bare@example.com' }));
    expect(err.code).toBe('too_many_requests');
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBeGreaterThan(0);
  });

  it('no answer within timeoutMs is a retryable timeout', async () => {
    sims.brevo.setFaults({ latencyMs: 600 });
    const started = Date.now();
    const err = await caught(client(sims.brevo, { timeoutMs: 100 }).upsertContact({ email: 'a@example.com' }));
    expect(err.code).toBe('timeout');
    expect(err.retryable).toBe(true);
    expect(err.status).toBe(0);
    expect(err.message).toContain('100 ms');
    expect(Date.now() - started).toBeLessThan(550);
  });

  it("the caller's abort is not reported as a timeout", async () => {
    sims.brevo.setFaults({ latencyMs: 600 });
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(new Error('shutdown')), 50);
    const err = await caught(client(sims.brevo, { timeoutMs: 5000 }).upsertContact({ email: 'a@example.com' }, ctrl.signal));
    expect(err.code).not.toBe('timeout');
    expect(err.retryable).toBe(true);
  });
});

describe('BrevoClient feeds the governor', () => {
  const sims = useClockedSim();

  it('records x-sib-ratelimit-remaining and -reset per bucket', async () => {
    const governor = new Governor();
    const c = client(sims.brevo, { governor });
    await c.getAccount();
    await c.upsertContact({ email: 'a@example.com' });
    await c.upsertContact({ email: 'b@example.com' });
    const st = Object.fromEntries(governor.status().map((b) => [b.bucket, b]));
    expect(st.other).toMatchObject({ requests: 1, lastRemaining: 99, lastResetMs: 2_600_000, throttled: 0 });
    expect(st.contacts).toMatchObject({ requests: 2, lastRemaining: 8, lastResetMs: 1000, throttled: 0 });
    expect(st.events).toMatchObject({ requests: 0, lastRemaining: null });
    expect(governor.waitMs('contacts')).toBe(0);
  });

  it('a 429 pauses that bucket in the governor, not the others', async () => {
    const governor = new Governor();
    const c = client(sims.brevo, { governor });
    sims.brevo.setFaults({ throttleRate: 1 });
    const err = await caught(c.sendEvent(eventPayloads(1, 'a@example.com')[0]!));
    expect(err.code).toBe('too_many_requests');
    const events = governor.status().find((b) => b.bucket === 'events')!;
    expect(events.throttled).toBe(1);
    expect(events.pausedUntil).toBeGreaterThan(Date.now() + 500);
    expect(governor.waitMs('events')).toBeGreaterThan(500);
    expect(governor.waitMs('contacts')).toBe(0);
    expect(governor.waitMs('other')).toBe(0);
  });

  it('remaining 0 pauses the bucket until the reset the answer announced', async () => {
    const governor = new Governor({ marginMs: 0 });
    const c = client(sims.brevo, { governor });
    for (let i = 0; i < 10; i++) await c.upsertContact({ email: `p${i}@example.com` });
    // The tenth answer said remaining 0, reset 1 s: the governor waits instead of drawing a 429.
    const contacts = governor.status().find((b) => b.bucket === 'contacts')!;
    expect(contacts.lastRemaining).toBe(0);
    // pausedUntil is set by header feedback only (the sliding windows do not touch it).
    expect(contacts.pausedUntil).toBeGreaterThan(Date.now() + 500);
    expect(governor.waitMs('contacts')).toBeGreaterThan(500);
    expect(sims.brevo.stats().throttled).toBe(0);
  });
});

describe('BrevoClient end to end against the simulator', () => {
  const sims = useSims({ brevo: { plan: 'unlimited', importDelayMs: 10 } });
  const log: Recorded[] = [];
  let c: BrevoClient;
  beforeAll(() => {
    c = client(sims.brevo, { fetchImpl: recordingFetch(log), governor: new Governor({ plan: 'extended' }) });
  });

  it('creates and lists the SES attributes with their types', async () => {
    for (const [name, type] of Object.entries(SES_ATTRIBUTES)) {
      const r = await c.createAttribute('normal', name, type);
      expect(r.status).toBe(201);
    }
    const res = await c.listAttributes();
    expect(res.status).toBe(200);
    for (const [name, type] of Object.entries(SES_ATTRIBUTES)) {
      expect(res.data.attributes).toContainEqual(expect.objectContaining({ name, category: 'normal', type }));
    }
  });

  it('upserts a contact, blocklists it, and a later upsert leaves it blocklisted', async () => {
    const first = await c.upsertContact({
      email: 'ann@example.com',
      attributes: { SES_LAST_EVENT: 'Bounce', SES_LAST_BOUNCED_AT: '2026-01-15', SES_SUPPRESSED: true, SES_BOUNCE_TYPE: 'Permanent' },
      emailBlacklisted: true,
    });
    expect(first.status).toBe(201);
    expect(first.data).toMatchObject({ id: expect.any(Number) });
    const second = await c.upsertContact({ email: 'ann@example.com', attributes: { SES_LAST_EVENT: 'Open', SES_LAST_OPENED_AT: '2026-01-16' } });
    expect(second.status).toBe(204);
    const ann = sims.brevo.contact('ann@example.com');
    expect(ann?.emailBlacklisted).toBe(true);
    expect(ann?.attributes).toMatchObject({
      SES_LAST_EVENT: 'Open',
      SES_LAST_OPENED_AT: '2026-01-16',
      SES_LAST_BOUNCED_AT: '2026-01-15',
      SES_SUPPRESSED: true,
    });
    const st = sims.brevo.state();
    expect(st.dropped).toEqual([]);
    expect(st.unblocks).toEqual([]);
  });

  it('sends one event and a batch of events', async () => {
    const [one, ...batch] = eventPayloads(4, 'bob@example.com');
    const r1 = await c.sendEvent(one!);
    expect(r1.status).toBe(204);
    const r2 = await c.sendEvents(batch);
    expect(r2.status).toBe(202);
    const events = sims.brevo.state().events.filter((e) => e.identifiers.email_id === 'bob@example.com');
    expect(events).toHaveLength(4);
    expect(events.map((e) => e.event_name)).toEqual(Array(4).fill('ses_email_clicked'));
    expect(events.map((e) => e.event_properties?.event_key)).toEqual([one!, ...batch].map((p) => p.event_properties.event_key));
  });

  it('a batch with one bad event answers 207 and lists its index; the others are applied', async () => {
    const good = eventPayloads(1, 'cid@example.com')[0]!;
    const bad: EventPayload = { ...good, identifiers: { email_id: 'not an email' } };
    const r = await c.sendEvents([good, bad]);
    expect(r.status).toBe(207);
    expect(r.data?.errors?.[0]?.eventIndex).toEqual([1]);
    expect(sims.brevo.state().events.filter((e) => e.identifiers.email_id === 'cid@example.com')).toHaveLength(1);
  });

  it('a batch of only bad events is a non-retryable 400', async () => {
    const good = eventPayloads(1, 'dee@example.com')[0]!;
    const err = await caught(c.sendEvents([{ ...good, identifiers: { email_id: 'nope' } }]));
    expect(err.status).toBe(400);
    expect(err.retryable).toBe(false);
  });

  it('folders, lists, list membership and an asynchronous import', async () => {
    const folder = await c.createFolder('Amazon SES');
    expect(folder.status).toBe(201);
    const folders = await c.listFolders(50, 0);
    expect(folders.data.folders).toContainEqual(expect.objectContaining({ id: folder.data.id, name: 'Amazon SES' }));
    const list = await c.createList('Customers', folder.data.id);
    const lists = await c.listFolderLists(folder.data.id, 50, 0);
    expect(lists.data.lists).toContainEqual(expect.objectContaining({ id: list.data.id, name: 'Customers' }));
    await c.upsertContact({ email: 'eve@example.com' });
    const added = await c.addToList(list.data.id, ['eve@example.com']);
    expect(added.data.contacts?.success).toEqual(['eve@example.com']);

    const imp = await c.importContacts({
      jsonBody: [{ email: 'fay@example.com', attributes: { SES_UNSUBSCRIBED_ALL: false } }],
      listIds: [list.data.id],
      updateExistingContacts: true,
      emptyContactsAttributes: false,
    });
    expect(imp.status).toBe(202);
    await sims.brevo.settle();
    const proc = await c.getProcess(imp.data.processId);
    expect(proc.data.status).toBe('completed');
    expect(sims.brevo.contact('fay@example.com')?.listIds).toEqual([list.data.id]);
    expect(sims.brevo.contact('fay@example.com')?.emailBlacklisted).toBe(false);
  });

  // Defence in depth: ContactUpsert types emailBlacklisted as `true` only, but payloads come
  // back from the store as JSON (cast, not checked), so the client is the last gate before
  // Brevo, where `false` would unblock the contact.
  it('upsertContact never puts emailBlacklisted:false on the wire, whatever the caller passes', async () => {
    await c.upsertContact({ email: 'gus@example.com', emailBlacklisted: true });
    const from = log.length;
    const untyped = (body: Record<string, unknown>) => body as unknown as ContactUpsert;
    const inputs: ContactUpsert[] = [
      untyped({ email: 'gus@example.com', emailBlacklisted: false }),
      untyped({ email: 'gus@example.com', attributes: { SES_LAST_EVENT: 'Delivery' }, emailBlacklisted: false }),
      untyped({ email: 'gus@example.com', emailBlacklisted: 'false' }),
      { email: 'gus@example.com', attributes: { SES_LAST_EVENT: 'Open' }, emailBlacklisted: undefined },
    ];
    for (const input of inputs) await c.upsertContact(input);
    const sent = log.slice(from);
    expect(sent).toHaveLength(inputs.length);
    for (const r of sent) expect(JSON.parse(r.body ?? '{}'), r.body).not.toHaveProperty('emailBlacklisted');
    expect(sims.brevo.contact('gus@example.com')?.emailBlacklisted).toBe(true);
    expect(sims.brevo.state().unblocks).toEqual([]);
  });

  it('no request of this suite carried emailBlacklisted:false, a value Brevo dropped, or another host', () => {
    expect(log.length).toBeGreaterThan(10);
    for (const r of log) {
      if (r.body === undefined) continue;
      expect(r.body, `${r.method} ${r.url}`).not.toMatch(/"emailBlacklisted"\s*:\s*false/);
    }
    expect(sims.brevo.state().unblocks).toEqual([]);
    expect(sims.brevo.state().dropped).toEqual([]);
    expect(log.every((r) => r.url.startsWith(sims.brevo.url))).toBe(true);
  });
});

describe('BrevoClient sends what Brevo expects', () => {
  const sims = useSims({ brevo: { plan: 'unlimited' } });

  it('api-key, accept and JSON content type; base URL with or without a trailing slash', async () => {
    const sim = sims.brevo;
    const seen: Array<{ url: string; headers: Record<string, string> }> = [];
    const fetchImpl: typeof fetch = async (input, init) => {
      seen.push({ url: String(input), headers: { ...(init?.headers as Record<string, string>) } });
      return fetch(input, init);
    };
    const c = new BrevoClient({ baseUrl: `${sim.url}/`, apiKey: sim.apiKey, fetchImpl });
    await c.upsertContact({ email: 'h@example.com' });
    await c.getAccount();
    expect(seen[0]!.url).toBe(`${sim.url}/contacts`);
    expect(seen[0]!.headers).toMatchObject({ 'api-key': sim.apiKey, accept: 'application/json', 'content-type': 'application/json' });
    expect(seen[1]!.headers['content-type']).toBeUndefined();
    const body = sim.state().contacts['h@example.com'];
    expect(body).toBeDefined();
  });
});
