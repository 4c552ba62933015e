import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { storeContract } from '../contract.js';
import { SqliteStore } from './index.js';

storeContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tajo-store-'));
  const store = new SqliteStore(join(dir, 'test.db'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

afterEach(() => {
  vi.restoreAllMocks();
});

it('sqlite: contactsWithOpenImports is answered from its partial index', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tajo-store-'));
  const store = new SqliteStore(join(dir, 'test.db'), { synchronous: 'NORMAL' });
  try {
    await store.migrate();
    const prepared = vi.spyOn(Database.prototype, 'prepare');
    await store.contactsWithOpenImports(['a@x.io']);
    // The plan of the very statement the adapter prepared.
    const sql = String(prepared.mock.calls.at(-1)![0]);
    const db = new Database(join(dir, 'test.db'), { readonly: true });
    try {
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('["a@x.io"]') as Array<{ detail: string }>;
      expect(plan.map((r) => r.detail).join('\n')).toContain('ops_awaiting_email');
    } finally {
      db.close();
    }
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
