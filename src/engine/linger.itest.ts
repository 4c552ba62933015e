// Fuller Brevo calls for a whole cluster (DeliveryOptions.lingerMs, `delivery.linger`): two
// delivery workers (two processes) on one PostgreSQL schema share a live trickle of events.
// A partial round waits until its oldest event has been due a second, judged by the store
// for both, and the one that finds it due claims all of it: about one /events/batch per
// second of stream, not one per process and round.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrevoSim, type BrevoSim } from '../sim/brevo/index.js';
import { BrevoClient } from '../brevo/client.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/port.js';
import { event } from '../store/contract.js';
import { freshPgSchema, type PgSchema } from '../bench/pg-schema.js';
import { Deliverer, type DeliveryOptions } from './deliver.js';
import { createMetrics } from './metrics.js';

/** The trickle: EVENTS_PER_TICK events every TICK_MS for STREAM_MS. */
const TICK_MS = 100;
const EVENTS_PER_TICK = 10;
const STREAM_MS = 4_000;
const LINGER_MS = 1_000;

describe('two delivery workers on one PostgreSQL store share one linger', () => {
  let brevo: BrevoSim;
  let pgs: PgSchema;
  const stores: Store[] = [];
  beforeAll(async () => {
    brevo = await startBrevoSim({ plan: 'unlimited' });
    pgs = freshPgSchema('linger');
    for (let i = 0; i < 3; i++) stores.push(await openStore(pgs.url));
    await stores[0]!.migrate();
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await pgs.drop();
    await brevo.close();
  });

  const delivery: DeliveryOptions = {
    maxAttempts: 5,
    backoffBaseMs: 100,
    backoffMaxMs: 1000,
    eventBatchSize: 200,
    contactBatchSize: 50,
    contactConcurrency: 4,
    leaseMs: 60_000,
    lanes: ['realtime'],
    lingerMs: LINGER_MS,
  };

  it(`a trickle of ${(1000 / TICK_MS) * EVENTS_PER_TICK} events/s for ${STREAM_MS / 1000} s: every event once, about one batch per second of stream`, async () => {
    const workers = [1, 2].map(
      (i) =>
        new Deliverer({
          store: stores[i]!,
          client: new BrevoClient({ baseUrl: brevo.url, apiKey: brevo.apiKey }),
          delivery,
          owner: `host:${i}:linger`,
          log: pino({ level: 'silent' }),
          metrics: createMetrics(),
        }),
    );
    for (const w of workers) w.start();
    const writer = stores[0]!;
    const total = (STREAM_MS / TICK_MS) * EVENTS_PER_TICK;
    try {
      for (let n = 0; n < total; n += EVENTS_PER_TICK) {
        const ops = Array.from({ length: EVENTS_PER_TICK }, (_, k) => event(`e${n + k}`, `r${(n + k) % 97}@example.com`));
        await writer.enqueue(ops, Date.now());
        await new Promise((r) => setTimeout(r, TICK_MS));
      }
      const deadline = Date.now() + 15_000;
      while (brevo.state().events.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    const keys = brevo.state().events.map((e) => e.event_properties?.event_key);
    expect(keys.length).toBe(total);
    expect(new Set(keys).size).toBe(total);
    const batches = brevo.stats().byRoute['POST /v3/events/batch'] ?? 0;
    const singles = brevo.stats().byRoute['POST /v3/events'] ?? 0;
    console.log(`[linger] ${total} events over ${STREAM_MS / 1000} s, two workers: ${batches} batches, ${singles} single events`);
    // One round per second of stream (and the tail). Without the linger the two workers made
    // 19 batches of this stream (a round per idle wait each); taking turns at the store is
    // checked on its own in postgres.itest.ts.
    expect(batches + singles).toBeLessThanOrEqual(STREAM_MS / LINGER_MS + 2);
  });
});
