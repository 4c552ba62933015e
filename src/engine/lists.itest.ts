// Brevo lists made by several processes of one store at once: Brevo takes two folders (or
// lists) of one name, so without the store lease each process would make its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrevoSim, type BrevoSim } from '../sim/brevo/index.js';
import { BrevoClient } from '../brevo/client.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/port.js';
import { BrevoLists, LISTS_LEASE } from './lists.js';

describe('BrevoLists across processes of one store', () => {
  let brevo: BrevoSim;
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    brevo = await startBrevoSim({ plan: 'unlimited', faults: { latencyMs: 20 } });
    dir = mkdtempSync(join(tmpdir(), 'tajo-lists-'));
    store = await openStore(`sqlite:${join(dir, 'lists.db')}`);
    await store.migrate();
  });
  afterAll(async () => {
    await store.close();
    await brevo.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('three processes asking at once for the folder and the same lists make each of them once', async () => {
    const client = new BrevoClient({ baseUrl: brevo.url, apiKey: brevo.apiKey });
    const procs = ['host:1:a', 'host:2:b', 'host:3:c'].map((owner) => new BrevoLists(client, store, 'Amazon SES', Date.now, owner));
    const ids = await Promise.all(procs.flatMap((l) => [l.ensure('Newsletter'), l.ensure('SES recipients'), l.ensure('Newsletter / Weekly')]));
    const state = brevo.state();
    expect(state.folders.map((f) => f.name)).toEqual(['Amazon SES']);
    expect(state.lists.map((l) => l.name).sort()).toEqual(['Newsletter', 'Newsletter / Weekly', 'SES recipients']);
    // Every process has the same id for a name.
    for (let i = 0; i < 3; i++) expect(new Set([ids[i], ids[i + 3], ids[i + 6]]).size).toBe(1);
    // A list one process made later is found by another from the store, not made again.
    expect(await procs[0]!.ensure('Later')).toBe(await procs[2]!.ensure('Later'));
    expect(brevo.state().lists.filter((l) => l.name === 'Later')).toHaveLength(1);
    // The lease is given back.
    const lease = await store.getLease(LISTS_LEASE);
    expect(lease === undefined || lease.expiresAt <= (await store.clock())).toBe(true);
  });
});
