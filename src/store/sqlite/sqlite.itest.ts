import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
