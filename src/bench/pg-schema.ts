// A PostgreSQL schema of its own (for a test or a benchmark run): created by the store on
// first connect, dropped by drop(). test/pg.ts re-exports it for the test suites.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** TAJO_TEST_PG_URL, else the local server as `postgres`. */
export const PG_SERVER = process.env.TAJO_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface PgSchema {
  schema: string;
  /** store.url of the schema. */
  url: string;
  drop(): Promise<void>;
}

export function freshPgSchema(prefix = 't', server = PG_SERVER): PgSchema {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const u = new URL(server);
  u.searchParams.set('schema', schema);
  return {
    schema,
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: server });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/** The server's version string (`SHOW server_version`), for the benchmark's machine notes. */
export async function pgServerVersion(server = PG_SERVER): Promise<string> {
  const c = new pg.Client({ connectionString: server });
  await c.connect();
  try {
    const r = await c.query<{ server_version: string }>('SHOW server_version');
    return r.rows[0]?.server_version ?? 'unknown';
  } finally {
    await c.end();
  }
}
