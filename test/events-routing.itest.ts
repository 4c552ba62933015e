// Custom events go to Brevo as batches or one call each, whichever budget has room. Brevo's
// table names POST /v3/events (10/s) but not /v3/events/batch: if the batch endpoint counts
// in the hourly 100 of "other endpoints", a spent hour must not stall custom events.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { event } from '../src/store/contract.js';
import type { Connector } from '../src/engine/connector.js';
import { startSims, until, type Sims } from './helpers.js';
import { inProcessConnector, simConfig } from './backfill-helpers.js';

const T0 = Date.parse('2026-11-30T12:00:00Z');
const EVENTS = 300;

async function run(batchBucket: 'events' | 'other', preSpentOther: number): Promise<{ sims: Sims; connector: Connector }> {
  const sims = await startSims({ brevo: { plan: 'general', eventsBatchBucket: batchBucket }, tmpDir: 'tajo-events-routing-' });
  const brevo = sims.brevo;
  // Another client of the account already spent this much of the hour's "other" budget.
  for (let i = 0; i < preSpentOther; i++) await fetch(`${brevo.url}/account`, { headers: { 'api-key': brevo.apiKey } });
  const cfg = simConfig({ sesEndpoint: 'http://127.0.0.1:9', brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: join(sims.dir, 'tajo.db') });
  const connector = await inProcessConnector(cfg, { ensureAttributes: false });
  await connector.store.migrate();
  await connector.store.enqueue(
    Array.from({ length: EVENTS }, (_, i) => event(`ev-${i}`, `r${i % 50}@example.com`)),
    T0,
  );
  await connector.start();
  return { sims, connector };
}

describe('custom events between /v3/events/batch and /v3/events', () => {
  let current: { sims: Sims; connector: Connector } | undefined;
  afterEach(async () => {
    await current?.connector.stop(2_000);
    await current?.sims.stop();
    current = undefined;
  });

  it('batch endpoint in the hourly "other" bucket, 99 of its 100 already spent: one batch, then one call each, no 429', async () => {
    current = await run('other', 99);
    const brevo = current.sims.brevo;
    await until(() => brevo.state().events.length === EVENTS, `${EVENTS} events in Brevo`, 45_000, 200);
    const stats = brevo.stats();
    expect(stats.throttled).toBe(0);
    // The first batch's answer said the route spends the other bucket, and that it is spent.
    expect(stats.byRoute['POST /v3/events/batch']).toBe(1);
    expect(stats.byRoute['POST /v3/events']).toBe(EVENTS - 200);
    expect(current.connector.governor.bucketFor('POST', '/events/batch')).toBe('other');
    expect((await current.connector.store.listRouteBuckets()).length).toBe(0); // SQLite: one process, nothing shared
  });

  it('batch endpoint in the events bucket: batches only, no 429', async () => {
    current = await run('events', 0);
    const brevo = current.sims.brevo;
    await until(() => brevo.state().events.length === EVENTS, `${EVENTS} events in Brevo`, 30_000, 200);
    const stats = brevo.stats();
    expect(stats.throttled).toBe(0);
    expect(stats.byRoute['POST /v3/events/batch']).toBe(2);
    expect(stats.byRoute['POST /v3/events'] ?? 0).toBe(0);
    expect(current.connector.governor.bucketFor('POST', '/events/batch')).toBe('events');
  });
});
