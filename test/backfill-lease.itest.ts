// Two backfills never run at once on one store: a manual `backfill` while serve's scheduled
// sync (or another process's backfill) holds the backfill lease is refused with a message
// naming the holder; the lease of a process that died on this host does not hold it back.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connector } from '../src/engine/connector.js';
import { BACKFILL_LEASE } from '../src/engine/connector.js';
import { startSims, type Sims } from './helpers.js';
import { inProcessConnector, simConfig } from './backfill-helpers.js';

describe('the backfill lease', () => {
  let sims: Sims;
  let connector: Connector;
  beforeAll(async () => {
    sims = await startSims({ brevo: { plan: 'unlimited' }, tmpDir: 'tajo-backfill-lease-' });
    const cfg = simConfig({ sesEndpoint: 'http://127.0.0.1:9', brevo: { url: sims.brevo.url, apiKey: sims.brevo.apiKey }, db: join(sims.dir, 'tajo.db') });
    connector = await inProcessConnector(cfg, { ensureAttributes: false });
    await connector.start();
  });
  afterAll(async () => {
    await connector.stop(1_000);
    await sims.stop();
  });

  it('refuses while a live process holds it, naming that process', async () => {
    const other = `${hostname()}:${process.pid}:serve1234`;
    await connector.store.heartbeat({ owner: other, host: hostname(), pid: process.pid, role: 'serve' });
    expect((await connector.store.tryLease({ name: BACKFILL_LEASE, owner: other, ttlMs: 60_000 })).acquired).toBe(true);
    const err = (await connector.backfill({ streams: ['suppressions'] }).catch((e: unknown) => e)) as { code?: string; message?: string };
    expect(err.code).toBe('backfill_running');
    expect(err.message).toContain(`serve pid ${process.pid} on ${hostname()}`);
    expect(err.message).toMatch(/wait for it to finish/);
    // Still the other's: the refused run took nothing.
    expect((await connector.store.getLease(BACKFILL_LEASE))?.owner).toBe(other);
    await connector.store.releaseLease({ name: BACKFILL_LEASE, owner: other });
  });

  it('takes it over from a process that died on this host, and gives it back at the end', async () => {
    const dead = `${hostname()}:999999999:dead`;
    expect((await connector.store.tryLease({ name: BACKFILL_LEASE, owner: dead, ttlMs: 60_000 })).acquired).toBe(true);
    // SES is unreachable here: the run fails on its first SES call, not on the lease.
    const err = (await connector.backfill({ streams: ['suppressions'] }).catch((e: unknown) => e)) as { code?: string };
    expect(err.code).not.toBe('backfill_running');
    expect(await connector.store.getLease(BACKFILL_LEASE)).toBeUndefined();
  });
});
