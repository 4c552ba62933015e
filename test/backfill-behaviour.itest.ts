// Issue: backfill behaviour an operator relies on: --dry-run writes nothing, expired SES
// paging tokens and SES throttling are absorbed, incremental suppression runs are cheap,
// bad input is reported (exit codes, dead letters), and a failed run keeps its cursor.
// SES and Brevo simulators on loopback; in-process connectors and `tajo-ses` child processes
// on SQLite files in temp dirs; judged on the Brevo simulator's state.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { startBrevoSim, type BrevoSim } from '../src/sim/brevo/index.js';
import { startSesSim, type SesSim } from '../src/sim/ses/index.js';
import { compareBackfill } from '../src/sim/oracle.js';
import type { Connector } from '../src/engine/connector.js';
import type { BackfillSummary } from '../src/engine/backfill.js';
import type { StatusReport } from '../src/engine/status.js';
import type { FailureView } from '../src/engine/failures.js';
import {
  childEnv,
  ensureBuilt,
  extraListProblems,
  inProcessConnector,
  runCli,
  simConfig,
  spawnCli,
  totalWrites,
  until,
  writeConfig,
  writeRequests,
} from './backfill-helpers.js';

let root: string;
let env: Record<string, string>;

beforeAll(() => {
  ensureBuilt();
  root = mkdtempSync(join(tmpdir(), 'tajo-bf-behaviour-'));
  env = childEnv(root);
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

let seq = 0;
/** A fresh SQLite path for each scenario. */
function freshDb(): string {
  return join(root, `s${++seq}`, 'amazon-ses.db');
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Runs `fn` with a connector over the simulators; always stops it (and closes its store). */
async function withConnector<T>(
  cfg: Record<string, unknown>,
  fn: (c: Connector) => Promise<T>,
  opts: { start?: boolean; fetchImpl?: typeof fetch } = {},
): Promise<T> {
  const c = await inProcessConnector(cfg, opts.fetchImpl ? { fetchImpl: opts.fetchImpl } : {});
  try {
    if (opts.start === false) await c.store.migrate();
    else await c.start();
    return await fn(c);
  } finally {
    await c.stop(5_000);
  }
}

/** A complete (non-dry) backfill, then waits for Brevo to apply it. */
async function fullRun(c: Connector, brevo: BrevoSim, opts: Parameters<Connector['backfill']>[0] = {}): Promise<BackfillSummary> {
  const s = await c.backfill(opts);
  // Until Brevo has finished the accepted imports (their invalid rows become dead letters).
  await c.waitIdle(60_000, { includeAwaiting: true });
  await brevo.settle();
  return s;
}

function lastJson<T>(stdout: string): T {
  const lines = stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'));
  return JSON.parse(lines[lines.length - 1]!) as T;
}

describe('backfill --dry-run', () => {
  let brevo: BrevoSim;
  let sesSim: SesSim;
  beforeAll(async () => {
    brevo = await startBrevoSim({ plan: 'general', importDelayMs: 50 });
    sesSim = await startSesSim({ rps: 1 });
    // 2 lists of 750 contacts (one page each) and 1,500 suppressions (two pages).
    sesSim.generate({ lists: 2, topicsPerList: 2, contacts: 1_500, suppressions: 1_500, seed: 5 });
  });
  afterAll(async () => {
    await brevo?.close();
    await sesSim?.close();
  });

  function expectedPlan() {
    const d = sesSim.data();
    const lists: Record<string, number> = {};
    let unsub = 0;
    for (const c of d.contacts) {
      const l = d.contactLists.find((x) => x.name === c.list)!;
      lists[c.list] = (lists[c.list] ?? 0) + 1;
      if (c.unsubscribeAll) {
        unsub++;
        continue;
      }
      for (const t of l.topics)
        if ((c.topicPreferences[t.name] ?? t.defaultSubscriptionStatus) === 'OPT_IN')
          lists[`${c.list} / ${t.name}`] = (lists[`${c.list} / ${t.name}`] ?? 0) + 1;
    }
    return { contacts: d.contacts.length, suppressions: d.suppressions.length, blocklisted: unsub + d.suppressions.length, lists };
  }

  it('connector.backfill({ dryRun: true }) plans counts and a sample and writes nothing', async () => {
    brevo.reset();
    const cfg = simConfig({ sesEndpoint: sesSim.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: freshDb() });
    await withConnector(
      cfg,
      async (c) => {
        const s = await c.backfill({ dryRun: true });
        const exp = expectedPlan();
        expect(s.dryRun).toBe(true);
        expect(s.plan).toMatchObject({ contacts: exp.contacts, suppressions: exp.suppressions, blocklisted: exp.blocklisted, lists: exp.lists });
        expect(s.plan!.sample.length).toBeGreaterThan(0);
        expect(s.streams.contacts?.read).toBe(exp.contacts);
        expect(s.streams.suppressions?.read).toBe(exp.suppressions);
        expect(s.streams.contacts?.written).toBe(0);
        // No operation queued, nothing sent to Brevo (not even a read).
        expect((await c.store.stats()).ops).toEqual([]);
      },
      { start: false },
    );
    expect(brevo.stats().requests).toBe(0);
    const st = brevo.state();
    expect(st.folders).toEqual([]);
    expect(st.lists).toEqual([]);
    expect(st.contacts).toEqual({});
  }, 90_000);

  it('tajo-ses backfill --dry-run prints the planned counts and a sample, writes nothing and queues nothing', async () => {
    brevo.reset();
    const dir = mkdtempSync(join(root, 'dry-cli-'));
    const configPath = writeConfig(
      join(dir, 'tajo.yaml'),
      simConfig({ sesEndpoint: sesSim.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: join(dir, 'amazon-ses.db') }),
    );
    const r = await runCli(['backfill', '--dry-run', '--config', configPath], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    const exp = expectedPlan();
    expect(r.stdout).toContain('dry run: nothing is written');
    expect(r.stdout).toContain(`Dry run: would write ${exp.contacts} contacts and ${exp.suppressions} suppressions; ${exp.blocklisted} blocklisted`);
    for (const [l, n] of Object.entries(exp.lists)) expect(r.stdout).toContain(`list ${l}: ${n}`);
    expect(r.stdout).toMatch(/Sample:\n\s+\{"email":"[^"]+@/);
    expect(brevo.stats().requests).toBe(0);
    expect(Object.keys(brevo.state().contacts)).toHaveLength(0);
    const st = await runCli(['status', '--json', '--config', configPath], { cwd: dir, env });
    expect(st.code).toBe(0);
    const report = lastJson<StatusReport>(st.stdout);
    expect(report.queues).toEqual([]);
    expect(report.deadLetters).toBe(0);
  }, 90_000);

  it('a real backfill after --dry-run reads every suppression (a dry run never moves a cursor)', async () => {
    brevo.reset();
    const cfg = simConfig({ sesEndpoint: sesSim.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: freshDb() });
    const real = await withConnector(cfg, async (c) => {
      await c.backfill({ dryRun: true });
      return fullRun(c, brevo);
    });
    // The real run must read (and write) the whole suppression list: the dry run wrote nothing.
    expect.soft(real.streams.suppressions?.read).toBe(1_500);
    expect(compareBackfill(sesSim.data(), brevo.state()).problems).toEqual([]);
  }, 120_000);
});

describe('backfill over SES paging and throttling', () => {
  let brevo: BrevoSim;
  beforeAll(async () => {
    brevo = await startBrevoSim({ plan: 'general', importDelayMs: 50 });
  });
  afterAll(async () => {
    await brevo?.close();
  });

  it('expired NextTokens mid-run: the list and the suppression window are read again and the end state is exact', async () => {
    brevo.reset();
    const sesSim = await startSesSim({ rps: 1 });
    try {
      // 2 lists of 2,000 (two pages each), 2,500 suppressions (three pages).
      sesSim.generate({ lists: 2, topicsPerList: 2, contacts: 4_000, suppressions: 2_500, seed: 8 });
      const cfg = simConfig({ sesEndpoint: sesSim.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: freshDb() });
      const expired: string[] = [];
      const s = await withConnector(cfg, async (c) => {
        const summary = await c.backfill(
          {},
          {
            onProgress: (p) => {
              // After the first page of list-1 and the first page of suppressions, every token dies.
              if ((p.stream === 'contacts' && p.read === 1_000) || (p.stream === 'suppressions' && p.read === 1_000)) {
                if (!expired.includes(p.stream)) {
                  expired.push(p.stream);
                  sesSim.expireTokens();
                }
              }
            },
          },
        );
        await c.waitIdle(60_000, { includeAwaiting: true });
        await brevo.settle();
        return summary;
      });
      expect(expired).toEqual(['contacts', 'suppressions']);
      expect(s.streams.contacts?.restarts).toBeGreaterThan(0);
      expect(s.streams.suppressions?.restarts).toBeGreaterThan(0);
      // The expired page is read again from the start of its list / window.
      expect(s.streams.contacts?.read).toBe(5_000);
      expect(s.streams.suppressions?.read).toBe(3_500);
      const state = brevo.state();
      const data = sesSim.data();
      expect(compareBackfill(data, state).problems).toEqual([]);
      expect(extraListProblems(data, state)).toEqual([]);
      expect(state.events).toEqual([]);
      expect(brevo.stats().status['400'] ?? 0).toBe(0);
    } finally {
      await sesSim.close();
    }
  }, 120_000);

  it('SES at 1 req/s while ses_rate_limit is 5: TooManyRequestsException happens, the SDK retries absorb it, the end state is exact', async () => {
    brevo.reset();
    const sesSim = await startSesSim({ rps: 1 });
    try {
      sesSim.generate({ lists: 2, topicsPerList: 2, contacts: 3_000, suppressions: 1_500, seed: 13 });
      const cfg = simConfig({ sesEndpoint: sesSim.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: freshDb(), ses: { ses_rate_limit: 5 } });
      const t0 = Date.now();
      const s = await withConnector(cfg, (c) => fullRun(c, brevo));
      const ms = Date.now() - t0;
      expect(sesSim.throttled()).toBeGreaterThan(0);
      expect(s.streams.contacts?.read).toBe(3_000);
      expect(s.streams.suppressions?.read).toBe(1_500);
      const state = brevo.state();
      expect(compareBackfill(sesSim.data(), state).problems).toEqual([]);
      expect(extraListProblems(sesSim.data(), state)).toEqual([]);
      console.log(
        `[backfill-behaviour] throttling: ${sesSim.throttled()} TooManyRequestsException, accepted calls ${JSON.stringify(sesSim.calls())}, ${ms} ms`,
      );
    } finally {
      await sesSim.close();
    }
  }, 120_000);

  it('incremental suppressions: a second run with nothing new makes one ListSuppressedDestinations call and writes nothing', async () => {
    brevo.reset();
    const sesSim = await startSesSim({ rps: 1 });
    try {
      sesSim.generate({ lists: 1, topicsPerList: 2, contacts: 800, suppressions: 1_500, seed: 21 });
      const cfg = simConfig({ sesEndpoint: sesSim.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: freshDb() });
      await withConnector(cfg, async (c) => {
        await fullRun(c, brevo);
        expect(compareBackfill(sesSim.data(), brevo.state()).problems).toEqual([]);
        const processes = brevo.state().processes.length;
        const writes = totalWrites(brevo.stats());
        sesSim.resetCalls();
        const second = await fullRun(c, brevo, { streams: ['suppressions'] });
        expect(sesSim.calls()).toEqual({ ListSuppressedDestinations: 1 });
        expect(second.streams.suppressions).toMatchObject({ read: 0, written: 0, pages: 1 });
        expect(brevo.state().processes.length).toBe(processes);
        expect(totalWrites(brevo.stats()), JSON.stringify(writeRequests(brevo.stats()))).toBe(writes);
        const cursor = await c.store.getCursor('suppressions');
        expect(cursor?.status).toBe('complete');
        const runs = (await c.status()).syncRuns;
        expect(runs.map((r) => [r.streams.join(','), r.error])).toEqual([
          ['suppressions', null],
          ['account,contact_lists,contacts,suppressions', null],
        ]);
        expect(runs[0]!.read).toBe(0);
        expect(runs[1]!.read).toBeGreaterThanOrEqual(800 + 1_500);
      });
    } finally {
      await sesSim.close();
    }
  }, 120_000);
});

describe('backfill failures an operator sees', () => {
  let brevo: BrevoSim;
  let sesSim: SesSim;
  beforeAll(async () => {
    brevo = await startBrevoSim({ plan: 'general', importDelayMs: 50 });
    sesSim = await startSesSim({ rps: 1 });
  });
  afterAll(async () => {
    await brevo?.close();
    await sesSim?.close();
  });

  it('--stream nope exits 2 and names the allowed streams', async () => {
    const dir = mkdtempSync(join(root, 'stream-'));
    const configPath = writeConfig(
      join(dir, 'tajo.yaml'),
      simConfig({ sesEndpoint: sesSim.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: join(dir, 'amazon-ses.db') }),
    );
    const r = await runCli(['backfill', '--stream', 'nope', '--config', configPath], { cwd: dir, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('"nope"');
    for (const s of ['contact_lists', 'contacts', 'suppressions', 'account']) expect(r.stderr).toContain(s);
    const ok = await runCli(['backfill', '--stream', 'contacts', '--stream', 'nope', '--config', configPath], { cwd: dir, env });
    expect(ok.code).toBe(2);
  });

  it('an unreachable SES endpoint exits 1 with a message and keeps the cursor; the next run resumes from it', async () => {
    brevo.reset();
    sesSim.seed({
      contactLists: [{ name: 'news', topics: [{ name: 'weekly', defaultSubscriptionStatus: 'OPT_OUT' }] }],
      contacts: Array.from({ length: 3_000 }, (_, i) => ({
        list: 'news',
        email: `reader${i}@example.com`,
        ...(i % 3 === 0 ? { topicPreferences: { weekly: 'OPT_IN' as const } } : {}),
      })),
    });
    const dir = mkdtempSync(join(root, 'unreachable-'));
    const db = join(dir, 'amazon-ses.db');
    // A cursor saved at every page of 1,000 (the default is every 10,000 rows).
    const perPage = { backfill: { checkpoint_rows: 1_000 } };
    const good = simConfig({ sesEndpoint: sesSim.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db, ses: perPage });
    // A first run stopped after two of the three pages leaves a cursor with a token.
    const abort = new AbortController();
    await withConnector(good, async (c) => {
      await c.backfill({ streams: ['contact_lists', 'contacts'] }, { signal: abort.signal, onProgress: (p) => p.read >= 2_000 && abort.abort() });
      await c.waitIdle(60_000);
    });
    const before = await withConnector(good, async (c) => c.store.getCursor('contacts'), { start: false });
    expect(before?.status).toBe('running');
    expect(JSON.parse(before!.value!)).toMatchObject({ list: 'news', token: expect.any(String) });

    const badPath = writeConfig(
      join(dir, 'bad.yaml'),
      simConfig({ sesEndpoint: `http://127.0.0.1:${await closedPort()}`, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db, ses: perPage }),
    );
    const r = await runCli(['backfill', '--stream', 'contacts', '--config', badPath], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/backfill failed: .*ListContacts/);
    expect(r.stderr).toMatch(/ECONNREFUSED|connect/i);
    expect(r.stderr).toContain('The cursor is kept');
    const st = lastJson<StatusReport>((await runCli(['status', '--json', '--config', badPath], { cwd: dir, env })).stdout);
    const after = st.streams.find((c) => c.stream === 'contacts');
    expect(after?.value).toBe(before!.value);
    expect(after?.status).toBe('failed');
    expect(after?.note).toMatch(/ListContacts/);
    // The sync history (dashboard, /metrics): the failed CLI run, then the stopped one, newest first.
    expect(st.syncRuns.map((x) => [x.streams.join(','), x.read])).toEqual([
      ['contacts', 0],
      ['contact_lists,contacts', 2_001], // the list, then two pages of 1,000
    ]);
    expect(st.syncRuns[0]!.error).toMatch(/ListContacts/);
    expect(st.syncRuns[1]!.error).toMatch(/^stopped before the end/);
    expect(st.syncRuns[0]!.endedAt).toBeGreaterThanOrEqual(st.syncRuns[0]!.startedAt);
    const text = (await runCli(['status', '--config', badPath], { cwd: dir, env })).stdout;
    expect(text).toMatch(
      /^Sync runs \(newest first\):\n.*streams.*\n\s*contacts .*ListContacts.*\n\s*contact_lists,contacts .* 2001 .*stopped before the end/m,
    );

    const goodPath = writeConfig(join(dir, 'tajo.yaml'), good);
    const again = await runCli(['backfill', '--json', '--stream', 'contacts', '--config', goodPath], { cwd: dir, env });
    expect(again.code, again.stderr).toBe(0);
    // Resumed at the saved page: pages 2 and 3 only.
    expect(lastJson<BackfillSummary>(again.stdout).streams.contacts?.read).toBe(2_000);
    await brevo.settle();
    const state = brevo.state();
    const news = {
      ...sesSim.data(),
      contacts: sesSim.data().contacts.filter((c) => c.list === 'news'),
      contactLists: sesSim.data().contactLists.filter((l) => l.name === 'news'),
      suppressions: [],
    };
    expect(compareBackfill(news, state).problems).toEqual([]);
    expect(Object.keys(state.contacts)).toHaveLength(3_000);
    console.log(`[backfill-behaviour] unreachable SES: exit 1 after ${r.ms} ms: ${r.stderr.split('\n').find((l) => l.startsWith('backfill failed')) ?? ''}`);
  }, 150_000);

  it('SIGINT stops a running backfill promptly with exit 130 and a kept cursor; the next run resumes and completes', async () => {
    brevo.reset();
    const ses = await startSesSim({ rps: 1 });
    try {
      ses.seed({
        contactLists: [{ name: 'digest', topics: [{ name: 'daily', defaultSubscriptionStatus: 'OPT_IN' }] }],
        contacts: Array.from({ length: 4_000 }, (_, i) => ({
          list: 'digest',
          email: `d${i}@example.net`,
          ...(i % 4 === 0 ? { topicPreferences: { daily: 'OPT_OUT' as const } } : {}),
          ...(i % 50 === 0 ? { unsubscribeAll: true } : {}),
        })),
      });
      const dir = mkdtempSync(join(root, 'sigint-'));
      const configPath = writeConfig(
        join(dir, 'tajo.yaml'),
        // A cursor saved at every page of 1,000 (the default is every 10,000 rows).
        simConfig({
          sesEndpoint: ses.endpoint,
          brevo: { url: brevo.url, apiKey: brevo.apiKey },
          db: join(dir, 'amazon-ses.db'),
          ses: { backfill: { checkpoint_rows: 1_000 } },
        }),
      );
      const run = spawnCli(['backfill', '--stream', 'contact_lists', '--stream', 'contacts', '--config', configPath], { cwd: dir, env });
      // The third page is read once the second is checkpointed (after Brevo accepted the first).
      await until(() => (ses.calls().ListContacts ?? 0) >= 3 || run.child.exitCode !== null, 'three contact pages', 60_000, 20);
      expect(run.child.exitCode, run.output()).toBeNull();
      const t0 = Date.now();
      run.child.kill('SIGINT');
      const ex = await run.exited;
      const stopMs = Date.now() - t0;
      // 130: interrupted (not "failed"), as shells report a Ctrl-C.
      expect(ex.code, run.output()).toBe(130);
      expect(run.output()).toMatch(/backfill interrupted/);
      expect(run.output()).not.toMatch(/backfill failed/);
      expect(run.output()).toMatch(/cursor is kept/);
      expect(stopMs).toBeLessThan(10_000);
      const st = lastJson<StatusReport>((await runCli(['status', '--json', '--config', configPath], { cwd: dir, env })).stdout);
      const cur = st.streams.find((c) => c.stream === 'contacts');
      expect(['running', 'failed']).toContain(cur?.status);
      expect(JSON.parse(cur!.value!)).toMatchObject({ list: 'digest' });

      const again = await runCli(['backfill', '--json', '--stream', 'contact_lists', '--stream', 'contacts', '--config', configPath], { cwd: dir, env });
      expect(again.code, again.stderr).toBe(0);
      expect(lastJson<BackfillSummary>(again.stdout).streams.contacts?.read).toBeLessThan(4_000);
      await brevo.settle();
      const state = brevo.state();
      expect(compareBackfill({ ...ses.data(), suppressions: [] }, state).problems).toEqual([]);
      expect(extraListProblems({ ...ses.data(), suppressions: [] }, state)).toEqual([]);
      console.log(
        `[backfill-behaviour] SIGINT: exit ${ex.code} after ${stopMs} ms; resumed run read ${lastJson<BackfillSummary>(again.stdout).streams.contacts?.read} contacts`,
      );
    } finally {
      await ses.close();
    }
  }, 120_000);

  it('a row Brevo refuses in an import becomes a dead letter with code import_invalid_row (tajo-ses failures list --json)', async () => {
    brevo.reset();
    // SES (the simulator) stores any address; Brevo's import refuses one without a dot in its domain.
    const sesSim = await startSesSim({ rps: 1 });
    sesSim.seed({
      contactLists: [{ name: 'odd', topics: [] }],
      contacts: [
        { list: 'odd', email: 'fine@example.com' },
        { list: 'odd', email: 'broken@localhost' },
        { list: 'odd', email: 'also-fine@example.org' },
      ],
    });
    const dir = mkdtempSync(join(root, 'invalid-'));
    const db = join(dir, 'amazon-ses.db');
    const cfg = simConfig({ sesEndpoint: sesSim.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db });
    await withConnector(cfg, (c) => fullRun(c, brevo, { streams: ['contact_lists', 'contacts'] })).finally(() => sesSim.close());
    expect(brevo.contact('fine@example.com')).toBeDefined();
    expect(brevo.contact('also-fine@example.org')).toBeDefined();
    expect(brevo.contact('broken@localhost')).toBeUndefined();
    const configPath = writeConfig(join(dir, 'tajo.yaml'), cfg);
    const r = await runCli(['failures', 'list', '--json', '--config', configPath], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as FailureView);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ kind: 'contact', state: 'dead', email: 'broken@localhost', error: { code: 'import_invalid_row' } });
    expect(rows[0]!.error.message).toMatch(/invalid/i);
    const human = await runCli(['failures', 'list', '--config', configPath], { cwd: dir, env });
    expect(human.stdout).toContain('import_invalid_row');
  }, 120_000);

  it('a list whose creation answer was lost is found again, not created twice', async () => {
    brevo.reset();
    const s = await startSesSim({ rps: 1 });
    try {
      s.generate({ lists: 1, topicsPerList: 2, contacts: 300, suppressions: 0, seed: 3 });
      const dir = mkdtempSync(join(root, 'lostlist-'));
      const cfg = simConfig({ sesEndpoint: s.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: join(dir, 'amazon-ses.db') });
      // Brevo creates the list, then the connection drops before the answer (or the process
      // is killed between Brevo's answer and the id being saved): the same state either way.
      let cut = false;
      const lossy: typeof fetch = async (input, init) => {
        const res = await fetch(input, init);
        const u = String(input instanceof Request ? input.url : input);
        if (!cut && init?.method === 'POST' && u.endsWith('/contacts/lists') && String(init.body).includes('list-1 / topic-2')) {
          cut = true;
          throw new TypeError('fetch failed (connection reset after the request was applied)');
        }
        return res;
      };
      await withConnector(
        cfg,
        async (c) => {
          await expect(c.backfill({ streams: ['contact_lists'] })).rejects.toThrow();
        },
        { fetchImpl: lossy },
      );
      expect(cut).toBe(true);
      // The operator runs the backfill again.
      await withConnector(cfg, (c) => fullRun(c, brevo, { streams: ['contact_lists', 'contacts'] }));
      const names = brevo.state().lists.map((l) => l.name);
      expect(names.filter((n) => n === 'list-1 / topic-2')).toHaveLength(1);
      expect(compareBackfill({ ...s.data(), suppressions: [] }, brevo.state()).problems).toEqual([]);
    } finally {
      await s.close();
    }
  }, 120_000);
});
