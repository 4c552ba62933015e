// Issue 9, point 3: Brevo's hourly "other" bucket (100 calls: GET /v3/processes, lists,
// folders, and here /v3/events/batch too) is spent on purpose. Following imports takes a
// fixed share of it, paced through the store, and never holds up a run: a 20,000-contact
// backfill killed twice, then an incremental run that ends within a minute; a 30,000-event
// drain with zero 429s; both at no more than one Brevo call per 100 rows or events.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBrevoSim, type BrevoSim, type BrevoSimStats } from '../src/sim/brevo/index.js';
import { startSesSim } from '../src/sim/ses/index.js';
import { realisticMix } from '../src/sim/ses-events/index.js';
import { compareBackfill, compareWithBrevo, expectedBrevoState } from '../src/sim/oracle.js';
import { parseSesNotification } from '../src/ses/parse.js';
import { parseConfig } from '../src/config/load.js';
import type { StatusReport } from '../src/engine/status.js';
import type { Connector } from '../src/engine/connector.js';
import { FOLLOW_SHARE } from '../src/engine/imports.js';
import { childEnv, ensureBuilt, inProcessConnector, runCli, simConfig, sleep, spawnCli, TOPIC, until, writeConfig, type Spawned } from './backfill-helpers.js';
import { freshPgSchema } from './pg.js';

const CONTACTS = 20_000;
const SUPPRESSIONS = 600;
/** GET /v3/processes calls an hour the follow-ups may make on the general plan (100 an hour). */
const FOLLOW_PER_HOUR = Math.floor(100 * FOLLOW_SHARE);

const calls = (s: BrevoSimStats) => Object.values(s.byRoute).reduce((a, n) => a + n, 0);

describe('the hourly "other" budget, spent on purpose (batch endpoint counted in it)', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  it('a 20,000-contact backfill killed twice, then an incremental run that ends within a minute: no 429, at most 1 call per 100 rows', async () => {
    ensureBuilt();
    const brevo = await startBrevoSim({ plan: 'general', importDelayMs: 800, eventsBatchBucket: 'other' });
    const ses = await startSesSim({ rps: 1 });
    const pgs = freshPgSchema('hourly');
    const dir = mkdtempSync(join(tmpdir(), 'tajo-hourly-bf-'));
    let running: Spawned | undefined;
    cleanup.push(async () => {
      running?.child.kill('SIGKILL');
      await brevo.close();
      await ses.close();
      await pgs.drop();
      rmSync(dir, { recursive: true, force: true });
    });
    ses.generate({ lists: 2, topicsPerList: 2, contacts: CONTACTS, suppressions: SUPPRESSIONS, seed: 909 });
    ses.seed({ identities: [{ name: 'example.com' }] });
    const configPath = writeConfig(join(dir, 'tajo.yaml'), {
      ...simConfig({ sesEndpoint: ses.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: 'unused' }),
      store: { url: pgs.url },
    });
    const env = childEnv(dir);
    const backfill = () => spawnCli(['backfill', '--json', '--config', configPath], { cwd: dir, env });

    // Two kills: in the contacts stream, then in the suppressions stream.
    for (const [op, ms] of [
      ['ListContacts', 6_000],
      ['ListSuppressedDestinations', 300],
    ] as const) {
      const before = ses.calls()[op] ?? 0;
      const r = backfill();
      running = r;
      await until(() => (ses.calls()[op] ?? 0) > before || r.child.exitCode !== null, `first ${op} call`, 120_000, 20);
      await sleep(ms);
      expect(r.child.exitCode, `the run ended before the kill: ${r.output().slice(-2000)}`).toBeNull();
      r.child.kill('SIGKILL');
      expect((await r.exited).signal).toBe('SIGKILL');
      running = undefined;
    }

    const last = backfill();
    running = last;
    const done = await Promise.race([last.exited, sleep(240_000).then(() => ({ code: -1, signal: null }))]);
    expect(done.code, last.output().slice(-3000)).toBe(0);
    running = undefined;

    // The next run reads SES again (the contacts stream has no incremental cursor) and finds
    // nothing to write: it must not wait on imports the hourly budget cannot follow yet.
    const t0 = Date.now();
    const incremental = backfill();
    running = incremental;
    const inc = await Promise.race([incremental.exited, sleep(120_000).then(() => ({ code: -1, signal: null }))]);
    const incrementalMs = Date.now() - t0;
    expect(inc.code, incremental.output().slice(-3000)).toBe(0);
    running = undefined;
    expect(incrementalMs, 'the incremental backfill ends within a minute').toBeLessThan(60_000);

    await brevo.settle();
    const state = brevo.state();
    const cmp = compareBackfill(ses.data(), state);
    expect(cmp.problems).toEqual([]);
    expect(cmp.checked.contacts).toBe(CONTACTS);
    const stats = brevo.stats();
    expect(stats.throttled).toBe(0);
    const total = calls(stats);
    expect(total).toBeLessThanOrEqual((CONTACTS + SUPPRESSIONS) / 100);
    // Following imports kept to its share of the hour, whatever the number of runs.
    expect(stats.byRoute['GET /v3/processes'] ?? 0).toBeLessThanOrEqual(FOLLOW_PER_HOUR);
    const st = JSON.parse((await runCli(['status', '--json', '--config', configPath], { cwd: dir, env })).stdout.trim().split('\n').pop()!) as StatusReport;
    expect(st.deadLetters).toBe(0);
    console.log(
      `[hourly-budget] backfill: ${state.processes.length} imports for ${CONTACTS + SUPPRESSIONS} rows, ${total} Brevo calls ` +
        `(${JSON.stringify(stats.byRoute)}), incremental run ${incrementalMs} ms, 429s ${stats.throttled}`,
    );
  }, 600_000);

  /** Stored envelopes (as the webhook leaves them) drained by one connector on PostgreSQL. */
  async function drain(o: { n: number; batchBucket: 'events' | 'other' }): Promise<{ brevo: BrevoSim; stats: BrevoSimStats; connector: Connector }> {
    const brevo = await startBrevoSim({ plan: 'general', importDelayMs: 800, eventsBatchBucket: o.batchBucket });
    const pgs = freshPgSchema('drain');
    cleanup.push(async () => {
      await brevo.close();
      await pgs.drop();
    });
    const doc = {
      ...simConfig({ sesEndpoint: 'http://127.0.0.1:9', brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: 'unused' }),
      connectors: { 'amazon-ses': { region: 'us-east-1', sync: { contacts: false, suppressions: false, account: false }, sns: { topic_arns: [TOPIC] } } },
      store: { url: pgs.url },
    };
    const payloads = realisticMix(o.n, { recipients: Math.round(o.n / 8), seed: o.n });
    const connector = await inProcessConnector(doc);
    cleanup.push(() => connector.stop(5_000));
    await connector.store.migrate();
    for (let i = 0; i < payloads.length; i += 5000) {
      await connector.store.insertInbox(
        payloads.slice(i, i + 5000).map((p, j) => ({
          messageId: `m-${i + j}`,
          source: 'sns',
          topicArn: TOPIC,
          receivedAt: Date.now(),
          body: JSON.stringify({
            Type: 'Notification',
            MessageId: `m-${i + j}`,
            TopicArn: TOPIC,
            Message: JSON.stringify(p),
            Timestamp: new Date().toISOString(),
          }),
        })),
      );
    }
    const exp = expectedBrevoState(
      payloads.flatMap((p) => parseSesNotification(p).records),
      parseConfig(doc, { requireBrevoKey: false, env: {} }).connectors['amazon-ses'].events,
    );
    await connector.start();
    await until(
      async () => {
        await brevo.settle();
        const st = brevo.state();
        return st.events.length >= exp.events.size && compareWithBrevo(exp, st).ok;
      },
      `${o.n} events drained into Brevo`,
      420_000,
      500,
    );
    return { brevo, stats: brevo.stats(), connector };
  }

  it('a 30,000-event drain, the batch endpoint in the hourly bucket: batches within their share, no 429, at most 1 call per 100 events', async () => {
    const { stats } = await drain({ n: 30_000, batchBucket: 'other' });
    console.log(`[hourly-budget] 30,000-event drain (batch in the hourly bucket): ${calls(stats)} calls ${JSON.stringify(stats.byRoute)}`);
    expect(stats.throttled).toBe(0);
    expect(calls(stats)).toBeLessThanOrEqual(300);
    // Batches keep to their share of the hour (65 of 100), follow-ups to theirs (25).
    expect(stats.byRoute['POST /v3/events/batch'] ?? 0).toBeLessThanOrEqual(65);
    expect(stats.byRoute['GET /v3/processes'] ?? 0).toBeLessThanOrEqual(FOLLOW_PER_HOUR);
  }, 600_000);
});
