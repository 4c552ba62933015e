// A PostgreSQL schema of its own for a test: created on first connect, dropped by drop().
// The helper lives in src/bench (the benchmark uses it too).
export { PG_SERVER, freshPgSchema, type PgSchema } from '../src/bench/pg-schema.js';
