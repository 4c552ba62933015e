import { resolve } from 'node:path';
import type { Store } from './port.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite/index.js';
import { TajoError } from '../core/errors.js';

export type { Store } from './port.js';

/** `sqlite:PATH` (relative to the working directory) or `postgres://user@host:port/db[?schema=S]`. */
export async function openStore(url: string, opts: { sqlite?: SqliteStoreOptions } = {}): Promise<Store> {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (!path) throw new TajoError('invalid_store_url', 'store.url: sqlite: needs a file path, e.g. sqlite:./.tajo/amazon-ses.db');
    return new SqliteStore(path === ':memory:' ? path : resolve(path), opts.sqlite);
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { PostgresStore } = await import('./postgres/index.js');
    return PostgresStore.connect(url);
  }
  throw new TajoError('invalid_store_url', `store.url: unsupported scheme in ${url.split(':')[0]}:; use sqlite:PATH or postgres://user@host:5432/db`);
}
