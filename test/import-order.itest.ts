// Brevo applies a contact import later, in the order it accepted it. A newer write for a
// contact that an unapplied import still names must not overtake it, whichever process sends
// it: here the import is sent by one connector, which then stops, and the newer write comes
// from a second connector on the same store (as after a restart, or from another process of
// a cluster). The knowledge "X has an import in flight" has to be in the store.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contact } from '../src/store/contract.js';
import { startSims, until, type Sims } from './helpers.js';
import { inProcessConnector, simConfig } from './backfill-helpers.js';

const T0 = Date.parse('2026-11-30T12:00:00Z');
const IMPORT_DELAY_MS = 4_000;

/** One contact write: its SES_LAST_EVENT at time `at`. */
const lastEvent = (email: string, v: string, at: number) => contact(email, { SES_LAST_EVENT: { v, at } });

describe('import ordering survives the process that sent the import', () => {
  let sims: Sims;
  beforeAll(async () => {
    sims = await startSims({ brevo: { plan: 'unlimited', importDelayMs: IMPORT_DELAY_MS }, tmpDir: 'tajo-import-order-' });
  });
  afterAll(async () => {
    await sims.stop();
  });

  it('a newer direct write waits behind an older import accepted by another connector', async () => {
    const brevo = sims.brevo!;
    const cfg = simConfig({ sesEndpoint: 'http://127.0.0.1:9', brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: join(sims.dir!, 'tajo.db') });
    const target = 'target@example.com';
    const first = await inProcessConnector(cfg);
    // A backlog of 25 contacts goes out as one import; Brevo applies it IMPORT_DELAY_MS later.
    const backlog = [target, ...Array.from({ length: 24 }, (_, i) => `c${i}@example.com`)].map((e) => lastEvent(e, 'Send', T0));
    await first.store.migrate();
    await first.store.enqueue(backlog, T0);
    await first.start();
    await until(async () => (await first.store.listAwaiting(10)).some((a) => a.count === 25), 'the import accepted by Brevo', 20_000);
    await first.stop();
    expect(brevo.contact(target)).toBeUndefined();

    const second = await inProcessConnector(cfg);
    try {
      await second.store.migrate();
      await second.store.enqueue([lastEvent(target, 'Click', T0 + 60_000)], T0 + 60_000);
      await second.start();
      // Everything applied: the older import, then whatever the second connector sent.
      await until(() => brevo.contact(target)?.attributes.SES_LAST_EVENT === 'Click', 'the newer value in Brevo', 30_000);
      await until(async () => (await second.store.listAwaiting(10)).length === 0, 'every import followed to its end', 30_000);
      expect(brevo.contact(target)?.attributes.SES_LAST_EVENT).toBe('Click');
    } finally {
      await second.stop();
    }
  });

  it('a write whose import went unanswered goes behind it by import, even after a later answered refusal', async () => {
    const brevo = sims.brevo!;
    const cfg = simConfig({ sesEndpoint: 'http://127.0.0.1:9', brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: join(sims.dir!, 'unanswered.db') });
    const target = 'unanswered@example.com';
    const first = await inProcessConnector(cfg);
    await first.store.migrate();
    await first.start();
    try {
      // Set-up done and a first import through (its list resolved), before Brevo's answers go bad.
      const warm = Array.from({ length: 25 }, (_, i) => `warm${i}@example.com`);
      await first.store.enqueue(
        warm.map((e) => lastEvent(e, 'Send', T0)),
        Date.now(),
      );
      await until(() => warm.every((e) => brevo.contact(e) !== undefined), 'the warm-up import applied', 20_000);
      // Brevo accepts the import and answers 200 with a body that cannot be read.
      brevo.setFaults({ malformedRate: 1 });
      const importsBefore = brevo.summary().imports;
      const backlog = [target, ...Array.from({ length: 24 }, (_, i) => `u${i}@example.com`)].map((e) => lastEvent(e, 'Send', T0));
      await first.store.enqueue(backlog, Date.now());
      await until(() => brevo.summary().imports > importsBefore, 'the import accepted by Brevo', 20_000);
    } finally {
      await first.stop();
      brevo.setFaults({ malformedRate: 0 });
    }
    expect(brevo.summary().importsOpen).toBeGreaterThan(0);
    expect(brevo.contact(target)).toBeUndefined();

    // The others went through; the target's next attempt was refused with an answer (a 503).
    const second = await inProcessConnector(cfg);
    try {
      const store = second.store;
      await store.migrate();
      const rows = await store.claimOps({ kind: 'contact', limit: 100, owner: 'test', leaseMs: 60_000, now: Date.now() + 3_600_000 });
      const mine = rows.find((r) => r.email === target)!;
      expect(mine.lastCode).toBe('bad_response');
      await store.completeOps(
        rows.filter((r) => r !== mine).map((r) => r.id),
        Date.now(),
      );
      await store.retryOps([{ id: mine.id, code: 'server_error', message: 'Simulated server error', status: 503, nextAt: Date.now() }], Date.now());
      await store.enqueue([lastEvent(target, 'Click', T0 + 60_000)], Date.now());
      await second.start();
      await until(() => brevo.summary().importsOpen === 0, 'every import applied', 30_000);
      await until(
        async () => (await second.store.stats()).ops.every((o) => o.state !== 'pending' && o.state !== 'inflight' && o.state !== 'awaiting'),
        'every write settled',
        30_000,
      );
      await until(() => brevo.summary().importsOpen === 0, 'every import applied', 30_000);
      expect(brevo.contact(target)?.attributes.SES_LAST_EVENT).toBe('Click');
    } finally {
      await second.stop();
    }
  });
});
