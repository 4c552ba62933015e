// Issue: a backfill killed at any moment resumes from its cursor and ends in the same state
// as an uninterrupted run: nothing written twice to lists, no events, no duplicated list.
// `tajo-ses backfill` runs as a child process (bin/tajo-ses.js) over the SES simulator at
// SES's own 1 request/s and the Brevo simulator; it is SIGKILLed three times at seeded
// random moments (during start-up, in the contacts stream, in the suppressions stream),
// then run to completion.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBrevoSim, type BrevoSim } from '../src/sim/brevo/index.js';
import { startSesSim, type SesSim } from '../src/sim/ses/index.js';
import { prng } from '../src/sim/ses/generate.js';
import { compareBackfill } from '../src/sim/oracle.js';
import type { StatusReport } from '../src/engine/status.js';
import {
  childEnv,
  ensureBuilt,
  extraListProblems,
  runCli,
  simConfig,
  sleep,
  spawnCli,
  TOPIC,
  until,
  writeConfig,
  writeRequests,
  type Spawned,
} from './backfill-helpers.js';

const CONTACTS = 8_000;
const SUPPRESSIONS = 3_000;

describe('backfill killed with SIGKILL three times', () => {
  let brevo: BrevoSim;
  let sesSim: SesSim;
  let dir: string;
  let configPath: string;
  let env: Record<string, string>;
  let running: Spawned | undefined;

  beforeAll(async () => {
    ensureBuilt();
    brevo = await startBrevoSim({ plan: 'general', importDelayMs: 200 });
    sesSim = await startSesSim({ rps: 1 });
    sesSim.generate({ lists: 2, topicsPerList: 2, contacts: CONTACTS, suppressions: SUPPRESSIONS, seed: 2024 });
    sesSim.seed({
      identities: [{ name: 'example.com' }],
      configurationSets: [
        { name: 'marketing', eventDestinations: [{ name: 'to-sns', enabled: true, matchingEventTypes: ['BOUNCE', 'COMPLAINT'], snsTopicArn: TOPIC }] },
      ],
    });
    dir = mkdtempSync(join(tmpdir(), 'tajo-bf-kill-'));
    configPath = writeConfig(
      join(dir, 'tajo.yaml'),
      simConfig({ sesEndpoint: sesSim.endpoint, brevo: { url: brevo.url, apiKey: brevo.apiKey }, db: join(dir, 'store', 'amazon-ses.db') }),
    );
    env = childEnv(dir);
  });

  afterAll(async () => {
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill('SIGKILL');
      await running.exited;
    }
    await brevo?.close();
    await sesSim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function status(): Promise<StatusReport> {
    const r = await runCli(['status', '--json', '--config', configPath], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as StatusReport;
  }

  it('resumes after each kill and ends exactly like an uninterrupted run', async () => {
    // Three kills at seeded random moments, each anchored so that the three phases of a run
    // are hit whatever the machine's speed: (1) 3-8 s after the start (start-up, account and
    // contact-list reads, at 1 SES call/s), (2) 0.3-5 s after the run's first ListContacts call
    // (in the middle of the contacts stream), (3) 0.2-1.8 s after its first
    // ListSuppressedDestinations call (in the suppressions stream: 3 pages, 1 s apart).
    const rand = prng(16);
    const plans: Array<{ after: 'start' | 'ListContacts' | 'ListSuppressedDestinations'; ms: number }> = [
      { after: 'start', ms: Math.round(3000 + rand() * 5000) },
      { after: 'ListContacts', ms: Math.round(300 + rand() * 4700) },
      { after: 'ListSuppressedDestinations', ms: Math.round(200 + rand() * 1600) },
    ];
    const kills: Array<{ at: string; cursors: Record<string, string>; sesCalls: number; imports: number }> = [];
    for (const [k, plan] of plans.entries()) {
      const before = sesSim.calls();
      const callsBefore = Object.values(before).reduce((a, n) => a + n, 0);
      const t0 = Date.now();
      const r = spawnCli(['backfill', '--json', '--config', configPath], { cwd: dir, env });
      running = r;
      if (plan.after !== 'start') {
        const op = plan.after;
        await until(() => (sesSim.calls()[op] ?? 0) > (before[op] ?? 0) || r.child.exitCode !== null, `run ${k + 1}: first ${op} call`, 90_000, 20);
      }
      await sleep(plan.ms);
      const delay = Date.now() - t0;
      // The run takes well over these delays at 1 SES request/s: it must still be going.
      expect(r.child.exitCode, `run ${k + 1} ended before the kill: ${r.output().slice(-2000)}`).toBeNull();
      r.child.kill('SIGKILL');
      const ex = await r.exited;
      expect(ex.signal).toBe('SIGKILL');
      running = undefined;

      const st = await status();
      const cursors = Object.fromEntries(st.streams.map((c) => [c.stream, c.status ?? '']));
      for (const c of st.streams) expect(['running', 'failed', 'complete'], `${c.stream}: ${JSON.stringify(c)}`).toContain(c.status);
      // Killed before the end: the last stream (suppressions) is not complete, nor are the
      // contacts before the suppressions start.
      expect(cursors.suppressions ?? 'none').not.toBe('complete');
      if (plan.after !== 'ListSuppressedDestinations') expect(cursors.contacts ?? 'none').not.toBe('complete');
      kills.push({
        at: `${delay} ms (${plan.ms} ms after ${plan.after})`,
        cursors,
        sesCalls: Object.values(sesSim.calls()).reduce((a, n) => a + n, 0) - callsBefore,
        imports: brevo.state().processes.length,
      });
    }
    // The second and third kills landed in the middle of a stream, with its cursor saved.
    expect(kills[1]!.cursors.contacts, JSON.stringify(kills)).toBe('running');
    expect(kills[2]!.cursors.suppressions, JSON.stringify(kills)).toBe('running');

    const t0 = Date.now();
    const last = spawnCli(['backfill', '--json', '--config', configPath], { cwd: dir, env });
    running = last;
    const done = await Promise.race([last.exited, sleep(170_000).then(() => ({ code: -1, signal: null }))]);
    const out = last.output();
    expect(done.code, out.slice(-3000)).toBe(0);
    running = undefined;
    const finalMs = Date.now() - t0;
    const lines = out.split('\n').filter((l) => l.startsWith('{'));
    const summary = JSON.parse(lines[lines.length - 1]!) as { ok: boolean; deadLetters: number; streams: Record<string, { read: number }> };
    expect(summary.ok).toBe(true);
    expect(summary.deadLetters).toBe(0);

    const st = await status();
    expect(Object.fromEntries(st.streams.map((c) => [c.stream, c.status]))).toEqual({
      account: 'complete',
      contact_lists: 'complete',
      contacts: 'complete',
      suppressions: 'complete',
    });
    expect(st.deadLetters).toBe(0);
    expect(st.queues.filter((q) => q.state !== 'done')).toEqual([]);

    await brevo.settle();
    const state = brevo.state();
    const ses = sesSim.data();
    const cmp = compareBackfill(ses, state);
    expect(cmp.problems).toEqual([]);
    expect(cmp.checked.contacts).toBe(CONTACTS);
    expect(extraListProblems(ses, state)).toEqual([]);
    expect(state.folders.map((f) => f.name)).toEqual(['Amazon SES']);
    // 2 contact lists + 4 topic lists + the suppression list.
    expect(state.lists.map((l) => l.name).sort()).toEqual([
      'SES suppression list',
      'list-1',
      'list-1 / topic-1',
      'list-1 / topic-2',
      'list-2',
      'list-2 / topic-1',
      'list-2 / topic-2',
    ]);
    expect(state.events).toEqual([]);
    expect(state.unblocks).toEqual([]);
    expect(state.dropped).toEqual([]);
    const stats = brevo.stats();
    // Nothing written twice to a list: no "Contact already in list" (400), no per-list adds at all.
    expect(stats.status['400'] ?? 0).toBe(0);
    expect(Object.keys(writeRequests(stats)).filter((k) => k.includes('/lists/') && k.endsWith('/contacts/add'))).toEqual([]);
    expect(writeRequests(stats)['POST /v3/events'] ?? 0).toBe(0);
    expect(writeRequests(stats)['POST /v3/events/batch'] ?? 0).toBe(0);
    const failures = await runCli(['failures', 'list', '--json', '--config', configPath], { cwd: dir, env });
    expect(failures.code).toBe(0);
    expect(failures.stdout.trim()).toBe('');

    console.log(
      `[backfill-kill] kills: ${kills.map((k) => `${k.at} (SES calls ${k.sesCalls}, cursors ${JSON.stringify(k.cursors)}, Brevo imports so far ${k.imports})`).join('; ')}; ` +
        `final run ${finalMs} ms, read ${JSON.stringify(Object.fromEntries(Object.entries(summary.streams).map(([k, v]) => [k, v.read])))}; ` +
        `Brevo imports ${state.processes.length}, GET /v3/processes ${stats.byRoute['GET /v3/processes'] ?? 0}, writes ${JSON.stringify(writeRequests(stats))}, SES calls ${JSON.stringify(sesSim.calls())}, throttled ${sesSim.throttled()}`,
    );
  }, 300_000);
});
