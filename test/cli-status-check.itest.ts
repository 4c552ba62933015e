// `tajo-ses status --check` for monitoring: exit 1 and say why when something needs an
// operator (a dead letter, Brevo failing for over a minute, lag over --max-lag), 0 otherwise;
// and `status` shows Brevo's health as serve saved it and the last error on waiting work.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/port.js';
import { event } from '../src/store/contract.js';
import { BREVO_HEALTH_STATE_KEY, type BrevoHealthSnapshot } from '../src/engine/brevo-health.js';
import { cleanEnv, ensureBuilt, runCli, withSqliteStore } from './cli-run.js';

let dir = '';

const withStore = <T>(fn: (s: Store) => Promise<T>): Promise<T> => withSqliteStore(join(dir, 'tajo.db'), fn);

const cli = (args: string[]) => runCli(args, { cwd: dir, env: cleanEnv(dir, { BREVO_API_KEY: 'x' }) });

const saveHealth = (h: Omit<BrevoHealthSnapshot, 'savedAt'>) =>
  withStore((s) => s.setState(BREVO_HEALTH_STATE_KEY, JSON.stringify({ ...h, savedAt: Date.now() }), Date.now()));

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'tajo-status-check-'));
  writeFileSync(
    join(dir, 'tajo.yaml'),
    ['connectors:', '  amazon-ses:', '    region: us-east-1', 'brevo:', '  api_key: ${BREVO_API_KEY}', 'store:', '  url: sqlite:./tajo.db', ''].join('\n'),
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('status --check', () => {
  it('exits 0 when nothing needs an operator', async () => {
    await withStore((s) => s.migrate());
    const r = await cli(['status', '--check']);
    expect(r.stdout).toMatch(/OK: nothing needs an operator/);
    expect(r.code).toBe(0);
  });

  it('lag over --max-lag needs an operator; the waiting work shows its last error', async () => {
    const created = Date.now() - 120_000;
    const id = await withStore(async (s) => {
      await s.enqueue([event('late', 'late@example.com')], created);
      const [op] = await s.claimOps({ kind: 'event', limit: 1, owner: 't', leaseMs: 60_000, now: created });
      await s.retryOps([{ id: op!.id, nextAt: Date.now() + 60_000, code: 'server_error', message: 'POST /events: 503', status: 503 }], Date.now());
      return op!.id;
    });
    expect((await cli(['status', '--check', '--max-lag', '300'])).code).toBe(0);
    const r = await cli(['status', '--check', '--max-lag', '60']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/NEEDS AN OPERATOR: event\/\S+ lag 1[12]\d s is over 60 s/);

    const json = await cli(['status', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ waitingErrors: { count: 1, newest: { code: 'server_error', status: 503, message: 'POST /events: 503' } } });
    expect((await cli(['status'])).stdout).toMatch(/Waiting work with an error: 1 operation\(s\); newest: 503 server_error/);
    await withStore((s) => s.completeOps([id], Date.now()));
  });

  it('a Brevo failure streak needs an operator after 60 s, not before', async () => {
    const now = Date.now();
    const lastError = { code: 'server_error', status: 502, message: 'POST /events: 502 Bad Gateway', endpoint: 'events', at: now };
    await saveHealth({ lastSuccessAt: now - 30_000, lastError, streak: { since: now - 30_000, calls: 4 } });
    expect((await cli(['status', '--check'])).code).toBe(0);
    const text = await cli(['status']);
    expect(text.stdout).toMatch(/streak: +FAILING for 3\d s, 4 call\(s\) in a row/);
    expect(text.stdout).toMatch(/last error: +502 server_error on events/);

    await saveHealth({ lastSuccessAt: now - 90_000, lastError, streak: { since: now - 90_000, calls: 40 } });
    const r = await cli(['status', '--check', '--json']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { ok: boolean; reasons: string[] };
    expect(out.ok).toBe(false);
    expect(out.reasons).toEqual([expect.stringMatching(/^Brevo has been failing for 9\d s \(40 calls in a row, last: 502 POST \/events: 502 Bad Gateway/)]);

    await saveHealth({ lastSuccessAt: now, lastError, streak: null });
    expect((await cli(['status', '--check'])).code).toBe(0);
  });

  it('a dead letter needs an operator', async () => {
    await withStore(async (s) => {
      await s.enqueue([event('bad', 'bad@example.com')], Date.now());
      const [op] = await s.claimOps({ kind: 'event', limit: 1, owner: 't', leaseMs: 60_000, now: Date.now() });
      await s.deadOps([{ id: op!.id, code: 'invalid_parameter', message: 'bad', status: 400 }], Date.now());
    });
    const r = await cli(['status', '--check']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/NEEDS AN OPERATOR: 1 dead letter\(s\): see 'tajo-ses failures list'/);
  });
});
