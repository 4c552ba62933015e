// Imports grouped one per Brevo list (listIds apply to every row of an import): a contact in
// several lists is a row of each, its attributes only in the last one sent, and it is
// accepted under the newest import's process once all of them are.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { startBrevoSim, type BrevoSim } from '../sim/brevo/index.js';
import { BrevoClient } from '../brevo/client.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/port.js';
import { contact } from '../store/contract.js';
import { createMetrics } from './metrics.js';
import { BrevoHealth } from './brevo-health.js';
import { ContactImports } from './imports.js';

const T0 = Date.parse('2026-11-30T12:00:00Z');

interface SentImport {
  listIds: number[];
  rows: Array<{ email: string; attributes?: Record<string, unknown> }>;
}

describe('ContactImports.write: one import per Brevo list', () => {
  let brevo: BrevoSim;
  let store: Store;
  let L: number[];
  beforeAll(async () => {
    brevo = await startBrevoSim({ plan: 'unlimited', importDelayMs: 10 });
    store = await openStore('sqlite::memory:');
    await store.migrate();
    const client = new BrevoClient({ baseUrl: brevo.url, apiKey: brevo.apiKey });
    const folder = (await client.createFolder('Amazon SES')).data!.id;
    L = [];
    for (const name of ['one', 'two', 'three']) L.push((await client.createList(name, folder)).data!.id);
    L.sort((a, b) => a - b);
  });
  afterAll(async () => {
    await store.close();
    await brevo.close();
  });

  /** Writes a@ (lists 1, 2, with an attribute), b@ (list 1), c@ (lists 2, 3): `failNth` import call answered 500. */
  async function write(failNth?: number) {
    const sent: SentImport[] = [];
    let n = 0;
    const fetchImpl: typeof fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (init?.method === 'POST' && url.endsWith('/contacts/import')) {
        const body = JSON.parse(String(init.body)) as { listIds: number[]; jsonBody: SentImport['rows'] };
        if (++n === failNth) return new Response(JSON.stringify({ code: 'internal_error', message: 'injected' }), { status: 500 });
        sent.push({ listIds: body.listIds, rows: body.jsonBody });
      }
      return fetch(input, init);
    };
    const metrics = createMetrics();
    const imports = new ContactImports({
      store,
      client: new BrevoClient({ baseUrl: brevo.url, apiKey: brevo.apiKey, fetchImpl }),
      log: pino({ level: 'silent' }),
      call: { metrics, health: new BrevoHealth({ metrics, log: pino({ level: 'silent' }) }) },
      signal: new AbortController().signal,
      now: () => T0,
    });
    const op = (email: string, listIds: number[], attrs: Record<string, { v: string; at: number }> = {}, id = 0) => {
      const c = contact(email, attrs);
      return { ...c, id, payload: { ...c.payload, listIds }, state: 'inflight', attempts: 1 } as unknown as Parameters<ContactImports['write']>[0][number];
    };
    const ops = [
      op('a@example.com', [L[0]!, L[1]!], { SES_LAST_EVENT: { v: 'Click', at: T0 } }, 1),
      op('b@example.com', [L[0]!], {}, 2),
      op('c@example.com', [L[1]!, L[2]!], {}, 3),
    ];
    const outcomes = await imports.write(ops, async () => L[0]!);
    return { sent, outcomes };
  }

  it('three lists, three imports; a@ in two of them, its attribute only in the last; accepted under the newest process', async () => {
    const { sent, outcomes } = await write();
    expect(sent.map((s) => s.listIds)).toEqual(L.map((l) => [l]));
    expect(sent.map((s) => s.rows.map((r) => r.email))).toEqual([['a@example.com', 'b@example.com'], ['a@example.com', 'c@example.com'], ['c@example.com']]);
    expect(sent[0]!.rows[0]!.attributes).toBeUndefined();
    expect(sent[1]!.rows[0]!.attributes).toEqual({ SES_LAST_EVENT: 'Click' });
    const ids = brevo.state().processes.map((p) => p.id);
    expect(outcomes.map((o) => o.kind)).toEqual(['accepted', 'accepted', 'accepted']);
    const refs = outcomes.map((o) => (o.kind === 'accepted' ? o.ref : ''));
    // a@ and c@ wait for their last import (the list-2 and list-3 ones), b@ for the list-1 one.
    expect(refs).toEqual([`import:${ids[ids.length - 2]}`, `import:${ids[ids.length - 3]}`, `import:${ids[ids.length - 1]}`]);
  });

  it("the import carrying a@'s attribute fails: a@ is retried whole (its list-1 row, accepted, held no value), b@ is accepted", async () => {
    const { sent, outcomes } = await write(2);
    expect(sent.map((s) => s.listIds)).toEqual([[L[0]], [L[2]]]);
    expect(sent[0]!.rows.every((r) => r.attributes === undefined)).toBe(true);
    expect(outcomes.map((o) => o.kind)).toEqual(['retry', 'accepted', 'retry']);
  });
});
