// A PostgreSQL schema of its own for a test: created on first connect, dropped by drop().
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

export function freshPgSchema(prefix = 't'): PgSchema {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const u = new URL(PG_SERVER);
  u.searchParams.set('schema', schema);
  return {
    schema,
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_SERVER });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}
