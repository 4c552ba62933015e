// `npm run soak`: the long chaos run. Same harness as the bounded run of `npm test`
// (test/chaos.itest.ts), longer, with more kills, every Brevo fault kind and an outage of
// several minutes. Environment:
//   SOAK_MINUTES          length of the chaos phase per store (default 10)
//   SOAK_OUTAGE_MINUTES   the long Brevo outage within it (default 3; 0: none)
//   SOAK_STORES           sqlite,postgres (default both)
//   CHAOS_SEED            replays a run (printed at the start and in the table)
import { afterAll, describe, expect, it } from 'vitest';
import { ALL_FAULT_KINDS, chaosSeed, formatReports, runChaos, type ChaosOptions, type ChaosReport } from './harness.js';

function envNumber(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${v}`);
  return n;
}

const SEED = chaosSeed();
const MINUTES = envNumber('SOAK_MINUTES', 10);
const OUTAGE_MINUTES = envNumber('SOAK_OUTAGE_MINUTES', 3);
const STORES = (process.env.SOAK_STORES ?? 'sqlite,postgres').split(',').map((s) => s.trim()) as Array<ChaosOptions['store']>;
const reports: ChaosReport[] = [];

afterAll(() => {
  if (reports.length > 0) console.log(`[soak] seed ${SEED} (replay with CHAOS_SEED=${SEED})\n${formatReports(reports)}`);
});

describe('soak: kills and every Brevo fault kind, long run', () => {
  for (const [i, store] of STORES.entries()) {
    if (store !== 'sqlite' && store !== 'postgres') throw new Error(`SOAK_STORES: unknown store ${String(store)}`);
    const chaosMs = MINUTES * 60_000;
    const opts: ChaosOptions = {
      seed: SEED + i,
      store,
      // About 20 notifications a second over the run, and a backfill that outlasts several kills.
      notifications: Math.max(600, Math.round(chaosMs / 50)),
      recipients: 2000,
      contacts: 20_000,
      suppressions: 3_000,
      chaosMs,
      minKills: Math.max(20, Math.round(chaosMs / 6_000)),
      meanRunMs: 4_000,
      faultKinds: ALL_FAULT_KINDS,
      longOutageMs: Math.min(OUTAGE_MINUTES * 60_000, chaosMs * 0.6),
      drainMs: 15 * 60_000,
      backoffMax: '10s',
    };
    it(`${store}: ${MINUTES} min, nothing lost, nothing duplicated (seed ${opts.seed})`, async () => {
      const r = await runChaos(`soak-${store}`, opts);
      reports.push(r);
      console.log(formatReports([r]));
      expect(r.kills.serve + r.kills.backfill).toBeGreaterThanOrEqual(opts.minKills);
      for (const k of ['error', 'throttle', 'throttle_bare', 'hang', 'dropped_after_apply', 'malformed', 'dropped', 'outage']) {
        expect(r.faults[k] ?? 0, `fault ${k} never injected`).toBeGreaterThan(0);
      }
      expect(r.problems).toEqual([]);
      expect(r.lost).toBe(0);
      expect(r.duplicated).toBe(0);
      expect(r.failures).toBe(0);
    });
  }
});
