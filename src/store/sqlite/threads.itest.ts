// Two connections on one SQLite file, as `serve` has them (answering thread and engine
// thread): acknowledgements flushed to disk off the event loop, and never stuck behind the
// engine's lock with a blocked event loop.
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync, openSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from './index.js';
import { WriteGate } from './gate.js';
import { WalSync } from './wal-sync.js';
import type { InboxInsert } from '../port.js';
import { until } from '../../../test/helpers.js';

const row = (i: number): InboxInsert => ({ messageId: `m-${i}`, source: 'sns', receivedAt: 1, body: `{"n":${i}}` });

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'tajo-sqlite-threads-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('SQLite acknowledgements flushed off the event loop', () => {
  it('WalSync: a flush covers the commits made before it started; those made during it share the next one', async () => {
    const dir = tmp();
    const wal = join(dir, 'x.db-wal');
    closeSync(openSync(wal, 'w'));
    const flushes: Array<() => void> = [];
    let started = 0;
    const sync = new WalSync(wal, (_fd, cb) => {
      started++;
      flushes.push(() => cb(null));
    });
    const settled: string[] = [];
    const a = sync.afterCommit().then(() => settled.push('a'));
    await until(() => flushes.length === 1, 'one WAL flush', 2_000, 5);
    // Three commits while the first flush runs: not covered by it.
    const later = ['b', 'c', 'd'].map((k) => sync.afterCommit().then(() => settled.push(k)));
    flushes.shift()!();
    await a;
    await new Promise((r) => setTimeout(r, 10));
    expect(settled).toEqual(['a']);
    // One more flush serves all three.
    await until(() => flushes.length === 1, 'one WAL flush', 2_000, 5);
    flushes.shift()!();
    await Promise.all(later);
    expect(settled.sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(started).toBe(2);
    sync.close();
  }, 10_000);

  it('WalSync: a failed flush refuses the acknowledgements it covered; the next ones can succeed', async () => {
    const dir = tmp();
    const wal = join(dir, 'x.db-wal');
    closeSync(openSync(wal, 'w'));
    let fail = true;
    const sync = new WalSync(wal, (_fd, cb) => setImmediate(() => cb(fail ? Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }) : null)));
    await expect(sync.afterCommit()).rejects.toThrow(/flushing the SQLite WAL to disk failed: EIO/);
    fail = false;
    await expect(sync.afterCommit()).resolves.toBeUndefined();
    sync.close();
  });

  it('WalSync: a WAL file that cannot be opened refuses the acknowledgement', async () => {
    const sync = new WalSync(join(tmp(), 'missing', 'x.db-wal'));
    await expect(sync.afterCommit()).rejects.toThrow(/ENOENT/);
  });

  it('a durable store acknowledges an insert only after its WAL flush', async () => {
    const dir = tmp();
    const store = new SqliteStore(join(dir, 'a.db'));
    await store.migrate();
    expect(await store.insertInbox([row(1), row(2)])).toEqual(['inserted', 'inserted']);
    // A duplicate is acknowledged too (its first copy may still be on its way to disk).
    expect(await store.insertInbox([row(1)])).toEqual(['duplicate']);
    await store.close();
  });
});

describe('SQLite shared by two threads', () => {
  it('WriteGate: the engine side waits while the ingest side writes, at most maxWaitMs', () => {
    const ingest = new WriteGate('ingest');
    const engine = new WriteGate('engine', ingest.buffer, 30);
    let t = performance.now();
    engine.yieldToIngest();
    expect(performance.now() - t).toBeLessThan(10);
    ingest.enter();
    t = performance.now();
    engine.yieldToIngest();
    expect(performance.now() - t).toBeGreaterThanOrEqual(25);
    ingest.leave();
    t = performance.now();
    engine.yieldToIngest();
    expect(performance.now() - t).toBeLessThan(10);
  });

  it('an acknowledging insert waits for a lock held elsewhere without blocking its event loop, then commits', async () => {
    const dir = tmp();
    const path = join(dir, 'shared.db');
    const gate = new WriteGate('ingest');
    const store = new SqliteStore(path, { gate });
    await store.migrate();
    const other = new Database(path);
    other.pragma('journal_mode = WAL');
    other.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    let done = false;
    const insert = store.insertInbox([row(7)]).then((r) => {
      done = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 120));
    // Still waiting for the lock, and the event loop kept turning meanwhile.
    expect(done).toBe(false);
    expect(ticks).toBeGreaterThan(10);
    // The engine side, meanwhile, is asked to wait.
    const t = performance.now();
    new WriteGate('engine', gate.buffer, 15).yieldToIngest();
    expect(performance.now() - t).toBeGreaterThanOrEqual(10);
    other.exec('COMMIT');
    expect(await insert).toEqual(['inserted']);
    clearInterval(ticker);
    other.close();
    const st = await store.stats();
    expect(st.inbox.pending).toBe(1);
    await store.close();
  });

  it('the acknowledging connection leaves WAL checkpoints to the engine connection', async () => {
    const walAfter = async (gate: WriteGate | undefined) => {
      const path = join(tmp(), 'c.db');
      const store = new SqliteStore(path, gate ? { gate } : {});
      await store.migrate();
      const big = 'x'.repeat(4000);
      for (let i = 0; i < 40; i++) await store.insertInbox(Array.from({ length: 50 }, (_, j) => ({ ...row(i * 50 + j), body: big })));
      const size = statSync(`${path}-wal`).size;
      await store.close();
      return size;
    };
    // 8 MB written: a connection that checkpoints keeps reusing a ~4 MB WAL; the
    // acknowledging one never copies it back, so its WAL holds everything.
    expect(await walAfter(undefined)).toBeLessThan(6_000_000);
    expect(await walAfter(new WriteGate('ingest'))).toBeGreaterThan(8_000_000);
  });
});
