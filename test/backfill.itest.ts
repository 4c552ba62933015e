// Issue: audience backfill from the SES API into Brevo.
import { describe, it, expect, beforeAll } from 'vitest';
import { join } from 'node:path';
import { pino } from 'pino';
import type { BrevoSim } from '../src/sim/brevo/index.js';
import type { SesSim } from '../src/sim/ses/index.js';
import { compareBackfill } from '../src/sim/oracle.js';
import { parseConfig } from '../src/config/load.js';
import { createConnector, type Connector } from '../src/engine/connector.js';
import { useSims } from './helpers.js';

const CREDS = { accessKeyId: 'AKIDSIM', secretAccessKey: 'sim-secret' };

export async function backfillStack(dir: string, brevo: BrevoSim, sesSim: SesSim, name = 'bf.db'): Promise<Connector> {
  const cfg = parseConfig({
    connectors: { 'amazon-ses': { region: 'us-east-1', endpoint: sesSim.endpoint, sns: { topic_arns: [] } } },
    brevo: { api_key: brevo.apiKey, base_url: brevo.url },
    store: { url: `sqlite:${join(dir, name)}` },
    delivery: { backoff_base: '100ms', backoff_max: '2s' },
  });
  return createConnector(cfg, { logger: pino({ level: 'silent' }), ses: { credentials: CREDS } });
}

describe('backfill', () => {
  const sims = useSims({ brevo: { plan: 'general', importDelayMs: 20 }, ses: { rps: 1 }, tmpDir: 'tajo-bf-' });
  beforeAll(() => {
    sims.ses.generate({ lists: 2, topicsPerList: 2, contacts: 25_000, suppressions: 3_000, seed: 3 });
  });

  it('25,000 contacts over 2 lists with 4 topics and 3,000 suppressions land in Brevo exactly', async () => {
    const c = await backfillStack(sims.dir, sims.brevo, sims.ses);
    try {
      await c.start();
      const summary = await c.backfill();
      expect(summary.streams.contacts?.read).toBe(25_000);
      expect(summary.streams.suppressions?.read).toBe(3_000);
      await c.waitIdle(120_000);
      await sims.brevo.settle();
      const cmp = compareBackfill(sims.ses.data(), sims.brevo.state());
      expect(cmp.problems).toEqual([]);
      expect(cmp.checked.contacts).toBe(25_000);
      expect(await c.store.listFailures({ limit: 10 })).toEqual([]);
      // No SES call was refused for good: throttling is absorbed by the limiter.
      expect(sims.brevo.state().events).toEqual([]);

      // A second run after 50 new suppressions reads only the new window and blocklists exactly those.
      const before = new Set(
        Object.values(sims.brevo.state().contacts)
          .filter((x) => x.emailBlacklisted)
          .map((x) => x.email),
      );
      const later = new Date(Date.now() + 1000);
      sims.ses.seed({
        suppressions: Array.from({ length: 50 }, (_, i) => ({ email: `late-${i}@example.org`, reason: 'BOUNCE' as const, lastUpdated: later })),
      });
      await new Promise((r) => setTimeout(r, 1100));
      sims.ses.resetCalls();
      const second = await c.backfill({ streams: ['suppressions'] });
      expect(second.streams.suppressions?.read).toBe(50);
      expect(sims.ses.calls()).toEqual({ ListSuppressedDestinations: 1 });
      await c.waitIdle(60_000);
      await sims.brevo.settle();
      const after = Object.values(sims.brevo.state().contacts)
        .filter((x) => x.emailBlacklisted)
        .map((x) => x.email);
      const added = after.filter((e) => !before.has(e));
      expect(added.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `late-${i}@example.org`).sort());
    } finally {
      await c.stop();
    }
  });
});
