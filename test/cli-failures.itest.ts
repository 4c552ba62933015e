// `failures` and `backfill` rough edges, as an operator meets them: a retry or discard of
// something that is not a dead letter fails loudly, --code filters, --all discards, messages
// are cut at a word, and a backfill with nothing to do says so.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/port.js';
import { event } from '../src/store/contract.js';
import { shorten } from '../src/cli/main.js';
import { cleanEnv, ensureBuilt, runCli, withSqliteStore } from './cli-run.js';

let dir = '';
const T0 = 1_700_000_000_000;
const ids: Record<string, number> = {};

const withStore = <T>(fn: (s: Store) => Promise<T>): Promise<T> => withSqliteStore(join(dir, 'tajo.db'), fn);

const cli = (args: string[]) => runCli(args, { cwd: dir, env: cleanEnv(dir, { BREVO_API_KEY: 'x' }) });

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'tajo-failures-'));
  writeFileSync(
    join(dir, 'tajo.yaml'),
    ['connectors:', '  amazon-ses:', '    region: us-east-1', 'brevo:', '  api_key: ${BREVO_API_KEY}', 'store:', '  url: sqlite:./tajo.db', ''].join('\n'),
  );
  await withStore(async (store) => {
    await store.enqueue(
      ['bad1', 'bad2', 'bad3', 'gone', 'ok'].map((k) => event(k, `${k}@example.com`)),
      T0,
    );
    const claimed = await store.claimOps({ kind: 'event', limit: 10, owner: 't', leaseMs: 60_000, now: T0 });
    for (const op of claimed) ids[op.key] = op.id;
    const long = 'Brevo refused the event because the identifier email_id does not name a contact that exists in this account';
    await store.deadOps(
      [
        { id: ids.bad1!, code: 'invalid_parameter', message: long, status: 400 },
        { id: ids.bad2!, code: 'invalid_parameter', message: 'bad', status: 400 },
        { id: ids.bad3!, code: 'unauthorized', message: 'key not enabled', status: 401 },
        { id: ids.gone!, code: 'unauthorized', message: 'key not enabled', status: 401 },
      ],
      T0,
    );
    await store.completeOps([ids.ok!], T0);
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('failures', () => {
  it('retry of a delivered operation fails and says what state it is in', async () => {
    const r = await cli(['failures', 'retry', String(ids.ok)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`operation ${ids.ok} is not a dead letter: its state is done \\(delivered to Brevo\\)`));
  });

  it('discard or retry of an unknown id fails', async () => {
    for (const sub of ['discard', 'retry', 'show']) {
      const r = await cli(['failures', sub, '999999']);
      expect(r.code, sub).toBe(1);
      expect(r.stderr, sub).toMatch(/no operation with id 999999/);
    }
  });

  it('list --code filters by Brevo code; long messages are cut at a word', async () => {
    const r = await cli(['failures', 'list', '--code', 'invalid_parameter']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/bad1@example\.com/);
    expect(r.stdout).toMatch(/bad2@example\.com/);
    expect(r.stdout).not.toMatch(/bad3@example\.com/);
    expect(r.stdout).toMatch(/email_id does not name a…\n/);
    const none = await cli(['failures', 'list', '--code', 'nope']);
    expect(none.stdout.trim()).toBe('No dead letters with code nope.');
  });

  it('discard --all --code drops only that code; retry --all queues the rest', async () => {
    const d = await cli(['failures', 'discard', '--all', '--code', 'unauthorized', '--json']);
    expect(d.code).toBe(0);
    expect(JSON.parse(d.stdout)).toEqual({ discarded: 2 });
    const r = await cli(['failures', 'retry', '--all', '--json']);
    expect(JSON.parse(r.stdout)).toEqual({ retried: 2 });
    const states = await withStore(async (s) =>
      Object.fromEntries(await Promise.all(Object.entries(ids).map(async ([k, id]) => [k, (await s.getOp(id))?.state]))),
    );
    expect(states).toEqual({ bad1: 'pending', bad2: 'pending', bad3: 'discarded', gone: 'discarded', ok: 'done' });
  });

  it('show keeps the attempts history across a retry: the first death, then the next one', async () => {
    // The retry above queued it at the wall clock's now.
    const T1 = Date.now() + 1000;
    await withStore(async (s) => {
      await s.claimOps({ kind: 'event', limit: 10, owner: 't', leaseMs: 60_000, now: T1 });
      await s.deadOps([{ id: ids.bad2!, code: 'server_error', message: 'Brevo 503', status: 503 }], T1 + 1000);
    });
    const r = await cli(['failures', 'show', String(ids.bad2), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const v = JSON.parse(r.stdout) as { attempts: number; history: Array<{ at: string; code: string; status: number | null }> };
    expect(v.attempts).toBe(1);
    expect(v.history).toEqual([
      { at: new Date(T0).toISOString(), code: 'invalid_parameter', message: 'bad', status: 400 },
      { at: new Date(T1 + 1000).toISOString(), code: 'server_error', message: 'Brevo 503', status: 503 },
    ]);
    const text = await cli(['failures', 'show', String(ids.bad2)]);
    expect(text.stdout).toMatch(/history:[\s\S]*invalid_parameter[\s\S]*server_error/);
  });

  it('list shows the messages an intake refused (poison SQS messages) with their reason and SQS message id; --code filters them too', async () => {
    await withStore(async (s) => {
      await s.recordRefusedMessage({
        key: 'sqs:q-1',
        source: 'sqs',
        reason: 'malformed_json',
        message: 'the body is not JSON',
        externalId: 'q-1',
        body: 'x',
        at: T0,
      });
      await s.recordRefusedMessage({
        key: 'sqs:q-2',
        source: 'sqs',
        reason: 'topic_not_allowed',
        message: 'topic not allowed',
        externalId: 'q-2',
        body: '{}',
        at: T0,
      });
    });
    const r = await cli(['failures', 'list']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Messages refused at intake[^\n]*: 2\n/);
    expect(r.stdout).toMatch(/sqs +malformed_json +q-1 /);
    expect(r.stdout).toMatch(/sqs +topic_not_allowed +q-2 /);
    const only = await cli(['failures', 'list', '--code', 'topic_not_allowed', '--json']);
    const lines = only.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; reason?: string; sqsMessageId?: string });
    expect(lines.map((l) => [l.kind, l.reason, l.sqsMessageId])).toEqual([['refused_message', 'topic_not_allowed', 'q-2']]);
  });

  it('an id together with --all is a usage error', async () => {
    const r = await cli(['failures', 'discard', '5', '--all']);
    expect(r.code).toBe(2);
  });
});

describe('backfill with nothing to do', () => {
  it('every stream off: exit 2 and a message naming the key', async () => {
    writeFileSync(
      join(dir, 'off.yaml'),
      [
        'connectors:',
        '  amazon-ses:',
        '    region: us-east-1',
        '    sync: { events: true, suppressions: false, contacts: false, account: false }',
        'brevo:',
        '  api_key: x',
        'store:',
        '  url: sqlite:./off.db',
        '',
      ].join('\n'),
    );
    const r = await cli(['backfill', '--config', 'off.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/every stream is off in connectors\.amazon-ses\.sync/);
  });
});

describe('shorten', () => {
  it('cuts at a word boundary with an ellipsis, and leaves short text alone', () => {
    expect(shorten('short', 80)).toBe('short');
    expect(shorten('alpha beta gamma delta', 12)).toBe('alpha beta…');
    expect(shorten('x'.repeat(20), 10)).toBe('xxxxxxxxx…');
  });
});
