// Three connectors on one PostgreSQL schema share the Brevo account's budget: together they
// never send more than the plan allows, so Brevo answers no 429 (each alone paces at the
// plan's rate, so three of them with their own budget would send three times too much).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { event } from '../src/store/contract.js';
import type { Connector } from '../src/engine/connector.js';
import { formatStatus } from '../src/cli/main.js';
import { startSims, until, type Sims } from './helpers.js';
import { inProcessConnector, simConfig } from './backfill-helpers.js';
import { freshPgSchema, type PgSchema } from './pg.js';

const T0 = Date.parse('2026-11-30T12:00:00Z');
const EVENTS = 90;

describe('one Brevo budget for a cluster on PostgreSQL', () => {
  let sims: Sims;
  let pgs: PgSchema;
  const connectors: Connector[] = [];
  beforeAll(async () => {
    sims = await startSims({ brevo: { plan: 'general' }, tmpDir: 'tajo-cluster-budget-' });
    pgs = freshPgSchema('cluster');
  });
  afterAll(async () => {
    for (const c of connectors.splice(0)) await c.stop(2_000).catch(() => undefined);
    await pgs.drop();
    await sims.stop();
  });

  it('three connectors send 90 single events at no more than 10/s together: zero 429s', async () => {
    const brevo = sims.brevo;
    const cfg = {
      ...simConfig({ sesEndpoint: 'http://127.0.0.1:9', brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: 'unused' }),
      store: { url: pgs.url },
      // One event per call: every event spends one request of the 10/s events bucket.
      delivery: { backoff_base: '100ms', backoff_max: '2s', batch_size: 1 },
    };
    for (let i = 0; i < 3; i++) connectors.push(await inProcessConnector(cfg, { ensureAttributes: false }));
    await connectors[0]!.store.migrate();
    await connectors[0]!.store.enqueue(
      Array.from({ length: EVENTS }, (_, i) => event(`ev-${i}`, `r${i % 30}@example.com`)),
      T0,
    );
    await Promise.all(connectors.map((c) => c.start()));
    await until(() => brevo.state().events.length === EVENTS, `${EVENTS} events in Brevo`, 40_000, 200);
    const stats = brevo.stats();
    expect(stats.throttled).toBe(0);
    expect(stats.byRoute['POST /v3/events']).toBe(EVENTS);
    // Every connector took part, each through the shared budget.
    const granted = connectors.map((c) => c.governor.sharedStats()?.granted ?? 0);
    expect(granted.reduce((a, n) => a + n, 0)).toBeGreaterThanOrEqual(EVENTS);
    expect(granted.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    const used = (await connectors[0]!.store.budgetStatus()).buckets.find((b) => b.bucket === 'events');
    expect(used?.windows.map((w) => w.limit)).toContain(10);

    // status and /admin/status show the cluster: the three processes and the shared budget.
    const st = await connectors[1]!.status();
    expect(
      st.cluster.processes
        .filter((p) => p.alive)
        .map((p) => p.owner)
        .sort(),
    ).toEqual(connectors.map((c) => c.owner).sort());
    expect(st.cluster.processes[0]).toMatchObject({ host: expect.any(String), pid: process.pid, role: 'connector' });
    const events = st.cluster.budget.find((b) => b.bucket === 'events');
    expect(events?.windows.find((w) => w.limit === 10)).toBeDefined();
    expect(st.cluster.budget.find((b) => b.bucket === 'events')?.windows.some((w) => w.windowMs > 1000 && w.used === EVENTS)).toBe(true);
    const text = formatStatus(st);
    expect(text).toContain('Processes on this store:');
    expect(text).toContain(connectors[2]!.owner);
    expect(text).toMatch(/Shared Brevo budget \(every process\):\n.*\n.*events +\d+\/10 per 1s, 90\/36000 per 3600s/);
    // A stopped process leaves the list.
    await connectors[2]!.stop(2_000);
    connectors.pop();
    expect((await connectors[0]!.status()).cluster.processes).toHaveLength(2);
  });
});
