// Issue 14: commit-then-checkpoint, checked at named points instead of at random kill times
// (test/backfill-kill.itest.ts kills at seeded random moments and misses the window between
// "Brevo accepted the page before" and "the cursor moved"). The backfill's checkpoint hooks
// (BackfillOptions.checkpointHooks) run right after a page is queued and right after a cursor
// is saved; here they look at what Brevo holds at that instant, or stop the run there (by
// throwing), after which a new connector on the same store resumes it.
// SES and Brevo simulators on loopback; in-process connectors on SQLite files in a temp dir.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBrevoSim, type BrevoSim } from '../src/sim/brevo/index.js';
import { startSesSim, type SesSim } from '../src/sim/ses/index.js';
import { compareBackfill } from '../src/sim/oracle.js';
import { planBrevoOperations } from '../src/core/plan.js';
import type { Connector } from '../src/engine/connector.js';
import type { BackfillCheckpointHooks, BackfillPoint, StreamName } from '../src/engine/backfill.js';
import { extraListProblems, inProcessConnector, sleep, simConfig } from './backfill-helpers.js';

/** 2 lists of 2,000 contacts (two pages each) and 2,500 suppressions (three pages). */
const DATA = { lists: 2, topicsPerList: 2, contacts: 4_000, suppressions: 2_500, seed: 14 };
const STREAMS: StreamName[] = ['contact_lists', 'contacts', 'suppressions'];
/**
 * How long the first import request after a checkpoint is held before it reaches Brevo: far
 * longer than reading the next SES page (20 req/s here), so a cursor saved before Brevo has
 * accepted the page before it is saved while that page is certainly not all in Brevo.
 */
const IMPORT_HOLD_MS = 1_500;

let root: string;
let brevo: BrevoSim;
let sesSim: SesSim;
let seq = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tajo-bf-checkpoint-'));
  brevo = await startBrevoSim({ plan: 'general', importDelayMs: 20 });
  sesSim = await startSesSim({ rps: 20 });
  sesSim.generate(DATA);
});

afterAll(async () => {
  await brevo?.close();
  await sesSim?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

function freshConfig(): Record<string, unknown> {
  return simConfig({
    sesEndpoint: sesSim.endpoint,
    brevo: { url: brevo.url, apiKey: brevo.apiKey },
    db: join(root, `s${++seq}`, 'amazon-ses.db'),
    ses: { ses_rate_limit: 20 },
  });
}

/**
 * A fetch that holds /contacts/import requests until IMPORT_HOLD_MS after the first one since
 * `reopen()` (called at each checkpoint): a page's imports are held once, not each in turn.
 */
function holdingImports() {
  let gateUntil: number | undefined;
  const held = { count: 0 };
  const fetchImpl: typeof fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (init?.method === 'POST' && url.endsWith('/contacts/import')) {
      gateUntil ??= Date.now() + IMPORT_HOLD_MS;
      const wait = gateUntil - Date.now();
      if (wait > 0) {
        held.count++;
        await sleep(wait);
      }
    }
    return fetch(input, init);
  };
  return { fetchImpl, held, reopen: () => (gateUntil = undefined) };
}

async function started(cfg: Record<string, unknown>, fetchImpl?: typeof fetch): Promise<Connector> {
  const c = await inProcessConnector(cfg, fetchImpl ? { fetchImpl } : {});
  await c.start();
  return c;
}

async function delivered(c: Connector): Promise<void> {
  await c.waitIdle(60_000, { includeAwaiting: true });
  await brevo.settle();
}

/**
 * Checkpoint hooks that check, each time a cursor is saved, that Brevo holds every page
 * queued before the page that cursor points at (the page it points at is read again by a
 * resumed run, so it may still be on its way).
 */
function acceptedBeforeCheckpoint() {
  const unconfirmed: Array<BackfillPoint & { emails: string[] }> = [];
  const violations: string[] = [];
  const seen = { pages: 0, checkpoints: 0 };
  const hooks: Required<BackfillCheckpointHooks> = {
    afterEnqueue: (p) => {
      seen.pages++;
      unconfirmed.push(p);
    },
    afterCheckpoint: async (p) => {
      seen.checkpoints++;
      await brevo.settle();
      for (let i = unconfirmed.length - 1; i >= 0; i--) {
        const q = unconfirmed[i]!;
        if (q.stream === p.stream && q.cursor === p.cursor) continue;
        const missing = q.emails.filter((e) => !brevo.contact(e));
        if (missing.length === 0) unconfirmed.splice(i, 1);
        else
          violations.push(
            `${p.stream} cursor saved (${p.status}) while Brevo lacks ${missing.length} of a ${q.stream} page queued before it, e.g. ${missing[0]}`,
          );
      }
    },
  };
  return { hooks, violations, seen };
}

class InjectedStop extends Error {
  constructor(readonly at: BackfillPoint) {
    super(`stopped on purpose at ${at.stream} ${at.cursor}`);
  }
}

describe('backfill commit-then-checkpoint at named points', () => {
  // Every page checkpointed (checkpointRows 0), or every 2,000 rows read (the default cadence
  // is 10,000; these lists are small): contact_lists 1; contacts 4 pages, 2 lists done,
  // complete; suppressions 3 pages, complete. With 2,000: the first page of each list, the
  // third suppressions page and the ends.
  it.each([
    { checkpointRows: 0, checkpoints: 12 },
    { checkpointRows: 2_000, checkpoints: 9 },
  ])(
    'a cursor is saved only once Brevo has accepted every page queued before it (imports held 1.5 s after each checkpoint; checkpointRows $checkpointRows)',
    async ({ checkpointRows, checkpoints }) => {
      brevo.reset();
      const gate = holdingImports();
      const watch = acceptedBeforeCheckpoint();
      const c = await started(freshConfig(), gate.fetchImpl);
      try {
        const s = await c.backfill({
          streams: STREAMS,
          checkpointRows,
          checkpointHooks: {
            afterEnqueue: watch.hooks.afterEnqueue,
            afterCheckpoint: async (p) => {
              await watch.hooks.afterCheckpoint(p);
              gate.reopen();
            },
          },
        });
        expect(watch.violations).toEqual([]);
        expect(watch.seen).toEqual({ pages: 7, checkpoints });
        expect(gate.held.count).toBeGreaterThanOrEqual(checkpointRows === 0 ? 7 : 1);
        expect(s.streams.contacts?.read).toBe(DATA.contacts);
        expect(s.streams.suppressions?.read).toBe(DATA.suppressions);
        await delivered(c);
      } finally {
        await c.stop(5_000);
      }
      expect(compareBackfill(sesSim.data(), brevo.state()).problems).toEqual([]);
    },
    120_000,
  );

  // Every page checkpointed (checkpointRows 0). The second page of each stream: for contacts the last page of list-1 (the next cursor is
  // "list-1 done"), for suppressions the middle page (the next cursor is the third page's).
  const stops: Array<{ stream: 'contacts' | 'suppressions'; at: keyof BackfillCheckpointHooks; resumedReads: Partial<Record<StreamName, number>> }> = [
    { stream: 'contacts', at: 'afterEnqueue', resumedReads: { contacts: 3_000, suppressions: 2_500 } },
    { stream: 'contacts', at: 'afterCheckpoint', resumedReads: { contacts: 3_000, suppressions: 2_500 } },
    { stream: 'suppressions', at: 'afterEnqueue', resumedReads: { suppressions: 1_500 } },
    { stream: 'suppressions', at: 'afterCheckpoint', resumedReads: { suppressions: 1_500 } },
  ];

  it.each(stops)(
    'stopped at $at of the second $stream page, resumed by a new process: nothing read is lost',
    async ({ stream, at, resumedReads }) => {
      brevo.reset();
      const cfg = freshConfig();
      const watch = acceptedBeforeCheckpoint();
      let calls = 0;
      const stopAtSecond = (p: BackfillPoint) => {
        if (p.stream === stream && ++calls === 2) throw new InjectedStop({ stream: p.stream, cursor: p.cursor });
      };
      const checkpointHooks: BackfillCheckpointHooks = {
        afterEnqueue: async (p) => {
          await watch.hooks.afterEnqueue(p);
          if (at === 'afterEnqueue') stopAtSecond(p);
        },
        afterCheckpoint: async (p) => {
          await watch.hooks.afterCheckpoint(p);
          if (at === 'afterCheckpoint') stopAtSecond(p);
        },
      };
      const first = await started(cfg);
      let stop: InjectedStop | undefined;
      try {
        await first.backfill({ streams: STREAMS, checkpointHooks, checkpointRows: 0 }).catch((err: unknown) => {
          if (!(err instanceof InjectedStop)) throw err;
          stop = err;
        });
        expect(stop, 'the run was stopped at the hook').toBeDefined();
        // The run's cursor still points at the page it was on when it stopped.
        const kept = await first.store.getCursor(stream);
        expect(kept).toMatchObject({ value: stop!.at.cursor, status: 'failed' });
      } finally {
        // The first process ends here; what it queued and did not deliver, the next one finds in the store.
        await first.stop(5_000);
      }
      expect(watch.violations).toEqual([]);

      const second = await started(cfg);
      try {
        const streams = Object.keys(resumedReads) as StreamName[];
        const s = await second.backfill({ streams });
        for (const name of streams) expect(s.streams[name]?.read, `${name} read by the resumed run`).toBe(resumedReads[name]);
        await delivered(second);
      } finally {
        await second.stop(5_000);
      }
      const state = brevo.state();
      expect(compareBackfill(sesSim.data(), state).problems).toEqual([]);
      expect(extraListProblems(sesSim.data(), state)).toEqual([]);
    },
    120_000,
  );
});

describe('backfill --dry-run and the queue', () => {
  it('a dry run returns while backfill operations of an earlier run are still queued and no worker runs', async () => {
    brevo.reset();
    const c = await inProcessConnector(freshConfig());
    try {
      // What a killed real run leaves behind; this process only reads (`backfill --dry-run`).
      await c.store.migrate();
      const left = planBrevoOperations(
        [
          {
            kind: 'ses_suppression',
            key: 'ses-suppression:left@example.org',
            email: 'left@example.org',
            reason: 'BOUNCE',
            lastUpdated: new Date().toISOString(),
          },
        ],
        c.config.connectors['amazon-ses'],
        'backfill',
      );
      await c.store.enqueue(left, Date.now());
      const dry = c.backfill({ streams: ['suppressions'], dryRun: true });
      const timeout = sleep(15_000).then(() => 'still waiting' as const);
      const s = await Promise.race([dry, timeout]);
      expect(s, 'the dry run waited on a queue it added nothing to').not.toBe('still waiting');
      expect(s).toMatchObject({ dryRun: true, plan: { suppressions: DATA.suppressions } });
      expect(brevo.stats().requests).toBe(0);
    } finally {
      await c.stop(5_000);
    }
  }, 60_000);
});
