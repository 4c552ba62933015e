// Numbered migrations, applied in order, each once, all pending ones in one transaction
// under an advisory lock (see PostgresStore.migrate). They mirror the SQLite ones table
// for table; the differences are types only: BIGSERIAL ids, BIGINT epoch-ms times,
// BOOLEAN flags. `payload` and `sources` stay TEXT so the JSON planned by core/ comes back
// byte for byte (JSONB would reorder keys); the ledger's attrs are JSONB because their
// merge (newest time per attribute) runs in SQL, where concurrent writers cannot race.
// Each migration is a function of the quoted schema name: every table is schema-qualified
// rather than relying on search_path, which poolers in transaction mode do not keep.

export interface PgMigration {
  version: number;
  name: string;
  sql: (schema: string) => string;
}

export const PG_MIGRATIONS: PgMigration[] = [
  {
    version: 1,
    name: 'inbox, ops, ledger, cursors',
    sql: (schema) => `
CREATE TABLE ${schema}.inbox (
  id BIGSERIAL PRIMARY KEY,
  message_id TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  topic_arn TEXT,
  received_at BIGINT NOT NULL,
  body TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  note TEXT,
  lease_owner TEXT,
  lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX inbox_state ON ${schema}.inbox(state, id);

CREATE TABLE ${schema}.ops (
  id BIGSERIAL PRIMARY KEY,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  email TEXT NOT NULL,
  lane TEXT NOT NULL,
  priority INTEGER NOT NULL,
  payload TEXT NOT NULL,
  sources TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at BIGINT NOT NULL,
  lease_owner TEXT,
  lease_until BIGINT NOT NULL DEFAULT 0,
  ref TEXT,
  last_code TEXT,
  last_message TEXT,
  last_status INTEGER,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX ops_event_key ON ${schema}.ops(key) WHERE kind = 'event';
CREATE UNIQUE INDEX ops_contact_pending ON ${schema}.ops(key) WHERE kind = 'contact' AND state = 'pending';
CREATE INDEX ops_due ON ${schema}.ops(kind, state, priority, id);
CREATE INDEX ops_ref ON ${schema}.ops(ref) WHERE ref IS NOT NULL;
CREATE INDEX ops_inflight ON ${schema}.ops(state, lease_until) WHERE state = 'inflight';

CREATE TABLE ${schema}.contact_ledger (
  email TEXT PRIMARY KEY,
  attrs JSONB NOT NULL,
  blocklisted BOOLEAN NOT NULL DEFAULT false,
  updated_at BIGINT NOT NULL
);

CREATE TABLE ${schema}.cursors (
  stream TEXT PRIMARY KEY,
  value TEXT,
  status TEXT,
  note TEXT,
  updated_at BIGINT NOT NULL
);

CREATE TABLE ${schema}.kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'several processes: registry, leases, shared rate budget, open imports',
    // As SQLite's migration 4. A take locks its bucket's row in budget_buckets (see cluster.ts),
    // so concurrent takes of one bucket queue up and those of other buckets do not.
    sql: (schema) => `
CREATE TABLE ${schema}.processes (
  owner TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  role TEXT,
  started_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL
);

CREATE TABLE ${schema}.leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  acquired_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE ${schema}.budget_buckets (
  bucket TEXT PRIMARY KEY,
  paused_until BIGINT NOT NULL DEFAULT 0,
  horizon_ms BIGINT NOT NULL DEFAULT 0,
  windows TEXT NOT NULL DEFAULT '[]',
  granted BIGINT NOT NULL DEFAULT 0,
  last_at BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE ${schema}.budget_grants (
  bucket TEXT NOT NULL,
  cum BIGINT NOT NULL,
  at BIGINT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (bucket, cum)
);
CREATE INDEX budget_grants_at ON ${schema}.budget_grants(bucket, at, cum);

CREATE TABLE ${schema}.route_buckets (
  route TEXT NOT NULL,
  window_ms BIGINT NOT NULL,
  bucket TEXT NOT NULL,
  limit_count INTEGER NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (route, window_ms)
);

CREATE INDEX ops_awaiting_email ON ${schema}.ops(email) WHERE kind = 'contact' AND state = 'awaiting';
`,
  },
  {
    version: 3,
    name: 'inbox retention: bodies dropped, then rows',
    // As SQLite's migration 5.
    sql: (schema) => `
ALTER TABLE ${schema}.inbox ADD COLUMN body_pruned BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX inbox_retention ON ${schema}.inbox(body_pruned, received_at);
`,
  },
  {
    version: 4,
    name: 'soft bounces counted per recipient (bounce_policy)',
    sql: (schema) => `
CREATE TABLE ${schema}.soft_bounces (
  key TEXT PRIMARY KEY,
  email TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX soft_bounces_email ON ${schema}.soft_bounces(email, at);
`,
  },
  {
    version: 5,
    name: 'Brevo list membership written by the contacts backfill (removals on a later full pass)',
    sql: (schema) => `
CREATE TABLE ${schema}.list_members (
  list TEXT NOT NULL,
  email TEXT NOT NULL,
  pass TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (list, email)
);
`,
  },
  {
    version: 6,
    name: 'attempts history of an operation',
    sql: (schema) => `ALTER TABLE ${schema}.ops ADD COLUMN history TEXT NOT NULL DEFAULT '[]';`,
  },
  {
    version: 7,
    name: 'messages an intake refused for good (poison SQS messages)',
    // As SQLite's migration 9.
    sql: (schema) => `
CREATE TABLE ${schema}.refused_messages (
  id BIGSERIAL PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  reason TEXT NOT NULL,
  message TEXT NOT NULL,
  external_id TEXT,
  body TEXT NOT NULL,
  at BIGINT NOT NULL
);
`,
  },
];
