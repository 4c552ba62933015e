// One scheduler for a cluster: two `serve` processes on one PostgreSQL schema; only the
// holder of the scheduler lease runs the scheduled suppression sync. SIGKILLed midway, it
// is replaced by the other process, which finishes the sync from its cursor; SES (at its
// own 1 request/s) never throttled anyone, so the two never read it at once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrevoSim, type BrevoSim } from '../src/sim/brevo/index.js';
import { startSesSim, type SesSim } from '../src/sim/ses/index.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { freePort, spawnServe, until, writeServeConfig, type ServeProcess } from './helpers.js';
import { childEnv, ensureBuilt } from './backfill-helpers.js';
import { freshPgSchema, type PgSchema } from './pg.js';

const SUPPRESSIONS = 12_000;

describe('the scheduled sync runs in one process and survives its SIGKILL', () => {
  let brevo: BrevoSim;
  let ses: SesSim;
  let dir: string;
  let pgs: PgSchema;
  const serves: ServeProcess[] = [];

  beforeAll(async () => {
    ensureBuilt();
    brevo = await startBrevoSim({ plan: 'unlimited', importDelayMs: 100 });
    ses = await startSesSim({ rps: 1 });
    ses.generate({ lists: 0, topicsPerList: 0, contacts: 0, suppressions: SUPPRESSIONS, seed: 7 });
    dir = mkdtempSync(join(tmpdir(), 'tajo-cluster-sched-'));
    pgs = freshPgSchema('sched');
  });
  afterAll(async () => {
    for (const s of serves) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await Promise.all(serves.map((s) => s.exited()));
    await pgs.drop();
    await ses.close();
    await brevo.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the leaseholder is SIGKILLed during the suppression sync; the other process takes over and finishes it', async () => {
    const env = childEnv(dir);
    const start = async (name: string) => {
      const port = await freePort();
      const path = writeServeConfig({
        dir,
        name,
        port,
        brevo: { url: brevo.url, apiKey: brevo.apiKey, plan: 'extended' },
        storeUrl: pgs.url,
        ses: {
          endpoint: ses.endpoint,
          sync: { suppressions: true, contacts: false, account: false },
          schedule: { suppressions: '1h' },
          // A cursor at every page of 1,000: the takeover resumes from the page the dead one reached.
          backfill: { checkpoint_rows: 1_000 },
        },
      });
      const s = spawnServe(path, env);
      serves.push(s);
      await s.ready(port);
      return s;
    };
    const a = await start('a');
    await until(() => a.logs().includes('scheduler lease taken'), 'the first process leads');
    const b = await start('b');
    await until(() => ses.calls().ListSuppressedDestinations! >= 3, 'the sync under way', 30_000, 100);
    expect(b.logs()).not.toContain('scheduler lease taken');
    a.child.kill('SIGKILL');
    await a.exited();
    const readBeforeKill = ses.calls().ListSuppressedDestinations!;
    expect(readBeforeKill).toBeLessThan(SUPPRESSIONS / 1000);
    await until(() => b.logs().includes('scheduler lease taken'), 'the other process takes the scheduler over', 30_000, 100);
    const store = await PostgresStore.connect(pgs.url);
    try {
      await until(async () => (await store.getCursor('suppressions'))?.status === 'complete', 'the sync finished by the other process', 45_000, 200).catch(
        (err: unknown) => {
          throw new Error(`${(err as Error).message}\n${b.logs().slice(-3000)}`);
        },
      );
      // Every page was read once more at most (the one in flight at the kill).
      expect(ses.calls().ListSuppressedDestinations).toBeLessThanOrEqual(SUPPRESSIONS / 1000 + 2);
      expect((await store.getLease('scheduler'))?.owner).toMatch(new RegExp(`:${b.child.pid}:`));
    } finally {
      await store.close();
    }
    expect(ses.throttled()).toBe(0);
  });
});
